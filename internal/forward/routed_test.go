package forward

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ergomake/ergomake/internal/testutil/echo"
)

type permanent struct{ msg string }

func (e permanent) Error() string   { return e.msg }
func (e permanent) Retryable() bool { return false }

// routedFixture binds one port of a routed forwarder and serves it.
func routedFixture(t *testing.T, route RouteFunc, opts Options) (addr string, f *Forwarder, stop func()) {
	t.Helper()
	f = NewRouted(route, opts)
	addr, stop = serveOnePort(t, f)
	return addr, f, stop
}

// serveOnePort binds one port of f and serves it until stop (or the test's end).
func serveOnePort(t *testing.T, f *Forwarder) (addr string, stop func()) {
	t.Helper()
	bs, err := f.Bind([]Port{{Service: "web", RemotePort: 8080, HostIP: "127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = f.Serve(ctx)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
	t.Cleanup(stop)
	return bs[0].Addrs[0], stop
}

func TestRoutedRoundTripHalfClose(t *testing.T) {
	echo := echo.Serve(t).String()
	var got atomic.Value
	route := func(ctx context.Context, p Port) (net.Conn, error) {
		got.Store(p)
		var d net.Dialer
		return d.DialContext(ctx, "tcp", echo)
	}
	addr, f, _ := routedFixture(t, route, Options{})
	payload := make([]byte, 3<<20)
	_, _ = rand.Read(payload)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go func() {
		_, _ = c.Write(payload)
		_ = c.(*net.TCPConn).CloseWrite() // half-close: the echo answers everything, then its EOF
	}()
	back, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading the echo: %v", err)
	}
	if !bytes.Equal(back, payload) {
		t.Fatalf("echoed %d bytes, want the %d sent", len(back), len(payload))
	}
	if p := got.Load().(Port); p.Service != "web" || p.RemotePort != 8080 {
		t.Errorf("route got %+v", p)
	}
	waitFor(t, func() bool { return f.Stats().Succeeded == 1 })
	st := f.Stats()
	if st.BytesToPod != int64(len(payload)) || st.BytesFromPod != int64(len(payload)) || st.Failed != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestRoutedRetriesUntilReady(t *testing.T) {
	echo := echo.Serve(t).String()
	var calls atomic.Int32
	route := func(ctx context.Context, p Port) (net.Conn, error) {
		if calls.Add(1) <= 2 {
			return nil, errors.New("no ready pod of web") // no Retryable method: retried
		}
		var d net.Dialer
		return d.DialContext(ctx, "tcp", echo)
	}
	var logs syncLines
	addr, _, _ := routedFixture(t, route, Options{Logf: logs.add, PodWaitTimeout: 10 * time.Second})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("read %q, %v", buf, err)
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("route called %d times, want 3", n)
	}
	if !strings.Contains(logs.String(), "retrying") {
		t.Errorf("logs %q do not tell about the retry", logs.String())
	}
}

func TestRoutedPermanentErrorEndsConnection(t *testing.T) {
	var calls atomic.Int32
	route := func(ctx context.Context, p Port) (net.Conn, error) {
		calls.Add(1)
		return nil, permanent{"port 8080 is not a port of service web"}
	}
	var logs syncLines
	addr, f, _ := routedFixture(t, route, Options{Logf: logs.add, PodWaitTimeout: 10 * time.Second})
	start := time.Now()
	c, err := net.Dial("tcp", addr)
	if err == nil { // the reset can come before the dial returns
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = c.Read(make([]byte, 1))
	}
	if err == nil || errors.Is(err, io.EOF) {
		t.Fatalf("read: %v, want a reset", err)
	}
	if time.Since(start) > 3*time.Second {
		t.Errorf("took %s: a permanent error is not retried", time.Since(start))
	}
	if calls.Load() != 1 {
		t.Errorf("route called %d times, want 1", calls.Load())
	}
	waitFor(t, func() bool { return f.Stats().Failed == 1 })
	if !strings.Contains(logs.String(), "not a port of service web") {
		t.Errorf("logs %q", logs.String())
	}
}

func TestRoutedGivesUpAfterPodWait(t *testing.T) {
	route := func(ctx context.Context, p Port) (net.Conn, error) {
		return nil, fmt.Errorf("no ready pod: %w", ErrNoReadyPod)
	}
	addr, f, _ := routedFixture(t, route, Options{PodWaitTimeout: 300 * time.Millisecond})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("read succeeded")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("gave up after %s, want about 300ms", d)
	}
	waitFor(t, func() bool { return f.Stats().Failed == 1 && f.Stats().Redials >= 1 })
}

// The relay's end of the data reaches the local side after everything it sent.
func TestRoutedRemoteEndPassedOn(t *testing.T) {
	remotes := make(chan net.Conn, 1)
	route := func(ctx context.Context, p Port) (net.Conn, error) {
		a, b := net.Pipe()
		remotes <- b
		return a, nil
	}
	addr, f, _ := routedFixture(t, route, Options{})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := <-remotes
	go func() {
		_, _ = r.Write([]byte("hello"))
		_ = r.Close()
	}()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf, err := io.ReadAll(c)
	if err != nil || string(buf) != "hello" {
		t.Fatalf("read %q, %v", buf, err)
	}
	if f.Stats().Active != 1 {
		t.Error("the connection ended before the local side's end (half-close)")
	}
	_ = c.Close()
	waitFor(t, func() bool { return f.Stats().Active == 0 })
}

func TestRoutedServeEndClosesConnections(t *testing.T) {
	echo := echo.Serve(t).String()
	route := func(ctx context.Context, p Port) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", echo)
	}
	addr, f, stop := routedFixture(t, route, Options{})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	stop() // returns only once every connection ended
	if a := f.Stats().Active; a != 0 {
		t.Errorf("%d connections still active after Serve returned", a)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("the local connection is still open")
	}
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Error("the listener is still open")
	}
}

func TestRoutedBindNeedsNoSelector(t *testing.T) {
	f := NewRouted(func(context.Context, Port) (net.Conn, error) { return nil, errors.New("unused") }, Options{})
	defer f.Close()
	bs, err := f.Bind([]Port{{Service: "web", RemotePort: 80, HostIP: "127.0.0.1"}, {Service: "dns", RemotePort: 53, Protocol: "UDP"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) != 2 || bs[0].LocalPort == 0 || bs[1].Note != NoteUDP {
		t.Fatalf("bindings %+v", bs)
	}
	if _, err := f.Bind([]Port{{Service: "web", RemotePort: 0}}); err == nil {
		t.Error("port 0 was accepted")
	}
}

type syncLines struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncLines) add(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(&s.b, format+"\n", args...)
}

func (s *syncLines) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A route that takes the first bytes sends them with its request; a try that took them and failed
// does not lose them: the next try gets them again, and a dial that took them is not followed by
// a second copy of them.
func TestRoutedFirstBytesTakenByRouteAndResentAfterFailure(t *testing.T) {
	echo := echo.Serve(t).String()
	var tries atomic.Int32
	route := func(ctx context.Context, p Port, first *First) (net.Conn, error) {
		select {
		case <-first.Ready():
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		b := first.Take()
		if string(b) != "hello" {
			return nil, permanent{fmt.Sprintf("first bytes %q, want hello", b)}
		}
		if tries.Add(1) == 1 {
			return nil, errors.New("server busy") // took them, failed: retried
		}
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", echo)
		if err != nil {
			return nil, err
		}
		if _, err := c.Write(b); err != nil { // sent with the "request"
			return nil, err
		}
		return c, nil
	}
	addr, _ := serveOnePort(t, NewRoutedFirst(route, Options{}))

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // the first read has its bytes before " world" comes
	if _, err := c.Write([]byte(" world")); err != nil {
		t.Fatal(err)
	}
	_ = c.(*net.TCPConn).CloseWrite()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	back, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if string(back) != "hello world" {
		t.Fatalf("echoed %q, want %q (each byte once, in order)", back, "hello world")
	}
	if n := tries.Load(); n != 2 {
		t.Errorf("%d tries, want 2", n)
	}
}

// A route that does not take the first bytes (they came after its answer) gets them carried
// after the dial, before the rest; a local side that ends before sending anything passes that
// end on.
func TestRoutedFirstBytesNotTaken(t *testing.T) {
	echo := echo.Serve(t).String()
	route := func(ctx context.Context, p Port, first *First) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "tcp", echo)
	}
	addr, _ := serveOnePort(t, NewRoutedFirst(route, Options{}))
	for _, payload := range []string{"abc", ""} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
		_, _ = c.Write([]byte(payload))
		_ = c.(*net.TCPConn).CloseWrite()
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		back, err := io.ReadAll(c)
		_ = c.Close()
		if err != nil || string(back) != payload {
			t.Fatalf("echoed %q (%v), want %q", back, err, payload)
		}
	}
}
