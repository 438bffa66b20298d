package forward

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"
)

// A tunnel is one upgraded pods/portforward connection. It carries one local
// connection at a time (its own error and data streams), so that flow
// control, a slow reader or a failure stay within that connection. When the
// connection ends cleanly the tunnel goes back to its pod's pool.
//
// Two kinds implement it: frameTunnel speaks the port-forward protocol's
// SPDY frames itself over the WebSocket tunnel (the usual case), and
// streamTunnel drives client-go's SPDY stream connection (the SPDY fallback
// and Options.Dialer). pipe runs the same rules over either.
type tunnel interface {
	// start runs the tunnel's own goroutines, tracked by wg; gone is
	// called once, when the tunnel is dead.
	start(wg *sync.WaitGroup, gone func())
	// open creates the error and data streams of one connection to port
	// and starts copying between the data stream and local, counting the
	// bytes in st. The channel then delivers exactly one podEnd, one
	// localEnd and one errEnd event, and at most one broken, whatever
	// happens to the tunnel meanwhile. On error nothing was sent to the
	// pod.
	open(ctx context.Context, local net.Conn, port int32, st *counters) (<-chan event, error)
	// release forgets the connection open started, once its three ends
	// arrived; reusable says the tunnel is to carry another.
	release(reusable bool)
	// done is closed once the tunnel is dead.
	done() <-chan struct{}
	// kill closes the tunnel at once, ending whatever it carries.
	kill()
	// quietSince says whether the server has sent nothing since at (false
	// when the tunnel cannot tell).
	quietSince(at time.Time) bool
}

// dead reports whether t is dead.
func dead(t tunnel) bool {
	select {
	case <-t.done():
		return true
	default:
		return false
	}
}

// event is something that happened to the connection a tunnel carries.
type event struct {
	kind eventKind
	err  error  // podEnd, localEnd: how the copy ended (nil: cleanly); errEnd: reading the error stream failed
	msg  []byte // errEnd: what the pod side wrote on the error stream
}

type eventKind uint8

const (
	podEnd   eventKind = iota // the pod side's data ended (its FIN), or copying it failed
	localEnd                  // local's data ended and the data stream was half-closed, or copying it failed
	errEnd                    // the error stream ended
	broken                    // the server reset a stream, or local could not be written
)

// errTunnelClosed ends the streams of a tunnel that died.
var errTunnelClosed = errors.New("tunnel closed")
