package registryrelay

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// listen returns a listener on a free loopback port, closed when the test ends.
func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// upstream serves each connection with handle until the test ends.
func upstream(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	ln := listen(t)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// startRelay runs a Relay to up on a free port and returns its address and a function that stops
// it and returns what Serve returned.
func startRelay(t *testing.T, r *Relay) (string, func() error) {
	t.Helper()
	ln := listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Serve(ctx, ln) }()
	var once sync.Once
	var err error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				err = fmt.Errorf("Serve did not return after cancel")
			}
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return ln.Addr().String(), stop
}

func dial(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	return c.(*net.TCPConn)
}

// The client half-closes after its request; the upstream answers only once it has read the whole
// request (EOF), then half-closes too: both half-closes must cross the relay.
func TestRelayHalfClose(t *testing.T) {
	up := upstream(t, func(c net.Conn) {
		b, err := io.ReadAll(c)
		if err != nil {
			return
		}
		fmt.Fprintf(c, "got %d bytes: %s", len(b), b)
	})
	addr, stop := startRelay(t, &Relay{Upstream: up})
	c := dial(t, addr)
	if _, err := io.WriteString(c, "GET /v2/"); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "got 8 bytes: GET /v2/" {
		t.Fatalf("answer %q", got)
	}
	c.Close()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// Megabytes both ways at once arrive intact (an image blob pushed while a manifest is read).
func TestRelayBothWaysIntact(t *testing.T) {
	const n = 4 << 20
	fromUp := make([]byte, n)
	if _, err := rand.Read(fromUp); err != nil {
		t.Fatal(err)
	}
	upGot := make(chan [32]byte, 1)
	up := upstream(t, func(c net.Conn) {
		go func() {
			c.Write(fromUp)
			c.(*net.TCPConn).CloseWrite()
		}()
		h := sha256.New()
		io.Copy(h, c)
		var sum [32]byte
		copy(sum[:], h.Sum(nil))
		upGot <- sum
	})
	addr, _ := startRelay(t, &Relay{Upstream: up})
	c := dial(t, addr)
	toUp := make([]byte, n)
	if _, err := rand.Read(toUp); err != nil {
		t.Fatal(err)
	}
	go func() {
		c.Write(toUp)
		c.CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, fromUp) {
		t.Fatalf("client received %d bytes, not what the upstream sent (%d)", len(got), n)
	}
	if sum := <-upGot; sum != sha256.Sum256(toUp) {
		t.Fatal("upstream received other bytes than the client sent")
	}
}

// Many connections at once are relayed independently.
func TestRelayConcurrent(t *testing.T) {
	up := upstream(t, func(c net.Conn) { io.Copy(c, c) })
	addr, _ := startRelay(t, &Relay{Upstream: up})
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(20 * time.Second))
			msg := strings.Repeat(fmt.Sprint(i), 1000)
			io.WriteString(c, msg)
			c.(*net.TCPConn).CloseWrite()
			b, err := io.ReadAll(c)
			if err != nil {
				errs <- err
			} else if string(b) != msg {
				errs <- fmt.Errorf("connection %d: echoed %d bytes, sent %d", i, len(b), len(msg))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// When the registry does not answer, the client's connection is closed at once and the failure
// is logged.
func TestRelayUpstreamDown(t *testing.T) {
	ln := listen(t)
	down := ln.Addr().String()
	ln.Close()
	var mu sync.Mutex
	var logged []string
	addr, _ := startRelay(t, &Relay{Upstream: down, Logf: func(f string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		logged = append(logged, fmt.Sprintf(f, a...))
	}})
	c := dial(t, addr)
	start := time.Now()
	b, err := io.ReadAll(c)
	if err != nil || len(b) != 0 {
		t.Fatalf("read %q, %v; want EOF", b, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("closed after %s", d)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(logged) != 1 || !strings.Contains(logged[0], down) || !strings.Contains(logged[0], "refused") {
		t.Errorf("logged %q", logged)
	}
}

// A dial that does not complete is given up after DialTimeout and the client's connection closed.
func TestRelayDialTimeout(t *testing.T) {
	var mu sync.Mutex
	var logged []string
	// 192.0.2.0/24 (TEST-NET-1) is never routed: the dial either hangs until the timeout or fails
	// at once with "unreachable"; both must close the client quickly.
	addr, _ := startRelay(t, &Relay{Upstream: "192.0.2.1:5000", DialTimeout: 300 * time.Millisecond, Logf: func(f string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		logged = append(logged, fmt.Sprintf(f, a...))
	}})
	c := dial(t, addr)
	start := time.Now()
	if b, err := io.ReadAll(c); err != nil || len(b) != 0 {
		t.Fatalf("read %q, %v; want EOF", b, err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("client closed after %s, dial timeout 300ms", d)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(logged) != 1 || !strings.Contains(logged[0], "192.0.2.1:5000") {
		t.Errorf("logged %q", logged)
	}
}

// An upstream that resets mid-stream ends the client's connection too (no relay goroutine left
// waiting on the other direction).
func TestRelayUpstreamReset(t *testing.T) {
	up := upstream(t, func(c net.Conn) {
		buf := make([]byte, 5)
		io.ReadFull(c, buf)
		c.Write([]byte("partial"))
		c.(*net.TCPConn).SetLinger(0) // close sends RST
	})
	addr, stop := startRelay(t, &Relay{Upstream: up})
	c := dial(t, addr)
	io.WriteString(c, "hello")
	// the client keeps its sending side open: only the reset can end the relay's copies
	got, _ := io.ReadAll(c)
	if !strings.HasPrefix("partial", string(got)) {
		t.Fatalf("read %q", got)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// Stopping the relay closes its listener, lets connections in flight finish and returns nil.
func TestServeStopsOnCancel(t *testing.T) {
	release := make(chan struct{})
	up := upstream(t, func(c net.Conn) {
		<-release
		io.WriteString(c, "late answer")
	})
	ln := listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- (&Relay{Upstream: up}).Serve(ctx, ln) }()
	c := dial(t, ln.Addr().String())
	io.WriteString(c, "x")
	time.Sleep(100 * time.Millisecond) // the relay has accepted and dialed
	cancel()
	select {
	case err := <-done:
		t.Fatalf("Serve returned %v with a connection in flight", err)
	case <-time.After(200 * time.Millisecond):
	}
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Error("the listener still accepts after cancel")
	}
	close(release)
	got, _ := io.ReadAll(c)
	if string(got) != "late answer" {
		t.Errorf("in-flight connection got %q", got)
	}
	c.Close() // ends the other direction: the connection is done
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
}

func TestServeNoUpstream(t *testing.T) {
	if err := (&Relay{}).Serve(context.Background(), listen(t)); err == nil || !strings.Contains(err.Error(), "no upstream") {
		t.Fatalf("err %v", err)
	}
}
