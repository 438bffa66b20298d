package forward

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/moby/spdystream/spdy"
	corev1 "k8s.io/api/core/v1"
)

// The SYN_STREAM frames written here are read by spdystream's framer (the
// API server's and kubelet's), header compression context included.
func TestSynStreamReadBySpdystream(t *testing.T) {
	var b []byte
	b = appendSynStream(b, 1, true, "StreamType", "error", "Port", "8080", "RequestID", "1")
	b = appendSynStream(b, 3, false, "StreamType", "data", "Port", "8080", "RequestID", "1")
	b = appendSynStream(b, 5, false, "StreamType", "error", "Port", "5432", "RequestID", "2")
	fr, err := spdy.NewFramer(io.Discard, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct {
		id        spdy.StreamId
		typ, port string
		requestID string
	}{{1, "error", "8080", "1"}, {3, "data", "8080", "1"}, {5, "error", "5432", "2"}} {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		syn, ok := f.(*spdy.SynStreamFrame)
		if !ok {
			t.Fatalf("read %T", f)
		}
		h := syn.Headers
		if syn.StreamId != want.id || h.Get(corev1.StreamType) != want.typ || h.Get(corev1.PortHeader) != want.port ||
			h.Get(corev1.PortForwardRequestIDHeader) != want.requestID || len(h) != 3 {
			t.Errorf("stream %d: %v; want %+v", syn.StreamId, h, want)
		}
	}
}

func TestFramesReadBySpdystream(t *testing.T) {
	var b []byte
	b = appendPing(b, 7)
	b = appendRstStream(b, 3, rstCancel)
	data := make([]byte, frameHeaderSize+5)
	putDataHeader(data, 3, flagFin, 5)
	copy(data[frameHeaderSize:], "hello")
	b = append(b, data...)
	fr, err := spdy.NewFramer(io.Discard, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	read := func() spdy.Frame {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	if p, ok := read().(*spdy.PingFrame); !ok || p.Id != 7 {
		t.Errorf("ping: %#v", p)
	}
	if r, ok := read().(*spdy.RstStreamFrame); !ok || r.StreamId != 3 || r.Status != spdy.Cancel {
		t.Errorf("rst: %#v", r)
	}
	if d, ok := read().(*spdy.DataFrame); !ok || d.StreamId != 3 || d.Flags != spdy.DataFlagFin || string(d.Data) != "hello" {
		t.Errorf("data: %#v", d)
	}
}

func TestFrameHeader(t *testing.T) {
	b := make([]byte, frameHeaderSize)
	putDataHeader(b, 0x80000005, flagFin, 1<<24-1)
	if h := parseFrameHeader(b); h.control || h.id != 5 || h.flags != flagFin || h.length != 1<<24-1 {
		t.Errorf("data header: %+v", h)
	}
	for _, c := range []struct {
		typ    uint16
		length int
		valid  bool
	}{
		{typeSynReply, 4, true},
		{typeSynReply, 2, false},
		{typeRstStream, 8, true},
		{typeRstStream, 4, false},
		{typePing, 4, true},
		{typePing, 3, false},
		{typeGoAway, 8, true},
		{typeGoAway, 12, false},
		{4, 12, true}, // SETTINGS: skipped
		{4, maxControlSize + 1, false},
	} {
		putControlHeader(b, c.typ, 0, c.length)
		h := parseFrameHeader(b)
		if !h.control || h.version != spdyVersion || h.typ != c.typ || h.length != c.length || h.validControl() != c.valid {
			t.Errorf("type %d length %d: %+v, valid %v", c.typ, c.length, h, h.validControl())
		}
	}
	binary.BigEndian.PutUint16(b[0:2], 0x8000|2)
	if parseFrameHeader(b).validControl() {
		t.Error("SPDY/2 frame taken")
	}
}

// peer is a scripted port-forward server on the far end of a frame tunnel.
type peer struct {
	skipPings bool // read passes over the tunnel's own pings (odd IDs): liveness checks, not the protocol under test
	t         *testing.T
	conn      net.Conn
	fr        *spdy.Framer
	errID     spdy.StreamId
	dataID    spdy.StreamId
}

func newPeer(t *testing.T) (*peer, *frameTunnel) {
	c, s := tcpPair(t)
	fr, err := spdy.NewFramer(s, s)
	if err != nil {
		t.Fatal(err)
	}
	return &peer{t: t, conn: s, fr: fr, skipPings: true}, newFrameTunnel(c, nil)
}

func (p *peer) read() spdy.Frame {
	p.t.Helper()
	_ = p.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	f, err := p.fr.ReadFrame()
	if err != nil {
		p.t.Fatalf("peer: %v", err)
	}
	if ping, ok := f.(*spdy.PingFrame); ok && ping.Id%2 == 1 && p.skipPings {
		return p.read()
	}
	return f
}

func (p *peer) write(f spdy.Frame) {
	p.t.Helper()
	if err := p.fr.WriteFrame(f); err != nil {
		p.t.Fatalf("peer: %v", err)
	}
}

func (p *peer) raw(b []byte) {
	p.t.Helper()
	if _, err := p.conn.Write(b); err != nil {
		p.t.Fatalf("peer: %v", err)
	}
}

// syns reads the two SYN_STREAM frames of a connection.
func (p *peer) syns() {
	p.t.Helper()
	for range 2 {
		syn, ok := p.read().(*spdy.SynStreamFrame)
		if !ok {
			p.t.Fatal("peer: no SYN_STREAM")
		}
		if syn.Headers.Get(corev1.StreamType) == corev1.StreamTypeError {
			p.errID = syn.StreamId
		} else {
			p.dataID = syn.StreamId
		}
	}
}

// accept reads the SYN_STREAM frames, replies to both and reads the error
// stream's FIN from the client.
func (p *peer) accept() {
	p.t.Helper()
	p.syns()
	p.write(&spdy.SynReplyFrame{StreamId: p.errID, Headers: http.Header{}})
	p.write(&spdy.SynReplyFrame{StreamId: p.dataID, Headers: http.Header{}})
	if d, ok := p.read().(*spdy.DataFrame); !ok || d.StreamId != p.errID || d.Flags != spdy.DataFlagFin {
		p.t.Fatalf("peer: want the error stream's FIN, got %#v", d)
	}
}

func (p *peer) data(id spdy.StreamId, s string, fin bool) {
	p.t.Helper()
	f := &spdy.DataFrame{StreamId: id, Data: []byte(s)}
	if fin {
		f.Flags = spdy.DataFlagFin
	}
	p.write(f)
}

// The normal flows: both directions with half-closes, the error stream's
// FIN before or after the data's, a second connection on the same tunnel,
// a ping of the server's answered.
func TestFrameTunnelNormal(t *testing.T) {
	r := newRig(t)
	p, ft := newPeer(t)
	ft.start(&r.f.wg, func() { r.p.forget(ft) })
	for i, errFirst := range []bool{true, false} {
		app, out := r.pipe(t, ft)
		p.accept()
		if want := spdy.StreamId(1 + 4*i); p.errID != want || p.dataID != want+2 {
			t.Errorf("connection %d: streams %d, %d", i, p.errID, p.dataID)
		}
		if _, err := app.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		_ = app.CloseWrite()
		var up []byte
		for {
			d, ok := p.read().(*spdy.DataFrame)
			if !ok || d.StreamId != p.dataID {
				t.Fatalf("peer: %#v", d)
			}
			up = append(up, d.Data...)
			if d.Flags == spdy.DataFlagFin {
				break
			}
		}
		if string(up) != "ping" {
			t.Errorf("pod got %q", up)
		}
		if errFirst {
			p.data(p.errID, "", true)
		}
		p.data(p.dataID, "po", false)
		p.data(p.dataID, "ng", true)
		if !errFirst {
			p.data(p.errID, "", true)
		}
		got, err := io.ReadAll(app)
		if err != nil || string(got) != "pong" {
			t.Fatalf("connection %d: %q, %v", i, got, err)
		}
		if o := wait(t, out); o != done {
			t.Fatalf("connection %d: outcome %v", i, o)
		}
		if r.idle() != 1 {
			t.Fatalf("connection %d: tunnel not kept", i)
		}
		r.p.get()
	}
	p.write(&spdy.PingFrame{Id: 2})
	if ping, ok := p.read().(*spdy.PingFrame); !ok || ping.Id != 2 {
		t.Errorf("ping not echoed: %#v", ping)
	}
}

// A local side that closes before it finished sending leaves the server's
// half of the data stream open: a tunnel kept for reuse resets it.
func TestFrameTunnelResetsUnfinishedUpload(t *testing.T) {
	r := newRig(t)
	p, ft := newPeer(t)
	ft.start(&r.f.wg, func() { r.p.forget(ft) })
	app, out := r.pipe(t, ft)
	p.accept()
	p.data(p.errID, "", true)
	p.data(p.dataID, "bye", true)
	got, err := io.ReadAll(app) // the pod side ended; local has not
	if err != nil || string(got) != "bye" {
		t.Fatalf("%q, %v", got, err)
	}
	if o := wait(t, out); o != done {
		t.Fatalf("outcome %v", o)
	}
	if rst, ok := p.read().(*spdy.RstStreamFrame); !ok || rst.StreamId != p.dataID || rst.Status != spdy.Cancel {
		t.Errorf("want a RST_STREAM of the data stream, got %#v", rst)
	}
}

// The server refuses the streams (RST_STREAM before SYN_REPLY): the
// connection goes to another tunnel, this one is closed.
func TestFrameTunnelRstBeforeReply(t *testing.T) {
	r := newRig(t)
	p, ft := newPeer(t)
	ft.start(&r.f.wg, func() { r.p.forget(ft) })
	app, out := r.pipe(t, ft)
	p.syns()
	p.write(&spdy.RstStreamFrame{StreamId: p.dataID, Status: spdy.RefusedStream})
	if o := wait(t, out); o != retrySet {
		t.Fatalf("outcome %v, want retrySet", o)
	}
	wait(t, ft.done())
	// The local connection is left for the next tunnel.
	_ = app.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if _, err := app.Read(make([]byte, 1)); !isTimeout(err) {
		t.Errorf("local connection: %v, want it untouched", err)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

func ctlFrame(typ uint16, n int, payload []byte) []byte {
	b := make([]byte, frameHeaderSize, frameHeaderSize+len(payload))
	putControlHeader(b, typ, 0, n)
	return append(b, payload...)
}

// badFrames are what a server may send that breaks the protocol (the
// connection is reset, the tunnel is not to be reused) or the framing (the
// reader ends the tunnel: nothing after can be trusted).
var badFrames = []struct {
	name       string
	send       func(p *peer)
	tunnelDies bool
}{
	{"data after FIN", func(p *peer) {
		p.data(p.dataID, "a", true)
		p.data(p.dataID, "b", false)
	}, false},
	{"error data after FIN", func(p *peer) {
		p.data(p.errID, "", true)
		p.data(p.errID, "late", false)
	}, false},
	{"RST_STREAM", func(p *peer) {
		p.write(&spdy.RstStreamFrame{StreamId: p.dataID, Status: spdy.InternalError})
	}, false},
	{"GOAWAY", func(p *peer) {
		p.write(&spdy.GoAwayFrame{LastGoodStreamId: p.dataID, Status: spdy.GoAwayOK})
	}, true},
	{"oversize control frame", func(p *peer) {
		p.raw(ctlFrame(4, maxControlSize+1, nil))
	}, true},
	{"RST_STREAM of 4 bytes", func(p *peer) {
		p.raw(ctlFrame(typeRstStream, 4, binary.BigEndian.AppendUint32(nil, uint32(p.dataID))))
	}, true},
	{"PING of 3 bytes", func(p *peer) { p.raw(ctlFrame(typePing, 3, []byte{0, 0, 2})) }, true},
	{"SYN_REPLY of 2 bytes", func(p *peer) { p.raw(ctlFrame(typeSynReply, 2, []byte{0, 0})) }, true},
	{"SPDY/2 frame", func(p *peer) {
		b := ctlFrame(typePing, 4, []byte{0, 0, 0, 2})
		b[1] = 2
		p.raw(b)
	}, true},
	{"truncated data frame", func(p *peer) {
		b := make([]byte, frameHeaderSize+10)
		putDataHeader(b, uint32(p.dataID), 0, 100)
		p.raw(b)
		_ = p.conn.Close()
	}, true},
}

// What the reader makes of each bad frame: a reset of the connection (one
// broken event, the tunnel alive), or the end of the tunnel (both of the
// pod side's ends, as cut).
func TestFrameTunnelReaderOnBadFrames(t *testing.T) {
	for _, c := range badFrames {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t)
			p, ft := newPeer(t)
			ft.start(&r.f.wg, func() {})
			defer ft.kill()
			_, local := tcpPair(t)
			type opened struct {
				events <-chan event
				err    error
			}
			oc := make(chan opened, 1)
			go func() {
				ev, err := ft.open(context.Background(), local, 8080, &r.f.stats)
				oc <- opened{ev, err}
			}()
			p.accept()
			o := wait(t, oc)
			if o.err != nil {
				t.Fatal(o.err)
			}
			c.send(p)
			if !c.tunnelDies {
				for {
					ev := wait(t, o.events)
					if ev.kind == broken {
						break
					}
					if ev.err != nil {
						t.Fatalf("event %+v", ev)
					}
				}
				time.Sleep(20 * time.Millisecond)
				if dead(ft) {
					t.Error("tunnel ended")
				}
				return
			}
			wait(t, ft.done())
			var pod, errs bool
			for !pod || !errs {
				ev := wait(t, o.events)
				switch {
				case ev.kind == podEnd && errors.Is(ev.err, errTunnelClosed):
					pod = true
				case ev.kind == errEnd && errors.Is(ev.err, errTunnelClosed):
					errs = true
				case ev.kind == broken:
				default:
					t.Fatalf("event %+v", ev)
				}
			}
		})
	}
}

// Whatever the bad frame, pipe resets the connection and closes the tunnel.
func TestFrameTunnelBadFrames(t *testing.T) {
	for _, c := range badFrames {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t)
			p, ft := newPeer(t)
			ft.start(&r.f.wg, func() { r.p.forget(ft) })
			app, out := r.pipe(t, ft)
			p.accept()
			c.send(p)
			if o := wait(t, out); o != failed {
				t.Fatalf("outcome %v, want failed", o)
			}
			if got, err := io.ReadAll(app); !isReset(err) {
				t.Errorf("local connection: %q, %v; want a reset", got, err)
			}
			if r.idle() != 0 {
				t.Error("tunnel kept for reuse")
			}
			wait(t, ft.done())
		})
	}
}
