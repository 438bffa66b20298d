package forward

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moby/spdystream/spdy"
	corev1 "k8s.io/api/core/v1"
)

// leanTunnel speaks the port-forward protocol (SPDY/3.1 streams: an error
// and a data stream per forwarded connection) itself, over the WebSocket
// tunnel client-go negotiates. It carries one forwarded connection at a
// time, which is what lets it be lean where spdystream (built for many
// streams on one connection) is not:
//   - the one reader goroutine writes each data frame's payload straight to
//     the local connection (spdystream hands every frame through a priority
//     queue, a worker goroutine and a channel, allocating it on the way);
//   - every frame is written with one Write, so one WebSocket message
//     (spdystream writes a data frame's header in two writes of 4 bytes:
//     three messages per frame for the API server to relay);
//   - two goroutines per idle tunnel instead of about fifteen.
//
// Flow control is TCP's: a local reader that does not read blocks this
// tunnel only.
type leanTunnel struct {
	nc  net.Conn // the WebSocket tunnel (portforward.TunnelingConnection)
	raw net.Conn // its network connection, closed to end everything at once

	wmu      sync.Mutex // one frame at a time on the wire
	zStarted bool
	hdrBuf   bytes.Buffer // the framer writes SYN_STREAM frames here
	nextID   uint32       // next client stream ID (odd)

	cur    atomic.Pointer[leanConn] // the forwarded connection being carried
	closed chan struct{}            // closed when the tunnel is dead
	once   sync.Once
	count  *atomic.Int64 // bytes from the pod
}

// leanConn is one forwarded connection on a leanTunnel.
type leanConn struct {
	errID, dataID uint32
	local         net.Conn
	replies       chan uint32  // SYN_REPLY stream IDs
	events        chan leanEvt // from the reader
	broken        atomic.Bool  // local write failed: drop further data
	errMsg        []byte       // written by the reader before errEnd is sent
}

type leanEvt int

// send never blocks the reader: the connection may be gone already.
func (c *leanConn) send(ev leanEvt) {
	select {
	case c.events <- ev:
	default:
	}
}

const (
	dataEnd     leanEvt = iota // the pod side closed the data stream (FIN)
	errEnd                     // the error stream ended; errMsg holds its content
	streamReset                // the server reset one of the streams
	localBroken                // writing to the local connection failed
)

const (
	spdyVersion    = 3
	typeSynStream  = 1
	typeSynReply   = 2
	typeRstStream  = 3
	typePing       = 6
	typeGoAway     = 7
	flagFin        = 0x01
	rstCancel      = 5
	maxControlSize = 1 << 20
)

func newLeanTunnel(nc, raw net.Conn, count *atomic.Int64) (*leanTunnel, error) {
	t := &leanTunnel{nc: nc, raw: raw, nextID: 1, closed: make(chan struct{}), count: count}
	return t, nil
}

// start runs the reader and the keep-alive pinger; both end when the
// tunnel dies. wg tracks them.
func (t *leanTunnel) start(wg *sync.WaitGroup) {
	wg.Add(2)
	go func() {
		defer wg.Done()
		t.read()
	}()
	go func() {
		defer wg.Done()
		t.ping()
	}()
}

func (t *leanTunnel) kill() {
	t.once.Do(func() {
		close(t.closed)
		if t.raw != nil {
			_ = t.raw.Close()
		}
		_ = t.nc.Close()
	})
}

func (t *leanTunnel) write(b []byte) error {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	_, err := t.nc.Write(b)
	return err
}

func dataHeader(b []byte, id uint32, flags byte, n int) {
	binary.BigEndian.PutUint32(b[0:4], id&0x7fffffff)
	b[4] = flags
	b[5], b[6], b[7] = byte(n>>16), byte(n>>8), byte(n)
}

func controlHeader(b []byte, typ uint16, flags byte, n int) {
	binary.BigEndian.PutUint16(b[0:2], 0x8000|spdyVersion)
	binary.BigEndian.PutUint16(b[2:4], typ)
	b[4] = flags
	b[5], b[6], b[7] = byte(n>>16), byte(n>>8), byte(n)
}

// ping keeps an idle tunnel alive through anything that times idle
// connections out, as client-go does every 10s.
func (t *leanTunnel) ping() {
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	var id uint32 = 1
	frame := make([]byte, 12)
	for {
		select {
		case <-t.closed:
			return
		case <-tick.C:
		}
		controlHeader(frame, typePing, 0, 4)
		binary.BigEndian.PutUint32(frame[8:], id)
		id += 2
		if err := t.write(frame); err != nil {
			t.kill()
			return
		}
	}
}

// read is the tunnel's only reader: it routes each frame to the connection
// being carried and answers the server's pings. It kills the tunnel when the
// connection ends or the server goes away.
func (t *leanTunnel) read() {
	defer t.kill()
	hdr := make([]byte, 8)
	buf := make([]byte, 64<<10)
	for {
		if _, err := io.ReadFull(t.nc, hdr); err != nil {
			return
		}
		n := int(hdr[5])<<16 | int(hdr[6])<<8 | int(hdr[7])
		flags := hdr[4]
		if hdr[0]&0x80 != 0 {
			if !t.control(binary.BigEndian.Uint16(hdr[2:4]), flags, n, hdr, buf) {
				return
			}
			continue
		}
		id := binary.BigEndian.Uint32(hdr[0:4]) & 0x7fffffff
		c := t.cur.Load()
		switch {
		case c != nil && id == c.dataID:
			for n > 0 {
				k := min(n, len(buf))
				if _, err := io.ReadFull(t.nc, buf[:k]); err != nil {
					return
				}
				n -= k
				if c.broken.Load() {
					continue
				}
				if _, err := c.local.Write(buf[:k]); err != nil {
					c.broken.Store(true)
					c.send(localBroken)
					continue
				}
				t.count.Add(int64(k))
			}
			if flags&flagFin != 0 {
				c.send(dataEnd)
			}
		case c != nil && id == c.errID:
			for n > 0 {
				k := min(n, len(buf))
				if _, err := io.ReadFull(t.nc, buf[:k]); err != nil {
					return
				}
				n -= k
				if len(c.errMsg) < 64<<10 {
					c.errMsg = append(c.errMsg, buf[:k]...)
				}
			}
			if flags&flagFin != 0 {
				c.send(errEnd)
			}
		default: // a stream already given up
			if _, err := io.CopyN(io.Discard, t.nc, int64(n)); err != nil {
				return
			}
		}
	}
}

// control handles one control frame; false ends the tunnel.
func (t *leanTunnel) control(typ uint16, flags byte, n int, hdr, buf []byte) bool {
	if n > maxControlSize {
		return false
	}
	var payload []byte
	if n <= len(buf) {
		payload = buf[:n]
	} else {
		payload = make([]byte, n)
	}
	if _, err := io.ReadFull(t.nc, payload); err != nil {
		return false
	}
	c := t.cur.Load()
	switch typ {
	case typeSynReply:
		if n < 4 || c == nil {
			return true
		}
		id := binary.BigEndian.Uint32(payload[0:4]) & 0x7fffffff
		if id == c.errID || id == c.dataID {
			select {
			case c.replies <- id:
			default:
			}
			if flags&flagFin != 0 {
				if id == c.dataID {
					c.send(dataEnd)
				} else {
					c.send(errEnd)
				}
			}
		}
	case typeRstStream:
		if n < 4 || c == nil {
			return true
		}
		id := binary.BigEndian.Uint32(payload[0:4]) & 0x7fffffff
		if id == c.errID || id == c.dataID {
			c.send(streamReset)
		}
	case typePing:
		if n == 4 && binary.BigEndian.Uint32(payload)%2 == 0 { // the server's: echo it
			frame := append(append([]byte(nil), hdr...), payload...)
			if err := t.write(frame); err != nil {
				return false
			}
		}
	case typeGoAway:
		return false
	}
	return true
}

// open creates the error and data streams of connection c (one write for
// both SYN_STREAM frames) and waits for the server to accept them, then
// closes the error stream from this side as client-go does.
func (t *leanTunnel) open(ctx context.Context, c *leanConn, port int32, requestID int) error {
	c.errID, c.dataID = t.nextID, t.nextID+2
	t.nextID += 4
	t.cur.Store(c)
	header := func(typ string) http.Header {
		h := http.Header{}
		h.Set(corev1.StreamType, typ)
		h.Set(corev1.PortHeader, fmt.Sprint(port))
		h.Set(corev1.PortForwardRequestIDHeader, fmt.Sprint(requestID))
		return h
	}
	t.wmu.Lock()
	t.hdrBuf.Reset()
	t.synStream(c.errID, header(corev1.StreamTypeError))
	t.synStream(c.dataID, header(corev1.StreamTypeData))
	_, err := t.nc.Write(t.hdrBuf.Bytes())
	t.wmu.Unlock()
	if err != nil {
		return err
	}
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	var early []leanEvt
	defer func() {
		for _, ev := range early {
			c.send(ev)
		}
	}()
	for got := 0; got < 2; {
		select {
		case <-c.replies:
			got++
		case ev := <-c.events:
			if ev == streamReset {
				return errors.New("the server refused the streams")
			}
			early = append(early, ev) // for pipeLean, once the streams are up
		case <-t.closed:
			return errors.New("tunnel closed")
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			return errors.New("timed out waiting for the server to accept the streams")
		}
	}
	fin := make([]byte, 8)
	dataHeader(fin, c.errID, flagFin, 0)
	return t.write(fin)
}

// upload copies the local connection into the data stream, each read one
// frame in one write, and half-closes the stream at the local EOF.
func (t *leanTunnel) upload(c *leanConn, count *atomic.Int64) error {
	bp, pool := smallPool.Get().(*[]byte), &smallPool
	defer func() { pool.Put(bp) }()
	for {
		buf := *bp
		n, err := c.local.Read(buf[8:])
		if n > 0 {
			dataHeader(buf, c.dataID, 0, n)
			if werr := t.write(buf[:8+n]); werr != nil {
				return werr
			}
			count.Add(int64(n))
			if n == len(buf)-8 && pool == &smallPool {
				smallPool.Put(bp)
				bp, pool = largePool.Get().(*[]byte), &largePool
			}
		}
		if err == io.EOF {
			fin := buf[:8]
			dataHeader(fin, c.dataID, flagFin, 0)
			return t.write(fin)
		}
		if err != nil {
			return err
		}
	}
}

func (t *leanTunnel) reset(id uint32) {
	frame := make([]byte, 16)
	controlHeader(frame, typeRstStream, 0, 8)
	binary.BigEndian.PutUint32(frame[8:], id)
	binary.BigEndian.PutUint32(frame[12:], rstCancel)
	_ = t.write(frame)
}

// pipeLean carries local over a lean tunnel; see pipe for the rules.
func (f *Forwarder) pipeLean(ctx context.Context, bp *boundPort, pod *corev1.Pod, local net.Conn, t *tunnel) outcome {
	lt := t.lean
	c := &leanConn{local: local, replies: make(chan uint32, 2), events: make(chan leanEvt, 8)}
	t.nextID++
	t.uses++
	if err := lt.open(ctx, c, bp.port.RemotePort, t.nextID); err != nil {
		lt.cur.Store(nil)
		t.pool.put(t, false)
		if ctx.Err() != nil {
			reset(local)
			return failed
		}
		return retrySet
	}
	toPod := make(chan error, 1)
	go func() { toPod <- lt.upload(c, &f.stats.toPod) }()

	var fromDone, toDone, errDone, abort, upErr bool
	errMsg := func() string { return string(bytes.TrimSpace(c.errMsg)) }
	for !abort && !(fromDone && (toDone || errDone)) {
		select {
		case ev := <-c.events:
			switch ev {
			case dataEnd:
				fromDone = true
				if !errDone { // as in pipe: let an error turn this into a reset
					select {
					case ev2 := <-c.events:
						if ev2 == errEnd {
							errDone = true
						} else {
							abort = true
						}
					case <-time.After(errGrace):
					}
				}
				if errDone && errMsg() != "" {
					abort = true
				}
				if !abort {
					closeWrite(local)
				}
			case errEnd:
				errDone = true
				abort = errMsg() != ""
			case streamReset, localBroken:
				abort = true
			}
		case err := <-toPod:
			toDone = true
			if err != nil {
				upErr = true
				abort = !errors.Is(err, net.ErrClosed)
			}
		case <-lt.closed:
			abort = true
		case <-ctx.Done():
			abort = true
		}
	}
	if errDone {
		if msg := errMsg(); msg != "" {
			f.logPodErr(bp, pod, msg)
		}
	}
	reusable := !abort
	if abort {
		reset(local)
		lt.kill()
	} else {
		_ = local.Close()
	}
	timer := time.NewTimer(settleTimeout)
	defer timer.Stop()
	closed := lt.closed
	for !(toDone && errDone) {
		select {
		case err := <-toPod:
			toDone = true
			upErr = upErr || err != nil
		case ev := <-c.events:
			if ev == errEnd {
				errDone = true
				if msg := errMsg(); msg != "" {
					reusable = false
					if !abort {
						f.logPodErr(bp, pod, msg)
						abort = true
					}
				}
			}
		case <-closed:
			reusable = false
			errDone = true // nothing more will come
			closed = nil
		case <-timer.C:
			reusable = false
			lt.kill()
		}
	}
	if reusable && upErr {
		// The local side was closed before it finished sending: the
		// server's half of the data stream is still open.
		lt.reset(c.dataID)
	}
	lt.cur.Store(nil)
	t.pool.put(t, reusable)
	if abort {
		return failed
	}
	return done
}

// storedDictID is the Adler-32 ID of SPDY/3's header dictionary, as it stands in a zlib header:
// taken from the one header block spdystream's framer writes, so it always matches the peer's.
var storedDictID = func() []byte {
	var b bytes.Buffer
	fr, err := spdy.NewFramer(&b, nil)
	if err != nil {
		panic(err)
	}
	_ = fr.WriteFrame(&spdy.SynStreamFrame{StreamId: 1, Headers: http.Header{"a": {"b"}}})
	return append([]byte(nil), b.Bytes()[18+2:18+6]...)
}()

// synStream appends a SYN_STREAM frame whose header block is a zlib stored block. Stored blocks
// need no compressor: spdystream's framer keeps one best-compression zlib writer (~640 KB of hash
// tables) per tunnel, which dominated the memory of many pre-dialled tunnels. The peer's
// decompressor reads stored blocks like any other; the first frame carries the zlib header with
// the dictionary ID, as the SPDY stream's compression context spans the connection.
func (t *leanTunnel) synStream(id uint32, h http.Header) {
	var blk []byte
	blk = binary.BigEndian.AppendUint32(blk, uint32(len(h)))
	for k, v := range h {
		blk = binary.BigEndian.AppendUint32(blk, uint32(len(k)))
		blk = append(blk, strings.ToLower(k)...)
		val := strings.Join(v, "\x00")
		blk = binary.BigEndian.AppendUint32(blk, uint32(len(val)))
		blk = append(blk, val...)
	}
	var z []byte
	if !t.zStarted {
		t.zStarted = true
		cmf, flg := byte(0x78), byte(0x20)
		flg += uint8(31 - (uint16(cmf)<<8+uint16(flg))%31)
		z = append(z, cmf, flg)
		z = append(z, storedDictID...)
	}
	n := uint16(len(blk))
	z = append(z, 0, byte(n), byte(n>>8), ^byte(n), ^byte(n>>8))
	z = append(z, blk...)
	z = append(z, 0, 0, 0, 0xff, 0xff) // an empty stored block, as a sync flush ends
	f := []byte{0x80, 0x03, 0x00, 0x01}
	l := 10 + len(z)
	f = append(f, 0, byte(l>>16), byte(l>>8), byte(l))
	f = binary.BigEndian.AppendUint32(f, id)
	f = append(f, 0, 0, 0, 0, 0, 0)
	f = append(f, z...)
	t.hdrBuf.Write(f)
}
