package tree

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	Write(t, dir, map[string]string{"compose.yaml": "services: {}\n", "web/conf/app.conf": "x = 1\n"})
	File(t, filepath.Join(dir, "secrets", "key"), "k3y", 0o600)
	for path, want := range map[string]string{
		"compose.yaml":      "services: {}\n",
		"web/conf/app.conf": "x = 1\n",
		"secrets/key":       "k3y",
	} {
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(path)))
		if err != nil || string(b) != want {
			t.Errorf("%s: %q, %v; want %q", path, b, err, want)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "secrets", "key")); err != nil || fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("secrets/key: %v, %v; want it private (mode 0600)", fi, err)
	}
}
