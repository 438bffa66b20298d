package cmdutil

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"k8s.io/client-go/rest"
)

const kubeconfig = `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://10.1.2.3:6443"}
users:
- name: u
  user: {token: t}
contexts:
- name: x
  context: {cluster: c, user: u}
current-context: x
`

// --kubeconfig names the file the configuration comes from, with client-side rate limiting off
// (as controller-runtime has it); a flag of the command's own is parsed beside it.
func TestConfigFromKubeconfigFlag(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, []byte(kubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := New("ergomake-operator test", &stderr)
	addr := cmd.Flags.String("addr", ":1", "")
	if code, ok := cmd.Parse([]string{"--kubeconfig", path, "--addr", ":2"}); !ok || code != 0 || *addr != ":2" {
		t.Fatalf("Parse = %d, %v; addr %q", code, ok, *addr)
	}
	cfg, err := cmd.Config()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != "https://10.1.2.3:6443" || cfg.BearerToken != "t" || cfg.QPS != -1 {
		t.Errorf("config host %q token %q QPS %v", cfg.Host, cfg.BearerToken, cfg.QPS)
	}
	if code := cmd.Serve(func(context.Context, *rest.Config) error { return nil }); code != 0 || stderr.Len() > 0 {
		t.Errorf("Serve of a run that ends well = %d, stderr %q", code, stderr.String())
	}
	if code := cmd.Serve(func(context.Context, *rest.Config) error { return errors.New("boom") }); code != 1 || stderr.String() != "ergomake-operator test: boom\n" {
		t.Errorf("Serve of a failed run = %d, stderr %q", code, stderr.String())
	}
	stderr.Reset()
	if code := cmd.Serve(func(context.Context, *rest.Config) error { return Exit(2, errors.New("bad options")) }); code != 2 || stderr.String() != "ergomake-operator test: bad options\n" {
		t.Errorf("Serve of a run ended by Exit(2) = %d, stderr %q", code, stderr.String())
	}
}
