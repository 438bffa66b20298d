package server

import (
	"encoding/binary"
	"fmt"
	"io"
	"sync"

	"k8s.io/client-go/tools/remotecommand"
)

// ExecProtocol is the HTTP/1.1 Upgrade token of GET /v1/envs/{name}/exec: after the 101 answer
// the connection carries frames both ways (docs/server-api.md, "exec").
const ExecProtocol = "ergomake-exec"

// Kinds of frames. A frame is its kind (1 byte), its payload's length (4 bytes, big-endian, at
// most MaxFramePayload) and its payload.
const (
	// FrameStdin (client → server): bytes of the command's standard input.
	FrameStdin byte = 0
	// FrameStdout and FrameStderr (server → client): bytes the command wrote. With a terminal the
	// command's output is all on FrameStdout.
	FrameStdout byte = 1
	FrameStderr byte = 2
	// FrameStdinEnd (client → server, empty): the standard input ended; the command's is closed.
	FrameStdinEnd byte = 3
	// FrameResize (client → server): the terminal's size, width then height, 2 bytes each,
	// big-endian.
	FrameResize byte = 4
	// FrameExit (server → client, the last): how the command ended, an ExecResult as JSON.
	FrameExit byte = 5
)

// MaxFramePayload bounds a frame's payload; longer output is sent in several frames.
const MaxFramePayload = 64 << 10

// frameWriter writes whole frames, one at a time, from any goroutine.
type frameWriter struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
}

// write sends one frame (payload at most MaxFramePayload).
func (f *frameWriter) write(kind byte, payload []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.buf = append(f.buf[:0], kind, 0, 0, 0, 0)
	binary.BigEndian.PutUint32(f.buf[1:5], uint32(len(payload)))
	f.buf = append(f.buf, payload...) // one write: one TLS record for a small frame
	_, err := f.w.Write(f.buf)
	return err
}

// frameStream is an io.Writer sending what is written as frames of one kind.
type frameStream struct {
	f    *frameWriter
	kind byte
}

func (s *frameStream) Write(b []byte) (int, error) {
	n := 0
	for len(b) > 0 {
		chunk := b[:min(len(b), MaxFramePayload)]
		if err := s.f.write(s.kind, chunk); err != nil {
			return n, err
		}
		n += len(chunk)
		b = b[len(chunk):]
	}
	return n, nil
}

// readFrame reads the next frame; payload is buf's storage, valid until the next call.
func readFrame(r io.Reader, buf []byte) (kind byte, payload []byte, err error) {
	var head [5]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(head[1:])
	if n > MaxFramePayload {
		return 0, nil, fmt.Errorf("exec stream: a frame of %d bytes is over the limit of %d", n, MaxFramePayload)
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	payload = buf[:n]
	if _, err := io.ReadFull(r, payload); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	return head[0], payload, nil
}

// resizePayload and parseResize are FrameResize's payload.
func resizePayload(s remotecommand.TerminalSize) []byte {
	b := make([]byte, 4)
	binary.BigEndian.PutUint16(b, s.Width)
	binary.BigEndian.PutUint16(b[2:], s.Height)
	return b
}

func parseResize(b []byte) (remotecommand.TerminalSize, bool) {
	if len(b) != 4 {
		return remotecommand.TerminalSize{}, false
	}
	return remotecommand.TerminalSize{Width: binary.BigEndian.Uint16(b), Height: binary.BigEndian.Uint16(b[2:])}, true
}

// sizeQueue is the terminal's sizes as the client sends them (remotecommand.TerminalSizeQueue):
// the newest one waits for the executor, older ones unread are dropped.
type sizeQueue struct {
	ch   chan remotecommand.TerminalSize
	done chan struct{}
	once sync.Once
}

func newSizeQueue() *sizeQueue {
	return &sizeQueue{ch: make(chan remotecommand.TerminalSize, 1), done: make(chan struct{})}
}

// Next returns the next size, nil once the command ended.
func (q *sizeQueue) Next() *remotecommand.TerminalSize {
	select {
	case s := <-q.ch:
		return &s
	case <-q.done:
		return nil
	}
}

func (q *sizeQueue) push(s remotecommand.TerminalSize) {
	for {
		select {
		case q.ch <- s:
			return
		case <-q.done:
			return
		default:
			select { // replace the unread one
			case <-q.ch:
			default:
			}
		}
	}
}

func (q *sizeQueue) close() { q.once.Do(func() { close(q.done) }) }
