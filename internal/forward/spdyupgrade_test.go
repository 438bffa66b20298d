package forward

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/rest"
)

// portForwardServer is an API server whose pods/portforward refuses
// WebSocket (as one behind a proxy that cannot carry it, or with the
// feature off) and, unless spdy is false, upgrades to SPDY/3.1 and serves
// the port-forward protocol with the pod's service shout.
func portForwardServer(t *testing.T, spdy bool) (srv *httptest.Server, wsRefused, upgraded *atomic.Int32) {
	wsRefused, upgraded = new(atomic.Int32), new(atomic.Int32)
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/namespaces/ns/pods/web-1/portforward" {
			http.NotFound(w, r)
			return
		}
		if r.Header.Get("Authorization") != "Bearer secret" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || !spdy {
			wsRefused.Add(1)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"upgrade refused by the test server","code":400}`)
			return
		}
		if r.Method != http.MethodPost || r.Header.Get("Upgrade") != "SPDY/3.1" ||
			r.Header.Get("X-Stream-Protocol-Version") != "portforward.k8s.io" {
			http.Error(w, "bad upgrade request", http.StatusBadRequest)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		upgraded.Add(1) // before the client can see the upgrade
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n" +
			"X-Stream-Protocol-Version: portforward.k8s.io\r\n\r\n")
		_ = brw.Flush()
		newKubelet(t, conn, shout)
	}))
	t.Cleanup(srv.Close)
	return srv, wsRefused, upgraded
}

func testDialer(t *testing.T, srv *httptest.Server) *apiDialer {
	base, err := url.Parse(srv.URL + "/api/v1/namespaces/ns/pods")
	if err != nil {
		t.Fatal(err)
	}
	return newAPIDialer(&rest.Config{Host: srv.URL, BearerToken: "secret"}, base)
}

// The SPDY fallback for real: the WebSocket upgrade is refused, the tunnel
// is upgraded to SPDY/3.1 (credentials and protocol header sent) and a frame
// tunnel carries connections on it, both ways, reused.
func TestSPDYFallback(t *testing.T) {
	srv, wsRefused, upgraded := portForwardServer(t, true)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tun, err := testDialer(t, srv).dial(ctx, "web-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := tun.(*frameTunnel); !ok {
		t.Fatalf("the SPDY tunnel is a %T, want a frame tunnel", tun)
	}
	if wsRefused.Load() != 1 || upgraded.Load() != 1 {
		t.Fatalf("WebSocket refused %d times, SPDY upgrades %d; want 1 and 1", wsRefused.Load(), upgraded.Load())
	}
	r := newRig(t)
	tun.start(&r.f.wg, func() { r.p.forget(tun) })
	for i, msg := range []string{"hello", strings.Repeat("spdy", 1<<18)} {
		app, out := r.pipe(t, tun)
		go func() {
			_, _ = app.Write([]byte(msg))
			_ = app.CloseWrite()
		}()
		got, err := io.ReadAll(app)
		if err != nil || !bytes.Equal(got, []byte(strings.ToUpper(msg))) {
			t.Fatalf("connection %d: got %d bytes, %v", i, len(got), err)
		}
		if o := wait(t, out); o != done {
			t.Fatalf("connection %d: outcome %v; log:\n%s", i, o, r.log())
		}
		if r.p.get() != tun {
			t.Fatalf("connection %d: tunnel not kept for reuse", i)
		}
	}
}

// Both upgrades refused: the error says what the server said.
func TestSPDYFallbackRefused(t *testing.T) {
	srv, _, _ := portForwardServer(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := testDialer(t, srv).dial(ctx, "web-1")
	if err == nil || !strings.Contains(err.Error(), "unable to upgrade connection: upgrade refused by the test server") {
		t.Fatalf("err = %v", err)
	}
}
