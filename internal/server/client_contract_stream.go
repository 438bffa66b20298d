package server

// The client side of the stream routes of CONTRACTS12 (logs, dial, builder dial), written by the
// CLI's side against the contract until the server side's own (api_stream.go) land: then this
// file goes.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// LogOptions select the lines of GET /v1/envs/{name}/logs.
type LogOptions struct {
	Service    string
	Follow     bool
	Tail       int64
	Timestamps bool
}

// LogLine is one line of GET /v1/envs/{name}/logs.
type LogLine struct {
	Service string `json:"service"`
	Pod     string `json:"pod"`
	Line    string `json:"line"`
	Error   string `json:"error,omitempty"`
}

// Logs calls fn with every log line of the environment's pods (of o.Service when set).
func (c *Client) Logs(ctx context.Context, name string, o LogOptions, fn func(LogLine) error) error {
	q := url.Values{}
	if o.Service != "" {
		q.Set("service", o.Service)
	}
	if o.Follow {
		q.Set("follow", "1")
	}
	if o.Tail >= 0 {
		q.Set("tail", strconv.FormatInt(o.Tail, 10))
	}
	if o.Timestamps {
		q.Set("timestamps", "1")
	}
	p := "/v1/envs/" + url.PathEscape(name) + "/logs"
	if len(q) > 0 {
		p += "?" + q.Encode()
	}
	return c.stream(ctx, p, func(line []byte) error {
		var l LogLine
		if err := json.Unmarshal(line, &l); err != nil {
			return fmt.Errorf("the server's log stream: %w", err)
		}
		return fn(l)
	})
}

// Dial opens a connection to port of a ready pod of the environment's service, through the server.
func (c *Client) Dial(ctx context.Context, name, service string, port int32) (net.Conn, error) {
	q := url.Values{"service": {service}, "port": {strconv.Itoa(int(port))}}
	return c.upgrade(ctx, "/v1/envs/"+url.PathEscape(name)+"/dial?"+q.Encode())
}

// DialBuilder opens a connection to the cluster's builder (BuildKit), through the server.
func (c *Client) DialBuilder(ctx context.Context) (net.Conn, error) {
	return c.upgrade(ctx, "/v1/builder/dial")
}

// stream reads an NDJSON answer, a line at a time (blank lines are keep-alives).
func (c *Client) stream(ctx context.Context, path string, fn func([]byte) error) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base.String()+path, nil)
	if err != nil {
		return err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("Accept", "application/x-ndjson")
	resp, err := (&http.Client{Transport: c.http.Transport}).Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("reaching the ergomake server %s: %w", c.base.Host, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return answerError(resp)
	}
	r := bufio.NewReaderSize(resp.Body, 64<<10)
	for {
		line, err := r.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			if ferr := fn(line); ferr != nil {
				return ferr
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("the ergomake server %s: %w", c.base.Host, err)
		}
	}
}

// UpgradeProtocol is the Upgrade token of the dial routes: raw bytes both ways after 101.
const UpgradeProtocol = "ergomake-tcp"

// upgrade opens an HTTP/1.1 connection to the server, asks for path with Upgrade: ergomake-tcp
// and returns the connection once the server switched protocols.
func (c *Client) upgrade(ctx context.Context, path string) (net.Conn, error) {
	tr, _ := c.http.Transport.(*http.Transport)
	var tc *tls.Config
	if tr != nil && tr.TLSClientConfig != nil {
		tc = tr.TLSClientConfig.Clone()
	} else {
		tc = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	tc.NextProtos = []string{"http/1.1"}
	host := c.base.Host
	if c.base.Port() == "" {
		host = net.JoinHostPort(c.base.Hostname(), "443")
	}
	if tc.ServerName == "" {
		tc.ServerName = c.base.Hostname()
	}
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 15 * time.Second, KeepAlive: 30 * time.Second}, Config: tc}
	raw, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, fmt.Errorf("reaching the ergomake server %s: %w", c.base.Host, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base.String()+path, nil)
	if err != nil {
		raw.Close()
		return nil, err
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", UpgradeProtocol)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	// The request and its answer are bounded by ctx; the connection lives on after.
	stop := context.AfterFunc(ctx, func() { _ = raw.SetDeadline(time.Now()) })
	defer stop()
	if err := req.Write(raw); err != nil {
		raw.Close()
		return nil, fmt.Errorf("the ergomake server %s: %w", c.base.Host, err)
	}
	br := bufio.NewReader(raw)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		raw.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("the ergomake server %s: %w", c.base.Host, err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		err := answerError(resp)
		resp.Body.Close()
		raw.Close()
		return nil, err
	}
	if !stop() {
		raw.Close()
		return nil, ctx.Err()
	}
	_ = raw.SetDeadline(time.Time{})
	return &bufferedConn{Conn: raw, r: br}, nil
}

// bufferedConn reads what the answer's reader already buffered first.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufferedConn) Read(p []byte) (int, error) { return b.r.Read(p) }

// CloseWrite half-closes the connection (the TLS close_notify): the far end reads EOF.
func (b *bufferedConn) CloseWrite() error {
	if cw, ok := b.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
