//go:build e2e

package e2e

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/ergomake/ergomake/internal/testutil/cluster"
)

// TestUpClusterErrors: an unreachable cluster and refused credentials each give one line naming
// the cluster and context and why, and nothing else.
func TestUpClusterErrors(t *testing.T) {
	t.Parallel()
	real, err := clientcmd.LoadFromFile(cluster.KubeconfigPath(t))
	if err != nil {
		t.Fatal(err)
	}
	ctxName := real.CurrentContext
	clusterName := real.Contexts[ctxName].Cluster

	tests := []struct {
		name   string
		modify func(c *clientcmdapi.Config)
		want   string
	}{
		{"unreachable", func(c *clientcmdapi.Config) {
			c.Clusters[clusterName].Server = "https://127.0.0.1:1"
		}, "unreachable: connection refused"},
		{"credentials refused", func(c *clientcmdapi.Config) {
			ai := c.AuthInfos[c.Contexts[ctxName].AuthInfo]
			ai.ClientCertificate, ai.ClientKey = "", ""
			ai.ClientCertificateData, ai.ClientKeyData = nil, nil
			ai.Token = "not-a-valid-token"
		}, "credentials refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := real.DeepCopy()
			tt.modify(cfg)
			p := newUpProject(t, "e2e-errs", upWebCompose, "WEB_PORT=8080")
			path := filepath.Join(p.dir, "kubeconfig")
			if err := clientcmd.WriteToFile(*cfg, path); err != nil {
				t.Fatal(err)
			}
			for _, args := range [][]string{{"up", "--kubeconfig", path}, {"ls", "--kubeconfig", path}, {"down", "--kubeconfig", path}} {
				_, stderr, code := p.run(time.Minute, args...)
				if code != 1 {
					t.Errorf("%v exited %d, want 1\n%s", args, code, stderr)
				}
				lines := strings.Split(strings.TrimSpace(stderr), "\n")
				last := lines[len(lines)-1]
				if !strings.Contains(last, tt.want) || !strings.Contains(last, clusterName) || !strings.Contains(last, ctxName) {
					t.Errorf("%v: last line %q does not name the cluster %q, the context %q and %q", args, last, clusterName, ctxName, tt.want)
				}
				if strings.Count(stderr, "error:") != 1 {
					t.Errorf("%v: want exactly one error line:\n%s", args, stderr)
				}
			}
			if !p.namespaceGone() {
				t.Errorf("namespace %s exists", p.ns)
			}
		})
	}
}
