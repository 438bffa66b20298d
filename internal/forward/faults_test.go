package forward

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/spdystream/spdy"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/streaming/pkg/httpstream"
	spdystream "k8s.io/streaming/pkg/httpstream/spdy"
)

// holePair returns the two ends of a connection relayed through a proxy
// that hole makes a black hole: from then on it swallows everything both
// ways and closes nothing, as a proxy or an API server that went away
// without a word.
func holePair(t *testing.T) (client, server net.Conn, hole func()) {
	t.Helper()
	c, p1 := tcpPair(t)
	p2, s := tcpPair(t)
	var holed atomic.Bool
	relay := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 && !holed.Load() {
				if _, err := dst.Write(buf[:n]); err != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}
	go relay(p2, p1)
	go relay(p1, p2)
	return c, s, func() { holed.Store(true) }
}

// fwdRig runs Forwarder.forward for connections to one ready pod, with
// tunnels from dial.
type fwdRig struct {
	f  *Forwarder
	tr *tracker
	bp *boundPort

	mu   sync.Mutex
	logs []string
}

func newFwdRig(t *testing.T, dial func() tunnel) *fwdRig {
	r := &fwdRig{}
	r.f = &Forwarder{
		maxIdle: 4, podWait: 10 * time.Second, dialTimeout: 5 * time.Second,
		pools: map[types.UID]*pool{}, warmSem: make(chan struct{}, 4), quiet: repeats{window: time.Minute},
		dial: func(context.Context, string) (tunnel, error) { return dial(), nil },
	}
	r.f.logf = func(format string, args ...any) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.logs = append(r.logs, fmt.Sprintf(format, args...))
	}
	pods := []*corev1.Pod{mkPod("web-1")}
	r.tr = newTracker(sliceLister{func() []*corev1.Pod { return pods }})
	r.bp = &boundPort{port: Port{Service: "web", RemotePort: 8080}, local: 18080,
		sel: labels.SelectorFromSet(map[string]string{"ergomake.dev/service": "web"})}
	t.Cleanup(func() {
		r.f.mu.Lock()
		pools := r.f.pools
		r.f.closing = true
		r.f.mu.Unlock()
		for _, p := range pools {
			p.retire()
		}
		r.f.wg.Wait()
	})
	return r
}

func (r *fwdRig) log() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.logs, "\n")
}

// conn starts forwarding a new local connection; it returns the
// application's end and forward's result to come.
func (r *fwdRig) conn(t *testing.T) (*net.TCPConn, <-chan bool) {
	app, local := tcpPair(t)
	res := make(chan bool, 1)
	go func() { res <- r.f.forward(context.Background(), r.tr, r.bp, local) }()
	return app, res
}

// exchange sends msg, half-closes and wants it back in upper case.
func exchange(t *testing.T, app *net.TCPConn, msg string) {
	t.Helper()
	if _, err := app.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	_ = app.CloseWrite()
	_ = app.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(app)
	if err != nil || string(got) != strings.ToUpper(msg) {
		t.Fatalf("got %q, %v", got, err)
	}
}

// A pooled tunnel whose server went silent (a black hole: nothing closed)
// does not hold a new connection: its probe finds it half-open, and the
// connection goes to a fresh tunnel within the probe's deadline, with the
// default timing.
func TestForwardBlackHoledTunnel(t *testing.T) {
	var mu sync.Mutex
	var holes []func()
	r := newFwdRig(t, func() tunnel {
		c, s, hole := holePair(t)
		newKubelet(t, s, shout)
		mu.Lock()
		holes = append(holes, hole)
		mu.Unlock()
		return newFrameTunnel(c, nil)
	})
	app, res := r.conn(t)
	exchange(t, app, "first")
	if !wait(t, res) {
		t.Fatalf("first connection failed; log:\n%s", r.log())
	}
	mu.Lock()
	for _, h := range holes {
		h()
	}
	mu.Unlock()
	time.Sleep(defaultTiming.probeAfter + 100*time.Millisecond) // a silence after which a tunnel is probed

	start := time.Now()
	app, res = r.conn(t)
	exchange(t, app, "second")
	if !wait(t, res) {
		t.Fatalf("second connection failed; log:\n%s", r.log())
	}
	if took, most := time.Since(start), defaultTiming.probeTimeout+time.Second; took > most {
		t.Errorf("the connection took %s past a dead tunnel, want under %s", took, most)
	}
	if st := r.f.Stats(); st.HalfOpen != 1 || st.Dials != 2 {
		t.Errorf("half-open %d, dials %d; want 1 and 2", st.HalfOpen, st.Dials)
	}
}

// An idle tunnel pings its server and is closed when no reply comes within
// the deadline; one whose server answers stays.
func TestFrameTunnelIdlePingDeadline(t *testing.T) {
	var wg sync.WaitGroup
	defer wg.Wait()
	tm := timing{pingEvery: 50 * time.Millisecond, pingTimeout: time.Second, probeAfter: time.Hour, probeTimeout: time.Hour}
	c, s, hole := holePair(t)
	newKubelet(t, s, shout) // spdystream answers pings
	ft := newFrameTunnel(c, nil)
	ft.timing = tm
	gone := make(chan struct{})
	ft.start(&wg, func() { close(gone) })
	defer ft.kill()
	time.Sleep(1500 * time.Millisecond)
	if dead(ft) {
		t.Fatal("a tunnel whose server answers its pings was closed")
	}
	hole()
	select {
	case <-gone:
	case <-time.After(5 * time.Second):
		t.Fatal("a half-open idle tunnel was not closed")
	}
}

// A tunnel carrying a connection is not judged by its pings: its reader can
// rightly be held up by a slow local reader, and the server's replies with
// it.
func TestFrameTunnelBusyNotJudged(t *testing.T) {
	r := newRig(t)
	p, ft := newPeer(t)
	ft.timing = timing{pingEvery: 50 * time.Millisecond, pingTimeout: 50 * time.Millisecond, probeAfter: time.Hour, probeTimeout: time.Hour}
	ft.start(&r.f.wg, func() { r.p.forget(ft) })
	_, out := r.pipe(t, ft)
	p.accept()
	p.skipPings = false
	for range 5 { // pings come, unanswered
		if _, ok := p.read().(*spdy.PingFrame); !ok {
			t.Fatal("want a ping")
		}
	}
	if dead(ft) {
		t.Fatal("a busy tunnel was closed for unanswered pings")
	}
	p.data(p.errID, "", true)
	p.data(p.dataID, "", true)
	ft.kill()
	wait(t, out)
}

// At the cap of tunnels per pod, a new connection waits for a tunnel to
// free up (and reuses it) instead of dialling one more.
func TestForwardTunnelCap(t *testing.T) {
	hold := make(chan struct{})
	var held atomic.Bool
	r := newFwdRig(t, func() tunnel {
		c, s := tcpPair(t)
		newKubelet(t, s, func(data httpstream.Stream) string {
			if held.CompareAndSwap(false, true) {
				<-hold
			}
			return shout(data)
		})
		return newFrameTunnel(c, nil)
	})
	r.f.maxTunnels = 1
	first, res1 := r.conn(t)
	for !held.Load() {
		time.Sleep(time.Millisecond)
	}
	second, res2 := r.conn(t)
	time.Sleep(300 * time.Millisecond)
	if n := r.f.Stats().Dials; n != 1 {
		t.Fatalf("%d tunnels dialled to a pod capped at 1", n)
	}
	if !strings.Contains(r.log(), "1 tunnels open, the most per pod") {
		t.Errorf("the wait is not told:\n%s", r.log())
	}
	close(hold)
	exchange(t, first, "one")
	if !wait(t, res1) {
		t.Fatal("first connection failed")
	}
	exchange(t, second, "two")
	if !wait(t, res2) {
		t.Fatalf("second connection failed; log:\n%s", r.log())
	}
	if st := r.f.Stats(); st.Dials != 1 || st.Reused != 1 {
		t.Errorf("dials %d, reused %d; want 1 and 1", st.Dials, st.Reused)
	}
}

// The pod side ends the connection cleanly while the upload still holds
// data it could not send (here: the server's send window stays shut). The
// connection is not a clean one: the data never reached the pod.
func TestFrameTunnelCutUploadIsNoSuccess(t *testing.T) {
	r := newRig(t)
	p, ft := newPeer(t)
	ft.start(&r.f.wg, func() { r.p.forget(ft) })
	app, out := r.pipe(t, ft)
	p.syns()
	p.write(&spdy.SettingsFrame{FlagIdValues: []spdy.SettingsFlagIdValue{{Id: spdy.SettingsInitialWindowSize, Value: 1024}}})
	p.write(&spdy.SynReplyFrame{StreamId: p.errID, Headers: http.Header{}})
	p.write(&spdy.SynReplyFrame{StreamId: p.dataID, Headers: http.Header{}})
	if d, ok := p.read().(*spdy.DataFrame); !ok || d.StreamId != p.errID {
		t.Fatalf("want the error stream's FIN, got %#v", d)
	}
	if _, err := app.Write(bytes.Repeat([]byte("x"), 64<<10)); err != nil {
		t.Fatal(err)
	}
	got := 0
	for got < 1024 {
		d, ok := p.read().(*spdy.DataFrame)
		if !ok || d.StreamId != p.dataID {
			t.Fatalf("want data, got %#v", d)
		}
		got += len(d.Data)
	}
	if got != 1024 {
		t.Fatalf("%d bytes sent in a window of 1024", got)
	}
	_ = p.conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if f, err := p.fr.ReadFrame(); err == nil {
		t.Fatalf("sent past the window: %#v", f)
	}
	p.data(p.errID, "", true)
	p.data(p.dataID, "", true)
	if o := wait(t, out); o != failed {
		t.Fatalf("outcome %v, want failed", o)
	}
	if !strings.Contains(r.log(), "before it took all the data sent to it") {
		t.Errorf("not told:\n%s", r.log())
	}
}

// A SPDY tunnel (client-go's stream connection) that dies while its streams
// are being set up ends the set-up at once: client-go's own wait would
// hold it 30 s.
func TestStreamTunnelDiesDuringSetup(t *testing.T) {
	c, s := tcpPair(t)
	got, never := make(chan struct{}, 2), make(chan struct{})
	defer close(never)
	srv, err := spdystream.NewServerConnection(s, func(httpstream.Stream, <-chan struct{}) error {
		got <- struct{}{}
		<-never // no reply
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	conn, err := spdystream.NewClientConnection(c)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	st := newStreamTunnel(conn)
	st.start(&wg, func() {})
	res := make(chan error, 1)
	local, _ := tcpPair(t)
	go func() {
		_, err := st.open(context.Background(), local, 8080, &counters{})
		res <- err
	}()
	<-got
	start := time.Now()
	_ = s.Close() // the server side goes away mid set-up
	_ = c.Close()
	select {
	case err := <-res:
		if err == nil {
			t.Fatal("open succeeded on a dead tunnel")
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("set-up ended %s after the tunnel died", took)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the set-up outlived its tunnel")
	}
	wg.Wait()
}

// Large transfers both ways against a server that keeps SPDY/3.1 flow
// control with a small window: the upload never sends past the window the
// server opened (stream and session), and the download is paced by the
// WINDOW_UPDATEs the tunnel sends as it passes data on (the server never
// sends past them: without them it would stall).
func TestFrameTunnelFlowControl(t *testing.T) {
	const window, size, chunk = 16 << 10, 2 << 20, 8 << 10
	r := newRig(t)
	p, ft := newPeer(t)
	ft.start(&r.f.wg, func() { r.p.forget(ft) })
	app, out := r.pipe(t, ft)
	p.syns()
	p.write(&spdy.SettingsFrame{FlagIdValues: []spdy.SettingsFlagIdValue{{Id: spdy.SettingsInitialWindowSize, Value: window}}})
	p.write(&spdy.WindowUpdateFrame{StreamId: 0, DeltaWindowSize: 1}) // the server keeps the session window too
	p.write(&spdy.SynReplyFrame{StreamId: p.errID, Headers: http.Header{}})
	p.write(&spdy.SynReplyFrame{StreamId: p.dataID, Headers: http.Header{}})
	if d, ok := p.read().(*spdy.DataFrame); !ok || d.StreamId != p.errID {
		t.Fatalf("want the error stream's FIN, got %#v", d)
	}

	up := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	down := bytes.ToUpper(up)
	var wmu sync.Mutex
	write := func(f spdy.Frame) error {
		wmu.Lock()
		defer wmu.Unlock()
		return p.fr.WriteFrame(f)
	}

	// The server: reads what comes, checking the windows it gave and
	// widening them as it consumes; counts the tunnel's updates of the
	// download's window.
	granted := make(chan int, 1024)
	readDone := make(chan error, 1)
	var gotUp bytes.Buffer
	go func() {
		streamWin, sessWin := int64(window), int64(defaultWindow+1)
		for {
			_ = p.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			f, err := p.fr.ReadFrame()
			if err != nil {
				readDone <- err
				return
			}
			switch f := f.(type) {
			case *spdy.DataFrame:
				n := int64(len(f.Data))
				streamWin, sessWin = streamWin-n, sessWin-n
				if streamWin < 0 || sessWin < 0 {
					readDone <- fmt.Errorf("sent past the window: stream %d, session %d", streamWin, sessWin)
					return
				}
				gotUp.Write(f.Data)
				if n > 0 {
					streamWin, sessWin = streamWin+n, sessWin+n
					_ = write(&spdy.WindowUpdateFrame{StreamId: p.dataID, DeltaWindowSize: uint32(n)})
					_ = write(&spdy.WindowUpdateFrame{StreamId: 0, DeltaWindowSize: uint32(n)})
				}
				if f.Flags&spdy.DataFlagFin != 0 {
					readDone <- nil
					// go on reading window updates for the download
				}
			case *spdy.WindowUpdateFrame:
				if f.StreamId == p.dataID {
					granted <- int(f.DeltaWindowSize)
				}
			}
		}
	}()
	// The server's download: never past the window the tunnel gave.
	sendDone := make(chan error, 1)
	go func() {
		win := defaultWindow
		for off := 0; off < size; off += chunk {
			for win < chunk {
				select {
				case n := <-granted:
					win += n
				case <-time.After(10 * time.Second):
					sendDone <- fmt.Errorf("no window update after %d bytes sent", off)
					return
				}
			}
			win -= chunk
			if err := write(&spdy.DataFrame{StreamId: p.dataID, Data: down[off : off+chunk]}); err != nil {
				sendDone <- err
				return
			}
		}
		sendDone <- nil
	}()

	appDown := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(app)
		appDown <- b
	}()
	if _, err := app.Write(up); err != nil {
		t.Fatal(err)
	}
	_ = app.CloseWrite()
	if err := wait(t, readDone); err != nil {
		t.Fatalf("server reading the upload: %v", err)
	}
	if !bytes.Equal(gotUp.Bytes(), up) {
		t.Fatalf("the server got %d bytes, want %d", gotUp.Len(), len(up))
	}
	if err := wait(t, sendDone); err != nil {
		t.Fatalf("server sending the download: %v", err)
	}
	_ = write(&spdy.DataFrame{StreamId: p.errID, Flags: spdy.DataFlagFin})
	_ = write(&spdy.DataFrame{StreamId: p.dataID, Flags: spdy.DataFlagFin})
	if b := wait(t, appDown); !bytes.Equal(b, down) {
		t.Fatalf("the application got %d bytes, want %d", len(b), len(down))
	}
	if o := wait(t, out); o != done {
		t.Fatalf("outcome %v, want done", o)
	}
}
