//go:build e2e

// Package e2e holds the end-to-end tests; they run against the local cluster (make test-e2e).
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/ergomake/ergomake/internal/testutil/cluster"
)

// TestClusterTwoServices applies a two-service app of the test image with plain manifests and
// checks the cluster does what ergomake relies on: pods Ready through probes (HTTP and a
// CMD-SHELL-style exec probe through busybox's /bin/sh), one pod reaching the other by its Service
// name (CoreDNS + kube-proxy), names outside the cluster not resolving (no upstream DNS), and the
// API server's port-forward reaching a pod.
func TestClusterTwoServices(t *testing.T) {
	cfg := cluster.Config(t)
	cs := cluster.Clientset(t, cfg)
	ns := cluster.Namespace(t, cs, "e2e-cluster")
	ctx := context.Background()

	// web: plain HTTP on 8080, ready through an exec probe run by /bin/sh (as compose CMD-SHELL).
	web := testappDeployment(ns, "web", map[string]string{"PORTS": "8080"}, &corev1.Probe{
		ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{
			Command: []string{"/bin/sh", "-c", "wget -q -O /dev/null http://127.0.0.1:8080/healthz"},
		}},
		PeriodSeconds: 1,
	})
	// api: HTTP on 9000 and 9001, TCP echo on 7000, ready through /healthz after READY_AFTER.
	api := testappDeployment(ns, "api", map[string]string{"PORTS": "9000,9001", "ECHO_PORTS": "7000", "READY_AFTER": "1"}, &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(9000)}},
		PeriodSeconds: 1,
	})
	for _, d := range []*appsv1.Deployment{web, api} {
		if _, err := cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating deployment %s: %v", d.Name, err)
		}
	}
	createService(t, cs, ns, "web", corev1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)})
	createService(t, cs, ns, "api",
		corev1.ServicePort{Name: "http", Port: 9000, TargetPort: intstr.FromInt32(9000)},
		corev1.ServicePort{Name: "alt", Port: 80, TargetPort: intstr.FromInt32(9001)})

	cluster.WaitDeploymentReady(t, cs, ns, "web", 90*time.Second)
	cluster.WaitDeploymentReady(t, cs, ns, "api", 90*time.Second)
	pod := cluster.ReadyPod(t, cs, ns, map[string]string{"app": "web"}, 30*time.Second)

	// The API server's port-forward reaches the web pod.
	local := cluster.PortForward(t, cfg, ns, pod.Name, 8080)
	base := fmt.Sprintf("http://127.0.0.1:%d", local)
	var root struct {
		Service  string `json:"service"`
		Hostname string `json:"hostname"`
		Port     int    `json:"port"`
	}
	getJSON(t, base+"/", http.StatusOK, &root)
	if root.Service != "web" || root.Hostname != pod.Name || root.Port != 8080 {
		t.Errorf("GET / through port-forward = %+v, want service web, hostname %s, port 8080", root, pod.Name)
	}

	// From the web pod, the api pod answers by its Service name, on both Service ports, and by
	// its fully qualified name.
	for _, target := range []struct {
		url  string
		port int
	}{
		{"http://api:9000/", 9000},
		{"http://api/", 9001},
		{"http://api." + ns + ".svc.cluster.local:9000/", 9000},
	} {
		var fetched struct {
			Status int    `json:"status"`
			Body   string `json:"body"`
		}
		// DNS and kube-proxy rules for a new Service can lag its endpoints by a moment.
		cluster.Eventually(t, 30*time.Second, 500*time.Millisecond, "web fetching "+target.url, func(ctx context.Context) (bool, string, error) {
			code, body, err := get(ctx, base+"/fetch?url="+url.QueryEscape(target.url))
			if err != nil || code != http.StatusOK {
				return false, fmt.Sprintf("%d %s %v", code, body, err), nil
			}
			return true, "", json.Unmarshal([]byte(body), &fetched)
		})
		var inner struct {
			Service string `json:"service"`
			Port    int    `json:"port"`
		}
		if err := json.Unmarshal([]byte(fetched.Body), &inner); err != nil {
			t.Fatalf("fetch %s: body %q: %v", target.url, fetched.Body, err)
		}
		if fetched.Status != http.StatusOK || inner.Service != "api" || inner.Port != target.port {
			t.Errorf("fetch %s = status %d, %+v; want 200 from service api port %d", target.url, fetched.Status, inner, target.port)
		}
	}

	// CoreDNS has no upstream: a name outside the cluster does not resolve, and /fetch says so.
	var failed struct {
		Error string `json:"error"`
	}
	getJSON(t, base+"/fetch?url="+url.QueryEscape("http://example.com/"), http.StatusBadGateway, &failed)
	if failed.Error == "" {
		t.Errorf("fetch of an outside name: want an error, got none")
	}

	// The other endpoints of the test app, through the same forward.
	data := mustGet(t, base+"/bytes?n=100000", http.StatusOK)
	if len(data) != 100000 {
		t.Errorf("GET /bytes?n=100000 returned %d bytes", len(data))
	}
}

func testappDeployment(ns, name string, env map[string]string, readiness *corev1.Probe) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	vars := []corev1.EnvVar{{Name: "SERVICE", Value: name}}
	for k, v := range env {
		vars = append(vars, corev1.EnvVar{Name: k, Value: v})
	}
	one := int32(1)
	grace := int64(2)
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: &grace,
					Containers: []corev1.Container{{
						Name:            name,
						Image:           cluster.TestImage,
						ImagePullPolicy: corev1.PullIfNotPresent,
						Env:             vars,
						ReadinessProbe:  readiness,
					}},
				},
			},
		},
	}
}

func createService(t *testing.T, cs kubernetes.Interface, ns, name string, ports ...corev1.ServicePort) {
	t.Helper()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": name}, Ports: ports},
	}
	if _, err := cs.CoreV1().Services(ns).Create(context.Background(), svc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating service %s: %v", name, err)
	}
}

func get(ctx context.Context, u string) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

func mustGet(t *testing.T, u string, want int) string {
	t.Helper()
	code, body, err := get(context.Background(), u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	if code != want {
		t.Fatalf("GET %s: status %d (%s), want %d", u, code, body, want)
	}
	return body
}

func getJSON(t *testing.T, u string, want int, v any) {
	t.Helper()
	body := mustGet(t, u, want)
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("GET %s: %q: %v", u, body, err)
	}
}
