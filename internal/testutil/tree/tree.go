// Package tree writes the files of a test's project folder.
package tree

import (
	"os"
	"path/filepath"
	"testing"
)

// Write writes files (a slash-separated path relative to dir → content) under dir, mode 0644,
// making the folders they need.
func Write(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		File(t, filepath.Join(dir, filepath.FromSlash(name)), content, 0o644)
	}
}

// File writes content to path with mode, making the folders it needs.
func File(t testing.TB, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}
