package forward

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/streaming/pkg/httpstream"
)

// streamTunnel is a tunnel driven through client-go's stream connection
// (spdystream): the SPDY fallback, and the tunnels of Options.Dialer. Each
// connection takes three goroutines: one per direction and one reading the
// error stream.
type streamTunnel struct {
	conn   httpstream.Connection
	closed chan struct{} // closed once conn is, or kill was called
	once   sync.Once
	nextID int // request IDs of the connections carried

	errStream, data httpstream.Stream // of the connection carried
}

func newStreamTunnel(conn httpstream.Connection) *streamTunnel {
	return &streamTunnel{conn: conn, closed: make(chan struct{})}
}

func (t *streamTunnel) start(wg *sync.WaitGroup, gone func()) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-t.conn.CloseChan()
		t.once.Do(func() { close(t.closed) })
		gone()
	}()
}

func (t *streamTunnel) done() <-chan struct{} { return t.closed }

// quietSince: spdystream does not tell when it last heard the server.
func (t *streamTunnel) quietSince(time.Time) bool { return false }

// kill closes the tunnel. client-go's stream connection offers no way to
// its network connection: Close resets the streams (their reads end as at
// EOF) and closes it. The tunnel is dead from here on, so that the streams'
// ends read as cut, not as the pod side's.
func (t *streamTunnel) kill() {
	t.once.Do(func() { close(t.closed) })
	_ = t.conn.Close()
}

// connClosed says whether the tunnel was killed or its connection is
// closed. spdystream closes the connection's CloseChan before it ends the
// streams' reads, so a stream that reads EOF while this holds was cut, not
// ended by the pod side.
func (t *streamTunnel) connClosed() bool {
	select {
	case <-t.closed:
		return true
	case <-t.conn.CloseChan():
		return true
	default:
		return false
	}
}

func (t *streamTunnel) open(ctx context.Context, local net.Conn, port int32, st *counters) (<-chan event, error) {
	errStream, data, err := t.openStreams(ctx, port)
	if err != nil {
		return nil, err
	}
	t.errStream, t.data = errStream, data
	events := make(chan event, 3)
	go func() {
		msg, err := io.ReadAll(io.LimitReader(errStream, 64<<10))
		if err == nil && t.connClosed() {
			err = errTunnelClosed
		}
		events <- event{kind: errEnd, err: err, msg: msg}
	}()
	go func() {
		err := copyBuf(local, data, &st.fromPod)
		if err == nil && t.connClosed() {
			err = errTunnelClosed
		}
		events <- event{kind: podEnd, err: err}
	}()
	go func() {
		err := copyBuf(data, local, &st.toPod)
		if cerr := data.Close(); err == nil && cerr != nil { // half-close: the pod sees EOF
			err = writeError{cerr}
		}
		events <- event{kind: localEnd, err: err}
	}()
	return events, nil
}

func (t *streamTunnel) release(bool) {
	t.conn.RemoveStreams(t.errStream, t.data)
	t.errStream, t.data = nil, nil
}

// openStreams creates the error and data streams of one forwarded
// connection, as the port-forward protocol wants them: same port and request
// ID, one of each type. The server pairs them by request ID whatever their
// order, so both are created at once, saving a round trip.
//
// client-go's CreateStream waits 30 s for the server's reply whatever
// happens to the connection meanwhile: a tunnel that dies during the set-up
// would hold the local connection that long. The wait here ends with the
// tunnel (or ctx); the creations left behind end on their own and their
// streams, if any, are reset.
func (t *streamTunnel) openStreams(ctx context.Context, port int32) (errStream, data httpstream.Stream, err error) {
	t.nextID++
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
		data bool
		s    httpstream.Stream
		err  error
	}
	results := make(chan created, 2)
	for _, typ := range []string{corev1.StreamTypeError, corev1.StreamTypeData} {
		go func() {
			s, err := t.conn.CreateStream(header(typ))
			if err == nil && typ == corev1.StreamTypeError {
				_ = s.Close() // nothing is ever written to it
			}
			results <- created{typ == corev1.StreamTypeData, s, err}
		}()
	}
	var errs []error
	var got []httpstream.Stream
	drop := func(ss ...httpstream.Stream) {
		for _, s := range ss {
			if s != nil {
				_ = s.Reset()
				t.conn.RemoveStreams(s)
			}
		}
	}
	for n := 0; n < 2; n++ {
		select {
		case r := <-results:
			if r.err != nil {
				errs = append(errs, r.err)
				continue
			}
			got = append(got, r.s)
			if r.data {
				data = r.s
			} else {
				errStream = r.s
			}
		case <-t.conn.CloseChan():
			err = errTunnelClosed
		case <-t.closed:
			err = errTunnelClosed
		case <-ctx.Done():
			err = ctx.Err()
		}
		if err != nil {
			t.kill()
			drop(got...)
			go func(left int) { // the creations still waiting end within client-go's timeout
				for range left {
					if r := <-results; r.s != nil {
						drop(r.s)
					}
				}
			}(2 - n)
			return nil, nil, err
		}
	}
	if len(errs) > 0 {
		drop(got...)
		return nil, nil, errors.Join(errs...)
	}
	return errStream, data, nil
}
