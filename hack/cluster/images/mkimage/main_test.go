package main

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// TestBuildLayerModesOwners: -mode sets setuid bits, -owner gives files and directories (also
// created parents and empty -dir directories) to a user, the rest stays root's with host modes,
// and an attribute for a path the layer lacks is an error.
func TestBuildLayerModesOwners(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "newuidmap")
	if err := os.WriteFile(bin, []byte("binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	attrs, err := parseAttrs([]string{"/usr/bin/newuidmap=4755", "/run/user/1000=700"}, []string{"/home/user=1000:1000", "/run/user/1000/=1000:1000"})
	if err != nil {
		t.Fatal(err)
	}
	data, err := buildLayer([]string{bin + "=/usr/bin/newuidmap", bin + "=/usr/bin/other", "/home/user/", "/run/user/1000/"}, attrs)
	if err != nil {
		t.Fatal(err)
	}
	type meta struct {
		mode     int64
		uid, gid int
	}
	got := map[string]meta{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got[h.Name] = meta{h.Mode, h.Uid, h.Gid}
	}
	for name, want := range map[string]meta{
		"usr/bin/newuidmap": {0o4755, 0, 0},
		"usr/bin/other":     {0o755, 0, 0},
		"usr/bin/":          {0o755, 0, 0},
		"home/":             {0o755, 0, 0},
		"home/user/":        {0o755, 1000, 1000},
		"run/user/1000/":    {0o700, 1000, 1000},
		"tmp/":              {0o1777, 0, 0},
	} {
		if m, ok := got[name]; !ok || m != want {
			t.Errorf("%s: %+v (present %v), want %+v", name, m, ok, want)
		}
	}

	attrs, _ = parseAttrs([]string{"/usr/bin/typo=4755"}, nil)
	if _, err := buildLayer([]string{bin + "=/usr/bin/newuidmap"}, attrs); err == nil {
		t.Error("a -mode for a missing path is accepted")
	}
	for _, bad := range [][2][]string{{{"/x=9"}, nil}, {{"x=755"}, nil}, {{"/=755"}, nil}, {nil, {"/x=1000"}}, {nil, {"/x=a:b"}}, {nil, {"/x=-1:0"}}} {
		if _, err := parseAttrs(bad[0], bad[1]); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
