package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"k8s.io/client-go/tools/remotecommand"

	"github.com/ergomake/ergomake/internal/kube"
)

// The client side of `ergomake restart` and `ergomake exec` through the server (restart.go,
// exec.go).

// ndjson sends a request and calls fn with each non-empty line of its NDJSON answer until fn
// says to stop (false), fails (its error), or the answer ends (nil); ctx's error when ctx ended,
// one wrapping errStreamBroken when the answer broke off. A refusal is an *APIError.
func (c *Client) ndjson(ctx context.Context, method, path string, body []byte, fn func(line []byte) (bool, error)) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base.String()+path, rd)
	if err != nil {
		return err
	}
	c.authorize(req)
	req.Header.Set("Accept", "application/x-ndjson")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.long().Do(req)
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
	sc := bufio.NewScanner(resp.Body)
	sc.Split(completeLines)
	sc.Buffer(make([]byte, 64<<10), 16<<20) // a line: an environment, a log line, an event
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue // keep-alive
		}
		more, err := fn(line)
		if err != nil || !more {
			return err
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%w (%s %s): %v", errStreamBroken, method, path, err)
	}
	return nil
}

// completeLines splits an NDJSON stream into the lines a newline ends: a last line without one
// is where the stream broke off, not a line.
func completeLines(data []byte, _ bool) (int, []byte, error) {
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		return i + 1, data[:i], nil
	}
	return 0, nil, nil
}

// errStreamBroken is wrapped by ndjson's error when the answer broke off (a read error).
var errStreamBroken = errors.New("the ergomake server's answer broke off")

// Restart restarts services of the caller's environment name (every started long-running one
// when none is named) and waits up to timeout until they are ready again, calling fn with each
// event of the server's stream (the final one included). It returns nil when the restart is done,
// ctx.Err() when ctx ended, the server's reason when it failed (an error), *APIError when the
// server refused (404 no such environment, 409 a service that cannot be restarted).
func (c *Client) Restart(ctx context.Context, name string, req RestartRequest, fn func(RestartEvent) error) error {
	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	var end *RestartEvent
	err = c.ndjson(ctx, http.MethodPost, envPath(name, "restart"), b, func(line []byte) (bool, error) {
		var ev RestartEvent
		if err := json.Unmarshal(line, &ev); err != nil {
			return false, err
		}
		if err := fn(ev); err != nil {
			return false, err
		}
		if ev.Kind == RestartDone || ev.Kind == RestartFailed {
			end = &ev
			return false, nil
		}
		return true, nil
	})
	switch {
	case err != nil:
		return err
	case end == nil:
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return errors.New("the ergomake server ended the restart before it finished: see `ergomake ps`")
	case end.Kind == RestartFailed:
		return errors.New(end.Error)
	}
	return nil
}

// ExecStreams are the local ends of a command run through the server.
type ExecStreams struct {
	// Stdin is streamed to the command when the request attaches it; its end closes the
	// command's.
	Stdin io.Reader
	// Stdout and Stderr receive the command's output (with a terminal, all of it on Stdout).
	Stdout, Stderr io.Writer
	// Sizes, with a terminal, gives its size and then each change (nil keeps the default).
	Sizes remotecommand.TerminalSizeQueue
}

// Exec runs req in a running container of the caller's environment name through the server
// (GET /v1/envs/{name}/exec, upgraded to ExecProtocol) until the command ends, ctx ends (its
// error) or the connection breaks. The result names the pod and has the command's exit code; err
// is a *kube.ExecStartError when the command could not be started (it never ran), an *APIError
// when the server refused (404 no such environment, 409 no such service or no running
// replica).
func (c *Client) Exec(ctx context.Context, name string, req ExecRequest, s ExecStreams) (ExecResult, error) {
	conn, hdr, err := c.upgradeTo(ctx, envPath(name, "exec")+"?"+execQuery(req).Encode(), ExecProtocol, nil)
	if err != nil {
		return ExecResult{}, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	res := ExecResult{Pod: hdr.Get("Ergomake-Pod")}
	fw := &frameWriter{w: conn}
	if req.Stdin && s.Stdin != nil {
		go func() {
			buf := make([]byte, 32<<10)
			for {
				n, err := s.Stdin.Read(buf)
				if n > 0 && fw.write(FrameStdin, buf[:n]) != nil {
					return
				}
				if err != nil {
					_ = fw.write(FrameStdinEnd, nil)
					return
				}
			}
		}()
	}
	if s.Sizes != nil {
		go func() {
			for size := s.Sizes.Next(); size != nil; size = s.Sizes.Next() {
				if fw.write(FrameResize, resizePayload(*size)) != nil {
					return
				}
			}
		}()
	}
	stderr := s.Stderr
	if stderr == nil {
		stderr = io.Discard
	}
	br := bufio.NewReaderSize(conn, 64<<10)
	buf := make([]byte, MaxFramePayload)
	for {
		kind, payload, err := readFrame(br, buf)
		if err != nil {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			return res, fmt.Errorf("exec through the ergomake server %s: the connection ended before the command's exit status: %w", c.base.Host, err)
		}
		switch kind {
		case FrameStdout, FrameStderr:
			w := s.Stdout
			if kind == FrameStderr {
				w = stderr
			}
			if _, err := w.Write(payload); err != nil {
				return res, fmt.Errorf("writing the command's output: %w", err)
			}
		case FrameExit:
			if err := json.Unmarshal(payload, &res); err != nil {
				return res, fmt.Errorf("exec through the ergomake server: its exit status: %w", err)
			}
			switch {
			case res.NotStarted != "":
				return res, &kube.ExecStartError{Reason: res.NotStarted}
			case res.Error != "":
				return res, errors.New(res.Error)
			}
			return res, nil
		default:
			return res, fmt.Errorf("exec through the ergomake server: unknown frame kind %d", kind)
		}
	}
}
