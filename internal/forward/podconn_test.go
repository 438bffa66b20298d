package forward

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/spdystream/spdy"
	"k8s.io/client-go/rest"
	"k8s.io/streaming/pkg/httpstream"
)

// dialPod dials port 8080 of pod web-1 through a PodDialer whose tunnels
// (of kind) reach a kubelet serving each connection with serve.
func dialPod(t *testing.T, kind string, serve func(httpstream.Stream) string) *PodConn {
	t.Helper()
	d := &PodDialer{namespace: "ns", dial: func(context.Context, string) (tunnel, error) {
		return tunnels[kind](t, serve), nil
	}}
	c, err := d.DialPod(context.Background(), "web-1", 8080)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c.(*PodConn)
}

// readAll reads c until it ends, within a bound.
func readAll(t *testing.T, c io.Reader) (string, error) {
	t.Helper()
	type res struct {
		b   []byte
		err error
	}
	got := make(chan res, 1)
	go func() { b, err := io.ReadAll(c); got <- res{b, err} }()
	r := wait(t, got)
	return string(r.b), r.err
}

// upperN is a pod side that reads n bytes and answers them in upper case.
func upperN(n int) func(httpstream.Stream) string {
	return func(data httpstream.Stream) string {
		b := make([]byte, n)
		if _, err := io.ReadFull(data, b); err != nil {
			return err.Error()
		}
		_, _ = data.Write(bytes.ToUpper(b))
		return ""
	}
}

// A PodConn carries bytes both ways and ends cleanly when the pod side does.
func TestPodConnClean(t *testing.T) {
	upper := upperN(5)
	for kind := range tunnels {
		t.Run(kind, func(t *testing.T) {
			c := dialPod(t, kind, upper)
			if _, err := c.Write([]byte("hello")); err != nil {
				t.Fatal(err)
			}
			if got, err := readAll(t, c); got != "HELLO" || err != nil {
				t.Fatalf("read %q, %v; want HELLO and a clean end", got, err)
			}
			wait(t, c.ended)
			if c.Sent() != 5 || c.Received() != 5 || c.RemoteAddr().String() != "pod/web-1:8080" {
				t.Errorf("sent %d, received %d, remote %s", c.Sent(), c.Received(), c.RemoteAddr())
			}
		})
	}
}

// The pod side's refusal (nothing listens on the port) reads as an error
// saying so, not as a clean end.
func TestPodConnRefused(t *testing.T) {
	for kind := range tunnels {
		t.Run(kind, func(t *testing.T) {
			c := dialPod(t, kind, refused)
			_, err := readAll(t, c)
			if err == nil || !strings.Contains(err.Error(), "forward: pod web-1 port 8080: connection refused: nothing listens on port 8080 inside the pod") {
				t.Fatalf("read: %v; want the refusal", err)
			}
		})
	}
}

// An error the pod side reports after the end of its data (the two
// streams arrive independently) still ends the connection in error.
func TestPodConnErrorAfterDataEnd(t *testing.T) {
	late := func(data httpstream.Stream) string {
		_, _ = data.Write([]byte("partial"))
		_ = data.Close()
		time.Sleep(300 * time.Millisecond)
		return "error forwarding port 8080 to pod web-1: read: connection reset by peer"
	}
	for kind := range tunnels {
		t.Run(kind, func(t *testing.T) {
			c := dialPod(t, kind, late)
			got, err := readAll(t, c)
			if got != "partial" || err == nil || !strings.Contains(err.Error(), "forward: pod web-1 port 8080: error forwarding port 8080 to pod web-1: read: connection reset by peer") {
				t.Fatalf("read %q, %v; want the data, then the pod side's error", got, err)
			}
		})
	}
}

// A tunnel that dies under a connection ends it with an error saying so.
func TestPodConnTunnelDies(t *testing.T) {
	for kind := range tunnels {
		t.Run(kind, func(t *testing.T) {
			hold := make(chan struct{})
			defer close(hold)
			c := dialPod(t, kind, func(httpstream.Stream) string { <-hold; return "" })
			c.t.kill()
			_, err := readAll(t, c)
			if !errors.Is(err, errTunnelClosed) || !strings.Contains(err.Error(), "forward: pod web-1 port 8080: ") {
				t.Fatalf("read: %v; want the tunnel's end", err)
			}
		})
	}
}

// New and NewPodDialer need a cluster configuration and a namespace.
func TestNewNeedsConfigAndNamespace(t *testing.T) {
	cfg := &rest.Config{Host: "https://127.0.0.1:1"}
	for _, c := range []struct {
		cfg  *rest.Config
		ns   string
		want string
	}{
		{nil, "ns", "forward: no cluster configuration"},
		{cfg, "", "forward: no namespace"},
		{cfg, "ns", ""},
		{&rest.Config{Host: "https://127.0.0.1:1", QPS: 1}, "ns", "forward: burst is required"}, // the client cannot be made
	} {
		_, ferr := New(c.cfg, c.ns, Options{})
		_, derr := NewPodDialer(c.cfg, c.ns)
		for what, err := range map[string]error{"New": ferr, "NewPodDialer": derr} {
			if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
				t.Errorf("%s(cfg %v, %q) = %v; want %q", what, c.cfg != nil, c.ns, err, c.want)
			}
		}
	}
}

// unansweredTunnel is a tunnel whose streams the server never accepts (as
// the API server sometimes leaves a fresh tunnel's): open waits for ctx.
type unansweredTunnel struct {
	tunnel
	killed chan struct{}
	once   sync.Once
}

func (u *unansweredTunnel) open(ctx context.Context, _ net.Conn, _ int32, _ *counters) (<-chan event, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func (u *unansweredTunnel) kill() {
	u.tunnel.kill()
	u.once.Do(func() { close(u.killed) })
}

// A tunnel whose streams go unanswered gets a second one beside it after
// hedgeAfter, long before its own openTimeout: the connection goes through
// the second, and the first is dropped.
func TestPodDialerHedgesUnansweredTunnel(t *testing.T) {
	upper := upperN(2)
	for kind := range tunnels {
		t.Run(kind, func(t *testing.T) {
			var dials atomic.Int32
			first := &unansweredTunnel{killed: make(chan struct{})}
			d := &PodDialer{namespace: "ns", open: 2 * time.Second, dial: func(context.Context, string) (tunnel, error) {
				tn := tunnels[kind](t, upper)
				if dials.Add(1) == 1 {
					first.tunnel = tn
					return first, nil
				}
				return tn, nil
			}}
			start := time.Now()
			c, err := d.DialPod(context.Background(), "web-1", 8080)
			took := time.Since(start)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if took >= d.openTimeout() || dials.Load() != 2 {
				t.Errorf("dialled in %s with %d tunnels; want the second tunnel, tried after %s, before the first's timeout %s", took, dials.Load(), d.hedgeAfter(), d.openTimeout())
			}
			if _, err := c.Write([]byte("hi")); err != nil {
				t.Fatal(err)
			}
			b := make([]byte, 2)
			if _, err := io.ReadFull(c, b); err != nil || string(b) != "HI" {
				t.Fatalf("read %q, %v", b, err)
			}
			wait(t, first.killed) // given up at its openTimeout
		})
	}
}

// When every tunnel's streams go unanswered, DialPod tries openAttempts
// tunnels and fails once ctx ends (the last waits as long as ctx allows).
func TestPodDialerAllUnanswered(t *testing.T) {
	var dials atomic.Int32
	d := &PodDialer{namespace: "ns", open: 90 * time.Millisecond, dial: func(context.Context, string) (tunnel, error) {
		dials.Add(1)
		return &unansweredTunnel{tunnel: tunnels["frame"](t, func(httpstream.Stream) string { return "" }), killed: make(chan struct{})}, nil
	}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := d.DialPod(ctx, "web-1", 8080); err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("DialPod: %v, want the deadline", err)
	}
	if n := dials.Load(); n != openAttempts {
		t.Errorf("%d tunnels tried, want %d", n, openAttempts)
	}
}

// A pod that speaks first (a gRPC server's SETTINGS, buildkitd's) may have
// its data reach the tunnel before the SYN_REPLY frames that accept the
// streams: containerd starts copying while the replies are still on their
// way. The reader holds that data instead of writing it into the PodConn's
// pipe, which nobody reads before DialPod returns, so the replies behind it
// are read, DialPod returns, and the data is the first thing read; a FIN
// that came as early ends the connection after it. (Seen on the local
// cluster: about one tunnel in four to the builder stalled until the
// hedge.)
func TestPodConnPodSpeaksBeforeReplies(t *testing.T) {
	for _, fin := range []bool{false, true} {
		p, ft := newPeer(t)
		d := &PodDialer{namespace: "ns", dial: func(context.Context, string) (tunnel, error) { return ft, nil },
			open: time.Hour} // no hedge: this tunnel has to be accepted
		go func() {
			p.syns()
			p.data(p.dataID, "SETTINGS", false)
			p.data(p.dataID, " frame", fin)
			p.write(&spdy.SynReplyFrame{StreamId: p.errID, Headers: http.Header{}})
			p.write(&spdy.SynReplyFrame{StreamId: p.dataID, Headers: http.Header{}})
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := d.DialPod(ctx, "buildkitd-1", 1234)
		cancel()
		if err != nil {
			t.Fatalf("fin %v: %v", fin, err)
		}
		buf := make([]byte, len("SETTINGS frame"))
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "SETTINGS frame" {
			t.Fatalf("fin %v: read %q, %v", fin, buf, err)
		}
		if fin {
			p.data(p.errID, "", true)
			if n, err := c.Read(buf); n != 0 || err != io.EOF {
				t.Errorf("after the early FIN: read %d, %v; want EOF", n, err)
			}
		}
		_ = c.Close()
	}
}
