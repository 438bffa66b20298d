//go:build e2e

package kube

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ergomake/ergomake/internal/testutil/cluster"
)

// TestCheckMissingAPI: the real API server's answer for an API group it does not serve is told
// apart from every other failure, and names the cluster and the fix.
func TestCheckMissingAPI(t *testing.T) {
	c, err := New(Options{Kubeconfig: cluster.KubeconfigPath(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = c.checkAPI(ctx, "not-installed.ergomake.dev/v1")
	if !errors.Is(err, ErrCRDMissing) {
		t.Fatalf("checkAPI(missing group) = %v, want ErrCRDMissing", err)
	}
	if msg := err.Error(); !strings.Contains(msg, c.ClusterName) || !strings.Contains(msg, "ergomake install") {
		t.Errorf("message %q does not name the cluster and `ergomake install`", msg)
	}
	if err := c.Check(ctx); err != nil {
		t.Errorf("Check on the local cluster (operator installed): %v", err)
	}
}
