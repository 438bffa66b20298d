package forward

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/streaming/pkg/httpstream"
)

// Copy buffers: every connection starts with a small one; a connection that
// fills it (a bulk transfer) moves to a large one, so that an upload becomes
// few large SPDY frames (each frame costs three writes down the tunnel, the
// framer writes its 8-byte header in two) and idle connections hold little.
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

// How long a clean end of the pod's data waits for the error stream.
const errGrace = 250 * time.Millisecond

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
	if f.forward(ctx, tr, bp, local) {
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
		t := p.get()
		if t != nil {
			f.stats.reused.Add(1)
		} else {
			var err error
			t, err = p.dial(ctx)
			if err == nil && !p.adopt(t) {
				t.kill()
				continue // the pod went away meanwhile: pick again
			}
			if err != nil {
				if ctx.Err() != nil {
					reset(local)
					return false
				}
				d := bo.next()
				if time.Now().Add(d).After(deadline) {
					f.logf("forward: %s: pod %s: %v; closing the connection from %s",
						bp.port.Service, pod.Name, err, local.RemoteAddr())
					reset(local)
					return false
				}
				f.logf("forward: %s: pod %s: %v (retrying in %s)", bp.port.Service, pod.Name, err, d.Round(time.Millisecond))
				f.stats.redials.Add(1)
				if !sleepCtx(ctx, nil, d) {
					reset(local)
					return false
				}
				continue
			}
		}
		switch f.pipe(ctx, bp, pod, local, t) {
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

type errResult struct {
	msg []byte
	err error
}

// pipe copies between local and a pair of fresh streams of tunnel t, and
// gives t back to its pool (for reuse when everything ended cleanly).
func (f *Forwarder) pipe(ctx context.Context, bp *boundPort, pod *corev1.Pod, local net.Conn, t *tunnel) outcome {
	if t.lean != nil {
		return f.pipeLean(ctx, bp, pod, local, t)
	}
	errStream, data, err := openStreams(t, bp.port.RemotePort)
	if err != nil {
		t.pool.put(t, false)
		if ctx.Err() != nil {
			reset(local)
			return failed
		}
		return retrySet
	}
	defer t.conn.RemoveStreams(errStream, data)

	errc := make(chan errResult, 1)
	go func() {
		msg, err := io.ReadAll(io.LimitReader(errStream, 64<<10))
		errc <- errResult{msg, err}
	}()
	fromPod := make(chan error, 1)
	toPod := make(chan error, 1)
	go func() { fromPod <- copyBuf(local, data, &f.stats.fromPod) }()
	go func() {
		err := copyBuf(data, local, &f.stats.toPod)
		_ = data.Close() // half-close: the pod sees EOF
		toPod <- err
	}()

	var fromDone, toDone, errDone, abort bool
	var podErr string
	closed := t.closed
	for !abort && !(fromDone && (toDone || errDone)) {
		select {
		case err := <-fromPod:
			fromDone = true
			// A stream also reads EOF when its tunnel dies (the pod went
			// away): that is not the pod's side closing.
			abort = err != nil || t.dead()
			if abort {
				break
			}
			// The server closes the error stream before the data stream,
			// but the two are delivered independently: give an error
			// (connection refused in the pod) the chance to turn this end
			// into a reset rather than a clean one.
			if !errDone {
				select {
				case r := <-errc:
					errDone = true
					if len(r.msg) > 0 {
						podErr = strings.TrimSpace(string(r.msg))
					}
					abort = podErr != "" || r.err != nil
				case <-time.After(errGrace):
				}
			}
			if !abort {
				closeWrite(local)
			}
		case err := <-toPod:
			toDone = true
			abort = err != nil && !errors.Is(err, net.ErrClosed)
		case r := <-errc:
			errDone = true
			if len(r.msg) > 0 {
				podErr = strings.TrimSpace(string(r.msg))
			}
			abort = podErr != "" || r.err != nil || t.dead()
		case <-closed:
			abort = true
		case <-ctx.Done():
			abort = true
		}
	}

	if podErr != "" {
		f.logPodErr(bp, pod, podErr)
	}
	reusable := !abort
	if abort {
		reset(local)
		t.kill()
	} else {
		_ = local.Close()
	}
	// Every goroutine of this connection ends before pipe returns. The
	// clean path gives the pod side a moment to finish; past it the tunnel
	// is closed, which ends them at once.
	timer := time.NewTimer(settleTimeout)
	defer timer.Stop()
	for !(fromDone && toDone && errDone) {
		select {
		case <-fromPod:
			fromDone = true
		case <-toPod:
			toDone = true
		case r := <-errc:
			errDone = true
			if len(r.msg) > 0 && podErr == "" {
				podErr = strings.TrimSpace(string(r.msg))
				f.logPodErr(bp, pod, podErr)
			}
			if len(r.msg) > 0 || r.err != nil {
				reusable = false
			}
		case <-timer.C:
			reusable = false
			t.kill()
		}
	}
	t.pool.put(t, reusable)
	if abort || podErr != "" {
		return failed
	}
	return done
}

// logPodErr tells about an error the pod side reported for one connection.
// The runtime's message is long (network namespace paths, both address
// families); the common case gets one plain line.
func (f *Forwarder) logPodErr(bp *boundPort, pod *corev1.Pod, msg string) {
	if strings.Contains(msg, "connection refused") {
		msg = fmt.Sprintf("connection refused: nothing listens on port %d inside the pod", bp.port.RemotePort)
	}
	line := fmt.Sprintf("forward: %s: localhost:%d → pod %s port %d: %s", bp.port.Service, bp.local, pod.Name, bp.port.RemotePort, msg)
	if n, ok := f.quiet.allow(line, time.Now()); ok {
		if n > 0 {
			line += fmt.Sprintf(" (and %d more like it)", n)
		}
		f.logf("%s", line)
	}
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

// openStreams creates the error and data streams of one forwarded
// connection, as the port-forward protocol wants them: same port and request
// ID, one of each type. The server pairs them by request ID whatever their
// order, so both are created at once, saving a round trip.
func openStreams(t *tunnel, port int32) (errStream, data httpstream.Stream, err error) {
	t.nextID++
	t.uses++
	id := strconv.Itoa(t.nextID)
	p := strconv.Itoa(int(port))
	header := func(typ string) http.Header {
		h := http.Header{}
		h.Set(corev1.StreamType, typ)
		h.Set(corev1.PortHeader, p)
		h.Set(corev1.PortForwardRequestIDHeader, id)
		return h
	}
	type created struct {
		s   httpstream.Stream
		err error
	}
	ec := make(chan created, 1)
	go func() {
		s, err := t.conn.CreateStream(header(corev1.StreamTypeError))
		if err == nil {
			_ = s.Close() // nothing is ever written to it
		}
		ec <- created{s, err}
	}()
	data, derr := t.conn.CreateStream(header(corev1.StreamTypeData))
	e := <-ec
	if derr != nil || e.err != nil {
		for _, s := range []httpstream.Stream{data, e.s} {
			if s != nil {
				_ = s.Reset()
				t.conn.RemoveStreams(s)
			}
		}
		return nil, nil, errors.Join(derr, e.err)
	}
	return e.s, data, nil
}

// copyBuf copies src to dst with pooled buffers, counting bytes. It returns
// nil at src's EOF.
func copyBuf(dst io.Writer, src io.Reader, count *atomic.Int64) error {
	bp, pool := smallPool.Get().(*[]byte), &smallPool
	defer func() { pool.Put(bp) }()
	for {
		buf := *bp
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return werr
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
