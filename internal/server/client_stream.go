package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/ergomake/ergomake/internal/forward"
)

// Retryable says whether the same request may succeed if tried again a little later: the server
// is busy (429), has no ready pod yet or is restarting (503, 504). The forwarder
// (forward.NewRouted) retries those within its wait.
func (e *APIError) Retryable() bool {
	return e.Status == http.StatusTooManyRequests || e.Status == http.StatusServiceUnavailable ||
		e.Status == http.StatusGatewayTimeout
}

// Logs streams the log lines of the caller's environment name (of o.Service, or every service)
// to fn until the stream ends (without Follow: once every log was read), fn fails (its error is
// returned) or ctx ends (nil).
func (c *Client) Logs(ctx context.Context, name string, o LogOptions, fn func(LogLine) error) error {
	q := url.Values{}
	if o.Service != "" {
		q.Set("service", o.Service)
	}
	if o.Follow {
		q.Set("follow", "1")
	}
	q.Set("tail", strconv.FormatInt(o.Tail, 10))
	if o.Timestamps {
		q.Set("timestamps", "1")
	}
	err := c.ndjson(ctx, http.MethodGet, envPath(name, "logs")+"?"+q.Encode(), nil, func(line []byte) (bool, error) {
		var l LogLine
		if err := json.Unmarshal(line, &l); err != nil {
			return false, fmt.Errorf("the server's log stream: %w", err)
		}
		return true, fn(l)
	})
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// Dial opens a TCP connection to port of a ready pod of service in the caller's environment name,
// through the server (GET /v1/envs/{name}/dial, upgraded). The connection supports CloseWrite
// (half-close). ctx bounds the dial only. Errors are *APIError when the server refused: 404 no such
// environment or service, 403 a port the service does not declare, 503 no ready pod within the
// server's wait (Retryable), 502 the pod refused the connection.
func (c *Client) Dial(ctx context.Context, name, service string, port int32) (net.Conn, error) {
	return c.DialFirst(ctx, name, service, port, nil)
}

// DialFirst is Dial for forward.NewRoutedFirst: the local connection's first bytes (first), when
// they come before the server's answer, go with the request, and the server passes them to the
// pod as soon as it dialled it, instead of one round trip later. The server reads nothing after
// the request as HTTP (an answer other than 101 closes the connection), so bytes sent with a
// refused dial reach nobody; the forwarder sends them again with its next try.
func (c *Client) DialFirst(ctx context.Context, name, service string, port int32, first *forward.First) (net.Conn, error) {
	q := url.Values{"service": {service}, "port": {strconv.Itoa(int(port))}}
	return c.upgrade(ctx, "/v1/envs/"+url.PathEscape(name)+"/dial?"+q.Encode(), first)
}

// DialBuilder opens a connection to the builder's BuildKit port through the server
// (GET /v1/builder/dial): what a BuildKit client's dialer returns.
func (c *Client) DialBuilder(ctx context.Context) (net.Conn, error) {
	return c.upgrade(ctx, "/v1/builder/dial", nil)
}

func (c *Client) authorize(req *http.Request) {
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
}

// upgrade sends an ergomake-tcp upgrade request for path on a new TLS connection (resuming the
// TLS session of an earlier one when it can) and returns the connection once the server
// switched protocols; first as upgradeTo.
func (c *Client) upgrade(ctx context.Context, path string, first *forward.First) (net.Conn, error) {
	conn, _, err := c.upgradeTo(ctx, path, UpgradeProtocol, first)
	if err != nil {
		return nil, err
	}
	return conn, nil
}

// upgradeTo is upgrade to proto; it returns the headers of the server's 101 answer too. first,
// when not nil, is sent after the request as soon as it is ready, if that is before the answer.
func (c *Client) upgradeTo(ctx context.Context, path, proto string, first *forward.First) (*upgradedConn, http.Header, error) {
	host := c.base.Host
	if c.base.Port() == "" {
		host = net.JoinHostPort(c.base.Hostname(), "443")
	}
	conn := c.spares.take(c.dialTLS, host)
	// The spares are topped up once this dial has its answer: handshakes beside it would compete
	// with it for the CPU of both ends.
	defer c.spares.refill()
	if conn == nil {
		raw, err := dialTLS(ctx, c.dialTLS, host)
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			return nil, nil, fmt.Errorf("reaching the ergomake server %s: %w", c.base.Host, err)
		}
		conn = raw
	}
	// ctx bounds the request and its answer: a cancel closes the connection.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	fail := func(err error) (*upgradedConn, http.Header, error) {
		stop()
		_ = conn.Close()
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		return nil, nil, err
	}
	req, err := http.NewRequest(http.MethodGet, c.base.String()+path, nil)
	if err != nil {
		return fail(err)
	}
	c.authorize(req)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", proto)
	var head bytes.Buffer
	if err := req.Write(&head); err != nil {
		return fail(err)
	}
	// The first bytes, when they are there already, go in the same write (one TLS record).
	var waitFirst <-chan struct{}
	if first != nil {
		if b := first.Take(); b != nil {
			head.Write(b)
		} else {
			select {
			case <-first.Ready(): // the read gave nothing (the local side ended at once)
			default:
				waitFirst = first.Ready()
			}
		}
	}
	if _, err := conn.Write(head.Bytes()); err != nil {
		return fail(fmt.Errorf("reaching the ergomake server %s: %w", c.base.Host, err))
	}
	br := bufio.NewReaderSize(conn, 4<<10)
	var resp *http.Response
	if waitFirst == nil {
		resp, err = http.ReadResponse(br, req)
	} else {
		type answer struct {
			resp *http.Response
			err  error
		}
		answers := make(chan answer, 1)
		go func() {
			r, err := http.ReadResponse(br, req)
			answers <- answer{r, err}
		}()
		select {
		case a := <-answers:
			resp, err = a.resp, a.err
		case <-waitFirst:
			if b := first.Take(); b != nil {
				_, _ = conn.Write(b) // a failed write fails the answer's read too
			}
			a := <-answers
			resp, err = a.resp, a.err
		}
	}
	if err != nil {
		return fail(fmt.Errorf("the ergomake server's answer: %w", err))
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		err := answerError(resp)
		_ = resp.Body.Close()
		return fail(err)
	}
	if !stop() { // ctx ended meanwhile
		_ = conn.Close()
		return nil, nil, ctx.Err()
	}
	_ = conn.SetDeadline(time.Time{})
	uc := &upgradedConn{Conn: conn}
	if n := br.Buffered(); n > 0 { // bytes of the far side that came with the answer
		b, _ := br.Peek(n)
		uc.pending = append([]byte(nil), b...)
	}
	return uc, resp.Header, nil
}

func dialTLS(ctx context.Context, cfg *tls.Config, host string) (*tls.Conn, error) {
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}, Config: cfg}
	raw, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, err
	}
	return raw.(*tls.Conn), nil
}

// Spare connections: while dials come (one in the last spareWarm), the client keeps spareN TLS
// connections to the server open and handshaken, each used for one dial, so that a new forwarded
// connection costs one round trip (the upgrade) instead of three (TCP, TLS, upgrade). A spare is
// used within spareMaxAge of its handshake (the server gives a connection 10 s to send its
// request: ReadHeaderTimeout) or replaced.
const (
	spareN      = 2
	spareMaxAge = 5 * time.Second
	spareWarm   = 30 * time.Second
)

type spareConn struct {
	conn *tls.Conn
	at   time.Time
}

type spares struct {
	mu       sync.Mutex
	conns    []spareConn
	lastUse  time.Time
	running  bool
	kick     chan struct{}
	failures int
}

// take returns a fresh spare connection (nil when there is none) and keeps spares coming.
func (s *spares) take(cfg *tls.Config, host string) *tls.Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastUse = time.Now()
	var got *tls.Conn
	for len(s.conns) > 0 && got == nil {
		sc := s.conns[0]
		s.conns = s.conns[1:]
		if time.Since(sc.at) < spareMaxAge {
			got = sc.conn
		} else {
			_ = sc.conn.Close()
		}
	}
	if !s.running {
		s.running = true
		s.kick = make(chan struct{}, 1)
		go s.fill(cfg, host)
	}
	return got
}

// refill wakes the filler up (once a dial has its answer).
func (s *spares) refill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
}

// fill keeps spareN fresh spares while dials come, then closes them and ends.
func (s *spares) fill(cfg *tls.Config, host string) {
	for {
		s.mu.Lock()
		if time.Since(s.lastUse) > spareWarm || s.failures > 3 {
			for _, sc := range s.conns {
				_ = sc.conn.Close()
			}
			s.conns, s.running, s.failures = nil, false, 0
			s.mu.Unlock()
			return
		}
		// Drop the ones about to age out; the rest stay.
		keep := s.conns[:0]
		for _, sc := range s.conns {
			if time.Since(sc.at) < spareMaxAge-time.Second {
				keep = append(keep, sc)
			} else {
				_ = sc.conn.Close()
			}
		}
		s.conns = keep
		need := spareN - len(s.conns)
		s.mu.Unlock()
		for range need {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			conn, err := dialTLS(ctx, cfg, host)
			cancel()
			s.mu.Lock()
			if err != nil {
				s.failures++
				s.mu.Unlock()
				break
			}
			s.failures = 0
			s.conns = append(s.conns, spareConn{conn: conn, at: time.Now()})
			s.mu.Unlock()
		}
		t := time.NewTimer(time.Second)
		select {
		case <-s.kick:
		case <-t.C:
		}
		t.Stop()
	}
}

// upgradedConn is a TLS connection the server switched to raw bytes.
type upgradedConn struct {
	*tls.Conn
	mu      sync.Mutex
	pending []byte
}

func (u *upgradedConn) Read(b []byte) (int, error) {
	u.mu.Lock()
	if len(u.pending) > 0 {
		n := copy(b, u.pending)
		u.pending = u.pending[n:]
		u.mu.Unlock()
		return n, nil
	}
	u.mu.Unlock()
	return u.Conn.Read(b)
}

// CloseWrite ends the data sent (the far side's read sees its end); reading goes on.
func (u *upgradedConn) CloseWrite() error { return u.Conn.CloseWrite() }
