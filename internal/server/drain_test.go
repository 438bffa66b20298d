package server

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ergomake/ergomake/internal/testutil/echo"
	"github.com/ergomake/ergomake/internal/testutil/syncbuf"
)

// drainServer is a server run by Serve (as Run runs it) on the fixture's cluster, with the fixture's
// tokens: shut it down with stop; done is closed when Serve returned.
type drainServer struct {
	h      *Handler
	client func(token string) *Client
	addr   string
	stop   context.CancelFunc
	done   chan struct{}
	log    *syncbuf.Buffer
}

func serveGraceful(t *testing.T, f *fixture, grace time.Duration) *drainServer {
	t.Helper()
	s := &drainServer{log: &syncbuf.Buffer{}, done: make(chan struct{})}
	log := slog.New(slog.NewTextHandler(s.log, nil))
	s.h = NewHandler(HandlerOptions{Auth: f.store, Tenancy: f.tenancy, Audit: log, PodWait: time.Second})
	chain, key, err := f.ca.Issue(ServingHosts("ergomake-system"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(chain, key)
	if err != nil {
		t.Fatal(err)
	}
	hs := NewHTTPServer(s.h, func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	go func() {
		defer close(s.done)
		if err := Serve(ctx, hs, s.h, ln, grace, log); err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-s.done })
	s.client = func(token string) *Client {
		c, err := NewClient(&Credentials{URL: "https://" + s.addr, Token: token, CA: string(f.ca.CertPEM)})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	return s
}

func echoOnce(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatalf("writing %q: %v", msg, err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, len(msg))
	if _, err := io.ReadFull(c, b); err != nil || string(b) != msg {
		t.Fatalf("echo of %q: %q, %v", msg, b, err)
	}
}

func (s *drainServer) ready(t *testing.T) int {
	t.Helper()
	rec := httptest.NewRecorder()
	s.h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	return rec.Code
}

// On shutdown the server stops accepting and fails readiness, but an open forwarded connection
// goes on until it ends; then the server is done, well before its grace.
func TestShutdownLetsOpenStreamsFinish(t *testing.T) {
	f := newFixture(t, HandlerOptions{})
	port := int32(echo.Serve(t).Port)
	ns := f.userEnv(t, "alice", "shop", port)
	f.readyPod(t, ns, "shop", "web", "web-1", true)
	tok := f.token(t, "alice")
	s := serveGraceful(t, f, time.Minute)
	if code := s.ready(t); code != http.StatusOK {
		t.Fatalf("readyz %d before the shutdown", code)
	}
	c, err := s.client(tok).Dial(context.Background(), "shop", "web", port)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	echoOnce(t, c, "before")

	s.stop() // SIGTERM
	deadline := time.Now().Add(5 * time.Second)
	for {
		nc, err := net.Dial("tcp", s.addr)
		if err != nil {
			break // no longer accepting
		}
		_ = nc.Close()
		if time.Now().After(deadline) {
			t.Fatal("the server still accepts connections 5s after it was asked to stop")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code := s.ready(t); code != http.StatusServiceUnavailable {
		t.Errorf("readyz %d while shutting down, want 503", code)
	}
	if _, err := s.client(tok).Dial(context.Background(), "shop", "web", port); err == nil {
		t.Error("a new dial went through a server shutting down")
	}

	time.Sleep(300 * time.Millisecond)
	echoOnce(t, c, "during the shutdown") // the open stream goes on
	select {
	case <-s.done:
		t.Fatal("Serve returned with a forwarded connection still open")
	default:
	}
	_ = c.(interface{ CloseWrite() error }).CloseWrite()
	if rest, err := io.ReadAll(c); err != nil || len(rest) != 0 {
		t.Fatalf("the stream's clean end: %q, %v", rest, err)
	}
	start := time.Now()
	select {
	case <-s.done:
	case <-time.After(15 * time.Second): // idle TLS connections (the client's spares) get 5s
		t.Fatal("Serve did not return after the last stream ended")
	}
	t.Logf("Serve returned %s after the stream ended", time.Since(start).Round(time.Millisecond))
	waitLog(t, s.log, "action=envs.dial env=shop status=101")
}

// A stream that does not end by itself is ended when the grace runs out.
func TestShutdownEndsStreamsAfterGrace(t *testing.T) {
	f := newFixture(t, HandlerOptions{})
	port := int32(echo.Serve(t).Port)
	ns := f.userEnv(t, "alice", "shop", port)
	f.readyPod(t, ns, "shop", "web", "web-1", true)
	s := serveGraceful(t, f, 700*time.Millisecond)
	c, err := s.client(f.token(t, "alice")).Dial(context.Background(), "shop", "web", port)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	echoOnce(t, c, "hello")
	start := time.Now()
	s.stop()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = c.Read(make([]byte, 1))
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Fatalf("read after the grace: %v, want the connection ended", err)
	}
	if d := time.Since(start); d < 600*time.Millisecond {
		t.Errorf("the stream ended %s after the shutdown began, before the grace (700ms)", d)
	}
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after the grace")
	}
	waitLog(t, s.log, "shutdown grace over")
}
