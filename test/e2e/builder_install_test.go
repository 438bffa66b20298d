//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/ergomake/ergomake/internal/clustersettings"
	"github.com/ergomake/ergomake/internal/install"
	"github.com/ergomake/ergomake/internal/testutil/cluster"
)

// TestBuilderInstalled checks what `ergomake install` left on the cluster (make cluster-up installs
// it; the test does not reinstall the shared cluster): the builder Deployment is available, exposed
// by no Service, and its buildkitd answers HTTP/2 (gRPC) on the pod's loopback port through a
// port-forward tunnel; and a user with no rights at all but being authenticated reads the settings,
// which name that builder and the registry, and nothing else in the namespace.
func TestBuilderInstalled(t *testing.T) {
	cfg := cluster.Config(t)
	cs := cluster.Clientset(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ns := install.DefaultNamespace
	if _, err := cs.AppsV1().Deployments(ns).Get(ctx, install.BuilderName, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		t.Skipf("the builder is not installed (make cluster-up): %v", err)
	}
	cluster.WaitDeploymentReady(t, cs, ns, install.BuilderName, 90*time.Second)

	// an authenticated user with no role of its own
	nobody := rest.CopyConfig(cfg)
	nobody.Impersonate = rest.ImpersonationConfig{UserName: "e2e-nobody", Groups: []string{"system:authenticated"}}
	ncs := cluster.Clientset(t, nobody)
	s, err := clustersettings.Read(ctx, ncs, ns)
	if err != nil {
		t.Fatalf("an unprivileged user cannot read the settings: %v", err)
	}
	if s.BuilderSelector != install.BuilderSelector || s.BuilderPort != install.BuilderPort || s.BuilderMode == "" || s.BuilderMode == string(install.BuilderNone) ||
		s.RegistryPush != fmt.Sprintf("%s.%s.svc:%d", install.RegistryName, ns, install.RegistryPort) || !strings.HasPrefix(s.RegistryPull, "127.0.0.1:") ||
		s.PodSecurity == "" {
		t.Errorf("settings %+v", s)
	}
	if _, err := ncs.CoreV1().ConfigMaps(ns).Get(ctx, install.BuilderName, metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("the unprivileged user reads another ConfigMap: %v", err)
	}
	if _, err := ncs.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("the unprivileged user lists ConfigMaps: %v", err)
	}

	// the settings' selector finds the builder; nothing exposes it
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: s.BuilderSelector})
	if err != nil {
		t.Fatal(err)
	}
	var pod string
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && cluster.PodReady(&p) {
			pod = p.Name
			if p.Spec.HostNetwork {
				t.Errorf("builder pod %s runs in the host network", p.Name)
			}
		}
	}
	if pod == "" {
		t.Fatalf("no ready pod matches %s", s.BuilderSelector)
	}
	svcs, err := cs.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, svc := range svcs.Items {
		if svc.Spec.Selector["app.kubernetes.io/name"] == install.BuilderName {
			t.Errorf("Service %s exposes the builder", svc.Name)
		}
	}

	// buildkitd's gRPC server answers the HTTP/2 preface with its SETTINGS, through the tunnel
	port := cluster.PortForward(t, cfg, ns, pod, s.BuilderPort)
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := conn.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(conn, conn)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	f, err := fr.ReadFrame()
	if err != nil {
		t.Fatalf("buildkitd does not answer on its pod's 127.0.0.1:%d: %v", s.BuilderPort, err)
	}
	if _, ok := f.(*http2.SettingsFrame); !ok {
		t.Errorf("buildkitd answered with %v, want an HTTP/2 SETTINGS frame", f.Header())
	}
}
