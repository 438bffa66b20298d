package forward

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/moby/spdystream/spdy"
)

// FuzzFrameReader feeds arbitrary bytes, as the server's side of a tunnel, to the frame tunnel's
// reader while it carries a connection (error stream 1, data stream 3), and checks what it does
// against a model of the protocol written from the SPDY/3.1 framing: the bytes passed to the local
// connection, the events and SYN_REPLYs delivered, the pings echoed. The reader must never panic,
// block or read past a frame it cannot trust. localLimit is how many bytes the local connection
// takes before its writes fail.
func FuzzFrameReader(f *testing.F) {
	for _, s := range frameSeeds(f) {
		f.Add(s, uint16(0xffff))
		f.Add(s, uint16(3))
	}
	f.Fuzz(func(t *testing.T, stream []byte, localLimit uint16) {
		nc := &scriptConn{r: bytes.NewReader(stream)}
		local := &limitConn{limit: int(localLimit)}
		ft := newFrameTunnel(nc, nil)
		c := &frameConn{errID: 1, dataID: 3, local: local, fromPod: new(atomic.Int64),
			replies: make(chan uint32, 2), events: make(chan event, 4)}
		ft.cur.Store(c)
		ft.read() // returns at the end of the input at the latest

		want := modelReader(stream, int(localLimit))
		if !dead(ft) {
			t.Error("tunnel alive after its reader ended")
		}
		if !bytes.Equal(local.got, want.local) {
			t.Errorf("passed to the local connection %q, want %q", local.got, want.local)
		}
		if n := c.fromPod.Load(); n != int64(len(local.got)) {
			t.Errorf("fromPod counted %d bytes, %d written", n, len(local.got))
		}
		if !bytes.Equal(nc.w.Bytes(), want.written) {
			t.Errorf("written to the server %x, want %x", nc.w.Bytes(), want.written)
		}
		close(c.replies)
		var replies []uint32
		for id := range c.replies {
			replies = append(replies, id)
		}
		if fmt.Sprint(replies) != fmt.Sprint(want.replies) {
			t.Errorf("SYN_REPLYs %v, want %v", replies, want.replies)
		}
		close(c.events)
		var got []string
		for ev := range c.events {
			got = append(got, describe(ev))
		}
		if fmt.Sprint(got) != fmt.Sprint(want.events) {
			t.Errorf("events\n %q\nwant\n %q", got, want.events)
		}
	})
}

func describe(ev event) string {
	s := [...]string{podEnd: "podEnd", localEnd: "localEnd", errEnd: "errEnd", broken: "broken"}[ev.kind]
	switch {
	case errors.Is(ev.err, errTunnelClosed):
		s += "(closed)"
	case ev.err != nil:
		s += "(" + ev.err.Error() + ")"
	}
	if ev.kind == errEnd {
		s += fmt.Sprintf(" %q", ev.msg)
	}
	return s
}

// readerModel is what the reader is expected to do with a stream of frames.
type readerModel struct {
	local, written []byte
	replies        []uint32
	events         []string

	errMsg                     []byte
	dataFin, errFin, isBroken  bool
	flowControl                bool // a SETTINGS or WINDOW_UPDATE came: data frames are answered with WINDOW_UPDATEs
	replied                    [2]bool
	early                      []byte // data before both SYN_REPLYs: held, passed on once both came
	earlyFin                   bool
	localLimit, localDelivered int
}

func (m *readerModel) end(data bool, closed bool) {
	suffix := ""
	if closed {
		suffix = "(closed)"
	}
	if data && !m.dataFin {
		m.dataFin = true
		m.events = append(m.events, "podEnd"+suffix)
	}
	if !data && !m.errFin {
		m.errFin = true
		m.events = append(m.events, fmt.Sprintf("errEnd%s %q", suffix, m.errMsg))
	}
}

func (m *readerModel) fail() {
	if !m.isBroken {
		m.isBroken = true
		m.events = append(m.events, "broken")
	}
}

// modelReader walks the frames of in: an 8-byte header (control bit, 15-bit version, 16-bit type;
// or 31-bit stream ID), 8 bits of flags, 24 bits of length, then the payload.
func modelReader(in []byte, localLimit int) *readerModel {
	m := &readerModel{localLimit: localLimit}
	m.walk(in)
	m.end(true, true)
	m.end(false, true)
	return m
}

func (m *readerModel) walk(in []byte) {
	const errID, dataID = 1, 3
	for len(in) >= 8 {
		hdr, flags := in[:8], in[4]
		length := int(in[5])<<16 | int(in[6])<<8 | int(in[7])
		in = in[8:]
		if hdr[0]&0x80 != 0 {
			version := int(hdr[0]&0x7f)<<8 | int(hdr[1])
			typ := int(hdr[2])<<8 | int(hdr[3])
			fixed := map[int]int{typeRstStream: 8, typeGoAway: 8, typePing: 4, typeWindowUpdate: 8}
			if n, ok := fixed[typ]; version != 3 || length > 1<<20 || ok && length != n || typ == typeSynReply && length < 4 ||
				typ == typeSettings && (length < 4 || (length-4)%8 != 0) {
				return // the framing is in doubt
			}
			if len(in) < length {
				return
			}
			payload := in[:length]
			in = in[length:]
			var id uint32
			if length >= 4 {
				id = binary.BigEndian.Uint32(payload) & 0x7fffffff
			}
			switch typ {
			case typeSynReply:
				if id != errID && id != dataID {
					continue
				}
				i := 0
				if id == dataID {
					i = 1
				}
				if !m.replied[i] {
					m.replied[i] = true
					m.replies = append(m.replies, id)
					if m.replied[0] && m.replied[1] {
						m.deliverEarly()
					}
				}
				if flags&flagFin != 0 {
					m.end(id == dataID, false)
				}
			case typeRstStream:
				if id == errID || id == dataID {
					m.fail()
				}
			case typePing:
				if id%2 == 0 {
					m.written = append(append(m.written, hdr...), payload...)
				}
			case typeGoAway:
				return
			case typeSettings:
				if int(binary.BigEndian.Uint32(payload))*8 != length-4 { // the count disagrees with the length
					return
				}
				m.flowControl = true
			case typeWindowUpdate:
				m.flowControl = true
			}
			continue
		}
		id := binary.BigEndian.Uint32(hdr) & 0x7fffffff
		if id != errID && id != dataID {
			if len(in) < length {
				return
			}
			in = in[length:]
			m.windowUpdate(0, length)
			continue
		}
		data := id == dataID
		ended := data && (m.dataFin || m.earlyFin) || !data && m.errFin
		if ended {
			m.fail()
		}
		for n := length; n > 0; { // read in chunks of the reader's buffer
			k := min(n, 64<<10)
			if len(in) < k {
				return
			}
			chunk := in[:k]
			in, n = in[k:], n-k
			switch {
			case data && !m.isBroken && !(m.replied[0] && m.replied[1]):
				if len(m.early)+k > maxEarly {
					m.fail()
					continue
				}
				m.early = append(m.early, chunk...)
			case data && !m.isBroken:
				if m.localDelivered+k > m.localLimit {
					m.fail()
					continue
				}
				m.localDelivered += k
				m.local = append(m.local, chunk...)
			case !data && !ended && len(m.errMsg) < 64<<10:
				m.errMsg = append(m.errMsg, chunk...)
			}
		}
		if ended {
			m.windowUpdate(0, length)
		} else {
			m.windowUpdate(id, length)
		}
		if flags&flagFin != 0 {
			if data && !(m.replied[0] && m.replied[1]) {
				m.earlyFin = true
			} else {
				m.end(data, false)
			}
		}
	}
}

// deliverEarly passes on the data held until both streams were accepted, in one write.
func (m *readerModel) deliverEarly() {
	if len(m.early) > 0 && !m.isBroken {
		if m.localDelivered+len(m.early) > m.localLimit {
			m.fail()
		} else {
			m.localDelivered += len(m.early)
			m.local = append(m.local, m.early...)
		}
	}
	m.early = nil
	if m.earlyFin {
		m.end(true, false)
	}
}

// windowUpdate is the answer to a data frame of n bytes on stream id (0: none of ours) once flow
// control is on: WINDOW_UPDATE of the session, then of the stream.
func (m *readerModel) windowUpdate(id uint32, n int) {
	if !m.flowControl || n == 0 {
		return
	}
	ids := []uint32{0}
	if id != 0 {
		ids = append(ids, id)
	}
	for _, s := range ids {
		m.written = append(m.written, 0x80, 3, 0, typeWindowUpdate, 0, 0, 0, 8)
		m.written = binary.BigEndian.AppendUint32(m.written, s)
		m.written = binary.BigEndian.AppendUint32(m.written, uint32(n))
	}
}

// scriptConn is the tunnel's network connection: reads come from r, writes are kept in w.
type scriptConn struct {
	net.Conn // only Read, Write and Close are used
	r        *bytes.Reader
	w        bytes.Buffer
}

func (c *scriptConn) Read(b []byte) (int, error)  { return c.r.Read(b) }
func (c *scriptConn) Write(b []byte) (int, error) { return c.w.Write(b) }
func (c *scriptConn) Close() error                { return nil }

// limitConn is a local connection that takes limit bytes; a write beyond fails whole.
type limitConn struct {
	net.Conn // only Write is used
	limit    int
	got      []byte
}

func (c *limitConn) Write(b []byte) (int, error) {
	if len(c.got)+len(b) > c.limit {
		return 0, errors.New("local connection closed")
	}
	c.got = append(c.got, b...)
	return len(b), nil
}

// frameSeeds are server frame sequences written by spdystream's framer (what the kubelet and the
// API server use), plus the protocol violations the reader's tests cover.
func frameSeeds(tb testing.TB) [][]byte {
	frames := func(fs ...spdy.Frame) []byte {
		var b bytes.Buffer
		fr, err := spdy.NewFramer(&b, nil)
		if err != nil {
			tb.Fatal(err)
		}
		for _, f := range fs {
			if err := fr.WriteFrame(f); err != nil {
				tb.Fatal(err)
			}
		}
		return b.Bytes()
	}
	replies := []spdy.Frame{
		&spdy.SynReplyFrame{StreamId: 1, Headers: http.Header{}},
		&spdy.SynReplyFrame{StreamId: 3, Headers: http.Header{}},
	}
	with := func(fs ...spdy.Frame) []byte { return frames(append(append([]spdy.Frame{}, replies...), fs...)...) }
	return [][]byte{
		// a connection: replies, data both ways ending with FINs, a server ping
		with(&spdy.DataFrame{StreamId: 3, Data: []byte("HTTP/1.1 200 OK\r\n\r\n")},
			&spdy.PingFrame{Id: 2},
			&spdy.DataFrame{StreamId: 3, Flags: spdy.DataFlagFin},
			&spdy.DataFrame{StreamId: 1, Flags: spdy.DataFlagFin}),
		// the pod's error: an error stream message, then FIN
		with(&spdy.DataFrame{StreamId: 1, Data: []byte("an error occurred forwarding 8080 -> 8080: connection refused")},
			&spdy.DataFrame{StreamId: 1, Flags: spdy.DataFlagFin},
			&spdy.DataFrame{StreamId: 3, Flags: spdy.DataFlagFin}),
		// headers on a reply, a FIN on the reply, settings, window updates, a reply to our ping
		frames(&spdy.SynReplyFrame{StreamId: 1, CFHeader: spdy.ControlFrameHeader{Flags: spdy.ControlFlagFin}, Headers: http.Header{"X": {"y"}}},
			&spdy.SettingsFrame{FlagIdValues: []spdy.SettingsFlagIdValue{{Id: spdy.SettingsInitialWindowSize, Value: 1 << 16}}},
			&spdy.WindowUpdateFrame{StreamId: 3, DeltaWindowSize: 4096},
			&spdy.PingFrame{Id: 1},
			&spdy.SynReplyFrame{StreamId: 3, Headers: http.Header{}}),
		// flow control: settings and window updates, then data on both streams and another's
		with(&spdy.SettingsFrame{FlagIdValues: []spdy.SettingsFlagIdValue{{Id: spdy.SettingsInitialWindowSize, Value: 1024}}},
			&spdy.WindowUpdateFrame{StreamId: 0, DeltaWindowSize: 1 << 20},
			&spdy.DataFrame{StreamId: 3, Data: []byte("window")},
			&spdy.DataFrame{StreamId: 5, Data: []byte("other")},
			&spdy.DataFrame{StreamId: 1, Data: []byte("err"), Flags: spdy.DataFlagFin},
			&spdy.DataFrame{StreamId: 3, Flags: spdy.DataFlagFin}),
		// resets, streams of another connection, GOAWAY
		with(&spdy.DataFrame{StreamId: 5, Data: []byte("late")},
			&spdy.RstStreamFrame{StreamId: 7, Status: spdy.Cancel},
			&spdy.RstStreamFrame{StreamId: 3, Status: spdy.InternalError},
			&spdy.GoAwayFrame{LastGoodStreamId: 3, Status: spdy.GoAwayOK}),
		// data after FIN
		with(&spdy.DataFrame{StreamId: 3, Data: []byte("a"), Flags: spdy.DataFlagFin},
			&spdy.DataFrame{StreamId: 3, Data: []byte("b")}),
		// a server SYN_STREAM, headers
		frames(&spdy.SynStreamFrame{StreamId: 2, Headers: http.Header{"Streamtype": {"data"}}},
			&spdy.HeadersFrame{StreamId: 3, Headers: http.Header{"A": {"b"}}}),
		// an oversize control frame, a SPDY/2 ping, a truncated data frame
		ctlFrame(4, maxControlSize+1, nil),
		append(with(), 0x80, 2, 0, typePing, 0, 0, 0, 4, 0, 0, 0, 2),
		append(with(), 0, 0, 0, 3, 0, 0, 0, 100, 'x'),
	}
}
