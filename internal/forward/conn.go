package forward

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Copy buffers: every connection starts with a small one; a connection that
// fills it (a bulk transfer) moves to a large one, so that an upload becomes
// few large SPDY frames (on a stream tunnel each frame costs three writes
// down the tunnel: spdystream's framer writes its 8-byte header in two) and
// idle connections hold little.
const (
	smallBuf = 32 << 10
	largeBuf = 256 << 10
)

var (
	smallPool = sync.Pool{New: func() any { b := make([]byte, smallBuf); return &b }}
	largePool = sync.Pool{New: func() any { b := make([]byte, largeBuf); return &b }}
)

// How long a finished connection waits for the pod side's closing word
// (the error stream) before its tunnel is given up rather than reused.
const settleTimeout = 2 * time.Second

// How long a clean end of the pod's data waits for the error stream before
// it is passed on. The server closes the error stream first, so its end is
// normally there at once; but the two streams reach the forwarder
// independently, and on a loaded machine the error stream's can come well
// after: passing the data's end on before it would show a refused or cut
// connection to the local side as a clean one. The bound is for a server
// that never ends its error stream.
const errGrace = settleTimeout

type outcome int

const (
	done     outcome = iota // forwarded, ended cleanly
	failed                  // forwarded or not, ended in error
	retrySet                // the tunnel could not carry the connection; nothing was sent: try another
)

func (f *Forwarder) handle(ctx context.Context, tr *tracker, bp *boundPort, local net.Conn) {
	defer f.wg.Done()
	f.stats.accepted.Add(1)
	f.stats.active.Add(1)
	defer f.stats.active.Add(-1)
	var ok bool
	if f.route != nil {
		ok = f.forwardRouted(ctx, bp, local)
	} else {
		ok = f.forward(ctx, tr, bp, local)
	}
	if ok {
		f.stats.succeeded.Add(1)
	} else {
		f.stats.failed.Add(1)
	}
}

// forward carries one local connection to the current pod. It returns
// whether the connection ended cleanly. local is closed on return.
func (f *Forwarder) forward(ctx context.Context, tr *tracker, bp *boundPort, local net.Conn) bool {
	deadline := time.Now().Add(f.podWait)
	bo := newBackoff(50*time.Millisecond, 2*time.Second, time.Minute)
	for {
		pod := tr.wait(ctx, bp.sel, time.Until(deadline))
		if pod == nil {
			if ctx.Err() == nil {
				f.logf("forward: %s: no ready pod after %s; closing the connection from %s",
					bp.port.Service, f.podWait, local.RemoteAddr())
			}
			reset(local)
			return false
		}
		p := f.poolFor(ctx, pod.Name, pod.UID)
		if p == nil { // shutting down
			reset(local)
			return false
		}
		t, dial, err := p.take(ctx, deadline)
		switch {
		case t != nil:
			f.stats.reused.Add(1)
		case errors.Is(err, errRetired):
			continue // the pod went away meanwhile: pick again
		case err != nil:
			if ctx.Err() == nil {
				f.logf("forward: %s: pod %s: %v; closing the connection from %s",
					bp.port.Service, pod.Name, err, local.RemoteAddr())
			}
			reset(local)
			return false
		case dial:
			t, err = p.dial(ctx)
			if err != nil {
				p.unreserve()
				if !f.redial(ctx, bo, deadline, local, bp.port.Service+": pod "+pod.Name, err) {
					return false
				}
				continue
			}
			if !p.adopt(t, true) {
				t.kill()
				continue // the pod went away meanwhile: pick again
			}
		}
		switch f.pipe(ctx, p, bp, pod, local, t) {
		case done:
			return true
		case failed:
			return false
		case retrySet:
			f.stats.redials.Add(1)
			if time.Now().After(deadline) {
				reset(local)
				return false
			}
		}
	}
}

// redial decides what follows a failed dial (err) for the connection from
// local, bounded by deadline: unless ctx ended, err is not worth another try
// (retryable) or the next delay of bo would pass the deadline, it counts a
// redial, logs that it retries, waits the delay out and answers true.
// Otherwise it resets local and answers false, having logged why (but for
// ctx's end). what names the far side in the log lines ("web: pod web-1").
func (f *Forwarder) redial(ctx context.Context, bo *backoff, deadline time.Time, local net.Conn, what string, err error) bool {
	if ctx.Err() == nil {
		d := bo.next()
		if !retryable(err) || time.Now().Add(d).After(deadline) {
			f.logRepeat("forward: %s: %v; closing the connection from %s", what, err, local.RemoteAddr())
		} else {
			f.stats.redials.Add(1)
			f.logRepeat("forward: %s: %v (retrying in %s)", what, err, d.Round(time.Millisecond))
			if sleepCtx(ctx, nil, d) {
				return true
			}
		}
	}
	reset(local)
	return false
}

// pipe carries local over a pair of fresh streams of tunnel t, and gives t
// back to its pool p (for reuse when everything ended cleanly).
//
// The rules: bytes are copied both ways; the pod side's end of the data is
// passed on as a half-close of local, and so is local's (the pod sees EOF);
// the connection is over when the pod's data has ended and so has local's
// or the error stream. Anything on the error stream (connection refused in
// the pod), a reset stream, a failed copy or a dead tunnel ends local with a
// reset and closes the tunnel. A clean end waits up to settleTimeout for the
// pod side's closing word before the tunnel is reused.
func (f *Forwarder) pipe(ctx context.Context, p *pool, bp *boundPort, pod *corev1.Pod, local net.Conn, t tunnel) outcome {
	asked := time.Now()
	events, err := t.open(ctx, local, bp.port.RemotePort, &f.stats)
	if err != nil {
		p.put(t, false)
		if errors.Is(err, errHalfOpen) {
			f.stats.halfOpen.Add(1)
			p.dropQuiet(asked)
		}
		if ctx.Err() != nil {
			reset(local)
			return failed
		}
		return retrySet
	}

	var s connState
	closed := t.done()
	for !s.over() {
		select {
		case ev := <-events:
			s.during(ev)
			if ev.kind != podEnd || s.abort {
				break
			}
			// The server closes the error stream before the data stream,
			// but the two are delivered independently: wait for the error
			// stream, so that an error (connection refused in the pod, a
			// cut upload) turns this end into a reset rather than a clean
			// one.
			s.awaitErrEnd(events, closed, ctx.Done(), nil)
			if !s.abort {
				closeWrite(local)
			}
		case <-closed:
			s.abort = true
		case <-ctx.Done():
			s.abort = true
		}
	}

	if s.podErr != "" {
		f.logPodErr(bp, pod, s.podErr)
	}
	reusable := !s.abort
	if s.abort {
		reset(local)
		t.kill()
	} else {
		_ = local.Close()
	}
	// Every end of this connection arrives before pipe returns. The clean
	// path gives the pod side a moment to finish; past it the tunnel is
	// closed, which ends the rest at once.
	timer := time.NewTimer(settleTimeout)
	defer timer.Stop()
	for !s.settled() {
		select {
		case ev := <-events:
			logged, spoiled := s.after(ev)
			if logged != "" {
				f.logPodErr(bp, pod, logged)
			}
			reusable = reusable && !spoiled
		case <-closed:
			reusable = false
			closed = nil
		case <-timer.C:
			reusable = false
			t.kill()
		}
	}
	t.release(reusable)
	p.put(t, reusable)
	if s.cut {
		f.logCut(bp, pod)
	}
	if s.abort || s.podErr != "" || s.cut {
		return failed
	}
	return done
}

// logCut tells about a connection whose upload did not reach the pod whole.
func (f *Forwarder) logCut(bp *boundPort, pod *corev1.Pod) {
	f.logRepeat("forward: %s: localhost:%d → pod %s port %d: the pod side ended the connection before it took all the data sent to it",
		bp.port.Service, bp.local, pod.Name, bp.port.RemotePort)
}

// connState is where one forwarded connection stands, as its events arrive.
type connState struct {
	fromDone, toDone, errDone bool   // the pod's data, local's data, the error stream ended
	abort                     bool   // the connection ends in a reset and its tunnel is closed
	podErr                    string // what the pod side wrote on the error stream
	cut                       bool   // the upload ended in error once the connection was over: data read from local never reached the pod
}

// over says the connection is done with, cleanly or not: the pod's data
// ended, and local's data or the error stream did (a server that ended both
// of its streams has nothing more to take from local).
func (s *connState) over() bool {
	return s.abort || (s.fromDone && (s.toDone || s.errDone))
}

// settled says every end of the connection arrived.
func (s *connState) settled() bool { return s.fromDone && s.toDone && s.errDone }

// during takes an event while the connection is carried.
func (s *connState) during(ev event) {
	switch ev.kind {
	case podEnd:
		s.fromDone = true
		s.abort = s.abort || ev.err != nil
	case localEnd:
		s.toDone = true
		// local closed by this side is how a connection the pod side
		// ended stops its upload: not a failure.
		s.abort = s.abort || (ev.err != nil && !errors.Is(ev.err, net.ErrClosed))
	case errEnd:
		s.errDone = true
		s.podErr = strings.TrimSpace(string(ev.msg))
		s.abort = s.abort || s.podErr != "" || ev.err != nil
	case broken:
		s.abort = true
	}
}

// awaitErrEnd waits, once the pod's data ended, for the error stream's end
// (up to errGrace), taking the events that arrive meanwhile; seen, when
// set, is given each one. A dead tunnel or a closed stop aborts the
// connection. It returns at once when the error stream already ended or
// the connection is aborted.
func (s *connState) awaitErrEnd(events <-chan event, closed, stop <-chan struct{}, seen func(event)) {
	if s.errDone || s.abort {
		return
	}
	grace := time.NewTimer(errGrace)
	defer grace.Stop()
	for !s.errDone && !s.abort {
		select {
		case ev := <-events:
			s.during(ev)
			if seen != nil {
				seen(ev)
			}
		case <-closed:
			s.abort = true
		case <-stop:
			s.abort = true
		case <-grace.C:
			return
		}
	}
}

// after takes an event once the connection is over. It returns an error
// message of the pod side to log (the first one only) and whether the
// tunnel is spoiled for reuse.
func (s *connState) after(ev event) (logged string, spoiled bool) {
	switch ev.kind {
	case podEnd:
		s.fromDone = true
	case localEnd:
		s.toDone = true
		// Closing local is how this side stops an upload the pod side
		// no longer takes; one that ends otherwise (a failed write to the
		// tunnel, a send window that never opened) had data in hand that
		// never reached the pod: not a clean connection.
		s.cut = ev.err != nil && !errors.Is(ev.err, net.ErrClosed)
		spoiled = s.cut
	case errEnd:
		s.errDone = true
		msg := strings.TrimSpace(string(ev.msg))
		if msg != "" && s.podErr == "" {
			s.podErr = msg
			logged = msg
		}
		spoiled = len(ev.msg) > 0 || ev.err != nil
	}
	return logged, spoiled
}

// logPodErr tells about an error the pod side reported for one connection
// (the same line at most once per window of f.quiet).
func (f *Forwarder) logPodErr(bp *boundPort, pod *corev1.Pod, msg string) {
	f.logRepeat("forward: %s: localhost:%d → pod %s port %d: %s", bp.port.Service, bp.local, pod.Name, bp.port.RemotePort, podErrText(msg, bp.port.RemotePort))
}

// podErrText is msg, an error the pod side reported for a connection to
// port, in plain words for the common case: the runtime's message is long
// (network namespace paths, both address families).
func podErrText(msg string, port int32) string {
	if strings.Contains(msg, "connection refused") {
		return fmt.Sprintf("connection refused: nothing listens on port %d inside the pod", port)
	}
	return msg
}

// repeats keeps a client that retries a broken port in a loop from
// flooding the log: the same line at most once per window, with a count of
// the ones held back.
type repeats struct {
	mu     sync.Mutex
	window time.Duration
	seen   map[string]*repeat
}

type repeat struct {
	last       time.Time
	suppressed int
}

func (r *repeats) allow(line string, now time.Time) (suppressed int, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen == nil {
		r.seen = map[string]*repeat{}
	}
	if len(r.seen) > 1000 {
		clear(r.seen)
	}
	e := r.seen[line]
	if e == nil {
		r.seen[line] = &repeat{last: now}
		return 0, true
	}
	if now.Sub(e.last) < r.window {
		e.suppressed++
		return 0, false
	}
	n := e.suppressed
	e.last, e.suppressed = now, 0
	return n, true
}

// writeError is a failed write of a copy: what was read was not passed on.
// It does not unwrap, so that a write to a closed connection is never
// taken for this side's closing of the source (net.ErrClosed).
type writeError struct{ err error }

func (e writeError) Error() string { return "write: " + e.err.Error() }

// copyBuf copies src to dst with pooled buffers, counting bytes. It returns
// nil at src's EOF, a writeError when dst fails.
func copyBuf(dst io.Writer, src io.Reader, count *atomic.Int64) error {
	bp, pool := smallPool.Get().(*[]byte), &smallPool
	defer func() { pool.Put(bp) }()
	for {
		buf := *bp
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return writeError{werr}
			}
			count.Add(int64(n))
			if n == len(buf) && pool == &smallPool {
				smallPool.Put(bp)
				bp, pool = largePool.Get().(*[]byte), &largePool
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}

// reset closes c so that the peer sees a reset rather than a clean end:
// the connection did not carry what it should have.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}
