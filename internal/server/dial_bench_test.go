package server

import (
	"context"
	"io"
	"testing"
	"time"
)

// BenchmarkDial is one new connection through the server (fake cluster, a local echo as the pod):
// dial, one byte each way, close.
func BenchmarkDial(b *testing.B) {
	t := &testing.T{}
	f := newFixture(t, HandlerOptions{PodWait: time.Second})
	port := echoListener(t)
	ns := f.userEnv(t, "alice", "shop", port)
	f.readyPod(t, ns, "shop", "web", "web-1", true)
	c := f.client(t, f.token(t, "alice"))
	ctx := context.Background()
	buf := make([]byte, 1)
	b.ResetTimer()
	for range b.N {
		conn, err := c.Dial(ctx, "shop", "web", port)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := conn.Write(buf); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(conn, buf); err != nil {
			b.Fatal(err)
		}
		_ = conn.Close()
	}
}
