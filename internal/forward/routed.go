package forward

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// RouteFunc opens one connection to a port of the service p names, on the
// far side of a relay that picks the pod itself (the ergomake server's
// `GET /v1/envs/{name}/dial`). The returned connection carries raw bytes
// both ways; ctx bounds the dial only.
//
// An error is retried within Options.PodWaitTimeout unless it says it is not
// worth it: an error with a `Retryable() bool` method answering false (the
// server refused the dial: unknown service, port not declared, bad token).
// No ready pod yet, a server that is busy or restarting are retried.
type RouteFunc func(ctx context.Context, p Port) (net.Conn, error)

// FirstRouteFunc is a RouteFunc that may send the local connection's first
// bytes with its request, before the far side answered: for protocols where
// the client speaks first (HTTP, TLS, most databases) a new connection then
// costs one round trip to the relay less. It may take them (First.Take) only
// once first is Ready, and must then have sent them, before any other byte
// of the connection, on the connection it returns; a failed dial's bytes are
// sent again by the next try.
type FirstRouteFunc func(ctx context.Context, p Port, first *First) (net.Conn, error)

// First is the first read of a local connection, started when the
// connection is accepted and running while a routed dial waits for its
// answer.
type First struct {
	ready chan struct{} // closed once the read returned
	b     []byte
	err   error

	mu   sync.Mutex
	took bool // by the current dial
}

// firstMax bounds the first read: a route sends it with its request.
const firstMax = 16 << 10

// ReadFirst starts the first read of local (up to 16 KiB).
func ReadFirst(local net.Conn) *First {
	f := &First{ready: make(chan struct{})}
	go func() {
		b := make([]byte, firstMax)
		n, err := local.Read(b)
		f.b, f.err = b[:n], err
		close(f.ready)
	}()
	return f
}

// Ready is closed once the first read returned.
func (f *First) Ready() <-chan struct{} { return f.ready }

// Take returns the first bytes once Ready (nil before, or when the read
// gave none) and notes that the current dial sends them.
func (f *First) Take() []byte {
	select {
	case <-f.ready:
	default:
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.b) == 0 {
		return nil
	}
	f.took = true
	return f.b
}

// newTry starts a dial: it has sent nothing yet.
func (f *First) newTry() {
	f.mu.Lock()
	f.took = false
	f.mu.Unlock()
}

// sentByDial says whether the current dial took the bytes.
func (f *First) sentByDial() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.took
}

// NewRouted returns a Forwarder whose connections go through route instead
// of pods/portforward: the same listeners, Bind, Serve, Close and Stats;
// each local connection calls route and its bytes are piped both ways, each
// side's end passed on as a half-close. Pods are not watched here (the relay
// does it, and ends the connections of a pod that went away), so Port
// Selector is optional.
func NewRouted(route RouteFunc, opts Options) *Forwarder {
	return NewRoutedFirst(func(ctx context.Context, p Port, _ *First) (net.Conn, error) { return route(ctx, p) }, opts)
}

// NewRoutedFirst is NewRouted with a route that may carry the local
// connection's first bytes with its request.
func NewRoutedFirst(route FirstRouteFunc, opts Options) *Forwarder {
	f := &Forwarder{
		logf:    opts.Logf,
		listen:  net.Listen,
		podWait: opts.PodWaitTimeout,
		route:   route,
		quiet:   repeats{window: 5 * time.Second},
	}
	if f.logf == nil {
		f.logf = func(string, ...any) {}
	}
	if f.podWait <= 0 {
		f.podWait = 30 * time.Second
	}
	return f
}

// retryable says whether a failed route dial is worth another try.
func retryable(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false
	}
	var r interface{ Retryable() bool }
	if errors.As(err, &r) {
		return r.Retryable()
	}
	return true
}

// serveRouted is Serve for a routed Forwarder: the accept loops only.
func (f *Forwarder) serveRouted(ctx context.Context, ports []*boundPort) {
	f.acceptUntilDone(ctx, nil, ports)
	f.wg.Wait()
}

// forwardRouted carries one local connection over a connection route
// opens. It returns whether the connection ended cleanly. local is closed
// on return.
func (f *Forwarder) forwardRouted(ctx context.Context, bp *boundPort, local net.Conn) bool {
	deadline := time.Now().Add(f.podWait)
	bo := newBackoff(50*time.Millisecond, time.Second, time.Minute)
	var remote net.Conn
	first := ReadFirst(local)
	for {
		dctx, cancel := context.WithDeadline(ctx, deadline)
		first.newTry()
		c, err := f.route(dctx, bp.port, first)
		cancel()
		f.stats.dials.Add(1)
		if err == nil {
			remote = c
			break
		}
		f.stats.dialFailures.Add(1)
		if !f.redial(ctx, bo, deadline, local, fmt.Sprintf("%s: port %d", bp.port.Service, bp.port.RemotePort), err) {
			return false
		}
	}
	return pipeConns(ctx, local, remote, first, &f.stats)
}

// copyAfterFirst is copyBuf from local to remote after local's first read:
// its bytes, unless the dial sent them, and its end.
func copyAfterFirst(remote, local net.Conn, first *First, count *atomic.Int64) error {
	<-first.ready
	if len(first.b) > 0 {
		if !first.sentByDial() {
			if _, err := remote.Write(first.b); err != nil {
				return writeError{err}
			}
		}
		count.Add(int64(len(first.b)))
	}
	switch {
	case first.err == io.EOF:
		return nil
	case first.err != nil:
		return first.err
	}
	return copyBuf(remote, local, count)
}

// logRepeat logs a line, at most once per window for the same text.
func (f *Forwarder) logRepeat(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	if n, ok := f.quiet.allow(line, time.Now()); ok {
		if n > 0 {
			line += fmt.Sprintf(" (and %d more like it)", n)
		}
		f.logf("%s", line)
	}
}

// pipeConns copies bytes between local and remote until both directions
// ended: each side's EOF is passed on as a half-close of the other; a failed
// copy, a reset or ctx's end closes both at once (local with a reset). It
// returns whether both directions ended cleanly. Both are closed on return.
//
// first is local's first read (ReadFirst): what of it the dial did not send
// goes first, then the rest of local.
func pipeConns(ctx context.Context, local, remote net.Conn, first *First, st *counters) bool {
	type end struct {
		up  bool
		err error
	}
	ends := make(chan end, 2)
	go func() { ends <- end{true, copyAfterFirst(remote, local, first, &st.toPod)} }()
	go func() { ends <- end{false, copyBuf(local, remote, &st.fromPod)} }()

	var once sync.Once
	abort := func() {
		once.Do(func() {
			reset(local)
			_ = remote.Close()
		})
	}
	stop := context.AfterFunc(ctx, abort)
	defer stop()
	clean := true
	for range 2 {
		e := <-ends
		switch {
		case e.err != nil:
			clean = false
			abort()
		case e.up:
			closeWrite(remote)
		default:
			closeWrite(local)
		}
	}
	if ctx.Err() != nil {
		clean = false
	}
	once.Do(func() {
		_ = local.Close()
		_ = remote.Close()
	})
	return clean
}
