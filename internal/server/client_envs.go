package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// The client side of `up` and `down` through the server (envs.go).

// long is an http.Client for requests that last (an upload, a watch, a wait): no overall
// timeout, only ctx.
func (c *Client) long() *http.Client {
	return &http.Client{Transport: c.http.Transport}
}

func (c *Client) doJSON(ctx context.Context, hc *http.Client, method, path string, in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return c.doWith(ctx, hc, method, path, bytes.NewReader(b), out)
}

func envPath(name string, rest ...string) string {
	p := "/v1/envs/" + url.PathEscape(name)
	for _, r := range rest {
		p += "/" + r
	}
	return p
}

// Apply sends the project (POST /v1/envs): the server translates, checks and applies it.
func (c *Client) Apply(ctx context.Context, req ApplyRequest) (ApplyResponse, error) {
	var out ApplyResponse
	return out, c.doJSON(ctx, c.long(), http.MethodPost, "/v1/envs", req, &out)
}

// GetEnv returns the caller's environment name.
func (c *Client) GetEnv(ctx context.Context, name string) (*v1alpha1.ErgomakeEnv, error) {
	var env v1alpha1.ErgomakeEnv
	if err := c.do(ctx, http.MethodGet, envPath(name), nil, &env); err != nil {
		return nil, err
	}
	return &env, nil
}

// ErrWatchEnded is WatchEnv's error when the stream ended without the environment being deleted
// (the server restarted, the connection broke): watch again.
var ErrWatchEnded = errors.New("the server ended the watch")

// WatchEnv calls fn with each state of the environment (the current one first) until fn returns
// an error (returned), ctx ends (its error), or the environment is deleted (fn gets
// WatchEvent{Deleted: true}, then nil). A stream that ends otherwise is an error wrapping
// ErrWatchEnded.
func (c *Client) WatchEnv(ctx context.Context, name string, fn func(WatchEvent) error) error {
	deleted := false
	err := c.ndjson(ctx, http.MethodGet, envPath(name, "watch"), nil, func(line []byte) (bool, error) {
		var ev WatchEvent
		if err := json.Unmarshal(line, &ev); err != nil {
			return false, fmt.Errorf("the server's watch stream: %w", err)
		}
		if ev.Error != "" {
			return false, fmt.Errorf("%w: %s", ErrWatchEnded, ev.Error)
		}
		if err := fn(ev); err != nil {
			return false, err
		}
		deleted = ev.Deleted
		return !deleted, nil
	})
	switch {
	case errors.Is(err, errStreamBroken):
		return fmt.Errorf("%w: %v", ErrWatchEnded, err)
	case err != nil || deleted:
		return err
	}
	return ErrWatchEnded
}

// answerError is the *APIError of a non-2xx answer.
func answerError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var eb ErrorBody
	if json.Unmarshal(b, &eb) == nil && eb.Error != "" {
		return &APIError{Status: resp.StatusCode, Message: eb.Error}
	}
	return &APIError{Status: resp.StatusCode, Message: fmt.Sprintf("the server answered %s", resp.Status)}
}

// Heartbeat renews the environment's heartbeat for the session that holds it (409 when another
// session holds it, 404 when it is gone).
func (c *Client) Heartbeat(ctx context.Context, name, sessionID string) error {
	return c.doJSON(ctx, c.http, http.MethodPost, envPath(name, "heartbeat"), SessionRequest{Session: sessionID}, nil)
}

// ForwardHeartbeat renews the heartbeat of an environment the caller forwards into without
// holding it (`ergomake forward`), as a forward with a kubeconfig does.
func (c *Client) ForwardHeartbeat(ctx context.Context, name string) error {
	return c.doJSON(ctx, c.http, http.MethodPost, envPath(name, "heartbeat"), SessionRequest{Forward: true}, nil)
}

// Detach ends the session's attachment: the environment's TTL becomes ttl from now, and its
// session record goes when it is still this session's.
func (c *Client) Detach(ctx context.Context, name, sessionID string, ttl time.Duration) error {
	return c.doJSON(ctx, c.http, http.MethodPost, envPath(name, "detach"), SessionRequest{Session: sessionID, TTL: ttl.String()}, nil)
}

// DeleteEnvWait deletes the caller's environment name and returns once it and its namespace are
// gone.
func (c *Client) DeleteEnvWait(ctx context.Context, name string) (Deleted, error) {
	var d Deleted
	return d, c.doWith(ctx, c.long(), http.MethodDelete, envPath(name)+"?wait=1", nil, &d)
}
