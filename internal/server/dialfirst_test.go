package server

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ergomake/ergomake/internal/forward"
	"github.com/ergomake/ergomake/internal/testutil/echo"
)

// firstOf returns the first read of a local connection that sent b (ReadFirst's), once it is
// ready.
func firstOf(t *testing.T, b string) *forward.First {
	t.Helper()
	local, peer := net.Pipe()
	t.Cleanup(func() { _ = local.Close(); _ = peer.Close() })
	go func() { _, _ = peer.Write([]byte(b)) }()
	first := forward.ReadFirst(local)
	select {
	case <-first.Ready():
	case <-time.After(5 * time.Second):
		t.Fatal("the first read did not return")
	}
	return first
}

// The first bytes go with the dial request: the pod gets them without the caller writing them.
func TestDialFirstSendsBytesWithRequest(t *testing.T) {
	f := newFixture(t, HandlerOptions{PodWait: 300 * time.Millisecond})
	port := int32(echo.Serve(t).Port)
	ns := f.userEnv(t, "alice", "shop", port)
	f.readyPod(t, ns, "shop", "web", "web-1", true)
	alice := f.client(t, f.token(t, "alice"))
	for range 3 { // the first on a new connection, the next ones on spares
		c, err := alice.DialFirst(context.Background(), "shop", "web", port, firstOf(t, "ping"))
		if err != nil {
			t.Fatal(err)
		}
		_ = c.(interface{ CloseWrite() error }).CloseWrite()
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		back, err := io.ReadAll(c)
		_ = c.Close()
		if err != nil || string(back) != "ping" {
			t.Fatalf("echoed %q (%v), want the first bytes, ping", back, err)
		}
	}
}

// Bytes sent with a refused dial reach nobody: not the pod, and not the server as a request of
// their own (the answer closes the connection), even when they are one.
func TestDialFirstRefusedBytesAreNotARequest(t *testing.T) {
	f := newFixture(t, HandlerOptions{PodWait: 300 * time.Millisecond})
	port := int32(echo.Serve(t).Port)
	ns := f.userEnv(t, "alice", "shop", port)
	f.readyPod(t, ns, "shop", "web", "web-1", true)
	tok := f.token(t, "alice")
	alice := f.client(t, tok)
	smuggled := "DELETE /v1/envs/shop HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + tok + "\r\n\r\n"
	_, err := alice.DialFirst(context.Background(), "shop", "web", 22, firstOf(t, smuggled))
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusForbidden {
		t.Fatalf("DialFirst to an undeclared port = %v, want 403", err)
	}
	time.Sleep(200 * time.Millisecond)
	if log := f.audit.String(); strings.Contains(log, "envs.delete") {
		t.Fatalf("the bytes after a refused dial were served as a request:\n%s", log)
	}
}
