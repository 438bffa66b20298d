package config

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// controllerGen finds controller-gen: $CONTROLLER_GEN (make test sets it after installing it),
// the tools cache the Makefile installs into, or $PATH.
func controllerGen(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CONTROLLER_GEN"); p != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		p := filepath.Join(home, ".cache", "ergomake", "tools", "controller-gen")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("controller-gen"); err == nil {
		return p
	}
	t.Skip("controller-gen is not installed, so generated files cannot be checked: run `make test` (it installs it) or `make generate`")
	return ""
}

// TestGeneratedFilesUpToDate regenerates the deepcopy functions, the CRD and the operator's RBAC
// into a temporary directory, with the same arguments as `make generate`, and fails when the
// committed files differ: run `make generate`.
func TestGeneratedFilesUpToDate(t *testing.T) {
	if testing.Short() {
		t.Skip("runs controller-gen")
	}
	gen := controllerGen(t)
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command(gen, args...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("controller-gen %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}

	// Deepcopy: one run per API package, each into its own directory.
	apiDirs, err := filepath.Glob(filepath.Join(root, "pkg", "apis", "*", "*", "zz_generated.deepcopy.go"))
	if err != nil {
		t.Fatal(err)
	}
	if len(apiDirs) == 0 {
		t.Fatal("no zz_generated.deepcopy.go under pkg/apis")
	}
	for _, f := range apiDirs {
		rel, _ := filepath.Rel(root, filepath.Dir(f))
		out := filepath.Join(tmp, "object", rel)
		run("object", "paths=./"+filepath.ToSlash(rel), "output:object:dir="+out)
		compareFile(t, filepath.Join(out, "zz_generated.deepcopy.go"), f)
	}

	run("crd", "paths=./pkg/apis/...", "output:crd:dir="+filepath.Join(tmp, "crd"))
	compareDir(t, filepath.Join(tmp, "crd"), filepath.Join(root, "config", "crd"))

	run("rbac:roleName=ergomake-operator", "paths=./internal/operator/...", "output:rbac:dir="+filepath.Join(tmp, "rbac"))
	compareDir(t, filepath.Join(tmp, "rbac"), filepath.Join(root, "config", "rbac"))
}

func compareFile(t *testing.T, fresh, committed string) {
	t.Helper()
	want, err := os.ReadFile(fresh)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(committed)
	if err != nil {
		t.Errorf("%s: %v (run `make generate`)", committed, err)
		return
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is stale: run `make generate`", committed)
	}
}

// compareDir checks that the committed directory holds exactly the generated YAML files.
func compareDir(t *testing.T, fresh, committed string) {
	t.Helper()
	list := func(dir string) []string {
		names, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		for i := range names {
			names[i] = filepath.Base(names[i])
		}
		sort.Strings(names)
		return names
	}
	freshNames, committedNames := list(fresh), list(committed)
	if strings.Join(freshNames, ",") != strings.Join(committedNames, ",") {
		t.Errorf("%s holds %v, controller-gen generates %v: run `make generate`", committed, committedNames, freshNames)
	}
	for _, n := range freshNames {
		compareFile(t, filepath.Join(fresh, n), filepath.Join(committed, n))
	}
}

// TestRBACNoWildcards: the operator's ClusterRole names every verb and resource it needs.
func TestRBACNoWildcards(t *testing.T) {
	for i, line := range strings.Split(string(RBAC), "\n") {
		if strings.Contains(line, "*") {
			t.Errorf("config/rbac/role.yaml:%d: wildcard: %s", i+1, strings.TrimSpace(line))
		}
	}
	for _, want := range []string{"ergomakeenvs/status", "pods/log", "deployments", "jobs", "services", "persistentvolumeclaims"} {
		if !strings.Contains(string(RBAC), want) {
			t.Errorf("config/rbac/role.yaml lacks %s", want)
		}
	}
}
