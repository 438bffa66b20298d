package translate

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ergomake/ergomake/internal/compose"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// bindProject writes a project whose service "app" has the given volumes, then lets prepare add
// files (links, FIFOs, modes) before it is translated.
func bindProject(t *testing.T, volumes string, files map[string]string, prepare func(dir string)) (*Result, error) {
	t.Helper()
	files["compose.yaml"] = "services:\n  app:\n    image: example/app\n    volumes:\n" + volumes
	dir := writeProject(t, files)
	if prepare != nil {
		prepare(dir)
	}
	done := make(chan struct{})
	var res *Result
	var err error
	go func() {
		defer close(done)
		res, err = loadErr(t, dir, Options{})
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the translation hangs")
	}
	return res, err
}

func appMounts(res *Result) []v1alpha1.VolumeMount { return res.Env.Spec.Services[0].Volumes }

func warnings(res *Result) string {
	var b strings.Builder
	for _, w := range res.Warnings {
		b.WriteString(w.String() + "\n")
	}
	return b.String()
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestPrivateFilesGoToSecrets: a bind-mounted file or folder holding a file that looks private
// (.env*, *.pem, *.key, id_rsa, mode 0600) is shipped as a Secret, never a ConfigMap; others stay
// ConfigMaps.
func TestPrivateFilesGoToSecrets(t *testing.T) {
	res, err := bindProject(t, `      - ./public:/public:ro
      - ./keys:/keys:ro
      - ./.env.local:/app/.env.local:ro
      - ./owner-only.txt:/owner-only.txt:ro
      - ./ssh/id_rsa:/root/.ssh/id_rsa:ro
      - ./tls/cert.pem:/tls/cert.pem:ro
`, map[string]string{
		"public/index.html":   "<h1>hi</h1>",
		"public/app.js":       "console.log(1)",
		"keys/readme.txt":     "keys",
		"keys/sub/server.key": "PRIVATE-KEY-BODY",
		".env.local":          "TOKEN=dot-env-value",
		"owner-only.txt":      "owner only",
		"ssh/id_rsa":          "RSA-BODY",
		"tls/cert.pem":        "PEM-BODY",
	}, func(dir string) {
		must(t, os.Chmod(filepath.Join(dir, "owner-only.txt"), 0o600))
	})
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]v1alpha1.VolumeMountType{}
	for _, m := range appMounts(res) {
		types[m.Target] = m.Type
	}
	want := map[string]v1alpha1.VolumeMountType{
		"/public": v1alpha1.MountConfigMap, "/keys": v1alpha1.MountSecret, "/app/.env.local": v1alpha1.MountSecret,
		"/owner-only.txt": v1alpha1.MountSecret, "/root/.ssh/id_rsa": v1alpha1.MountSecret, "/tls/cert.pem": v1alpha1.MountSecret,
	}
	for target, typ := range want {
		if types[target] != typ {
			t.Errorf("%s: mount type %q, want %q", target, types[target], typ)
		}
	}
	var cms []byte
	for _, cm := range res.ConfigMaps {
		b, _ := json.Marshal(cm)
		cms = append(cms, b...)
	}
	spec, _ := json.Marshal(res.Env)
	for _, v := range []string{"PRIVATE-KEY-BODY", "dot-env-value", "owner only", "RSA-BODY", "PEM-BODY"} {
		if strings.Contains(string(cms), v) || strings.Contains(string(spec), v) {
			t.Errorf("%q is in a ConfigMap or the spec", v)
		}
	}
	found := false
	for _, s := range res.Secrets {
		if string(s.Data["sub__server.key"]) == "PRIVATE-KEY-BODY" {
			found = true
		}
	}
	if !found {
		t.Error("the key of ./keys is in no Secret")
	}
	for _, m := range appMounts(res) {
		if m.Target == "/owner-only.txt" && (len(m.Items) != 1 || m.Items[0].Mode == nil || *m.Items[0].Mode != 0o600) {
			t.Errorf("owner-only file items %+v: want mode 0600 kept", m.Items)
		}
	}
}

// TestBindSymlinks: links inside a mounted folder are followed only inside the project (or the
// folder); a link out of it is an error naming the link; dangling links and links to folders are
// skipped with a warning. A mount source that is itself a link out of the project is an error.
func TestBindSymlinks(t *testing.T) {
	outside := t.TempDir()
	must(t, os.WriteFile(filepath.Join(outside, "credentials"), []byte("outside-secret"), 0o644))

	res, err := bindProject(t, "      - ./conf:/conf:ro\n", map[string]string{
		"conf/app.conf":      "a=1",
		"shared/common.conf": "common=1",
	}, func(dir string) {
		must(t, os.Symlink("../shared/common.conf", filepath.Join(dir, "conf", "common.conf")))
		must(t, os.Symlink("app.conf", filepath.Join(dir, "conf", "alias.conf")))
		must(t, os.Symlink("missing.conf", filepath.Join(dir, "conf", "dangling.conf")))
		must(t, os.Symlink("../shared", filepath.Join(dir, "conf", "shared-dir")))
	})
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, it := range appMounts(res)[0].Items {
		paths = append(paths, it.Path)
	}
	if got := strings.Join(paths, " "); got != "alias.conf app.conf common.conf" {
		t.Errorf("shipped %q, want the files and the links inside the project", got)
	}
	if w := warnings(res); !strings.Contains(w, "./conf/dangling.conf (a dangling link)") || !strings.Contains(w, "./conf/shared-dir (a link to a folder)") {
		t.Errorf("warnings:\n%s", w)
	}

	_, err = bindProject(t, "      - ./conf:/conf:ro\n", map[string]string{"conf/app.conf": "a=1"}, func(dir string) {
		must(t, os.Symlink(filepath.Join(outside, "credentials"), filepath.Join(dir, "conf", "creds")))
	})
	if err == nil || !strings.Contains(err.Error(), `service "app": volumes: ./conf/creds is a symbolic link to `+filepath.Join(outside, "credentials")+", outside the project") {
		t.Errorf("link out of the project: %v", err)
	}

	_, err = bindProject(t, "      - ./creds:/creds:ro\n", map[string]string{}, func(dir string) {
		must(t, os.Symlink(outside, filepath.Join(dir, "creds")))
	})
	if err == nil || !strings.Contains(err.Error(), "./creds is a symbolic link to "+outside+", outside the project") {
		t.Errorf("source linking out of the project: %v", err)
	}
}

// TestBindBounded: special files and huge ones give a clear error naming file, service and key,
// at once; special files inside a folder are skipped with a warning.
func TestBindBounded(t *testing.T) {
	_, err := bindProject(t, "      - ./pipe:/pipe\n", map[string]string{}, func(dir string) {
		must(t, syscall.Mkfifo(filepath.Join(dir, "pipe"), 0o644))
	})
	var ce *compose.Error
	if !errorAs(err, &ce) || ce.Service != "app" || ce.Key != "volumes" || ce.Line != 5 ||
		!strings.Contains(err.Error(), "./pipe is a named pipe (FIFO), not a regular file") {
		t.Errorf("FIFO source: %v", err)
	}

	_, err = bindProject(t, "      - ./big.bin:/big.bin\n", map[string]string{}, func(dir string) {
		f, err := os.Create(filepath.Join(dir, "big.bin"))
		must(t, err)
		must(t, f.Truncate(4<<30))
		f.Close()
	})
	if err == nil || !strings.Contains(err.Error(), "./big.bin is too large (4096 MiB; the limit is 1 MiB): mount a named volume instead") {
		t.Errorf("huge file: %v", err)
	}

	res, err := bindProject(t, "      - ./run:/run/app\n", map[string]string{"run/app.conf": "x"}, func(dir string) {
		must(t, syscall.Mkfifo(filepath.Join(dir, "run", "events"), 0o644))
	})
	if err != nil {
		t.Fatal(err)
	}
	if w := warnings(res); !strings.Contains(w, "./run: not shipped: ./run/events (a named pipe)") {
		t.Errorf("warnings:\n%s", w)
	}

	files := map[string]string{}
	for i := 0; i <= maxBindEntries; i++ {
		files[filepath.Join("many", strings.Repeat("d", 1+i%7), "f"+string(rune('a'+i%26))+strings.Repeat("x", i/26))] = ""
	}
	_, err = bindProject(t, "      - ./many:/many\n", files, nil)
	if err == nil || !strings.Contains(err.Error(), "./many cannot be shipped to the cluster: it has more than 5000 files and folders") {
		t.Errorf("many files: %v", err)
	}
}

// TestHostPaths: a bind mount of the user's machine's path is never mounted from the node; a
// small file or folder is shipped, system paths and the Docker socket are errors, and the time
// zone files read-only are dropped with a warning.
func TestHostPaths(t *testing.T) {
	outside := t.TempDir()
	must(t, os.WriteFile(filepath.Join(outside, "settings.ini"), []byte("x=1"), 0o644))
	res, err := bindProject(t, `      - /etc/localtime:/etc/localtime:ro
      - /etc/timezone:/etc/timezone:ro
      - `+outside+`:/outside:ro
      - /dev/null:/app/.env
`, map[string]string{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	spec, _ := json.Marshal(res.Env)
	if strings.Contains(string(spec), "hostPath") {
		t.Errorf("a hostPath mount: %s", spec)
	}
	w := warnings(res)
	for _, want := range []string{"/etc/localtime: not mounted; the container keeps the cluster's time zone", "/etc/timezone: not mounted",
		"/dev/null: /app/.env is an empty read-only file in the cluster"} {
		if !strings.Contains(w, want) {
			t.Errorf("no warning %q in:\n%s", want, w)
		}
	}
	ms := appMounts(res)
	if len(ms) != 2 || ms[0].Target != "/app/.env" || ms[1].Target != "/outside" || ms[1].Type != v1alpha1.MountConfigMap {
		t.Errorf("mounts %+v", ms)
	}

	for src, want := range map[string]string{
		"/":                    "/ is a system path of your machine",
		"/sys":                 "/sys is a system path of your machine",
		"/proc/1":              "/proc/1 is a system path of your machine",
		"/dev/zero":            "/dev/zero is a system path of your machine",
		"/var/run/docker.sock": "/var/run/docker.sock: the container engine's socket of your machine cannot be mounted in the cluster",
		"/tmp":                 "/tmp is a system path of your machine",
	} {
		_, err := bindProject(t, "      - "+src+":/mnt/x\n", map[string]string{}, nil)
		var ce *compose.Error
		if !errorAs(err, &ce) || ce.Service != "app" || ce.Key != "volumes" || ce.Line != 5 || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", src, err, want)
		}
	}
}

// TestSecretFileBounded: a compose secret whose file is a FIFO or a device fails at once.
func TestSecretFileBounded(t *testing.T) {
	dir := writeProject(t, map[string]string{"compose.yaml": "services:\n  app:\n    image: x\n    secrets: [a]\nsecrets:\n  a:\n    file: ./pipe\n"})
	must(t, syscall.Mkfifo(filepath.Join(dir, "pipe"), 0o600))
	_, err := loadErr(t, dir, Options{})
	if err == nil || !strings.Contains(err.Error(), `service "app": secrets: secret "a": cannot read `+filepath.Join(dir, "pipe")+": is a named pipe (FIFO), not a regular file") {
		t.Errorf("FIFO secret: %v", err)
	}
}
