// Package cluster gives tests access to the project's local Kubernetes cluster (make cluster-up):
// its kubeconfig and clients, a throw-away namespace per test, wait helpers, a port-forward to a
// pod through the API server, and, when a test fails, the tails of the cluster components' logs
// plus the pods, logs and events of the test's namespaces in the test output.
//
// Tests that use it carry the build tag e2e, so a plain `go test ./...` needs no cluster. When the
// cluster is absent such tests are skipped, unless ERGOMAKE_E2E_REQUIRE=1 (set by make test-e2e),
// in which case they fail.
package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// TestImage is the project's test workload image (test/testapp), preloaded by make cluster-up.
// Being a :latest image with no registry behind it, pods must use imagePullPolicy IfNotPresent.
const TestImage = "ergomake.test/testapp:latest"

// Components are the cluster's processes, each logging to Dir()/logs/<name>.log.
var Components = []string{"containerd", "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy"}

// Dir is the cluster's cache directory: $ERGOMAKE_CLUSTER_DIR, default ~/.cache/ergomake/cluster.
func Dir() string {
	if d := os.Getenv("ERGOMAKE_CLUSTER_DIR"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "ergomake-cluster")
	}
	return filepath.Join(home, ".cache", "ergomake", "cluster")
}

// KubeconfigPath returns the kubeconfig of the local cluster: $KUBECONFIG when set (a single
// file), else Dir()/kubeconfig. When it does not exist the test is skipped, or fails when
// ERGOMAKE_E2E_REQUIRE=1.
func KubeconfigPath(t testing.TB) string {
	t.Helper()
	p := os.Getenv("KUBECONFIG")
	if p == "" || strings.Contains(p, string(os.PathListSeparator)) {
		p = filepath.Join(Dir(), "kubeconfig")
	}
	if _, err := os.Stat(p); err != nil {
		msg := fmt.Sprintf("no local cluster: %s missing (run make cluster-up)", p)
		if os.Getenv("ERGOMAKE_E2E_REQUIRE") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return p
}

// Config returns a rest.Config for the local cluster, checking that its API server answers.
func Config(t testing.TB) *rest.Config {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", KubeconfigPath(t))
	if err != nil {
		t.Fatalf("loading kubeconfig: %v", err)
	}
	cfg.QPS, cfg.Burst = 50, 100
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx); err != nil {
		msg := fmt.Sprintf("local cluster not answering at %s: %v (run make cluster-up)", cfg.Host, err)
		if os.Getenv("ERGOMAKE_E2E_REQUIRE") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return cfg
}

// Clientset returns a typed client for the local cluster.
func Clientset(t testing.TB, cfg *rest.Config) kubernetes.Interface {
	t.Helper()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// Namespace creates a namespace named <prefix>-<random> for the test and deletes it when the test
// ends. When the test failed, its pods, their logs and its events are written to the test log first,
// together with the tails of the cluster components' logs.
func Namespace(t testing.TB, cs kubernetes.Interface, prefix string) string {
	t.Helper()
	name := fmt.Sprintf("%s-%s", prefix, rand.String(6))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"ergomake.dev/test": "true"}}}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			DumpNamespace(t, cs, name)
			DumpComponentLogs(t, 30)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := cs.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			t.Logf("deleting namespace %s: %v", name, err)
		}
	})
	return name
}
