package forward

import (
	"encoding/binary"
	"errors"
	"sync"
	"sync/atomic"
)

// SPDY/3.1 flow control on a frame tunnel.
//
// Each side may send a stream as much data as the receiver's window for it
// allows (64 KB at first, or SETTINGS_INITIAL_WINDOW_SIZE), and in SPDY/3.1
// the whole session as much as the session window (stream 0) allows; the
// receiver widens them with WINDOW_UPDATE frames as it consumes the data.
// The Kubernetes servers (spdystream, in the kubelet and the API server)
// neither send nor read these frames, and would stall a sender that waited
// for them: a server that never speaks of windows is taken to have none.
// From the first SETTINGS or WINDOW_UPDATE frame on, the windows are
// honoured, counted from the start of the tunnel:
//   - the upload sends no more than the data stream's window (and the
//     session's, once the server sent a session WINDOW_UPDATE) and waits
//     for the server to widen it;
//   - every data frame read is answered, once its payload was passed on,
//     with WINDOW_UPDATEs of its length for the session and its stream, so
//     the server's sending is paced by the local reader.

const (
	typeSettings     = 4
	typeWindowUpdate = 9

	settingsInitialWindow = 7
	defaultWindow         = 64 << 10
	maxWindow             = 1<<31 - 1
)

var errStreamGone = errors.New("the data stream was reset")

type flowControl struct {
	on      atomic.Bool   // the server speaks flow control
	changed chan struct{} // a window was widened

	mu      sync.Mutex
	initial int64 // the server's initial stream window
	session int64 // the session send window
	sessOn  bool  // the server keeps the session window
}

func (fc *flowControl) init() {
	fc.changed = make(chan struct{}, 1)
	fc.initial = defaultWindow
	fc.session = defaultWindow
}

func (fc *flowControl) signal() {
	select {
	case fc.changed <- struct{}{}:
	default:
	}
}

// newStream gives a connection's data stream its send window.
func (fc *flowControl) newStream(c *frameConn) {
	fc.mu.Lock()
	c.sendWin = fc.initial
	fc.mu.Unlock()
}

// take returns how many of want bytes may be sent on c's data stream now
// (at least one), waiting for the windows to open; the bytes are counted
// as sent.
func (fc *flowControl) take(c *frameConn, want int, closed <-chan struct{}) (int, error) {
	fc.mu.Lock()
	for {
		avail := int64(want)
		if fc.on.Load() {
			avail = min(avail, c.sendWin)
			if fc.sessOn {
				avail = min(avail, fc.session)
			}
		}
		if avail > 0 {
			c.sendWin -= avail
			fc.session -= avail
			fc.mu.Unlock()
			return int(avail), nil
		}
		fc.mu.Unlock()
		select {
		case <-fc.changed:
		case <-closed:
			return 0, errTunnelClosed
		case <-c.quit:
			return 0, errStreamGone
		}
		fc.mu.Lock()
	}
}

// settings takes a SETTINGS frame; false: the frame is malformed.
func (t *frameTunnel) settings(payload []byte, c *frameConn) bool {
	n := binary.BigEndian.Uint32(payload[0:4])
	if uint64(n)*8 != uint64(len(payload)-4) {
		return false
	}
	fc := &t.fc
	fc.mu.Lock()
	for i := range int(n) {
		e := payload[4+8*i:]
		id := binary.BigEndian.Uint32(e[0:4]) & 0xffffff
		v := int64(binary.BigEndian.Uint32(e[4:8]))
		if id == settingsInitialWindow && v <= maxWindow {
			if c != nil { // the open stream's window moves by the change
				c.sendWin += v - fc.initial
			}
			fc.initial = v
		}
	}
	fc.on.Store(true)
	fc.mu.Unlock()
	fc.signal()
	return true
}

// windowUpdate takes a WINDOW_UPDATE frame.
func (t *frameTunnel) windowUpdate(payload []byte, c *frameConn) {
	id := binary.BigEndian.Uint32(payload[0:4]) & 0x7fffffff
	delta := int64(binary.BigEndian.Uint32(payload[4:8]) & 0x7fffffff)
	fc := &t.fc
	fc.mu.Lock()
	switch {
	case id == 0:
		fc.sessOn = true
		fc.session = min(fc.session+delta, maxWindow)
	case c != nil && id == c.dataID:
		c.sendWin = min(c.sendWin+delta, maxWindow)
	}
	fc.on.Store(true)
	fc.mu.Unlock()
	fc.signal()
}

// consumed answers a data frame of n bytes on stream id (0: on no stream
// of ours) with WINDOW_UPDATEs, when the server speaks flow control.
func (t *frameTunnel) consumed(id uint32, n int) error {
	if n == 0 || !t.fc.on.Load() {
		return nil
	}
	b := appendWindowUpdate(make([]byte, 0, 2*(frameHeaderSize+8)), 0, uint32(n))
	if id != 0 {
		b = appendWindowUpdate(b, id, uint32(n))
	}
	return t.write(b)
}

func appendWindowUpdate(dst []byte, id, delta uint32) []byte {
	var b [frameHeaderSize + 8]byte
	putControlHeader(b[:], typeWindowUpdate, 0, 8)
	binary.BigEndian.PutUint32(b[8:], id&0x7fffffff)
	binary.BigEndian.PutUint32(b[12:], delta&0x7fffffff)
	return append(dst, b[:]...)
}
