package server

// The client side of the envs routes of CONTRACTS12 (POST /v1/envs, GET /v1/envs/{name}, watch,
// heartbeat, detach, DELETE ?wait=1), written by the CLI's side against the contract until the
// server side's own (api_envs.go, client_envs.go) land: then this file goes.

import (
	"bufio"
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
	return c.envStream(ctx, envPath(name, "/watch"), func(line []byte) error {
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

// answerError is the *APIError of a non-2xx answer.
func answerError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var eb ErrorBody
	if json.Unmarshal(b, &eb) == nil && eb.Error != "" {
		return &APIError{Status: resp.StatusCode, Message: eb.Error}
	}
	return &APIError{Status: resp.StatusCode, Message: fmt.Sprintf("the server answered %s", resp.Status)}
}

// envStream reads an NDJSON answer, a line at a time (blank lines are keep-alives).
func (c *Client) envStream(ctx context.Context, path string, fn func([]byte) error) error {
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
