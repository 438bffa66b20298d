//go:build e2e

// Package e2e holds the end-to-end tests; they run against the local cluster (make test-e2e).
package e2e

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/ergomake/ergomake/internal/testutil/cluster"
	"github.com/ergomake/ergomake/internal/testutil/testapp"
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
	web := testapp.Deployment(ns, "web", nil, &corev1.Probe{
		ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{
			Command: []string{"/bin/sh", "-c", "wget -q -O /dev/null http://127.0.0.1:8080/healthz"},
		}},
		PeriodSeconds: 1,
	}, "PORTS=8080")
	// api: HTTP on 9000 and 9001, TCP echo on 7000, ready through /healthz after READY_AFTER.
	api := testapp.Deployment(ns, "api", nil, testapp.HTTPReady(9000), "PORTS=9000,9001", "ECHO_PORTS=7000", "READY_AFTER=1")
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
	resp, err := http.Post(base+"/sink", "application/octet-stream", strings.NewReader(strings.Repeat("x", 70000)))
	if err != nil {
		t.Fatalf("POST /sink: %v", err)
	}
	var sunk struct {
		Bytes int `json:"bytes"`
	}
	err = json.NewDecoder(resp.Body).Decode(&sunk)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || sunk.Bytes != 70000 {
		t.Errorf("POST /sink of 70000 bytes: status %d, %+v, %v", resp.StatusCode, sunk, err)
	}

	// The TCP echo port of the api pod, through a port-forward of its own.
	apiPod := cluster.ReadyPod(t, cs, ns, map[string]string{"app": "api"}, 30*time.Second)
	echoPort := cluster.PortForward(t, cfg, ns, apiPod.Name, 7000)
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", echoPort), 10*time.Second)
	if err != nil {
		t.Fatalf("dialing the echo port forward: %v", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := conn.Write([]byte("hello echo\n")); err != nil {
		t.Fatalf("writing to the echo port: %v", err)
	}
	echoed := make([]byte, len("hello echo\n"))
	if _, err := io.ReadFull(conn, echoed); err != nil || string(echoed) != "hello echo\n" {
		t.Errorf("echo through port-forward = %q, %v", echoed, err)
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

// TestClusterStaysLocal checks the harness's safety promises on this machine: every TCP listener
// of the cluster's own processes is bound to loopback or the node address 10.200.0.1, and the
// egress guard that keeps pod traffic on the machine is in place.
func TestClusterStaysLocal(t *testing.T) {
	cluster.Config(t) // skips (or fails under make test-e2e) when there is no cluster
	if os.Geteuid() != 0 {
		t.Skip("needs root to read the cluster processes' sockets")
	}
	listening := listeningSockets(t)
	found := map[string]int{}
	for _, c := range cluster.Components {
		data, err := os.ReadFile(filepath.Join(cluster.Dir(), "pids", c+".pid"))
		if err != nil {
			t.Errorf("%s: %v", c, err)
			continue
		}
		pid := strings.TrimSpace(string(data))
		fds, err := os.ReadDir(filepath.Join("/proc", pid, "fd"))
		if err != nil {
			t.Errorf("%s (pid %s): %v", c, pid, err)
			continue
		}
		for _, fd := range fds {
			link, err := os.Readlink(filepath.Join("/proc", pid, "fd", fd.Name()))
			if err != nil || !strings.HasPrefix(link, "socket:[") {
				continue
			}
			addr, ok := listening[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")]
			if !ok {
				continue
			}
			found[c]++
			if !addr.IsLoopback() && addr.String() != "10.200.0.1" {
				t.Errorf("%s listens on %s: want loopback or 10.200.0.1 only", c, addr)
			}
		}
	}
	for _, c := range []string{"etcd", "kube-apiserver", "kubelet"} {
		if found[c] == 0 {
			t.Errorf("found no listening socket of %s: the check above looked at nothing", c)
		}
	}
	for _, table := range []string{"filter", "mangle"} {
		cmd := exec.Command("iptables", "-t", table, "-C", "FORWARD", "-s", "10.244.0.0/16", "!", "-d", "10.244.0.0/16",
			"-m", "comment", "--comment", "ergomake-egress-guard", "-j", "DROP")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("egress guard missing from the %s table's FORWARD chain: %v %s", table, err, out)
		}
	}
}

// listeningSockets maps the inode of every listening TCP socket of this network namespace to its
// local address.
func listeningSockets(t *testing.T) map[string]net.IP {
	t.Helper()
	socks := map[string]net.IP{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			fields := strings.Fields(line)
			if len(fields) < 10 || fields[3] != "0A" { // 0A: LISTEN
				continue
			}
			hexIP, _, _ := strings.Cut(fields[1], ":")
			raw, err := hex.DecodeString(hexIP)
			if err != nil {
				t.Fatalf("%s: %q: %v", f, line, err)
			}
			// the kernel prints each 32-bit word in host (little-endian) order
			for i := 0; i+4 <= len(raw); i += 4 {
				raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
			}
			socks[fields[9]] = net.IP(raw)
		}
	}
	return socks
}
