package main

import (
	"bytes"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ergomake/ergomake/internal/namedns"
	"github.com/ergomake/ergomake/internal/operator"
	"github.com/ergomake/ergomake/internal/server"
)

// Each command of the binary that talks to the cluster: -h exits 0, an unknown flag 2, a kubeconfig
// that cannot be read 1, with the command's name and the reason on stderr.
func TestCommandsExitCodes(t *testing.T) {
	t.Setenv("KUBECONFIG", "")
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	missing := filepath.Join(t.TempDir(), "no-such-kubeconfig")
	for name, main := range map[string]func([]string, io.Writer) int{
		"ergomake-operator":                    operator.Main,
		"ergomake-operator " + namedns.Command: namedns.Main,
		"ergomake-operator " + server.Command:  server.Main,
	} {
		for _, c := range []struct {
			args []string
			code int
			says string
		}{
			{[]string{"-h"}, 0, "-kubeconfig"},
			{[]string{"--no-such-flag"}, 2, "flag provided but not defined: -no-such-flag"},
			{[]string{"--kubeconfig", missing}, 1, name + ": stat " + missing},
		} {
			var stderr bytes.Buffer
			if code := main(c.args, &stderr); code != c.code || !strings.Contains(stderr.String(), c.says) {
				t.Errorf("%s %q: exit %d, stderr %q; want %d and %q", name, c.args, code, stderr.String(), c.code, c.says)
			}
		}
	}
}
