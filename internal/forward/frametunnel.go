package forward

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// frameTunnel speaks the port-forward protocol (SPDY/3.1 streams: an error
// and a data stream per forwarded connection; framing in spdyframe.go)
// itself, over the WebSocket tunnel client-go negotiates. It carries one
// forwarded connection at a time, which is what lets it do with less than
// spdystream (built for many streams on one connection):
//   - the one reader goroutine writes each data frame's payload straight to
//     the local connection (spdystream hands every frame through a priority
//     queue, a worker goroutine and a channel, allocating it on the way);
//   - every frame is written with one Write, so one WebSocket message
//     (spdystream writes a data frame's header in two writes of 4 bytes:
//     three messages per frame for the API server to relay);
//   - two goroutines per idle tunnel instead of about fifteen, and one more
//     per connection (the upload).
//
// Flow control is TCP's: a local reader that does not read blocks this
// tunnel only. SPDY/3.1's own (WINDOW_UPDATE, flowcontrol.go) is honoured
// once the server shows it speaks it; the Kubernetes servers (spdystream)
// never do.
//
// A tunnel can go half-open (a proxy or an API server that stops
// forwarding without closing): an idle tunnel pings the server and is
// closed when no reply comes within its deadline, and one taken for a new
// connection after a silence sends a ping with its SYN_STREAMs and is given
// up, nothing having been sent to the pod, when the server stays silent
// (liveness.go).
type frameTunnel struct {
	nc  net.Conn // the WebSocket tunnel (portforward.TunnelingConnection) or the SPDY connection
	raw net.Conn // its network connection, closed to end everything at once; may be nil

	timing timing       // ping and probe intervals
	heard  atomic.Int64 // when the last frame came from the server (UnixNano)
	pingID atomic.Uint32
	uses   atomic.Int64 // connections carried so far
	fc     flowControl

	wmu      sync.Mutex // one frame at a time on the wire
	synSent  bool       // a SYN_STREAM went out: the header compression context is started
	synBuf   []byte     // the SYN_STREAM frames of a connection
	nextID   uint32     // next client stream ID (odd)
	nextConn int        // request IDs of the connections carried

	cur    atomic.Pointer[frameConn] // the forwarded connection being carried
	closed chan struct{}             // closed when the tunnel is dead
	once   sync.Once
}

// frameConn is one forwarded connection on a frameTunnel.
type frameConn struct {
	errID, dataID uint32
	local         net.Conn
	fromPod       *atomic.Int64
	replies       chan uint32 // SYN_REPLY stream IDs
	events        chan event  // see tunnel.open: never more than cap, so sends never block
	upErr         bool        // the upload ended in error: written before its localEnd
	sendWin       int64       // the data stream's send window (fc.mu)
	quit          chan struct{}
	quitOnce      sync.Once

	// The reader's alone.
	replied   [2]bool // SYN_REPLY seen for the error, data stream
	dataEnded bool    // podEnd sent
	errEnded  bool    // errEnd sent
	isBroken  bool    // broken sent: further data is dropped
	errMsg    []byte
	early     []byte // the pod's data that came before both SYN_REPLYs: held until they did
	earlyFin  bool   // and its FIN
}

// maxEarly bounds the data a pod may send before its streams are accepted
// (a server's greeting, not a transfer): past it the connection is broken.
const maxEarly = 256 << 10

// accepted says whether the server replied to both streams.
func (c *frameConn) accepted() bool { return c.replied[0] && c.replied[1] }

// deliverEarly passes on what the pod sent before its streams were
// accepted, now that they are: the local side is not read before that
// (PodConn's pipe: not before DialPod returns), so writing it earlier would
// have held the reader, and the replies behind the data, for ever.
func (c *frameConn) deliverEarly() {
	if len(c.early) > 0 && !c.isBroken {
		if _, err := c.local.Write(c.early); err != nil {
			c.fail()
		} else {
			c.fromPod.Add(int64(len(c.early)))
		}
	}
	c.early = nil
	if c.earlyFin {
		c.podEnd(nil)
	}
}

func newFrameTunnel(nc, raw net.Conn) *frameTunnel {
	t := &frameTunnel{nc: nc, raw: raw, nextID: 1, closed: make(chan struct{}), timing: defaultTiming}
	t.fc.init()
	t.heard.Store(time.Now().UnixNano())
	return t
}

// stop ends the connection's upload if it waits for a send window.
func (c *frameConn) stop() {
	c.quitOnce.Do(func() {
		if c.quit != nil {
			close(c.quit)
		}
	})
}

// start runs the reader and the keep-alive pinger; both end when the
// tunnel dies.
func (t *frameTunnel) start(wg *sync.WaitGroup, gone func()) {
	wg.Add(2)
	go func() {
		defer wg.Done()
		t.read()
		gone()
	}()
	go func() {
		defer wg.Done()
		t.ping()
	}()
}

func (t *frameTunnel) done() <-chan struct{} { return t.closed }

func (t *frameTunnel) kill() {
	t.once.Do(func() {
		close(t.closed)
		if t.raw != nil {
			_ = t.raw.Close()
		}
		_ = t.nc.Close()
	})
}

func (t *frameTunnel) write(b []byte) error {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	_, err := t.nc.Write(b)
	return err
}

// Events of the reader: at most one of each kind per connection.

func (c *frameConn) podEnd(err error) {
	if !c.dataEnded {
		c.dataEnded = true
		c.events <- event{kind: podEnd, err: err}
	}
}

func (c *frameConn) errEnd(err error) {
	if !c.errEnded {
		c.errEnded = true
		c.events <- event{kind: errEnd, err: err, msg: c.errMsg}
	}
}

func (c *frameConn) fail() {
	if !c.isBroken {
		c.isBroken = true
		c.stop()
		c.events <- event{kind: broken}
	}
}

// read is the tunnel's only reader: it routes each frame to the connection
// being carried and answers the server's pings. When the server goes away or
// breaks the framing it kills the tunnel and ends the connection's streams.
func (t *frameTunnel) read() {
	defer func() {
		t.kill()
		if c := t.cur.Load(); c != nil {
			c.podEnd(errTunnelClosed)
			c.errEnd(errTunnelClosed)
		}
	}()
	hdr := make([]byte, frameHeaderSize)
	buf := make([]byte, 64<<10)
	for {
		if _, err := io.ReadFull(t.nc, hdr); err != nil {
			return
		}
		t.heard.Store(time.Now().UnixNano())
		h := parseFrameHeader(hdr)
		if h.control {
			if !t.control(h, hdr, buf) {
				return
			}
			continue
		}
		var err error
		c := t.cur.Load()
		switch {
		case c != nil && (h.id == c.dataID || h.id == c.errID):
			err = t.streamData(c, h, buf, h.id == c.dataID)
		default: // a stream already given up
			_, err = io.CopyN(io.Discard, t.nc, int64(h.length))
			if err == nil {
				err = t.consumed(0, h.length)
			}
		}
		if err != nil {
			return
		}
	}
}

// streamData takes a data frame of the connection's data stream (data),
// passed on to local, or of its error stream, whose words are kept.
func (t *frameTunnel) streamData(c *frameConn, h frameHeader, buf []byte, data bool) error {
	ended := (data && (c.dataEnded || c.earlyFin)) || (!data && c.errEnded)
	if ended { // data after FIN: the stream is not to be trusted
		c.fail()
	}
	for n := h.length; n > 0; {
		k := min(n, len(buf))
		if _, err := io.ReadFull(t.nc, buf[:k]); err != nil {
			return err
		}
		n -= k
		switch {
		case data && !c.isBroken && !c.accepted():
			if len(c.early)+k > maxEarly {
				c.fail()
				continue
			}
			c.early = append(c.early, buf[:k]...)
		case data && !c.isBroken:
			if _, err := c.local.Write(buf[:k]); err != nil {
				c.fail()
				continue
			}
			c.fromPod.Add(int64(k))
		case !data && !ended && len(c.errMsg) < 64<<10:
			c.errMsg = append(c.errMsg, buf[:k]...)
		}
	}
	id := h.id
	if ended {
		id = 0
	}
	if err := t.consumed(id, h.length); err != nil {
		return err
	}
	if h.flags&flagFin != 0 {
		switch {
		case data && !c.accepted():
			c.earlyFin = true
		case data:
			c.podEnd(nil)
		default:
			c.errEnd(nil)
		}
	}
	return nil
}

// control handles one control frame; false ends the tunnel.
func (t *frameTunnel) control(h frameHeader, hdr, buf []byte) bool {
	if !h.validControl() {
		return false
	}
	var payload []byte
	if h.length <= len(buf) {
		payload = buf[:h.length]
	} else {
		payload = make([]byte, h.length)
	}
	if _, err := io.ReadFull(t.nc, payload); err != nil {
		return false
	}
	c := t.cur.Load()
	switch h.typ {
	case typeSynReply:
		if c == nil {
			return true
		}
		id := frameStreamID(payload)
		i := 0
		switch id {
		case c.errID:
		case c.dataID:
			i = 1
		default:
			return true
		}
		if !c.replied[i] {
			c.replied[i] = true
			c.replies <- id
			if c.accepted() {
				c.deliverEarly()
			}
		}
		if h.flags&flagFin != 0 {
			if i == 1 {
				c.podEnd(nil)
			} else {
				c.errEnd(nil)
			}
		}
	case typeRstStream:
		if c == nil {
			return true
		}
		if id := frameStreamID(payload); id == c.errID || id == c.dataID {
			c.fail()
		}
	case typePing:
		if frameStreamID(payload)%2 == 0 { // the server's: echo it
			frame := append(append(make([]byte, 0, len(hdr)+len(payload)), hdr...), payload...)
			if err := t.write(frame); err != nil {
				return false
			}
		}
	case typeGoAway:
		return false
	case typeSettings:
		return t.settings(payload, c)
	case typeWindowUpdate:
		t.windowUpdate(payload, c)
	}
	return true
}

// open creates the error and data streams of a connection (one write for
// both SYN_STREAM frames), waits for the server to accept them, closes the
// error stream from this side as client-go does, and starts the upload.
func (t *frameTunnel) open(ctx context.Context, local net.Conn, port int32, st *counters) (<-chan event, error) {
	c := &frameConn{local: local, fromPod: &st.fromPod, replies: make(chan uint32, 2), events: make(chan event, 4),
		quit: make(chan struct{})}
	if err := t.openStreams(ctx, c, port); err != nil {
		t.cur.Store(nil)
		return nil, err
	}
	go func() {
		err := t.upload(c, &st.toPod)
		c.upErr = err != nil
		c.events <- event{kind: localEnd, err: err}
	}()
	return c.events, nil
}

func (t *frameTunnel) openStreams(ctx context.Context, c *frameConn, port int32) error {
	c.errID, c.dataID = t.nextID, t.nextID+2
	t.nextID += 4
	t.nextConn++
	t.uses.Add(1)
	t.fc.newStream(c)
	t.cur.Store(c)
	// A tunnel the server has been silent on for a while may be half-open:
	// a ping goes with the SYN_STREAMs, and silence past the probe's
	// deadline gives the tunnel up.
	var probe <-chan time.Time
	asked := time.Now()
	if asked.Sub(t.lastHeard()) > t.timing.probeAfter {
		pt := time.NewTimer(t.timing.probeTimeout)
		defer pt.Stop()
		probe = pt.C
	}
	p, id := strconv.Itoa(int(port)), strconv.Itoa(t.nextConn)
	t.wmu.Lock()
	b := t.synBuf[:0]
	b = appendSynStream(b, c.errID, !t.synSent,
		corev1.StreamType, corev1.StreamTypeError, corev1.PortHeader, p, corev1.PortForwardRequestIDHeader, id)
	b = appendSynStream(b, c.dataID, false,
		corev1.StreamType, corev1.StreamTypeData, corev1.PortHeader, p, corev1.PortForwardRequestIDHeader, id)
	if probe != nil {
		b = appendPing(b, t.nextPing())
	}
	t.synSent, t.synBuf = true, b
	_, err := t.nc.Write(b)
	t.wmu.Unlock()
	if err != nil {
		return err
	}
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	var early []event
	defer func() {
		for _, ev := range early {
			c.events <- ev // taken out above: there is room
		}
	}()
	for got := 0; got < 2; {
		select {
		case <-c.replies:
			got++
		case ev := <-c.events:
			if ev.kind == broken {
				return errors.New("the server refused the streams")
			}
			early = append(early, ev) // for pipe, once the streams are up
		case <-t.closed:
			return errTunnelClosed
		case <-ctx.Done():
			return ctx.Err()
		case <-probe:
			if t.lastHeard().Before(asked) {
				t.kill()
				return errHalfOpen
			}
			probe = nil // the server is there, only slow
		case <-timer.C:
			return errors.New("timed out waiting for the server to accept the streams")
		}
	}
	var fin [frameHeaderSize]byte
	putDataHeader(fin[:], c.errID, flagFin, 0)
	return t.write(fin[:])
}

// upload copies the local connection into the data stream, each read one
// frame in one write, and half-closes the stream at the local EOF.
func (t *frameTunnel) upload(c *frameConn, count *atomic.Int64) error {
	bp, pool := smallPool.Get().(*[]byte), &smallPool
	defer func() { pool.Put(bp) }()
	for {
		buf := *bp
		n, err := c.local.Read(buf[frameHeaderSize:])
		if n > 0 {
			// Within the send window, as few frames as it allows: a frame
			// sent from offset off has its header written over the 8 bytes
			// before it, already sent.
			for off := 0; off < n; {
				k, werr := t.fc.take(c, n-off, t.closed)
				if werr != nil {
					return writeError{werr}
				}
				putDataHeader(buf[off:], c.dataID, 0, k)
				if werr := t.write(buf[off : off+frameHeaderSize+k]); werr != nil {
					return writeError{werr}
				}
				off += k
			}
			count.Add(int64(n))
			if n == len(buf)-frameHeaderSize && pool == &smallPool {
				smallPool.Put(bp)
				bp, pool = largePool.Get().(*[]byte), &largePool
			}
		}
		if err == io.EOF {
			fin := buf[:frameHeaderSize]
			putDataHeader(fin, c.dataID, flagFin, 0)
			if werr := t.write(fin); werr != nil {
				return writeError{werr}
			}
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// release forgets the connection. One whose local side was closed before it
// finished sending (its upload ended in error) still has the server's half
// of its data stream open: a tunnel kept for reuse resets it.
func (t *frameTunnel) release(reusable bool) {
	c := t.cur.Load()
	if c != nil {
		c.stop()
	}
	if reusable && c != nil && c.upErr {
		_ = t.write(appendRstStream(nil, c.dataID, rstCancel))
	}
	t.cur.Store(nil)
}
