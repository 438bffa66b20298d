package forward

import (
	"bytes"
	"encoding/binary"
	"net/http"

	"github.com/moby/spdystream/spdy"
)

// The SPDY/3.1 framing of the port-forward protocol, as much of it as the frame tunnel
// (frametunnel.go) needs: it carries one forwarded connection at a time, so it writes
// SYN_STREAM, data, RST_STREAM, PING and WINDOW_UPDATE frames and reads SYN_REPLY, data,
// RST_STREAM, PING, GOAWAY, SETTINGS and WINDOW_UPDATE frames; anything else is skipped.

const (
	spdyVersion     = 3
	frameHeaderSize = 8

	typeSynStream = 1
	typeSynReply  = 2
	typeRstStream = 3
	typePing      = 6
	typeGoAway    = 7

	flagFin   = 0x01
	rstCancel = 5

	// maxControlSize bounds a control frame's payload, read whole: the server's are small
	// (SYN_REPLY header blocks); a larger one is taken for a broken stream of frames.
	maxControlSize = 1 << 20
)

// frameHeader is what the 8 bytes every frame starts with say.
type frameHeader struct {
	control bool
	version uint16 // control frames
	typ     uint16 // control frames
	id      uint32 // data frames: the stream
	flags   byte
	length  int // of the payload that follows
}

func parseFrameHeader(b []byte) frameHeader {
	h := frameHeader{flags: b[4], length: int(b[5])<<16 | int(b[6])<<8 | int(b[7])}
	if b[0]&0x80 != 0 {
		h.control = true
		h.version = binary.BigEndian.Uint16(b[0:2]) & 0x7fff
		h.typ = binary.BigEndian.Uint16(b[2:4])
	} else {
		h.id = binary.BigEndian.Uint32(b[0:4]) & 0x7fffffff
	}
	return h
}

// validControl says whether a control frame's header is one to read on: SPDY/3, a payload
// within maxControlSize, and the exact length of the frames whose length is fixed (the
// stream ID of SYN_REPLY first). A frame that fails this leaves the framing in doubt: the
// tunnel is ended.
func (h frameHeader) validControl() bool {
	if h.version != spdyVersion || h.length > maxControlSize {
		return false
	}
	switch h.typ {
	case typeSynReply:
		return h.length >= 4
	case typeRstStream, typeGoAway:
		return h.length == 8
	case typePing:
		return h.length == 4
	case typeWindowUpdate:
		return h.length == 8
	case typeSettings:
		return h.length >= 4 && (h.length-4)%8 == 0
	}
	return true
}

// frameStreamID reads the stream ID a SYN_REPLY or RST_STREAM payload starts with.
func frameStreamID(payload []byte) uint32 {
	return binary.BigEndian.Uint32(payload[0:4]) & 0x7fffffff
}

func putDataHeader(b []byte, id uint32, flags byte, n int) {
	binary.BigEndian.PutUint32(b[0:4], id&0x7fffffff)
	b[4] = flags
	b[5], b[6], b[7] = byte(n>>16), byte(n>>8), byte(n)
}

func putControlHeader(b []byte, typ uint16, flags byte, n int) {
	binary.BigEndian.PutUint16(b[0:2], 0x8000|spdyVersion)
	binary.BigEndian.PutUint16(b[2:4], typ)
	b[4] = flags
	b[5], b[6], b[7] = byte(n>>16), byte(n>>8), byte(n)
}

func appendPing(dst []byte, id uint32) []byte {
	var b [frameHeaderSize + 4]byte
	putControlHeader(b[:], typePing, 0, 4)
	binary.BigEndian.PutUint32(b[8:], id)
	return append(dst, b[:]...)
}

func appendRstStream(dst []byte, id, status uint32) []byte {
	var b [frameHeaderSize + 8]byte
	putControlHeader(b[:], typeRstStream, 0, 8)
	binary.BigEndian.PutUint32(b[8:], id&0x7fffffff)
	binary.BigEndian.PutUint32(b[12:], status)
	return append(dst, b[:]...)
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

// appendSynStream appends a SYN_STREAM frame for stream id whose headers are the name/value
// pairs kv. Its header block is a zlib stored block: stored blocks need no compressor
// (spdystream's framer keeps one best-compression zlib writer, ~640 KB of hash tables, per
// tunnel, which dominated the memory of many pre-dialled tunnels), and the peer's decompressor
// reads them like any other. The compression context spans the connection: the tunnel's first
// SYN_STREAM (first) carries the zlib header with the dictionary ID.
func appendSynStream(dst []byte, id uint32, first bool, kv ...string) []byte {
	start := len(dst)
	dst = append(dst, 0x80, spdyVersion, 0, typeSynStream, 0, 0, 0, 0) // length set below
	dst = binary.BigEndian.AppendUint32(dst, id&0x7fffffff)
	dst = append(dst, 0, 0, 0, 0, 0, 0) // associated stream, priority, slot
	if first {
		cmf, flg := byte(0x78), byte(0x20) // deflate, 32K window; FDICT
		flg += uint8(31 - (uint16(cmf)<<8+uint16(flg))%31)
		dst = append(dst, cmf, flg)
		dst = append(dst, storedDictID...)
	}
	blk := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0) // stored block header, lengths set below
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(kv)/2))
	for i := 0; i+1 < len(kv); i += 2 {
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(kv[i])))
		for _, c := range []byte(kv[i]) { // names are lower case on the wire
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			dst = append(dst, c)
		}
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(kv[i+1])))
		dst = append(dst, kv[i+1]...)
	}
	n := len(dst) - blk - 5
	dst[blk+1], dst[blk+2], dst[blk+3], dst[blk+4] = byte(n), byte(n>>8), ^byte(n), ^byte(n>>8)
	dst = append(dst, 0, 0, 0, 0xff, 0xff) // an empty stored block, as a sync flush ends
	l := len(dst) - start - frameHeaderSize
	dst[start+5], dst[start+6], dst[start+7] = byte(l>>16), byte(l>>8), byte(l)
	return dst
}
