package translate

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ergomake/ergomake/internal/compose"
)

// TestMutatedProjects breaks every example project one line at a time (the line removed, or
// re-indented) and checks that loading and translating never panics and either succeeds or fails
// with one clear line naming the file.
func TestMutatedProjects(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	entries, err := os.ReadDir(projectsDir)
	if err != nil {
		t.Fatal(err)
	}
	runs, failures := 0, 0
	for _, e := range entries {
		if !e.IsDir() || e.Name() == "bad" {
			continue
		}
		src, _ := filepath.Abs(filepath.Join(projectsDir, e.Name()))
		name := composeFile(t, src)
		content, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(content), "\n")
		dir := t.TempDir()
		copyDir(t, src, dir)
		for i := range lines {
			if strings.TrimSpace(lines[i]) == "" || strings.HasPrefix(strings.TrimSpace(lines[i]), "#") {
				continue
			}
			for _, mutated := range [][]string{
				append(append([]string{}, lines[:i]...), lines[i+1:]...),
				append(append(append([]string{}, lines[:i]...), " "+lines[i]), lines[i+1:]...),
			} {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(strings.Join(mutated, "\n")), 0o644); err != nil {
					t.Fatal(err)
				}
				runs++
				if err := loadAndTranslate(dir); err != nil {
					failures++
					if os.Getenv("MUTATION_LOG") != "" {
						t.Log(err)
					}
					var ce *compose.Error
					msg := err.Error()
					if !errors.As(err, &ce) || ce.File == "" || !strings.HasPrefix(msg, ce.File) || strings.Contains(msg, "\n") || strings.Contains(msg, "panic") {
						t.Errorf("%s without/re-indented line %d (%q): unclear error: %q", e.Name(), i+1, lines[i], msg)
					}
				}
			}
		}
	}
	t.Logf("%d mutated projects, %d rejected with a clear error", runs, failures)
}

func loadAndTranslate(dir string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errors.New("panic")
		}
	}()
	p, err := compose.Load(context.Background(), compose.Options{WorkingDir: dir, Environ: []string{}})
	if err != nil {
		return err
	}
	_, err = Translate(p, Options{})
	return err
}

func composeFile(t *testing.T, dir string) string {
	for _, n := range compose.DefaultFileNames {
		if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
			return n
		}
	}
	t.Fatalf("no compose file in %s", dir)
	return ""
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, info.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
}
