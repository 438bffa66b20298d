package session

// A forwarder whose connections are dialled by a function (through the ergomake server), until
// forward.NewRouted (the same listeners, reconnection and pod-replacement code as the
// API-server forwarder) is there to replace it: newRouted is the only caller to change.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/ergomake/ergomake/internal/forward"
	"github.com/ergomake/ergomake/internal/server"
)

type routedForwarder struct {
	dial func(ctx context.Context, p forward.Port) (net.Conn, error)
	opts forward.Options

	mu    sync.Mutex
	lns   []routedListener
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

type routedListener struct {
	ln   net.Listener
	port forward.Port
}

func newRouted(dial func(ctx context.Context, p forward.Port) (net.Conn, error), opts forward.Options) portForwarder {
	if opts.PodWaitTimeout <= 0 {
		opts.PodWaitTimeout = 30 * time.Second
	}
	return &routedForwarder{dial: dial, opts: opts, conns: map[net.Conn]bool{}}
}

func (f *routedForwarder) logf(format string, args ...any) {
	if f.opts.Logf != nil {
		f.opts.Logf(format, args...)
	}
}

func (f *routedForwarder) Bind(ports []forward.Port) ([]forward.Binding, error) {
	var out []forward.Binding
	for _, p := range ports {
		if p.Protocol == "UDP" || p.Protocol == "udp" {
			out = append(out, forward.Binding{Port: p, Note: "UDP is not forwarded"})
			continue
		}
		host := p.HostIP
		if host == "" || host == "0.0.0.0" {
			host = "127.0.0.1"
		}
		want := p.LocalPort
		if want == 0 && p.LocalRange[0] > 0 {
			want = p.LocalRange[0]
		}
		note := ""
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(want)))
		if err != nil && want != 0 {
			ln, err = net.Listen("tcp", net.JoinHostPort(host, "0"))
			note = fmt.Sprintf("port %d is busy", want)
		}
		if err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("binding %s: %w", p.Service, err)
		}
		f.mu.Lock()
		f.lns = append(f.lns, routedListener{ln: ln, port: p})
		f.mu.Unlock()
		port := ln.Addr().(*net.TCPAddr).Port
		out = append(out, forward.Binding{Port: p, Addrs: []string{ln.Addr().String()}, LocalPort: port, Note: note})
	}
	return out, nil
}

func (f *routedForwarder) Serve(ctx context.Context) error {
	f.mu.Lock()
	lns := append([]routedListener{}, f.lns...)
	f.mu.Unlock()
	stop := context.AfterFunc(ctx, func() { _ = f.Close() })
	defer stop()
	errc := make(chan error, len(lns))
	for _, l := range lns {
		go func() {
			for {
				c, err := l.ln.Accept()
				if err != nil {
					errc <- err
					return
				}
				f.wg.Add(1)
				go func() {
					defer f.wg.Done()
					f.handle(ctx, l.port, c)
				}()
			}
		}()
	}
	for range lns {
		<-errc
	}
	f.wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return nil
}

// handle dials the connection's remote end (retrying while the server has no ready pod for it)
// and pipes bytes both ways with half-close.
func (f *routedForwarder) handle(ctx context.Context, p forward.Port, local net.Conn) {
	f.track(local, true)
	defer f.track(local, false)
	defer local.Close()
	dctx, cancel := context.WithTimeout(ctx, f.opts.PodWaitTimeout)
	var remote net.Conn
	var err error
	for {
		remote, err = f.dial(dctx, p)
		if err == nil || !server.IsStatus(err, 503) || dctx.Err() != nil {
			break
		}
		select {
		case <-dctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			f.logf("%s:%d: %v", p.Service, p.RemotePort, err)
		}
		return
	}
	f.track(remote, true)
	defer f.track(remote, false)
	defer remote.Close()
	var wg sync.WaitGroup
	wg.Add(2)
	half := func(dst, src net.Conn) {
		defer wg.Done()
		_, _ = io.Copy(dst, src)
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		} else {
			_ = dst.Close()
		}
	}
	go half(remote, local)
	go half(local, remote)
	wg.Wait()
}

func (f *routedForwarder) track(c net.Conn, on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if on {
		f.conns[c] = true
	} else {
		delete(f.conns, c)
	}
}

func (f *routedForwarder) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var errs []error
	for _, l := range f.lns {
		if err := l.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	for c := range f.conns {
		_ = c.Close()
	}
	return errors.Join(errs...)
}
