// Package registryrelay is the node relay of the in-cluster registry: a plain TCP relay that
// listens on a node's loopback (127.0.0.1:5100 by default) and passes every connection on to the
// registry Service. Container runtimes pull images from 127.0.0.1 over plain HTTP without any
// node configuration, so pods can name images 127.0.0.1:5100/NAME and have them served by the
// registry that `ergomake install` put in the cluster. It runs in a hostNetwork DaemonSet as
// `ergomake-operator registry-relay`.
package registryrelay

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// DefaultListen is where the relay listens on each node. 5100 clashes with none of the local
// cluster's ports (hack/cluster/lib.sh) nor with the usual ones of a node.
const DefaultListen = "127.0.0.1:5100"

// DefaultDialTimeout bounds how long a connection waits for the registry to accept.
const DefaultDialTimeout = 10 * time.Second

// Relay passes connections on to Upstream.
type Relay struct {
	// Upstream is the registry's address, host:port (a Service DNS name or IP).
	Upstream string
	// DialTimeout bounds each dial of Upstream (default DefaultDialTimeout).
	DialTimeout time.Duration
	// Logf, when set, receives one line per connection that could not be relayed.
	Logf func(format string, args ...any)

	wg sync.WaitGroup
}

// Serve accepts connections on ln and relays each until both directions are done. When ctx ends it
// closes ln, waits for the connections in flight and returns nil; any other accept error is
// returned (after the wait).
func (r *Relay) Serve(ctx context.Context, ln net.Listener) error {
	if r.Upstream == "" {
		return errors.New("registry relay: no upstream")
	}
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	defer r.wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.handle(ctx, c)
		}()
	}
}

func (r *Relay) handle(ctx context.Context, client net.Conn) {
	defer client.Close()
	timeout := r.DialTimeout
	if timeout <= 0 {
		timeout = DefaultDialTimeout
	}
	d := net.Dialer{Timeout: timeout}
	up, err := d.DialContext(ctx, "tcp", r.Upstream)
	if err != nil {
		r.logf("registry relay: %s: %v", client.RemoteAddr(), err)
		return
	}
	defer up.Close()
	Pipe(client, up)
}

func (r *Relay) logf(format string, args ...any) {
	if r.Logf != nil {
		r.Logf(format, args...)
	}
}

// Pipe copies a to b and b to a until both directions end. When one side stops sending, the other
// is told so with a half-close (CloseWrite), so request/response protocols that signal the end of
// a request by closing their sending side work. Pipe closes a and b only when a copy fails (a
// reset rather than an orderly end), so that the other direction ends too.
func Pipe(a, b net.Conn) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		copyHalf(b, a)
	}()
	go func() {
		defer wg.Done()
		copyHalf(a, b)
	}()
	wg.Wait()
}

// copyHalf copies src to dst, then half-closes dst's sending side. On an error (a reset rather
// than an orderly end) both connections are closed, so the other direction ends too.
func copyHalf(dst, src net.Conn) {
	_, err := io.Copy(dst, src)
	if err != nil {
		dst.Close()
		src.Close()
		return
	}
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		if cw.CloseWrite() == nil {
			return
		}
	}
	// no half-close on this kind of connection: closing it is the only way to say "done"
	dst.Close()
}
