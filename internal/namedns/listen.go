package namedns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/miekg/dns"
)

// Listener serves a Handler over UDP and TCP on one address.
type Listener struct {
	udp, tcp *dns.Server
	// Addr is the UDP address bound; the TCP one has the same port.
	Addr net.Addr
	done chan error
}

// Listen binds addr (host:port; port 0 picks one free for both transports) over UDP and TCP and
// starts serving h. Close stops it.
func Listen(addr string, h dns.Handler) (*Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("dns address %q: %w", addr, err)
	}
	var pc net.PacketConn
	var l net.Listener
	for attempt := 0; ; attempt++ {
		pc, err = net.ListenPacket("udp", addr)
		if err != nil {
			return nil, fmt.Errorf("dns: %w", err)
		}
		tcpAddr := addr
		if port == "0" {
			_, p, _ := net.SplitHostPort(pc.LocalAddr().String())
			tcpAddr = net.JoinHostPort(host, p)
		}
		l, err = net.Listen("tcp", tcpAddr)
		if err == nil {
			break
		}
		pc.Close()
		if port != "0" || attempt == 10 {
			return nil, fmt.Errorf("dns: %w", err)
		}
	}
	s := &Listener{
		udp:  &dns.Server{PacketConn: pc, Handler: h, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second},
		tcp:  &dns.Server{Listener: l, Handler: h, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second},
		Addr: pc.LocalAddr(),
		done: make(chan error, 2),
	}
	for _, srv := range []*dns.Server{s.udp, s.tcp} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { s.done <- srv.ActivateAndServe() }()
		select {
		case <-started:
		case err := <-s.done:
			s.Close()
			return nil, fmt.Errorf("dns: %w", err)
		}
	}
	return s, nil
}

// Wait returns when either transport stops serving, with its error.
func (s *Listener) Wait() <-chan error { return s.done }

// Close stops serving.
func (s *Listener) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return errors.Join(shutdown(ctx, s.udp), shutdown(ctx, s.tcp))
}

func shutdown(ctx context.Context, srv *dns.Server) error {
	err := srv.ShutdownContext(ctx)
	if err != nil && err.Error() == "dns: server not started" {
		return nil
	}
	return err
}
