//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/ergomake/ergomake/internal/forward"
)

// restartAPIServer restarts the local cluster's kube-apiserver through the harness
// (hack/cluster/restart-apiserver.sh), keeping it down for down. The test is skipped on a
// cluster the harness did not start.
func restartAPIServer(t *testing.T, down time.Duration) (wait func() error) {
	t.Helper()
	dir := os.Getenv("ERGOMAKE_CLUSTER_DIR")
	if dir == "" {
		home, _ := os.UserHomeDir()
		dir = filepath.Join(home, ".cache", "ergomake", "cluster")
	}
	if _, err := os.Stat(filepath.Join(dir, "pids", "kube-apiserver.pid")); err != nil {
		t.Skipf("no kube-apiserver started by the local cluster harness (%v)", err)
	}
	script, err := filepath.Abs("../../hack/cluster/restart-apiserver.sh")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(script, "--down", fmt.Sprint(int(down.Seconds())))
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return func() error {
		err := cmd.Wait()
		t.Logf("restart-apiserver.sh:\n%s", strings.TrimSpace(out.String()))
		return err
	}
}

// TestForwardSurvivesAPIServerRestart: the API server restarts while the forwarder serves (one
// connection mid-transfer, idle tunnels in the pools, the pod informer's watch open). The
// connection carried through it ends (its tunnel went with the API server), promptly, not hung;
// the listeners stay bound; a connection opened while the API server is down is carried once it
// is back; and new connections succeed after it, HTTP and raw TCP.
func TestForwardSurvivesAPIServerRestart(t *testing.T) {
	e := fwSetup(t, "e2e-fw-apirestart")
	f, bs := fwStart(t, e, forward.Options{}, e.port(8080), e.port(7000))
	web := fmt.Sprintf("http://127.0.0.1:%d", bs[0].LocalPort)
	echoAddr := fmt.Sprintf("127.0.0.1:%d", bs[1].LocalPort)
	if r := fwRoot(t, web); r.Service != "web" {
		t.Fatalf("before: %+v", r)
	}
	echoOnce(t, echoAddr, "before")

	// Mid-transfer: an echo connection pumping data both ways.
	mid, err := net.Dial("tcp", echoAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer mid.Close()
	midEnded := make(chan error, 1)
	go func() {
		buf := make([]byte, 16<<10)
		for {
			if _, err := mid.Write(buf); err != nil {
				midEnded <- err
				return
			}
			if _, err := io.ReadFull(mid, buf); err != nil {
				midEnded <- err
				return
			}
		}
	}()
	time.Sleep(time.Second) // carried; the pools hold idle tunnels too

	wait := restartAPIServer(t, time.Second)
	restarted := time.Now()
	// A connection while the API server is down: it waits for a tunnel, then goes through.
	during := make(chan error, 1)
	go func() {
		time.Sleep(1500 * time.Millisecond)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		resp, body, err := fwGet(ctx, web+"/")
		if err == nil && (resp.StatusCode != 200 || !strings.Contains(string(body), `"web"`)) {
			err = fmt.Errorf("%d %s", resp.StatusCode, body)
		}
		during <- err
	}()
	if err := wait(); err != nil {
		t.Fatalf("restarting the API server: %v", err)
	}
	back := time.Now()
	t.Logf("the API server was away %s", back.Sub(restarted).Round(100*time.Millisecond))

	select {
	case err := <-midEnded:
		t.Logf("the connection carried through the restart ended: %v", err)
	case <-time.After(30 * time.Second):
		t.Error("the connection carried through the restart neither ended nor failed 30 s after")
	}
	if err := <-during; err != nil {
		t.Errorf("a connection opened while the API server was down: %v", err)
	}
	if r := fwRoot(t, web); r.Service != "web" {
		t.Fatalf("after: %+v", r)
	}
	echoOnce(t, echoAddr, "after")
	for i := range 20 {
		echoOnce(t, echoAddr, fmt.Sprintf("after %d", i))
	}
	t.Logf("first connections back %s after the API server", time.Since(back).Round(100*time.Millisecond))
	waitSettled(t, f)
}

// waitSettled waits until every connection the forwarder accepted has ended (none hangs), and
// logs its counters.
func waitSettled(t *testing.T, f *forward.Forwarder) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for f.Stats().Active > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	st := f.Stats()
	if st.Active > 0 {
		t.Errorf("%d connections still active 15 s after the last one closed", st.Active)
	}
	t.Logf("stats %+v", st)
}

// echoOnce sends msg through the echo port and wants it back.
func echoOnce(t *testing.T, addr, msg string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("%s: dial: %v", msg, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatalf("%s: %v", msg, err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != msg {
		t.Fatalf("%s: echoed %q, %v", msg, got, err)
	}
}

// TestForwardSPDYFallbackReal: the SPDY fallback for real. A proxy in front of the API server
// refuses WebSocket upgrades (as a proxy that cannot carry them does) and passes everything else,
// SPDY upgrades included, with the test's credentials. The forwarder dials through it: every
// tunnel falls back to SPDY/3.1, and connections are carried both ways, many times, and the
// listeners and counters look as over WebSocket.
func TestForwardSPDYFallbackReal(t *testing.T) {
	e := fwSetup(t, "e2e-fw-spdy")
	target, err := url.Parse(e.cfg.Host)
	if err != nil {
		t.Fatal(err)
	}
	up := rest.CopyConfig(e.cfg)
	up.NextProtos = []string{"http/1.1"} // an upgrade does not go over HTTP/2
	rt, err := rest.TransportFor(up)
	if err != nil {
		t.Fatal(err)
	}
	var refused, upgraded atomic.Int32
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = rt
	proxy := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch up := strings.ToLower(r.Header.Get("Upgrade")); {
		case up == "websocket":
			refused.Add(1)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"this proxy does not carry WebSocket","code":400}`)
			return
		case strings.HasPrefix(up, "spdy/"):
			upgraded.Add(1)
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)
	e.cfg = &rest.Config{Host: proxy.URL, TLSClientConfig: rest.TLSClientConfig{Insecure: true}}

	f, bs := fwStart(t, e, forward.Options{}, e.port(8080), e.port(7000))
	web := fmt.Sprintf("http://127.0.0.1:%d", bs[0].LocalPort)
	if r := fwRoot(t, web); r.Service != "web" {
		t.Fatalf("%+v", r)
	}
	echoAddr := fmt.Sprintf("127.0.0.1:%d", bs[1].LocalPort)
	for i := range 30 {
		echoOnce(t, echoAddr, fmt.Sprintf("spdy %d", i))
	}
	// A large transfer both ways.
	c, err := net.Dial("tcp", echoAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	payload := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB
	go func() { _, _ = c.Write(payload) }()
	got := make([]byte, len(payload))
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("4 MiB echoed: %v", err)
	}
	_ = c.Close()
	waitSettled(t, f)
	st := f.Stats()
	if refused.Load() == 0 || upgraded.Load() == 0 || int64(upgraded.Load()) != st.Dials-st.DialFailures {
		t.Errorf("WebSocket refused %d times, SPDY upgrades %d, tunnels dialled %d (%d failed)", refused.Load(), upgraded.Load(), st.Dials, st.DialFailures)
	}
	if st.Failed > 0 || st.Succeeded != st.Accepted {
		t.Errorf("%d of %d connections failed, %d succeeded", st.Failed, st.Accepted, st.Succeeded)
	}
	t.Logf("over SPDY: %d upgrades (WebSocket refused %d times)", upgraded.Load(), refused.Load())
}
