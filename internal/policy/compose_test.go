package policy

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/ergomake/ergomake/internal/compose"
	"github.com/ergomake/ergomake/internal/testutil/fixtures"
	"github.com/ergomake/ergomake/internal/translate"
)

func TestMain(m *testing.M) {
	logrus.SetOutput(io.Discard) // compose-go's own warnings
	os.Exit(m.Run())
}

const composeFile = `services:
  web:
    image: nginx
    privileged: true
    cap_add:
      - NET_BIND_SERVICE
      - SYS_ADMIN
    network_mode: host
  db:
    image: postgres
    user: "0"
    pid: host
    ipc: host
    devices:
      - /dev/null:/dev/null
      - /dev/fuse:/dev/fuse
    volumes:
      - data:/var/lib/postgresql/data
      - /srv/pg:/srv/pg
volumes:
  data: {}
`

func load(t *testing.T, yaml string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestCheckComposeProject(t *testing.T) {
	dir := load(t, composeFile)
	p, err := compose.Load(context.Background(), compose.Options{WorkingDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	res, err := translate.Translate(p, translate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	lines := func(vs []Violation) string {
		var b strings.Builder
		for _, v := range vs {
			fmt.Fprintf(&b, "%s\n", strings.TrimPrefix(v.String(), dir+string(filepath.Separator)))
		}
		return b.String()
	}
	const remedyP = "; a cluster admin can allow it with `ergomake install --pod-security privileged`"
	const remedyB = "; a cluster admin can allow it with `ergomake install --pod-security baseline`"
	want := map[Level]string{
		Privileged: "",
		Baseline: `compose.yaml:12: service "db": pid: host (the node's process namespace) exceeds the cluster's pod security ceiling "baseline"` + remedyP + `
compose.yaml:13: service "db": ipc: host (the node's IPC namespace) exceeds the cluster's pod security ceiling "baseline"` + remedyP + `
compose.yaml:15: service "db": devices: the node's device /dev/null exceeds the cluster's pod security ceiling "baseline"` + remedyP + `
compose.yaml:16: service "db": devices: the node's device /dev/fuse exceeds the cluster's pod security ceiling "baseline"` + remedyP + `
compose.yaml:4: service "web": privileged: a privileged container exceeds the cluster's pod security ceiling "baseline"` + remedyP + `
compose.yaml:7: service "web": cap_add: capability SYS_ADMIN exceeds the cluster's pod security ceiling "baseline"` + remedyP + `
compose.yaml:8: service "web": network_mode: host (the node's network) exceeds the cluster's pod security ceiling "baseline"` + remedyP + `
`,
	}
	want[Restricted] = `compose.yaml:11: service "db": user: running as root (uid 0) exceeds the cluster's pod security ceiling "restricted"` + remedyB + "\n" +
		strings.ReplaceAll(want[Baseline], `"baseline"`, `"restricted"`)
	for _, level := range []Level{Privileged, Baseline, Restricted} {
		got := lines(Check(p, &res.Env.Spec, level))
		if got != want[level] {
			t.Errorf("at %s:\n%s\nwant\n%s", level, got, want[level])
		}
	}

	// A host path the spec mounts is found by its target.
	vs := []Violation{{Service: "db", Key: "volumes", Value: "/srv/pg"}, {Service: "web", Key: "cap_add", Value: "NET_BIND_SERVICE"}, {Service: "gone", Key: "privileged"}}
	Locate(vs, p)
	for i, line := range []int{19, 6, 1} {
		if vs[i].File != filepath.Join(dir, "compose.yaml") || vs[i].Line != line {
			t.Errorf("Locate(%s %s) = %s:%d, want line %d", vs[i].Service, vs[i].Key, vs[i].File, vs[i].Line, line)
		}
	}
	if CheckProject(nil, Baseline) != nil || Check(nil, nil, Baseline) != nil {
		t.Error("nothing to check has violations")
	}
}

// TestComposeFixtures checks every shared compose fixture that translates at each level: no
// panic, every violation well formed and located, a stricter level finds at least as much, and the
// spec's verdict agrees with Pod Security Admission on the rendered, hardened pods.
func TestComposeFixtures(t *testing.T) {
	dir, all := fixtures.Load(t)
	counts := map[Level]int{}
	checked := 0
	for _, f := range all {
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("%s: panic: %v", f.Path, r)
				}
			}()
			fdir := filepath.Join(dir, f.Path)
			p, err := compose.Load(context.Background(), compose.Options{WorkingDir: fdir, Files: f.Files, EnvFiles: f.EnvFiles, Environ: f.Environ()})
			if err != nil {
				return
			}
			res, err := translate.Translate(p, translate.Options{})
			if err != nil {
				return
			}
			checked++
			prev := -1
			for _, level := range []Level{Privileged, Baseline, Restricted} {
				vs := Check(p, &res.Env.Spec, level)
				counts[level] += len(vs)
				if len(vs) < prev {
					t.Errorf("%s: %s finds %d violations, fewer than a more permissive level (%d)", f.Path, level, len(vs), prev)
				}
				prev = len(vs)
				for _, v := range vs {
					if v.Service == "" || v.Key == "" || v.Message == "" || v.File == "" || level.Allows(v.Needs) || strings.Contains(v.String(), "\n") {
						t.Errorf("%s at %s: bad violation %+v", f.Path, level, v)
					}
				}
				forbidden, err := admitted(res.Env.Spec, level)
				if err != nil {
					continue // render refuses it anyway
				}
				specVs := CheckEnv(&res.Env.Spec, level)
				if (len(specVs) == 0) != (forbidden == "") {
					t.Errorf("%s at %s: CheckEnv finds %q; Pod Security Admission forbids %q", f.Path, level, short(specVs), forbidden)
				}
			}
		}()
	}
	t.Logf("%d/%d fixtures translate; violations: baseline %d, restricted %d", checked, len(all), counts[Baseline], counts[Restricted])
	if counts[Privileged] != 0 {
		t.Errorf("privileged found %d violations", counts[Privileged])
	}
}
