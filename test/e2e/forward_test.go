//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
	"k8s.io/streaming/pkg/httpstream"

	"github.com/ergomake/ergomake/internal/forward"
	"github.com/ergomake/ergomake/internal/testutil/cluster"
	"github.com/ergomake/ergomake/internal/testutil/testapp"
)

// fwEnv is one test's namespace with a Deployment "web" of the test image:
// HTTP on 8080, TCP echo on 7000, ready through /healthz.
type fwEnv struct {
	cfg *rest.Config
	cs  kubernetes.Interface
	ns  string
	sel map[string]string
}

func fwSetup(t *testing.T, prefix string) *fwEnv {
	t.Helper()
	cfg := cluster.Config(t)
	cs := cluster.Clientset(t, cfg)
	ns := cluster.Namespace(t, cs, prefix)
	sel := map[string]string{"ergomake.dev/env": "fwtest", "ergomake.dev/service": "web"}
	testapp.Deploy(t, cs, testapp.Deployment(ns, "web", sel, testapp.HTTPReady(8080), "PORTS=8080", "ECHO_PORTS=7000"))
	return &fwEnv{cfg: cfg, cs: cs, ns: ns, sel: sel}
}

// fwStart binds ports and serves them until the test ends; the cleanup
// checks that Serve returns.
func fwStart(t *testing.T, e *fwEnv, opts forward.Options, ports ...forward.Port) (*forward.Forwarder, []forward.Binding) {
	t.Helper()
	if opts.Logf == nil {
		opts.Logf = func(format string, args ...any) { t.Logf(format, args...) }
	}
	if opts.Dialer == nil && os.Getenv("FORWARD_TEST_STREAMS") == "1" {
		// For comparisons: client-go's own WebSocket dialer and stream
		// connection (spdystream) instead of the forwarder's frame tunnel.
		opts.Dialer = fwClientGoDialer(e)
	}
	f, err := forward.New(e.cfg, e.ns, opts)
	if err != nil {
		t.Fatal(err)
	}
	bs, err := f.Bind(ports)
	if err != nil {
		t.Fatal(err)
	}
	fwServe(t, f)
	return f, bs
}

// fwServe serves f until the test ends; the cleanup checks that Serve
// returns.
func fwServe(t *testing.T, f *forward.Forwarder) {
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- f.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("Serve did not return 30s after its context ended")
		}
	})
}

func (e *fwEnv) port(remote int32) forward.Port {
	return forward.Port{Service: "web", Selector: e.sel, RemotePort: remote}
}

// fwGet does one GET on a fresh connection.
func fwGet(ctx context.Context, u string) (*http.Response, []byte, error) {
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, err
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

// fwRoot is the reply of GET base/, on a fresh connection.
func fwRoot(t *testing.T, base string) testapp.Reply {
	t.Helper()
	return testapp.MustGet(t, base+"/")
}

func fwReadyPod(t *testing.T, e *fwEnv) *corev1.Pod {
	return cluster.ReadyPod(t, e.cs, e.ns, e.sel, 60*time.Second)
}

// TestForwardRoundTrip: bytes go both ways intact through a bound port, to
// the ready pod; the ::1 listener works too; Serve ends every goroutine.
func TestForwardRoundTrip(t *testing.T) {
	e := fwSetup(t, "e2e-fwrt")
	pod := fwReadyPod(t, e)
	before := runtime.NumGoroutine()

	f, err := forward.New(e.cfg, e.ns, forward.Options{Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	bs, err := f.Bind([]forward.Port{e.port(8080), e.port(7000), {Service: "web", Selector: e.sel, RemotePort: 53, Protocol: "UDP"}})
	if err != nil {
		t.Fatal(err)
	}
	if bs[2].Note != forward.NoteUDP || len(bs[2].Addrs) != 0 {
		t.Errorf("UDP binding %+v", bs[2])
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- f.Serve(ctx) }()

	for _, addr := range bs[0].Addrs { // 127.0.0.1 and, when present, ::1
		r := fwRoot(t, "http://"+addr)
		if r.Hostname != pod.Name || r.Port != 8080 {
			t.Errorf("GET / via %s = %+v, want pod %s port 8080", addr, r, pod.Name)
		}
	}
	base := "http://" + bs[0].Addrs[0]

	// Download: exact length and content.
	const n = 64 << 20
	resp, body, err := fwGet(context.Background(), fmt.Sprintf("%s/bytes?n=%d", base, n))
	if err != nil || resp.StatusCode != 200 || len(body) != n {
		t.Fatalf("GET /bytes: err %v, %d bytes", err, len(body))
	}
	for i := 0; i < n; i += 4099 {
		if body[i] != 'a'+byte(i%(32<<10)%26) {
			t.Fatalf("byte %d is %q", i, body[i])
		}
	}

	// Upload.
	const up = 48 << 20
	tr := &http.Transport{DisableKeepAlives: true}
	preq, _ := http.NewRequest(http.MethodPost, base+"/sink", io.LimitReader(zeroReader{}, up))
	preq.ContentLength = up
	presp, err := tr.RoundTrip(preq)
	if err != nil {
		t.Fatalf("POST /sink: %v", err)
	}
	pbody, _ := io.ReadAll(presp.Body)
	presp.Body.Close()
	if !strings.Contains(string(pbody), fmt.Sprintf(`"bytes":%d`, up)) {
		t.Errorf("POST /sink answered %s, want %d bytes", pbody, up)
	}

	// TCP echo, with a half-close: the pod's echo ends when we stop sending.
	c, err := net.Dial("tcp", bs[1].Addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	msg := strings.Repeat("ergomake echo ", 10000)
	go func() {
		_, _ = io.WriteString(c, msg)
		_ = c.(*net.TCPConn).CloseWrite()
	}()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	echoed, err := io.ReadAll(c)
	c.Close()
	if err != nil || string(echoed) != msg {
		t.Errorf("echo: %d of %d bytes back, err %v", len(echoed), len(msg), err)
	}

	// A reply read until the pod's side closes (HTTP/1.0 style): the end of
	// the stream reaches the client as a clean EOF. (The container runtime
	// holds the pod side's end for about a second when the client has not
	// half-closed; kubectl port-forward shows the same.)
	var eofLat []time.Duration
	for range 10 {
		start := time.Now()
		c, err := net.Dial("tcp", bs[0].Addrs[0])
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		got, err := io.ReadAll(c)
		c.Close()
		if err != nil || !strings.Contains(string(got), pod.Name) {
			t.Fatalf("read to EOF: %v, %q", err, got)
		}
		eofLat = append(eofLat, time.Since(start))
	}
	t.Logf("connect + GET read to EOF: p50 %s, max %s (runtime-bound, see above)", pct(eofLat, 50), pct(eofLat, 100))

	st := f.Stats()
	t.Logf("stats: %+v", st)
	if st.Failed != 0 || st.Succeeded < 14 {
		t.Errorf("stats %+v: want no failure", st)
	}

	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	for _, a := range bs[0].Addrs {
		if c, err := net.Dial("tcp", a); err == nil {
			c.Close()
			t.Errorf("%s still accepts after Serve returned", a)
		}
	}
	// No goroutine outlives Serve (the HTTP transports above are closed).
	tr.CloseIdleConnections()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before+2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+2 {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines after Serve returned, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestForwardSurvivesPodDeletion: the pod is deleted while a download runs
// through it; that download ends, the listener stays bound (no connection is
// refused) and new connections reach the replacement once it is ready.
func TestForwardSurvivesPodDeletion(t *testing.T) {
	e := fwSetup(t, "e2e-fwdel")
	old := fwReadyPod(t, e)
	f, bs := fwStart(t, e, forward.Options{}, e.port(8080))
	base := "http://" + bs[0].Addrs[0]
	if r := fwRoot(t, base); r.Hostname != old.Name {
		t.Fatalf("before deletion: reached %s, want %s", r.Hostname, old.Name)
	}

	// An in-flight download nobody hurries to read.
	inflight, err := net.Dial("tcp", bs[0].Addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	defer inflight.Close()
	fmt.Fprintf(inflight, "GET /bytes?n=%d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", int64(8)<<30)
	if _, err := io.ReadFull(inflight, make([]byte, 1024)); err != nil {
		t.Fatalf("in-flight download: %v", err)
	}
	inflightDone := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, inflight)
		inflightDone <- err
	}()

	// Note when the replacement becomes Ready, as seen by a watch.
	w, err := e.cs.CoreV1().Pods(e.ns).Watch(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	readyc := make(chan time.Time, 1)
	go func() {
		for ev := range w.ResultChan() {
			if p, ok := ev.Object.(*corev1.Pod); ok && p.Name != old.Name && cluster.PodReady(p) && p.DeletionTimestamp == nil {
				readyc <- time.Now()
				return
			}
		}
	}()

	deleted := time.Now()
	if err := e.cs.CoreV1().Pods(e.ns).Delete(context.Background(), old.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	// New connections, one after another, until one reaches the replacement.
	var reached testapp.Reply
	var refused, failedConns, okOld int
	var firstOK time.Time
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline) && firstOK.IsZero(); {
		ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
		resp, body, err := fwGet(ctx, base+"/")
		cancel()
		switch {
		case err != nil:
			if errors.Is(err, syscall.ECONNREFUSED) {
				refused++
			}
			failedConns++
			time.Sleep(20 * time.Millisecond)
		case resp.StatusCode == 200 && json.Unmarshal(body, &reached) == nil && reached.Hostname != old.Name:
			firstOK = time.Now()
		default:
			okOld++ // the old pod, still serving while it terminates
			time.Sleep(20 * time.Millisecond)
		}
	}
	if firstOK.IsZero() {
		t.Fatalf("no connection reached a replacement pod within 90s (last: %+v)", reached)
	}
	if refused > 0 {
		t.Errorf("%d connections were refused: the listener must stay bound", refused)
	}
	var readyAt time.Time
	select {
	case readyAt = <-readyc:
	case <-time.After(10 * time.Second):
		t.Fatal("the watch never saw the replacement Ready")
	}
	t.Logf("replacement %s Ready %s after the deletion; first new connection answered %s after Ready; %d connections failed, %d reached the old pod meanwhile",
		reached.Hostname, readyAt.Sub(deleted).Round(time.Millisecond), firstOK.Sub(readyAt).Round(time.Millisecond), failedConns, okOld)

	select {
	case err := <-inflightDone:
		t.Logf("in-flight download ended %s after the deletion (err: %v)", time.Since(deleted).Round(time.Millisecond), err)
	case <-time.After(60 * time.Second):
		t.Errorf("in-flight download still running 60s after its pod was deleted")
	}
	newPod, err := e.cs.CoreV1().Pods(e.ns).Get(context.Background(), reached.Hostname, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// Once there, every new connection works.
	for i := range 20 {
		if r := fwRoot(t, base); r.Hostname != newPod.Name {
			t.Errorf("connection %d after recovery reached %s, want %s", i, r.Hostname, newPod.Name)
		}
	}
	t.Logf("stats: %+v", f.Stats())
}

// TestForwardRefusedPortIsolated: a connection to a port nothing listens on
// inside the pod fails alone: an open connection on another port and new
// connections keep working.
func TestForwardRefusedPortIsolated(t *testing.T) {
	e := fwSetup(t, "e2e-fwref")
	var mu sync.Mutex
	var logs []string
	f, bs := fwStart(t, e, forward.Options{Logf: func(format string, args ...any) {
		mu.Lock()
		logs = append(logs, fmt.Sprintf(format, args...))
		mu.Unlock()
		t.Logf(format, args...)
	}}, e.port(8080), e.port(9999))
	web, closed := "http://"+bs[0].Addrs[0], bs[1].Addrs[0]

	// A keep-alive connection on 8080, opened before the failure.
	keep := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}}
	defer keep.CloseIdleConnections()
	getKeep := func() error {
		resp, err := keep.Get(web + "/")
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return err
	}
	if err := getKeep(); err != nil {
		t.Fatal(err)
	}

	for i := range 3 {
		c, err := net.Dial("tcp", closed)
		if err != nil {
			t.Fatalf("the listener for 9999 refused: %v", err)
		}
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		got, err := io.ReadAll(c)
		c.Close()
		if len(got) > 0 {
			t.Errorf("attempt %d: port 9999 answered %q", i, got)
		}
		t.Logf("attempt %d on 9999: %d bytes, err %v", i, len(got), err)
	}

	if err := getKeep(); err != nil {
		t.Errorf("the open 8080 connection broke after 9999 failed: %v", err)
	}
	for range 5 {
		fwRoot(t, web)
	}
	st := f.Stats()
	t.Logf("stats: %+v", st)
	if st.Failed != 3 {
		t.Errorf("%d failed connections, want the 3 to port 9999", st.Failed)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(strings.Join(logs, "\n"), "9999") {
		t.Errorf("no log line tells about port 9999; logs: %q", logs)
	}
}

// TestForwardStalledReader: a 256 MiB download that nobody reads does not
// stall small requests on other connections to the same pod and port.
func TestForwardStalledReader(t *testing.T) {
	e := fwSetup(t, "e2e-fwhol")
	f, bs := fwStart(t, e, forward.Options{}, e.port(8080), e.port(7000))
	addr := bs[0].Addrs[0]

	stalled, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	fmt.Fprintf(stalled, "GET /bytes?n=%d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 256<<20)
	br := bufio.NewReader(stalled)
	line, err := br.ReadString('\n')
	if err != nil || !strings.Contains(line, "200") {
		t.Fatalf("stalled download: %q %v", line, err)
	}
	// Let every buffer on the way fill up.
	time.Sleep(2 * time.Second)

	// Small requests beside it: a 64-byte echo on a keep-alive connection
	// and fresh HTTP connections.
	echo, err := net.Dial("tcp", bs[1].Addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	msg := []byte(strings.Repeat("e", 64))
	reply := make([]byte, 64)
	var echoLat, connLat []time.Duration
	for range 50 {
		start := time.Now()
		_ = echo.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := echo.Write(msg); err != nil {
			t.Fatalf("echo write: %v", err)
		}
		if _, err := io.ReadFull(echo, reply); err != nil {
			t.Fatalf("echo beside a stalled reader did not answer within 10s: %v", err)
		}
		echoLat = append(echoLat, time.Since(start))
	}
	for range 20 {
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		resp, _, err := fwGet(ctx, "http://"+addr+"/")
		cancel()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET / beside a stalled reader: %v", err)
		}
		connLat = append(connLat, time.Since(start))
	}
	t.Logf("beside an unread 256 MiB download: 64-byte echo p50 %s p99 %s; new connection + GET p50 %s p99 %s",
		pct(echoLat, 50), pct(echoLat, 99), pct(connLat, 50), pct(connLat, 99))

	// The stalled download is intact once read.
	n, err := io.Copy(io.Discard, io.LimitReader(br, 300<<20))
	t.Logf("stalled download then read: %d bytes (headers included), err %v; stats %+v", n, err, f.Stats())
}

func pct(d []time.Duration, p int) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (len(s)*p + 99) / 100
	return s[max(0, min(len(s)-1, i-1))].Round(10 * time.Microsecond)
}

// TestForwardServeEndsEverything: Serve returns promptly when its context
// ends while connections are in every state (transferring, waiting for a
// pod that never comes, idle keep-alive), and leaves no goroutine behind.
func TestForwardServeEndsEverything(t *testing.T) {
	e := fwSetup(t, "e2e-fwend")
	before := runtime.NumGoroutine()
	f, err := forward.New(e.cfg, e.ns, forward.Options{Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	nobody := forward.Port{Service: "ghost", Selector: map[string]string{"ergomake.dev/env": "fwtest", "ergomake.dev/service": "ghost"}, RemotePort: 80}
	bs, err := f.Bind([]forward.Port{e.port(8080), nobody})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- f.Serve(ctx) }()

	// Transferring: a large download read slowly.
	dl, err := net.Dial("tcp", bs[0].Addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	defer dl.Close()
	fmt.Fprintf(dl, "GET /bytes?n=%d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 1<<30)
	if _, err := io.ReadFull(dl, make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	// Idle keep-alive.
	ka, err := net.Dial("tcp", bs[0].Addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	defer ka.Close()
	fmt.Fprintf(ka, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, err := http.ReadResponse(bufio.NewReader(ka), nil); err != nil {
		t.Fatal(err)
	}
	// Waiting for a pod of a service that has none.
	w, err := net.Dial("tcp", bs[1].Addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	time.Sleep(300 * time.Millisecond)
	if st := f.Stats(); st.Active != 3 {
		t.Errorf("%d active connections, want 3", st.Active)
	}

	start := time.Now()
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
		t.Logf("Serve returned %s after cancel", time.Since(start).Round(time.Millisecond))
	case <-time.After(20 * time.Second):
		buf := make([]byte, 1<<20)
		t.Fatalf("Serve did not return 20s after cancel:\n%s", buf[:runtime.Stack(buf, true)])
	}
	for _, c := range []net.Conn{dl, ka, w} {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.Copy(io.Discard, c); err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("a local connection stayed open after Serve returned")
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before+2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+2 {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines after Serve returned, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

// TestForwardOverSPDY: the same data path over plain SPDY (the fallback for
// API servers without WebSocket port-forward), through Options.Dialer.
func TestForwardOverSPDY(t *testing.T) {
	e := fwSetup(t, "e2e-fwspdy")
	pod := fwReadyPod(t, e)
	var dials atomic.Int32
	spdyDial := fwSPDYDialer(e)
	dial := func(ctx context.Context, name string) (httpstream.Connection, error) {
		dials.Add(1)
		return spdyDial(ctx, name)
	}
	f, bs := fwStart(t, e, forward.Options{Dialer: dial}, e.port(8080), e.port(9999))
	base := "http://" + bs[0].Addrs[0]
	for range 5 {
		if r := fwRoot(t, base); r.Hostname != pod.Name {
			t.Errorf("reached %s, want %s", r.Hostname, pod.Name)
		}
	}
	const n = 32 << 20
	resp, body, err := fwGet(context.Background(), fmt.Sprintf("%s/bytes?n=%d", base, n))
	if err != nil || resp.StatusCode != 200 || len(body) != n {
		t.Fatalf("GET /bytes over SPDY: err %v, %d bytes", err, len(body))
	}
	c, err := net.Dial("tcp", bs[1].Addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if got, _ := io.ReadAll(c); len(got) > 0 {
		t.Errorf("port 9999 answered %q", got)
	}
	c.Close()
	fwRoot(t, base)
	st := f.Stats()
	t.Logf("stats %+v, %d dials through the test's SPDY dialer", st, dials.Load())
	if dials.Load() == 0 || st.Failed != 1 {
		t.Errorf("stats %+v: want dials through Options.Dialer and exactly the one failure", st)
	}
}

// fwSPDYDialer dials pods/portforward over plain SPDY only.
func fwSPDYDialer(e *fwEnv) forward.DialFunc {
	return func(ctx context.Context, name string) (httpstream.Connection, error) {
		u := e.cs.CoreV1().RESTClient().Post().Resource("pods").Namespace(e.ns).Name(name).SubResource("portforward").URL()
		transport, upgrader, err := spdy.RoundTripperFor(e.cfg)
		if err != nil {
			return nil, err
		}
		conn, proto, err := spdy.NewDialerForStreaming(upgrader, &http.Client{Transport: transport}, http.MethodPost, u).
			Dial(portforward.PortForwardProtocolV1Name)
		if err != nil {
			return nil, err
		}
		if proto != portforward.PortForwardProtocolV1Name {
			conn.Close()
			return nil, fmt.Errorf("protocol %q", proto)
		}
		return conn, nil
	}
}

// fwClientGoDialer dials with client-go's SPDY-over-WebSocket dialer and
// returns its stream connection.
func fwClientGoDialer(e *fwEnv) forward.DialFunc {
	return func(ctx context.Context, name string) (httpstream.Connection, error) {
		u := e.cs.CoreV1().RESTClient().Post().Resource("pods").Namespace(e.ns).Name(name).SubResource("portforward").URL()
		d, err := portforward.NewSPDYOverWebsocketDialerForStreaming(u, e.cfg)
		if err != nil {
			return nil, err
		}
		conn, _, err := d.Dial(portforward.PortForwardProtocolV1Name)
		return conn, err
	}
}
