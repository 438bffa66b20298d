package server

// The client side of the session routes of CONTRACTS12 (POST /v1/envs, GET /v1/envs/{name},
// watch, heartbeat, detach, DELETE ?wait=1, logs, dial, builder dial), written by the CLI's side
// against the contract. The server side's own types and client methods (api_envs.go,
// api_stream.go) replace this file when they land: keep the signatures exactly the contract's.

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

	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// ApplyRequest is POST /v1/envs's body.
type ApplyRequest struct {
	// Project is the compose-go *types.Project as JSON, loaded by the CLI.
	Project json.RawMessage `json:"project"`
	// Files: absolute path on the user's machine → contents of every file translate read.
	Files map[string][]byte `json:"files"`
	// TTL is a time.Duration string.
	TTL string `json:"ttl,omitempty"`
	// Builds are what the CLI built (image by digest).
	Builds map[string]v1alpha1.BuildSpec `json:"builds,omitempty"`
	// Session is the attaching session.
	Session v1alpha1.Session `json:"session"`
}

// ApplyResponse is POST /v1/envs's answer.
type ApplyResponse struct {
	Env *v1alpha1.ErgomakeEnv `json:"env"`
	// Created: this request created the environment (so its teardown deletes it).
	Created  bool     `json:"created"`
	Warnings []string `json:"warnings,omitempty"`
}

// WatchEvent is one line of GET /v1/envs/{name}/watch.
type WatchEvent struct {
	Env     *v1alpha1.ErgomakeEnv `json:"env,omitempty"`
	Deleted bool                  `json:"deleted,omitempty"`
}

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

func envPath(name string, rest string) string {
	return "/v1/envs/" + url.PathEscape(name) + rest
}

// Apply sends the loaded project to the server, which translates and applies it.
func (c *Client) Apply(ctx context.Context, req ApplyRequest) (ApplyResponse, error) {
	var out ApplyResponse
	b, err := json.Marshal(req)
	if err != nil {
		return out, err
	}
	return out, c.do(ctx, http.MethodPost, "/v1/envs", bytes.NewReader(b), &out)
}

// GetEnv returns the caller's environment name (404 *APIError when they have none).
func (c *Client) GetEnv(ctx context.Context, name string) (*v1alpha1.ErgomakeEnv, error) {
	var env v1alpha1.ErgomakeEnv
	if err := c.do(ctx, http.MethodGet, envPath(name, ""), nil, &env); err != nil {
		return nil, err
	}
	return &env, nil
}

// WatchEnv calls fn with every state of the environment until fn errs (its error), ctx ends
// (ctx's error), or the stream ends (nil; after a Deleted event, or the server went away).
func (c *Client) WatchEnv(ctx context.Context, name string, fn func(WatchEvent) error) error {
	return c.stream(ctx, envPath(name, "/watch"), func(line []byte) error {
		var ev WatchEvent
		if err := json.Unmarshal(line, &ev); err != nil {
			return fmt.Errorf("the server's watch stream: %w", err)
		}
		return fn(ev)
	})
}

// Heartbeat renews the heartbeat of the environment the session holds.
func (c *Client) Heartbeat(ctx context.Context, name, sessionID string) error {
	b, _ := json.Marshal(map[string]string{"session": sessionID})
	return c.do(ctx, http.MethodPost, envPath(name, "/heartbeat"), bytes.NewReader(b), nil)
}

// Detach ends the session's attachment, leaving the environment to ttl.
func (c *Client) Detach(ctx context.Context, name, sessionID string, ttl time.Duration) error {
	b, _ := json.Marshal(map[string]string{"session": sessionID, "ttl": ttl.String()})
	return c.do(ctx, http.MethodPost, envPath(name, "/detach"), bytes.NewReader(b), nil)
}

// DeleteEnvWait deletes the caller's environment and returns once it is gone.
func (c *Client) DeleteEnvWait(ctx context.Context, name string) (Deleted, error) {
	var d Deleted
	return d, c.doStream(ctx, http.MethodDelete, envPath(name, "?wait=1"), &d)
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
	p := envPath(name, "/logs")
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
	return c.upgrade(ctx, envPath(name, "/dial?"+q.Encode()))
}

// DialBuilder opens a connection to the cluster's builder (BuildKit), through the server.
func (c *Client) DialBuilder(ctx context.Context) (net.Conn, error) {
	return c.upgrade(ctx, "/v1/builder/dial")
}

// streamClient is the client of answers that last: no overall timeout.
func (c *Client) streamClient() *http.Client {
	return &http.Client{Transport: c.http.Transport}
}

// doStream is do without the overall timeout (an answer that comes once the server is done).
func (c *Client) doStream(ctx context.Context, method, path string, out any) error {
	cp := *c
	cp.http = c.streamClient()
	return cp.do(ctx, method, path, nil, out)
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
	resp, err := c.streamClient().Do(req)
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

// answerError is the *APIError of a non-2xx answer.
func answerError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var eb ErrorBody
	if json.Unmarshal(b, &eb) == nil && eb.Error != "" {
		return &APIError{Status: resp.StatusCode, Message: eb.Error}
	}
	return &APIError{Status: resp.StatusCode, Message: fmt.Sprintf("the server answered %s", resp.Status)}
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
