package server

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// The command's frame: -h exits 0, an unknown flag 2, a kubeconfig that cannot be read 1 with
// the command's name and the reason on stderr.
func TestMainExitCodes(t *testing.T) {
	t.Setenv("KUBECONFIG", "")
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	missing := filepath.Join(t.TempDir(), "no-such-kubeconfig")
	for _, c := range []struct {
		args []string
		code int
		says string
	}{
		{[]string{"-h"}, 0, "-kubeconfig"},
		{[]string{"--no-such-flag"}, 2, "flag provided but not defined: -no-such-flag"},
		{[]string{"--kubeconfig", missing}, 1, "ergomake-operator server: stat " + missing},
	} {
		var stderr bytes.Buffer
		if code := Main(c.args, &stderr); code != c.code || !strings.Contains(stderr.String(), c.says) {
			t.Errorf("Main(%q) = %d, stderr %q; want %d and %q", c.args, code, stderr.String(), c.code, c.says)
		}
	}
}
