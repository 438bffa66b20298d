//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ergomake/ergomake/internal/install"
	"github.com/ergomake/ergomake/internal/testutil/cluster"
)

// TestOperatorInstallDryRun sends install and uninstall to the real API server as server-side
// dry runs: every object is validated and every deletion authorized, and nothing changes (the
// cluster's installed operator keeps running with its image).
func TestOperatorInstallDryRun(t *testing.T) {
	cfg := cluster.Config(t)
	cs := cluster.Clientset(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	before, err := cs.AppsV1().Deployments(install.DefaultNamespace).Get(ctx, install.Name, metav1.GetOptions{})
	if err != nil {
		t.Skipf("the operator is not installed (make operator-install): %v", err)
	}

	var out bytes.Buffer
	opts := install.Options{Image: "ergomake.test/ergomake-operator:dry-run", DryRun: true, Out: &out}
	if err := install.Install(ctx, cfg, opts); err != nil {
		t.Fatalf("install dry run: %v\n%s", err, out.String())
	}
	if err := install.Uninstall(ctx, cfg, opts); err != nil {
		t.Fatalf("uninstall dry run: %v\n%s", err, out.String())
	}
	t.Logf("output:\n%s", out.String())
	for _, want := range []string{
		"applied (dry run) CustomResourceDefinition ergomakeenvs.ergomake.dev",
		"applied (dry run) Deployment ergomake-system/ergomake-operator",
		"applied (dry run) Service ergomake-system/ergomake-registry",
		"applied (dry run) Deployment ergomake-system/ergomake-registry",
		"applied (dry run) DaemonSet ergomake-system/ergomake-registry-relay",
		"applied (dry run) Deployment ergomake-system/ergomake-builder",
		"applied (dry run) ConfigMap ergomake-system/ergomake-settings",
		"applied (dry run) RoleBinding ergomake-system/ergomake-settings-reader",
		"ergomake-system/ergomake-registry-relay", // deleted (dry run), or already gone
		"deleted (dry run) CustomResourceDefinition ergomakeenvs.ergomake.dev",
		"deleted (dry run) ClusterRole ergomake-operator",
		"deleted (dry run) Deployment ergomake-system/ergomake-operator",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}

	after, err := cs.AppsV1().Deployments(install.DefaultNamespace).Get(ctx, install.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the operator is gone after a dry run: %v", err)
	}
	if after.UID != before.UID || after.Spec.Template.Spec.Containers[0].Image != before.Spec.Template.Spec.Containers[0].Image {
		t.Errorf("the dry run changed the operator: image %s -> %s", before.Spec.Template.Spec.Containers[0].Image, after.Spec.Template.Spec.Containers[0].Image)
	}
	if _, err := cs.Discovery().ServerResourcesForGroupVersion("ergomake.dev/v1alpha1"); err != nil {
		t.Errorf("the CRD is gone after a dry run: %v", err)
	}
}
