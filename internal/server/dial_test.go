package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ergomake/ergomake/internal/clustersettings"
	"github.com/ergomake/ergomake/internal/kube"
	"github.com/ergomake/ergomake/internal/render"
	"github.com/ergomake/ergomake/internal/testutil/echo"
	"github.com/ergomake/ergomake/internal/testutil/syncbuf"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// userEnv creates user's namespace for project with an environment whose service web declares
// ports (compose ports) and returns the namespace.
func (f *fixture) userEnv(t *testing.T, user, project string, ports ...int32) string {
	t.Helper()
	ctx := context.Background()
	ns := Namespace(user, project)
	_, err := f.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns,
		Labels: map[string]string{LabelUser: UserHash(user)}, Annotations: map[string]string{AnnotationUser: user, AnnotationProject: project}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	env := &v1alpha1.ErgomakeEnv{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: v1alpha1.Kind},
		ObjectMeta: metav1.ObjectMeta{Name: kube.EnvName(project), Namespace: ns},
		Spec:       v1alpha1.EnvSpec{Project: project, Services: []v1alpha1.ServiceSpec{{Name: "web", ServiceName: "web", Image: "testapp"}, {Name: "db", ServiceName: "db", Image: "db"}}},
	}
	for _, p := range ports {
		env.Spec.Services[0].Ports = append(env.Spec.Services[0].Ports, v1alpha1.PortSpec{Name: "p", Target: p, Protocol: "TCP"})
	}
	env.Spec.Services[0].Expose = []v1alpha1.PortSpec{{Name: "udp", Target: 5353, Protocol: "UDP"}}
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(env)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.tenancy.Dynamic.Resource(v1alpha1.GroupVersionResource).Namespace(ns).Create(ctx, &unstructured.Unstructured{Object: obj}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return ns
}

// readyPod creates a ready pod of service with IP 127.0.0.1: the server dials an echo.Serve there.
func (f *fixture) readyPod(t *testing.T, ns, project, service, name string, ready bool) *corev1.Pod {
	t.Helper()
	env := &v1alpha1.ErgomakeEnv{ObjectMeta: metav1.ObjectMeta{Name: kube.EnvName(project)}}
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, UID: types.UID("uid-" + name), Labels: render.SelectorLabels(env, service),
			CreationTimestamp: metav1.Now()},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "testapp"}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "127.0.0.1",
			Conditions:        []corev1.PodCondition{{Type: corev1.PodReady, Status: status}},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "main", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}},
	}
	p, err := f.kube.CoreV1().Pods(ns).Create(context.Background(), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func roundTrip(t *testing.T, c net.Conn, size int) {
	t.Helper()
	payload := make([]byte, size)
	_, _ = rand.Read(payload)
	go func() {
		_, _ = c.Write(payload)
		_ = c.(interface{ CloseWrite() error }).CloseWrite()
	}()
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	back, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading the echo: %v", err)
	}
	if !bytes.Equal(back, payload) {
		t.Fatalf("echoed %d bytes, want the %d sent", len(back), len(payload))
	}
}

func TestDialRoundTripAndRefusals(t *testing.T) {
	f := newFixture(t, HandlerOptions{PodWait: 300 * time.Millisecond})
	port := int32(echo.Serve(t).Port)
	ns := f.userEnv(t, "alice", "shop", port)
	f.readyPod(t, ns, "shop", "web", "web-1", true)
	ctx := context.Background()
	alice := f.client(t, f.token(t, "alice"))

	c, err := alice.Dial(ctx, "shop", "web", port)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c, 2<<20) // half-close both ways: everything sent comes back, then the end
	_ = c.Close()

	// Later connections reuse the namespace's watch, and go over spare connections that resumed
	// the TLS session (the first spares may be handshaken before the first session ticket came).
	resumed := false
	for range 4 {
		c2, err := alice.Dial(ctx, "shop", "web", port)
		if err != nil {
			t.Fatal(err)
		}
		resumed = resumed || c2.(*upgradedConn).ConnectionState().DidResume
		roundTrip(t, c2, 10)
		_ = c2.Close()
	}
	if !resumed {
		t.Error("no later dial resumed the TLS session")
	}

	bob := f.client(t, f.token(t, "bob"))
	for _, tc := range []struct {
		name      string
		c         *Client
		env, svc  string
		port      int32
		status    int
		want      string
		retryable bool
	}{
		{"another user's env", bob, "shop", "web", port, http.StatusNotFound, `you have no environment "shop"`, false},
		{"no such env", alice, "nope", "web", port, http.StatusNotFound, `you have no environment "nope"`, false},
		{"no such service", alice, "shop", "cache", port, http.StatusNotFound, `no service "cache"`, false},
		{"undeclared port", alice, "shop", "web", 22, http.StatusForbidden, "port 22 is not a port of service web", false},
		{"UDP port", alice, "shop", "web", 5353, http.StatusForbidden, "not a port of service web", false},
		{"no port declared", alice, "shop", "db", 5432, http.StatusForbidden, "declares no TCP port", false},
	} {
		_, err := tc.c.Dial(ctx, tc.env, tc.svc, tc.port)
		var ae *APIError
		if !errors.As(err, &ae) || ae.Status != tc.status || !strings.Contains(ae.Message, tc.want) || ae.Retryable() != tc.retryable {
			t.Errorf("%s: Dial = %v, want %d %q", tc.name, err, tc.status, tc.want)
		}
	}
	log := f.audit.String()
	if n := strings.Count(log, "action=envs.dial env=shop status=101"); n != 5 {
		t.Errorf("%d audit lines for 5 dials:\n%s", n, log)
	}
	if !strings.Contains(log, "user=bob action=envs.dial env=shop status=404") {
		t.Errorf("no audit line for bob's refused dial:\n%s", log)
	}
}

func TestDialNoReadyPod(t *testing.T) {
	f := newFixture(t, HandlerOptions{PodWait: 300 * time.Millisecond})
	port := int32(echo.Serve(t).Port)
	ns := f.userEnv(t, "alice", "shop", port)
	alice := f.client(t, f.token(t, "alice"))
	ctx := context.Background()
	_, err := alice.Dial(ctx, "shop", "web", port)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusServiceUnavailable || !ae.Retryable() || !strings.Contains(ae.Message, "service web has no pod") {
		t.Fatalf("Dial without pods = %v", err)
	}
	f.readyPod(t, ns, "shop", "web", "web-1", false)
	_, err = alice.Dial(ctx, "shop", "web", port)
	if !errors.As(err, &ae) || ae.Status != http.StatusServiceUnavailable || !strings.Contains(ae.Message, "none ready; the newest, web-1") {
		t.Fatalf("Dial with an unready pod = %v", err)
	}

	// A pod that becomes ready while the dial waits is used.
	f2 := newFixture(t, HandlerOptions{PodWait: 10 * time.Second})
	ns2 := f2.userEnv(t, "alice", "shop", port)
	alice2 := f2.client(t, f2.token(t, "alice"))
	go func() {
		time.Sleep(300 * time.Millisecond)
		f2.readyPod(t, ns2, "shop", "web", "web-2", true)
	}()
	c, err := alice2.Dial(ctx, "shop", "web", port)
	if err != nil {
		t.Fatalf("Dial while the pod comes up: %v", err)
	}
	roundTrip(t, c, 100)
	_ = c.Close()
}

func TestDialPodGoneEndsConnection(t *testing.T) {
	f := newFixture(t, HandlerOptions{PodWait: 5 * time.Second})
	port := int32(echo.Serve(t).Port)
	ns := f.userEnv(t, "alice", "shop", port)
	f.readyPod(t, ns, "shop", "web", "web-1", true)
	alice := f.client(t, f.token(t, "alice"))
	ctx := context.Background()
	c, err := alice.Dial(ctx, "shop", "web", port)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	if err := f.kube.CoreV1().Pods(ns).Delete(ctx, "web-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = c.Read(make([]byte, 1))
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Fatalf("read after the pod was deleted: %v, want the connection ended", err)
	}
	// The next dial waits for the replacement and reaches it.
	f.readyPod(t, ns, "shop", "web", "web-2", true)
	c2, err := alice.Dial(ctx, "shop", "web", port)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c2, 100)
	_ = c2.Close()
	waitLog(t, f.audit, "web-1 went away")
}

func waitLog(t *testing.T, b *syncbuf.Buffer, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(b.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the audit log:\n%s", want, b.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestDialNeedsUpgrade(t *testing.T) {
	f := newFixture(t, HandlerOptions{})
	port := int32(echo.Serve(t).Port)
	f.userEnv(t, "alice", "shop", port)
	alice := f.client(t, f.token(t, "alice"))
	err := alice.do(context.Background(), http.MethodGet, "/v1/envs/shop/dial?service=web&port=80", nil, nil)
	if apiStatus(err) != http.StatusUpgradeRequired {
		t.Errorf("plain GET of dial = %v, want 426", err)
	}
	err = alice.do(context.Background(), http.MethodGet, "/v1/envs/shop/dial?service=web", nil, nil)
	if apiStatus(err) != http.StatusBadRequest {
		t.Errorf("dial without a port = %v, want 400", err)
	}
	_, err = f.client(t, "ergomake_bogus").Dial(context.Background(), "shop", "web", port)
	if apiStatus(err) != http.StatusUnauthorized {
		t.Errorf("dial with a bogus token = %v, want 401", err)
	}
}

// The upgraded connection outlives the server's read and write timeouts.
func TestDialSurvivesServerTimeouts(t *testing.T) {
	f := newFixture(t, HandlerOptions{}, func(s *http.Server) {
		s.ReadTimeout, s.WriteTimeout, s.IdleTimeout = 200*time.Millisecond, 200*time.Millisecond, 200*time.Millisecond
	})
	port := int32(echo.Serve(t).Port)
	ns := f.userEnv(t, "alice", "shop", port)
	f.readyPod(t, ns, "shop", "web", "web-1", true)
	c, err := f.client(t, f.token(t, "alice")).Dial(context.Background(), "shop", "web", port)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 3 {
		time.Sleep(300 * time.Millisecond)
		if _, err := c.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(c, make([]byte, 4)); err != nil {
			t.Fatalf("after %s idle: %v", 300*time.Millisecond, err)
		}
	}
}

func TestDialBuilder(t *testing.T) {
	port := int32(echo.Serve(t).Port)
	var mu sync.Mutex
	calls := 0
	f := newFixture(t, HandlerOptions{BuilderDial: func(ctx context.Context) (net.Conn, error) {
		mu.Lock()
		calls++
		mu.Unlock()
		var d net.Dialer
		return d.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))))
	}})
	c, err := f.client(t, f.token(t, "alice")).DialBuilder(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c, 1<<20)
	_ = c.Close()
	if calls != 1 || !strings.Contains(f.audit.String(), "user=alice action=builder.dial env=- status=101") {
		t.Errorf("calls %d, audit:\n%s", calls, f.audit.String())
	}

	none := newFixture(t, HandlerOptions{})
	_, err = none.client(t, none.token(t, "alice")).DialBuilder(context.Background())
	if apiStatus(err) != http.StatusServiceUnavailable || !strings.Contains(err.Error(), "no builder") {
		t.Errorf("DialBuilder without a builder = %v", err)
	}
}

// After a dial the client keeps spare connections, handshaken, and the next dial uses one.
func TestDialUsesSpareConnections(t *testing.T) {
	f := newFixture(t, HandlerOptions{})
	port := int32(echo.Serve(t).Port)
	ns := f.userEnv(t, "alice", "shop", port)
	f.readyPod(t, ns, "shop", "web", "web-1", true)
	c := f.client(t, f.token(t, "alice"))
	ctx := context.Background()
	first, err := c.Dial(ctx, "shop", "web", port)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, first, 10)
	_ = first.Close()
	spares := map[*tls.Conn]bool{}
	deadline := time.Now().Add(10 * time.Second)
	for len(spares) < spareN {
		if time.Now().After(deadline) {
			t.Fatalf("%d spare connections after 10s, want %d", len(spares), spareN)
		}
		time.Sleep(10 * time.Millisecond)
		c.spares.mu.Lock()
		clear(spares)
		for _, sc := range c.spares.conns {
			spares[sc.conn] = true
		}
		c.spares.mu.Unlock()
	}
	next, err := c.Dial(ctx, "shop", "web", port)
	if err != nil {
		t.Fatal(err)
	}
	if !spares[next.(*upgradedConn).Conn] {
		t.Error("the dial did not use a spare connection")
	}
	roundTrip(t, next, 10)
	_ = next.Close()
}

// GET /v1/builder says where built images go and the nodes' platforms, which the CLI builds for;
// 404 saying to ask the admin when the cluster has no builder.
func TestBuilderInfo(t *testing.T) {
	f := newFixture(t, HandlerOptions{})
	c := f.client(t, f.token(t, "alice"))
	if _, err := c.Builder(context.Background()); apiStatus(err) != http.StatusNotFound || !strings.Contains(err.Error(), "ergomake install") {
		t.Errorf("Builder without an install = %v, want 404 naming ergomake install", err)
	}

	settings := clustersettings.Settings{Namespace: "ergomake-system", RegistryPush: "ergomake-registry.ergomake-system.svc:5000",
		RegistryPull: "127.0.0.1:5100", BuilderSelector: "app.kubernetes.io/name=ergomake-builder", BuilderPort: 1234}
	node := func(name, arch string) *corev1.Node {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name,
			Labels: map[string]string{corev1.LabelOSStable: "linux", corev1.LabelArchStable: arch}}}
	}
	for _, o := range []runtime.Object{settings.ConfigMap(), node("a", "arm64"), node("b", "amd64"), node("c", "arm64")} {
		if err := f.kube.Tracker().Add(o); err != nil {
			t.Fatal(err)
		}
	}
	info, err := c.Builder(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := BuilderInfo{RegistryPush: settings.RegistryPush, RegistryPull: settings.RegistryPull, Insecure: true,
		Platforms: []string{"linux/amd64", "linux/arm64"}}
	if !reflect.DeepEqual(info, want) {
		t.Errorf("Builder = %+v, want %+v", info, want)
	}
}
