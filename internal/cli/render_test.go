package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/ergomake/ergomake/internal/testutil/fixtures"
)

var update = flag.Bool("update", false, "rewrite golden files")

// repoTestdata is the repository's testdata folder of example projects.
func repoTestdata(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "testdata"))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestRenderGolden runs `ergomake render` end to end (argv to stdout, stderr and exit code) on
// example projects and compares with reviewed golden files (go test -update rewrites them). The
// full output is kept for a small project of this package's own; for the repository's example
// projects only the list of objects is, their bodies being translate's and render's golden files'
// business.
func TestRenderGolden(t *testing.T) {
	td := repoTestdata(t)
	tests := []struct {
		name string
		args []string
		env  []string
		code int
		// outline keeps only "kind namespace/name" per object in the golden file: the objects'
		// bodies are translate's and render's golden files' business.
		outline bool
	}{
		{name: "hello", args: []string{"render", "-f", filepath.Join("testdata", "project", "compose.yaml")}},
		{name: "hello-json", args: []string{"-f", filepath.Join("testdata", "project", "compose.yaml"), "render", "-o", "json", "-n", "team-a"}},
		{name: "webapp", args: []string{"render", "-f", filepath.Join(td, "webapp", "compose.yaml")}, outline: true},
		{name: "migrations-env", args: []string{"render"}, env: []string{"COMPOSE_FILE=" + filepath.Join(td, "migrations", "compose.yaml"), "COMPOSE_PROJECT_NAME=shop", "ERGOMAKE_NAMESPACE=from-env"}, outline: true},
		{name: "ceiling-restricted", args: []string{"render", "--pod-security", "restricted", "-f", filepath.Join("testdata", "ceiling", "compose.yaml")}},
		{name: "bad-unknown-key", args: []string{"render", "-f", filepath.Join(td, "bad", "unknown-key", "compose.yaml")}, code: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, stdout, stderr := testFactory(t, tt.env...)
			code := Run(context.Background(), f, tt.args)
			if code != tt.code {
				t.Fatalf("exit code %d, want %d; stderr:\n%s", code, tt.code, stderr)
			}
			wd, err := os.Getwd()
			if err != nil {
				t.Fatal(err)
			}
			clean := func(s string) string {
				return strings.ReplaceAll(strings.ReplaceAll(s, td, "<testdata>"), wd+string(filepath.Separator), "")
			}
			var b strings.Builder
			fmt.Fprintf(&b, "# ergomake %s\n# exit code %d\n# stderr:\n", clean(strings.Join(tt.args, " ")), code)
			for _, line := range strings.SplitAfter(clean(stderr.String()), "\n") {
				if line != "" {
					b.WriteString("#   " + line)
				}
			}
			if tt.outline {
				b.WriteString("# stdout outline:\n" + outline(t, stdout.Bytes()))
			} else {
				b.WriteString("# stdout:\n" + stdout.String())
			}
			golden(t, filepath.Join("testdata", "render", tt.name+".golden"), b.String())

			if code == 0 {
				checkRenderOutput(t, stdout.Bytes(), strings.Contains(tt.name, "json"))
			} else if n := strings.Count(stderr.String(), "\n"); n != 1 || stdout.Len() != 0 {
				t.Errorf("a failing render should print one line and nothing on stdout; got stderr %q, stdout %q", stderr, stdout)
			}
		})
	}
}

// checkRenderOutput checks the shape golden files cannot: every document is an object with
// apiVersion, kind and metadata.name, the ErgomakeEnv comes first, and every object carries the
// environment label.
func checkRenderOutput(t *testing.T, out []byte, isJSON bool) {
	t.Helper()
	var docs []map[string]any
	if isJSON {
		var list struct {
			APIVersion string           `json:"apiVersion"`
			Kind       string           `json:"kind"`
			Items      []map[string]any `json:"items"`
		}
		if err := json.Unmarshal(out, &list); err != nil {
			t.Fatalf("-o json is not JSON: %v", err)
		}
		if list.APIVersion != "v1" || list.Kind != "List" {
			t.Errorf("-o json is a %s %s, want a v1 List", list.APIVersion, list.Kind)
		}
		docs = list.Items
	} else {
		for _, d := range strings.Split(string(out), "---\n")[1:] {
			var m map[string]any
			if err := yaml.Unmarshal([]byte(d), &m); err != nil {
				t.Fatalf("document is not YAML: %v\n%s", err, d)
			}
			docs = append(docs, m)
		}
	}
	if len(docs) < 2 {
		t.Fatalf("%d objects, want the ErgomakeEnv and more", len(docs))
	}
	for i, d := range docs {
		meta, _ := d["metadata"].(map[string]any)
		if d["apiVersion"] == nil || d["kind"] == nil || meta["name"] == nil || meta["namespace"] == nil {
			t.Errorf("object %d lacks apiVersion, kind, name or namespace: %v", i, d)
		}
		if i == 0 {
			if d["kind"] != "ErgomakeEnv" {
				t.Errorf("first object is a %v, want the ErgomakeEnv", d["kind"])
			}
			continue
		}
		labels, _ := meta["labels"].(map[string]any)
		if labels["ergomake.dev/env"] == nil {
			t.Errorf("%v %v has no ergomake.dev/env label", d["kind"], meta["name"])
		}
	}
}

// outline lists the objects of a YAML stream, one "kind namespace/name" line each.
func outline(t *testing.T, out []byte) string {
	var b strings.Builder
	for _, d := range strings.Split(string(out), "---\n")[1:] {
		var m struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(d), &m); err != nil {
			t.Fatalf("document is not YAML: %v", err)
		}
		fmt.Fprintf(&b, "%s %s/%s\n", m.Kind, m.Metadata.Namespace, m.Metadata.Name)
	}
	return b.String()
}

// TestRenderComposeFixtures runs `ergomake render` over every compose file of
// ../shared/compose-fixtures: none may panic; each renders (exit 0, a YAML stream that starts
// with the ErgomakeEnv) or fails with exit 1 and one clear "error: " line naming the file.
func TestRenderComposeFixtures(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	dir, all := fixtures.Load(t)
	rendered := 0
	for _, fx := range all {
		fdir := filepath.Join(dir, fx.Path)
		f, stdout, stderr := testFactory(t, fx.Environ()...)
		f.WorkingDir = func() (string, error) { return fdir, nil }
		args := []string{"render"}
		for _, file := range fx.Files {
			args = append(args, "-f", file)
		}
		for _, e := range fx.EnvFiles {
			args = append(args, "--env-file", e)
		}
		code := Run(context.Background(), f, args)
		errOut := stderr.String()
		if strings.Contains(errOut, "goroutine ") || strings.Contains(errOut, "panic") {
			t.Errorf("%s: panic: %s", fx.Path, errOut)
			continue
		}
		switch code {
		case 0:
			rendered++
			if !bytes.HasPrefix(stdout.Bytes(), []byte("---\napiVersion: ergomake.dev/v1alpha1\nkind: ErgomakeEnv\n")) {
				t.Errorf("%s: output does not start with the ErgomakeEnv:\n%.200s", fx.Path, stdout)
			}
		case 1:
			lines := strings.Split(strings.TrimSuffix(errOut, "\n"), "\n")
			last := lines[len(lines)-1]
			if !strings.HasPrefix(last, "error: ") || stdout.Len() != 0 {
				t.Errorf("%s: failure is not one error line: %q", fx.Path, errOut)
			}
			for _, l := range lines[:len(lines)-1] {
				if !strings.HasPrefix(l, "warning: ") {
					t.Errorf("%s: stray stderr line %q", fx.Path, l)
				}
			}
		default:
			t.Errorf("%s: exit code %d: %s", fx.Path, code, errOut)
		}
	}
	t.Logf("%d/%d fixtures render", rendered, len(all))
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/cli -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs (run go test ./internal/cli -update and review the diff):\n%s", path, firstDiff(string(want), got))
	}
}

// firstDiff shows the first lines that differ.
func firstDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; (i < len(w) || i < len(g)) && shown < 10; i++ {
		var a, c string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			c = g[i]
		}
		if a != c {
			fmt.Fprintf(&b, "line %d:\n- %s\n+ %s\n", i+1, a, c)
			shown++
		}
	}
	return b.String()
}

// TestRenderBuiltImages: render needs no cluster and shows where each built image goes (the
// cluster's registry by default, --registry or $ERGOMAKE_REGISTRY otherwise), tagged with the
// build's content key; a build that cannot be planned is a warning, and the project still renders.
func TestRenderBuiltImages(t *testing.T) {
	td := repoTestdata(t)
	for _, tt := range []struct {
		name, registry string
		args           []string
		env            []string
	}{
		{name: "default", registry: DefaultRegistry},
		{name: "flag", registry: "registry.example.com/team", args: []string{"--registry", "registry.example.com/team"}},
		{name: "environment", registry: "env.example.com", env: []string{"ERGOMAKE_REGISTRY=env.example.com"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f, stdout, stderr := testFactory(t, tt.env...)
			args := append([]string{"render", "-o", "json", "-f", filepath.Join(td, "build", "compose.yaml")}, tt.args...)
			if code := Run(context.Background(), f, args); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			var list struct {
				Items []struct {
					Kind string `json:"kind"`
					Spec struct {
						Services []struct {
							Name  string `json:"name"`
							Image string `json:"image"`
							Build *struct {
								Key   string `json:"key"`
								Image string `json:"image"`
							} `json:"build"`
						} `json:"services"`
					} `json:"spec"`
				} `json:"items"`
			}
			if err := json.Unmarshal(stdout.Bytes(), &list); err != nil || list.Items[0].Kind != "ErgomakeEnv" {
				t.Fatalf("output: %v\n%s", err, stdout)
			}
			built := 0
			for _, s := range list.Items[0].Spec.Services {
				if s.Name == "cache" {
					if s.Build != nil || s.Image != "ergomake.test/testapp:latest" {
						t.Errorf("cache is pulled, not built: %+v", s)
					}
					continue
				}
				built++
				want := tt.registry + "/build-example/" + s.Name + ":"
				if s.Build == nil || s.Build.Key == "" || s.Image != want+s.Build.Key || s.Build.Image != s.Image {
					t.Errorf("%s: image %q, build %+v; want %s<key>", s.Name, s.Image, s.Build, want)
				}
				if !strings.Contains(stderr.String(), "build: "+s.Name+" → "+s.Image+"\n") {
					t.Errorf("stderr does not say where %s goes:\n%s", s.Name, stderr)
				}
			}
			if built != 3 {
				t.Errorf("%d built services, want web, api and jobs", built)
			}
		})
	}

	t.Run("missing context", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte("services:\n  web:\n    build: ./nowhere\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		f, stdout, stderr := testFactory(t)
		if code := Run(context.Background(), f, []string{"render", "-f", filepath.Join(dir, "compose.yaml")}); code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		if !strings.Contains(stderr.String(), "warning: ") || !strings.Contains(stderr.String(), "nowhere") {
			t.Errorf("no warning naming the missing context:\n%s", stderr)
		}
		if !strings.Contains(stdout.String(), "kind: Deployment") {
			t.Errorf("the project did not render:\n%s", stdout)
		}
	})
}
