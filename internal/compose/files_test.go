package compose

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ergomake/ergomake/internal/testutil/tree"
)

// hugeFile makes a sparse file of size bytes.
func hugeFile(t *testing.T, path string, size int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

func TestReadFileBounded(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	huge := filepath.Join(dir, "huge")
	hugeFile(t, huge, 5<<30)
	small := filepath.Join(dir, "small")
	if err := os.WriteFile(small, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link-to-fifo")
	if err := os.Symlink(fifo, link); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ path, want string }{
		{fifo, "is a named pipe (FIFO), not a regular file"},
		{link, "is a named pipe (FIFO), not a regular file"},
		{"/dev/zero", "is a device, not a regular file"},
		{huge, "is too large (5120 MiB; the limit is 1 MiB)"},
		{dir, "is a directory, not a file"},
		{filepath.Join(dir, "missing"), "no such file or directory"},
	}
	for _, c := range cases {
		done := make(chan error, 1)
		go func() { _, err := ReadFile(c.path, MaxFileBytes); done <- err }()
		select {
		case err := <-done:
			if err == nil || err.Error() != c.want {
				t.Errorf("%s: error %v, want %q", c.path, err, c.want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: ReadFile hangs", c.path)
		}
	}
	if _, err := ReadFile(filepath.Join(dir, "missing"), 10); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing file: %v, want ErrNotExist", err)
	}
	b, err := ReadFile(small, 5)
	if err != nil || string(b) != "hello" {
		t.Errorf("small file: %q, %v", b, err)
	}
	if _, err := ReadFile(small, 4); err == nil {
		t.Error("a file over the limit was read")
	}
}

// TestEnvFileBounded: an env_file that is a FIFO, a device or huge fails the load at once, naming
// the compose file and line, the service, the key and the file; it does not hang or eat memory.
func TestEnvFileBounded(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.env")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	hugeFile(t, filepath.Join(dir, "huge.env"), 3<<30)
	for _, c := range []struct{ file, want string }{
		{fifo, "is a named pipe (FIFO), not a regular file"},
		{"/dev/zero", "is a device, not a regular file"},
		{filepath.Join(dir, "huge.env"), "is too large (3072 MiB; the limit is 1 MiB)"},
	} {
		tree.Write(t, dir, map[string]string{"compose.yaml": "services:\n  web:\n    image: nginx\n    env_file:\n      - " + c.file + "\n"})
		done := make(chan error, 1)
		go func() {
			_, err := Load(context.Background(), Options{WorkingDir: dir, Environ: []string{}})
			done <- err
		}()
		select {
		case err := <-done:
			want := filepath.Join(dir, "compose.yaml") + `:4: service "web": env_file: ` + c.file + " " + c.want
			if err == nil || err.Error() != want {
				t.Errorf("error %v\nwant %s", err, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the load hangs", c.file)
		}
	}
	// label_file too
	tree.Write(t, dir, map[string]string{"compose.yaml": "services:\n  web:\n    image: nginx\n    label_file: " + fifo + "\n"})
	if _, err := Load(context.Background(), Options{WorkingDir: dir, Environ: []string{}}); err == nil || !strings.Contains(err.Error(), `service "web": label_file: `+fifo+" is a named pipe") {
		t.Errorf("label_file FIFO: %v", err)
	}
	// An optional env_file that is missing is still fine, and a regular one is read.
	tree.Write(t, dir, map[string]string{
		"compose.yaml": "services:\n  web:\n    image: nginx\n    env_file:\n      - path: missing.env\n        required: false\n      - ok.env\n",
		"ok.env":       "A=1\n",
	})
	p, err := Load(context.Background(), Options{WorkingDir: dir, Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	if v := p.Services["web"].Environment["A"]; v == nil || *v != "1" {
		t.Errorf("A = %v", v)
	}
}
