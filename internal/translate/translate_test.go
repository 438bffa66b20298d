package translate

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ergomake/ergomake/internal/compose"
	"github.com/ergomake/ergomake/internal/testutil/tree"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

func load(t *testing.T, dir string, environ ...string) *Result {
	t.Helper()
	res, err := loadErr(t, dir, Options{}, environ...)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func loadErr(t *testing.T, dir string, opts Options, environ ...string) (*Result, error) {
	t.Helper()
	if environ == nil {
		environ = []string{}
	}
	p, err := compose.Load(context.Background(), compose.Options{WorkingDir: dir, Environ: environ})
	if err != nil {
		t.Fatal(err)
	}
	// Every project of these tests translates the same on the ergomake server, from the files
	// recorded here (files_test.go).
	sameFromRecorded(t, dir, p, opts)
	return Translate(p, opts)
}

func writeProject(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	tree.Write(t, dir, files)
	return dir
}

func TestSecretContentsNeverInTheSpec(t *testing.T) {
	res := load(t, filepath.Join(projectsDir, "secrets"), "API_KEY=k3y-from-shell")
	spec, err := json.Marshal(res.Env)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"s3cr3t-passw0rd", "k3y-from-shell", "BEGIN CERTIFICATE"} {
		if strings.Contains(string(spec), secret) {
			t.Errorf("secret %q is in the spec", secret)
		}
	}
	found := false
	for _, s := range res.Secrets {
		for _, v := range s.Data {
			if string(v) == "k3y-from-shell" {
				found = true
			}
		}
		if s.Labels["ergomake.dev/env"] != "secrets" || s.Namespace != "ergomake-secrets" {
			t.Errorf("secret %s: labels %v namespace %q", s.Name, s.Labels, s.Namespace)
		}
	}
	if !found {
		t.Error("the environment variable secret should come from the shell, which wins over .env")
	}
}

func TestBindMountTooLarge(t *testing.T) {
	dir := writeProject(t, map[string]string{
		"compose.yaml":     "services:\n  web:\n    image: nginx\n    volumes:\n      - ./site:/usr/share/nginx/html:ro\n",
		"site/index.html":  strings.Repeat("<p>hello</p>\n", 100),
		"site/assets/a.js": strings.Repeat("console.log(1)\n", 100),
	})
	_, err := loadErr(t, dir, Options{MaxConfigMapBytes: 1024})
	var ce *compose.Error
	if err == nil || !errorAs(err, &ce) || ce.Service != "web" || ce.Key != "volumes" || ce.Line != 5 ||
		!strings.Contains(err.Error(), "./site is too large") {
		t.Fatalf("want a clear error naming service web, key volumes and ./site; got %v", err)
	}
	res, err := loadErr(t, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	m := res.Env.Spec.Services[0].Volumes[0]
	if m.Type != "configMap" || len(m.Items) != 2 || m.Items[0].Path != "assets/a.js" || m.Items[0].Key != "assets__a.js" {
		t.Errorf("folder mount: %+v", m)
	}
}

func errorAs(err error, target **compose.Error) bool {
	ce, ok := err.(*compose.Error)
	*target = ce
	return ok
}

func TestDeterministic(t *testing.T) {
	for _, dir := range []string{"webapp", "names", "ports", "secrets", "bind-config"} {
		a := renderResult(t, load(t, filepath.Join(projectsDir, dir)), "")
		for i := 0; i < 5; i++ {
			if b := renderResult(t, load(t, filepath.Join(projectsDir, dir)), ""); a != b {
				t.Fatalf("%s: output differs between runs", dir)
			}
		}
	}
}

func TestNames(t *testing.T) {
	for in, want := range map[string]string{
		"web":       "web",
		"web_app":   "web-app",
		"API":       "api",
		"1db":       "s-1db",
		"a.b.c":     "a-b-c",
		"__x__":     "x",
		"db-":       "db",
		"ÜberCache": "bercache",
	} {
		if got := dns1035Label(in); got != want {
			t.Errorf("dns1035Label(%q) = %q, want %q", in, got, want)
		}
	}
	long := strings.Repeat("a", 70)
	if got := dns1035Label(long + "_"); len(got) > 63 {
		t.Errorf("too long: %q", got)
	}
	if a, b := objectName("secret", "db_password"), objectName("secret", "db-password"); a == b {
		t.Errorf("objectName collides: %q", a)
	}
}

func TestWarningString(t *testing.T) {
	w := Warning{File: "compose.yaml", Service: "web", Key: "ulimits", Message: "ignored"}
	if got := w.String(); got != `compose.yaml: service "web": ulimits: ignored` {
		t.Errorf("got %q", got)
	}
	w = Warning{File: "compose.yaml", Key: "networks", Message: "flat"}
	if got := w.String(); got != `compose.yaml: networks: flat` {
		t.Errorf("got %q", got)
	}
}

func TestLifecycleAndRetries(t *testing.T) {
	res := load(t, filepath.Join(projectsDir, "migrations"))
	got := map[string]string{}
	for _, s := range res.Env.Spec.Services {
		r := ""
		if s.MaxRetries != nil {
			r = string(rune('0' + *s.MaxRetries))
		}
		got[s.Name] = string(s.Lifecycle) + "/" + r
	}
	want := map[string]string{"db": "LongRunning/", "migrate": "OneShot/3", "seed": "OneShot/", "api": "LongRunning/", "nightly-report": "OneShot/2"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: got %s, want %s", k, got[k], v)
		}
	}
}

func TestInvalidNamespace(t *testing.T) {
	_, err := loadErr(t, filepath.Join(projectsDir, "webapp"), Options{Namespace: "Team_A"})
	if err == nil || !strings.Contains(err.Error(), `"Team_A" is not a valid namespace`) {
		t.Errorf("got %v", err)
	}
}

func TestBuiltServices(t *testing.T) {
	dir := writeProject(t, map[string]string{
		"compose.yaml": `name: shop
services:
  web:
    build: .
    ports: ["8080"]
  api:
    image: example/api:2
    build:
      context: api
      target: prod
      args: {VERSION: "1"}
    pull_policy: build
    expose: ["9000"]
  db:
    image: postgres:16
    expose: ["5432"]
`,
		"Dockerfile":     "FROM ergomake.test/testapp:latest\n",
		"api/Dockerfile": "FROM ergomake.test/testapp:latest AS prod\n",
	})
	digest := "sha256:" + strings.Repeat("ab", 32)
	res, err := loadErr(t, dir, Options{Builds: map[string]v1alpha1.BuildSpec{
		"web": {Key: "k1", Image: "127.0.0.1:5100/shop/web:k1", Digest: digest},
	}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]v1alpha1.ServiceSpec{}
	for _, s := range res.Env.Spec.Services {
		got[s.Name] = s
	}
	// Built and pushed: run by digest, the build recorded.
	if s := got["web"]; s.Image != "127.0.0.1:5100/shop/web@"+digest || s.Build == nil || *s.Build != (v1alpha1.BuildSpec{Key: "k1", Image: "127.0.0.1:5100/shop/web:k1", Digest: digest}) {
		t.Errorf("web: image %q, build %+v", s.Image, s.Build)
	}
	// Not planned (no registry): image: names the build.
	if s := got["api"]; s.Image != "example/api:2" || s.Build == nil || s.Build.Image != "example/api:2" || s.ImagePullPolicy != "IfNotPresent" {
		t.Errorf("api: image %q, build %+v, pull policy %q", s.Image, s.Build, s.ImagePullPolicy)
	}
	if s := got["db"]; s.Build != nil || s.Image != "postgres:16" {
		t.Errorf("db: image %q, build %+v", s.Image, s.Build)
	}
	if len(res.Warnings) != 0 {
		t.Errorf("warnings %v: build keys are the builder's to warn about, pull_policy: build is honoured", res.Warnings)
	}

	// Without Builds, a build without image: gets docker compose's name.
	res, err = loadErr(t, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s := res.Env.Spec.Services[2]; s.Name != "web" || s.Image != "shop-web" {
		t.Errorf("unplanned web: %s image %q", s.Name, s.Image)
	}
}

func TestImageRef(t *testing.T) {
	d := "sha256:" + strings.Repeat("0", 64)
	for _, c := range []struct{ image, digest, want string }{
		{"127.0.0.1:5100/p/web:abc", d, "127.0.0.1:5100/p/web@" + d},
		{"127.0.0.1:5100/p/web", d, "127.0.0.1:5100/p/web@" + d},
		{"registry.example.com:443/team/app:v1@sha256:old", d, "registry.example.com:443/team/app@" + d},
		{"app", d, "app@" + d},
		{"127.0.0.1:5100/p/web:abc", "", "127.0.0.1:5100/p/web:abc"},
	} {
		if got := ImageRef(v1alpha1.BuildSpec{Image: c.image, Digest: c.digest}); got != c.want {
			t.Errorf("ImageRef(%q, %q) = %q, want %q", c.image, c.digest, got, c.want)
		}
	}
}
