package translate

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/ergomake/ergomake/internal/compose"
	"github.com/ergomake/ergomake/internal/testutil/fixtures"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestMain(m *testing.M) {
	flag.Parse()
	logrus.SetOutput(io.Discard) // compose-go's own warnings; ours are checked
	os.Exit(m.Run())
}

// TestComposeFixtures loads and translates every compose file of ../shared/compose-fixtures: none
// may panic; each translates or fails with one clear error naming the file. The outcome of each is
// kept in testdata/fixtures.golden so that changes are reviewed.
func TestComposeFixtures(t *testing.T) {
	dir, all := fixtures.Load(t)
	var summary strings.Builder
	ok := 0
	for _, f := range all {
		line := runFixture(t, dir, f)
		if strings.HasPrefix(line, "ok") {
			ok++
		}
		fmt.Fprintf(&summary, "%s: %s\n", f.Path, line)
	}
	t.Logf("%d/%d fixtures translate", ok, len(all))
	golden(t, filepath.Join("testdata", "fixtures.golden"), []byte(summary.String()))
}

func runFixture(t *testing.T, root string, f fixtures.Fixture) (line string) {
	t.Helper()
	dir := filepath.Join(root, f.Path)
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("%s: panic: %v", f.Path, r)
			line = fmt.Sprintf("PANIC: %v", r)
		}
	}()
	opts := compose.Options{WorkingDir: dir, Files: f.Files, EnvFiles: f.EnvFiles, Environ: f.Environ()}
	p, err := compose.Load(context.Background(), opts)
	if err == nil {
		var res *Result
		res, err = Translate(p, Options{})
		if err == nil {
			counts := map[string]int{}
			for _, w := range res.Warnings {
				counts[strings.SplitN(w.Key, ".", 2)[0]]++
			}
			var keys []string
			for k, n := range counts {
				if n > 1 {
					k = fmt.Sprintf("%s×%d", k, n)
				}
				keys = append(keys, k)
			}
			sort.Strings(keys)
			line := fmt.Sprintf("ok (%d services, %d secrets, %d configmaps)", len(res.Env.Spec.Services), len(res.Secrets), len(res.ConfigMaps))
			if len(keys) > 0 {
				line += "; warnings: " + strings.Join(keys, ", ")
			}
			return line
		}
	}
	msg := err.Error()
	var ce *compose.Error
	if !errors.As(err, &ce) {
		t.Errorf("%s: error is a %T, not a *compose.Error: %v", f.Path, err, err)
	} else if ce.File == "" || !strings.HasPrefix(msg, ce.File) {
		t.Errorf("%s: error does not name the file: %v", f.Path, err)
	}
	if strings.Contains(msg, "\n") || strings.Contains(msg, "goroutine ") {
		t.Errorf("%s: error is not one line: %q", f.Path, msg)
	}
	return "error: " + strings.ReplaceAll(msg, dir+string(filepath.Separator), "")
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(want) != string(got) {
		t.Errorf("%s differs from the output (run go test -update and review the diff):\n%s", path, diff(string(want), string(got)))
	}
}

// diff shows the first differing lines.
func diff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	n := 0
	for i := 0; i < len(w) || i < len(g); i++ {
		var a, c string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			c = g[i]
		}
		if a != c {
			fmt.Fprintf(&b, "line %d:\n- %s\n+ %s\n", i+1, a, c)
			if n++; n >= 10 {
				break
			}
		}
	}
	return b.String()
}

// TestFixturesWithBuildTranslate proves that build: is never a reason to refuse a project: every
// fixture with a built service translates, or fails on a key other than build.
func TestFixturesWithBuildTranslate(t *testing.T) {
	dir, all := fixtures.Load(t)
	built := 0
	for _, f := range all {
		opts := compose.Options{WorkingDir: filepath.Join(dir, f.Path), Files: f.Files, EnvFiles: f.EnvFiles, Environ: f.Environ()}
		p, err := compose.Load(context.Background(), opts)
		if err != nil {
			continue
		}
		hasBuild := false
		for _, s := range p.Services {
			hasBuild = hasBuild || s.Build != nil
		}
		if !hasBuild {
			continue
		}
		built++
		res, err := Translate(p, Options{})
		var ce *compose.Error
		if errors.As(err, &ce) && strings.HasPrefix(ce.Key, "build") {
			t.Errorf("%s: refused for build: %v", f.Path, err)
			continue
		}
		if err != nil {
			continue
		}
		for _, s := range res.Env.Spec.Services {
			if p.Services[s.Name].Build != nil && (s.Build == nil || s.Image == "") {
				t.Errorf("%s: service %q has build: but the spec records no build (%+v, image %q)", f.Path, s.Name, s.Build, s.Image)
			}
		}
	}
	if built < 20 {
		t.Fatalf("only %d fixtures with build: found; the fixtures changed?", built)
	}
}
