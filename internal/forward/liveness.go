package forward

import (
	"errors"
	"time"
)

// errHalfOpen: the server stayed silent past a probe's deadline; the tunnel
// was closed. Nothing of the connection was sent to the pod.
var errHalfOpen = errors.New("the tunnel is half-open: no reply from the server")

// timing is when a frame tunnel pings its server and how long it waits for
// a sign of life.
type timing struct {
	// pingEvery: every tunnel pings the server this often (as client-go
	// does), which keeps it alive through whatever times idle
	// connections out.
	pingEvery time.Duration
	// pingTimeout: an idle tunnel that heard nothing from the server this
	// long after its ping is half-open and closed. A tunnel carrying a
	// connection is not judged this way: its reader may rightly be held
	// up by a slow local reader, and the server's replies with it.
	pingTimeout time.Duration
	// probeAfter: a tunnel taken for a new connection after this long
	// without a frame from the server sends a ping with its SYN_STREAMs ...
	probeAfter time.Duration
	// probeTimeout: ... and is given up when nothing at all comes back
	// within this (a slow server still answers the ping).
	probeTimeout time.Duration
}

var defaultTiming = timing{
	pingEvery:    10 * time.Second,
	pingTimeout:  5 * time.Second,
	probeAfter:   time.Second,
	probeTimeout: 2 * time.Second,
}

// lastHeard is when the last frame came from the server.
func (t *frameTunnel) lastHeard() time.Time { return time.Unix(0, t.heard.Load()) }

// quietSince says whether the server has sent nothing since at.
func (t *frameTunnel) quietSince(at time.Time) bool { return t.lastHeard().Before(at) }

// nextPing returns the ID of this side's next ping (odd).
func (t *frameTunnel) nextPing() uint32 { return t.pingID.Add(2) - 1 }

// ping pings the server every pingEvery and closes the tunnel when it is
// idle and the server did not answer within pingTimeout.
func (t *frameTunnel) ping() {
	tick := time.NewTicker(t.timing.pingEvery)
	defer tick.Stop()
	frame := make([]byte, 0, frameHeaderSize+4)
	for {
		select {
		case <-t.closed:
			return
		case <-tick.C:
		}
		uses, idle := t.uses.Load(), t.cur.Load() == nil
		sent := time.Now()
		frame = appendPing(frame[:0], t.nextPing())
		if err := t.write(frame); err != nil {
			t.kill()
			return
		}
		if !idle {
			continue
		}
		deadline := time.NewTimer(t.timing.pingTimeout)
		select {
		case <-t.closed:
			deadline.Stop()
			return
		case <-deadline.C:
		}
		if t.quietSince(sent) && t.cur.Load() == nil && t.uses.Load() == uses {
			t.kill()
			return
		}
	}
}
