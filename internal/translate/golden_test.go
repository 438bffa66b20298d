package translate

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/ergomake/ergomake/internal/compose"
)

// projectsDir holds the example projects shared by the packages' golden tests.
var projectsDir = filepath.Join("..", "..", "testdata")

type goldenCase struct {
	name     string // golden file name
	dir      string // project folder under testdata/
	profiles []string
	environ  []string
	opts     Options
}

func goldenCases(t *testing.T) []goldenCase {
	entries, err := os.ReadDir(projectsDir)
	if err != nil {
		t.Fatal(err)
	}
	var cases []goldenCase
	for _, e := range entries {
		if !e.IsDir() || e.Name() == "bad" {
			continue
		}
		cases = append(cases, goldenCase{name: e.Name(), dir: e.Name()})
	}
	cases = append(cases,
		goldenCase{name: "profiles-debug", dir: "profiles", profiles: []string{"debug"}},
		goldenCase{name: "migrations-checks", dir: "migrations", profiles: []string{"checks"}},
		goldenCase{name: "profiles-tools-from-env", dir: "profiles", environ: []string{"COMPOSE_PROFILES=tools"}},
		goldenCase{name: "webapp-ttl-namespace", dir: "webapp", environ: []string{"APP_TAG=2.0.0", "POSTGRES_PASSWORD=from-shell"},
			opts: Options{TTL: 90 * time.Minute, Namespace: "team-a"}},
	)
	return cases
}

// TestGolden translates every example project under testdata/ and compares the ErgomakeEnv, the
// Secrets, the ConfigMaps and the warnings with testdata/golden/<case>.yaml.
func TestGolden(t *testing.T) {
	for _, c := range goldenCases(t) {
		t.Run(c.name, func(t *testing.T) {
			dir, err := filepath.Abs(filepath.Join(projectsDir, c.dir))
			if err != nil {
				t.Fatal(err)
			}
			environ := c.environ
			if environ == nil {
				environ = []string{}
			}
			p, err := compose.Load(context.Background(), compose.Options{WorkingDir: dir, Profiles: c.profiles, Environ: environ})
			if err != nil {
				t.Fatal(err)
			}
			sameFromRecorded(t, c.name, p, c.opts)
			res, err := Translate(p, c.opts)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("testdata", "golden", c.name+".yaml"), []byte(renderResult(t, res, dir)))
		})
	}
}

// renderResult prints a Result as a YAML stream: the ErgomakeEnv, the Secrets, the ConfigMaps,
// then the warnings as comments. Paths are made relative to the project directory.
func renderResult(t *testing.T, res *Result, dir string) string {
	t.Helper()
	var docs []string
	add := func(v any) {
		b, err := yaml.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, string(b))
	}
	add(res.Env)
	for _, s := range res.Secrets {
		add(s)
	}
	for _, c := range res.ConfigMaps {
		add(c)
	}
	out := strings.Join(docs, "---\n")
	var b strings.Builder
	b.WriteString(out)
	b.WriteString("# warnings:\n")
	for _, w := range res.Warnings {
		fmt.Fprintf(&b, "# %s\n", w)
	}
	return strings.ReplaceAll(b.String(), dir+string(filepath.Separator), "")
}

// TestBadProjects checks that every project under testdata/bad fails with one clear line naming
// the file, and keeps the messages in testdata/golden/bad.txt.
func TestBadProjects(t *testing.T) {
	root, err := filepath.Abs(filepath.Join(projectsDir, "bad"))
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, e := range entries {
		dir := filepath.Join(root, e.Name())
		p, err := compose.Load(context.Background(), compose.Options{WorkingDir: dir, Environ: []string{}})
		if err == nil {
			_, err = Translate(p, Options{})
		}
		if err == nil {
			t.Errorf("%s: no error", e.Name())
			continue
		}
		msg := err.Error()
		ce, ok := err.(*compose.Error)
		if !ok || ce.File == "" || !strings.HasPrefix(msg, ce.File) || strings.Contains(msg, "\n") {
			t.Errorf("%s: not one clear line naming the file: %T %q", e.Name(), err, msg)
		}
		lines = append(lines, e.Name()+": "+strings.ReplaceAll(msg, dir+string(filepath.Separator), ""))
	}
	sort.Strings(lines)
	golden(t, filepath.Join("testdata", "golden", "bad.txt"), []byte(strings.Join(lines, "\n")+"\n"))
}
