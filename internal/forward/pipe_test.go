package forward

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/streaming/pkg/httpstream"
	"k8s.io/streaming/pkg/httpstream/spdy"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (a, b *net.TCPConn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		acc <- c
	}()
	d, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-acc
	if s == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { _ = d.Close(); _ = s.Close() })
	return d.(*net.TCPConn), s.(*net.TCPConn)
}

// rig runs pipe as the forwarder does, with a pool that keeps reusable
// tunnels and a log that is kept.
type rig struct {
	f   *Forwarder
	p   *pool
	bp  *boundPort
	pod *corev1.Pod

	mu   sync.Mutex
	logs []string
}

func newRig(t *testing.T) *rig {
	r := &rig{
		bp:  &boundPort{port: Port{Service: "web", RemotePort: 8080}, local: 18080},
		pod: &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-1", UID: "uid-1"}},
	}
	r.f = &Forwarder{prewarm: 0, maxIdle: 2, quiet: repeats{window: time.Minute}}
	r.f.logf = func(format string, args ...any) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.logs = append(r.logs, fmt.Sprintf(format, args...))
	}
	r.p = newPool(r.f, r.pod.Name, r.pod.UID)
	r.p.warm = true
	t.Cleanup(func() {
		r.p.retire()
		r.f.wg.Wait()
	})
	return r
}

// pipe carries a new local connection over tun; it returns the
// application's end and pipe's outcome to come.
func (r *rig) pipe(t *testing.T, tun tunnel) (*net.TCPConn, <-chan outcome) {
	t.Helper()
	app, local := tcpPair(t)
	if !r.p.adopt(tun, false) {
		t.Fatal("pool retired")
	}
	out := make(chan outcome, 1)
	go func() { out <- r.f.pipe(context.Background(), r.p, r.bp, r.pod, local, tun) }()
	return app, out
}

func (r *rig) log() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.logs, "\n")
}

func (r *rig) idle() int {
	r.p.mu.Lock()
	defer r.p.mu.Unlock()
	return len(r.p.idle)
}

func wait[T any](t *testing.T, c <-chan T) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("timed out")
		panic("unreachable")
	}
}

// kubelet is a port-forward server on a spdystream connection, as the
// kubelet and the API server run it: it pairs an error and a data stream by
// request ID and hands the data stream to serve, whose returned message (an
// error: nothing listens on the port) goes on the error stream. Then it
// closes the data stream and the error stream.
type kubelet struct {
	conn  httpstream.Connection
	ports chan string // the port header of each pair served
}

func newKubelet(t *testing.T, nc net.Conn, serve func(data httpstream.Stream) string) *kubelet {
	t.Helper()
	type got struct {
		s     httpstream.Stream
		reply <-chan struct{}
	}
	streams := make(chan got, 16)
	conn, err := spdy.NewServerConnection(nc, func(s httpstream.Stream, reply <-chan struct{}) error {
		streams <- got{s, reply}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	k := &kubelet{conn: conn, ports: make(chan string, 16)}
	go func() {
		pairs := map[string][]got{}
		for {
			var g got
			select {
			case g = <-streams:
			case <-conn.CloseChan():
				return
			}
			id := g.s.Headers().Get(corev1.PortForwardRequestIDHeader)
			pairs[id] = append(pairs[id], g)
			if len(pairs[id]) < 2 {
				continue
			}
			pair := pairs[id]
			delete(pairs, id)
			var errS, data got
			for _, p := range pair {
				if p.s.Headers().Get(corev1.StreamType) == corev1.StreamTypeError {
					errS = p
				} else {
					data = p
				}
			}
			k.ports <- data.s.Headers().Get(corev1.PortHeader)
			go func() {
				<-errS.reply
				<-data.reply
				msg := serve(data.s)
				if msg != "" {
					_, _ = errS.s.Write([]byte(msg))
				}
				_ = errS.s.Close()
				_ = data.s.Close()
			}()
		}
	}()
	t.Cleanup(func() { _ = conn.Close() })
	return k
}

// shout is a pod's service: it reads what comes until EOF, then answers it
// in upper case.
func shout(data httpstream.Stream) string {
	b, err := io.ReadAll(data)
	if err != nil {
		return err.Error()
	}
	_, _ = data.Write(bytes.ToUpper(b))
	return ""
}

func refused(data httpstream.Stream) string {
	return "error forwarding port 8080 to pod web-1: failed to connect to localhost:8080 inside namespace: dial tcp4 127.0.0.1:8080: connect: connection refused"
}

// tunnels are the two kinds of tunnel, dialled to a kubelet.
var tunnels = map[string]func(t *testing.T, serve func(httpstream.Stream) string) tunnel{
	"frame": func(t *testing.T, serve func(httpstream.Stream) string) tunnel {
		c, s := tcpPair(t)
		newKubelet(t, s, serve)
		return newFrameTunnel(c, nil)
	},
	"stream": func(t *testing.T, serve func(httpstream.Stream) string) tunnel {
		c, s := tcpPair(t)
		newKubelet(t, s, serve)
		conn, err := spdy.NewClientConnection(c)
		if err != nil {
			t.Fatal(err)
		}
		return newStreamTunnel(conn)
	},
}

// A connection is carried both ways with half-closes, ends cleanly, and its
// tunnel carries the next one.
func TestPipeCleanAndReused(t *testing.T) {
	for kind, dial := range tunnels {
		t.Run(kind, func(t *testing.T) {
			r := newRig(t)
			tun := dial(t, shout)
			tun.start(&r.f.wg, func() { r.p.forget(tun) })
			for i, msg := range []string{"hello", strings.Repeat("x", 3<<20)} { // the second moves to the large buffer
				app, out := r.pipe(t, tun)
				if _, err := app.Write([]byte(msg)); err != nil {
					t.Fatal(err)
				}
				_ = app.CloseWrite()
				got, err := io.ReadAll(app)
				if err != nil {
					t.Fatalf("connection %d: %v", i, err)
				}
				if string(got) != strings.ToUpper(msg) {
					t.Fatalf("connection %d: got %d bytes, want %d", i, len(got), len(msg))
				}
				if o := wait(t, out); o != done {
					t.Fatalf("connection %d: outcome %v, want done; log:\n%s", i, o, r.log())
				}
				if r.idle() != 1 || dead(tun) {
					t.Fatalf("connection %d: tunnel not kept for reuse (idle %d, dead %v)", i, r.idle(), dead(tun))
				}
				r.p.get()
			}
			st := &r.f.stats
			if want := int64(5 + 3<<20); st.toPod.Load() != want || st.fromPod.Load() != want {
				t.Errorf("counted %d bytes to the pod, %d from it; want %d each", st.toPod.Load(), st.fromPod.Load(), want)
			}
		})
	}
}

// An error from the pod side resets the local connection, is logged, and
// the tunnel is not reused.
func TestPipePodError(t *testing.T) {
	for kind, dial := range tunnels {
		t.Run(kind, func(t *testing.T) {
			r := newRig(t)
			tun := dial(t, refused)
			tun.start(&r.f.wg, func() { r.p.forget(tun) })
			app, out := r.pipe(t, tun)
			if o := wait(t, out); o != failed {
				t.Fatalf("outcome %v, want failed", o)
			}
			if _, err := io.ReadAll(app); !isReset(err) {
				t.Errorf("local connection: %v, want a reset", err)
			}
			if want := "localhost:18080 → pod web-1 port 8080: connection refused: nothing listens on port 8080 inside the pod"; !strings.Contains(r.log(), want) {
				t.Errorf("log lacks %q:\n%s", want, r.log())
			}
			if r.idle() != 0 {
				t.Error("tunnel kept for reuse")
			}
			wait(t, tun.done())
		})
	}
}

// When the tunnel dies under a connection, the connection is reset.
func TestPipeTunnelDies(t *testing.T) {
	for kind, dial := range tunnels {
		t.Run(kind, func(t *testing.T) {
			r := newRig(t)
			hold, carried := make(chan struct{}), make(chan struct{})
			tun := dial(t, func(data httpstream.Stream) string {
				if _, err := io.ReadFull(data, make([]byte, 5)); err == nil {
					close(carried)
				}
				<-hold
				return ""
			})
			defer close(hold)
			tun.start(&r.f.wg, func() { r.p.forget(tun) })
			app, out := r.pipe(t, tun)
			if _, err := app.Write([]byte("hello")); err != nil {
				t.Fatal(err)
			}
			wait(t, carried) // the connection is carried: its streams are up
			tun.kill()
			if o := wait(t, out); o != failed {
				t.Fatalf("outcome %v, want failed", o)
			}
			if _, err := io.ReadAll(app); !isReset(err) {
				t.Errorf("local connection: %v, want a reset", err)
			}
		})
	}
}

func isReset(err error) bool {
	return err != nil && (errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "reset"))
}

// The rules of pipe, event by event.
func TestConnState(t *testing.T) {
	boom := errors.New("boom")
	for _, c := range []struct {
		name      string
		events    []event
		over      bool
		abort     bool
		podErr    string
		settledAt int // events taken when settled; -1: never
	}{
		{"pod ends first", []event{{kind: podEnd}}, false, false, "", -1},
		{"pod then error stream", []event{{kind: podEnd}, {kind: errEnd}}, true, false, "", -1},
		{"pod then local", []event{{kind: podEnd}, {kind: localEnd}}, true, false, "", -1},
		{"all three", []event{{kind: localEnd}, {kind: errEnd}, {kind: podEnd}}, true, false, "", 3},
		{"local closed by this side is no failure", []event{{kind: localEnd, err: fmt.Errorf("read: %w", net.ErrClosed)}}, false, false, "", -1},
		{"local failed", []event{{kind: localEnd, err: boom}}, true, true, "", -1},
		{"pod copy failed", []event{{kind: podEnd, err: boom}}, true, true, "", -1},
		{"error stream says something", []event{{kind: errEnd, msg: []byte(" refused \n")}}, true, true, "refused", -1},
		{"error stream unreadable", []event{{kind: errEnd, err: boom}}, true, true, "", -1},
		{"reset", []event{{kind: broken}}, true, true, "", -1},
	} {
		var s connState
		settled := -1
		for i, ev := range c.events {
			s.during(ev)
			if settled < 0 && s.settled() {
				settled = i + 1
			}
		}
		if s.over() != c.over || s.abort != c.abort || s.podErr != c.podErr || settled != c.settledAt {
			t.Errorf("%s: over %v abort %v podErr %q settled at %d; want %v %v %q %d",
				c.name, s.over(), s.abort, s.podErr, settled, c.over, c.abort, c.podErr, c.settledAt)
		}
	}

	// Once over: a late error message is logged once and spoils the tunnel.
	s := connState{fromDone: true, toDone: true}
	if logged, spoiled := s.after(event{kind: broken}); logged != "" || spoiled {
		t.Errorf("a late reset: logged %q, spoiled %v", logged, spoiled)
	}
	if logged, spoiled := s.after(event{kind: errEnd, msg: []byte("late\n")}); logged != "late" || !spoiled || !s.settled() {
		t.Errorf("a late error: logged %q, spoiled %v, settled %v", logged, spoiled, s.settled())
	}
	s = connState{fromDone: true, errDone: true, podErr: "first"}
	if logged, _ := s.after(event{kind: errEnd, msg: []byte("second")}); logged != "" || s.podErr != "first" {
		t.Errorf("a second error was logged: %q", logged)
	}
	// The upload's end: stopped by this side's closing of local, clean; cut
	// (data read from local not passed on), not.
	s = connState{fromDone: true, errDone: true}
	if _, spoiled := s.after(event{kind: localEnd, err: fmt.Errorf("read: %w", net.ErrClosed)}); spoiled || s.cut || !s.settled() {
		t.Errorf("the upload stopped: spoiled %v, cut %v, settled %v", spoiled, s.cut, s.settled())
	}
	s = connState{fromDone: true, errDone: true}
	if _, spoiled := s.after(event{kind: localEnd, err: writeError{fmt.Errorf("write: %w", net.ErrClosed)}}); !spoiled || !s.cut || !s.settled() {
		t.Errorf("the upload cut: spoiled %v, cut %v, settled %v", spoiled, s.cut, s.settled())
	}
}

// The server closes the error stream before the data stream, but the two
// reach the forwarder independently (spdystream hands each stream's frames
// to its own reader; a loaded machine can hold one back). An error that
// arrives after the data's end still turns the connection into a reset,
// whether the local side had half-closed or not: a refused or cut
// connection never looks like a clean one.
func TestPipeErrorAfterDataEnd(t *testing.T) {
	late := func(data httpstream.Stream) string {
		_, _ = data.Write([]byte("partial"))
		_ = data.Close() // the data's FIN first ...
		time.Sleep(600 * time.Millisecond)
		return "error forwarding port 8080 to pod web-1: read: connection reset by peer" // ... then the error
	}
	for kind, dial := range tunnels {
		for _, halfClose := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/half-close=%v", kind, halfClose), func(t *testing.T) {
				r := newRig(t)
				tun := dial(t, late)
				tun.start(&r.f.wg, func() { r.p.forget(tun) })
				app, out := r.pipe(t, tun)
				if halfClose {
					_ = app.CloseWrite()
				}
				got, err := io.ReadAll(app)
				if !isReset(err) {
					t.Errorf("local connection: read %q, %v; want a reset", got, err)
				}
				if o := wait(t, out); o != failed {
					t.Errorf("outcome %v, want failed", o)
				}
				if !strings.Contains(r.log(), "connection reset by peer") {
					t.Errorf("the error is not logged:\n%s", r.log())
				}
			})
		}
	}
}
