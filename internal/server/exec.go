package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/ergomake/ergomake/internal/kube"
	"github.com/ergomake/ergomake/internal/workload"
)

// `ergomake exec` through the server: the server runs the command in a running container of the
// caller's environment with its own credentials (pods/exec, as kubectl does), and carries its
// standard streams, the terminal's size and its exit status over an upgraded connection
// (ExecProtocol, execframe.go).

// Limits of GET /v1/envs/{name}/exec's query.
const (
	maxExecArgs = 4096
	// execDrain bounds how long the server waits, after the exit frame, for the client to close
	// (closing with the client's bytes unread would reset the connection and could lose the
	// frame).
	execDrain = 10 * time.Second
)

// execQuery is req as GET /v1/envs/{name}/exec's query.
func execQuery(req ExecRequest) url.Values {
	q := url.Values{"service": {req.Service}, "command": req.Command}
	if req.Index > 0 {
		q.Set("index", strconv.Itoa(req.Index))
	}
	if req.Stdin {
		q.Set("stdin", "1")
	}
	if req.TTY {
		q.Set("tty", "1")
	}
	return q
}

// parseExecQuery reads an ExecRequest from the query.
func parseExecQuery(q url.Values) (ExecRequest, error) {
	req := ExecRequest{Service: q.Get("service"), Command: q["command"], Stdin: q.Get("stdin") == "1", TTY: q.Get("tty") == "1"}
	if req.Service == "" || len(req.Command) == 0 || req.Command[0] == "" {
		return req, errorf(http.StatusBadRequest, "exec wants ?service=NAME&command=ARG0[&command=ARG1...] (and stdin=1, tty=1, index=N)")
	}
	if len(req.Command) > maxExecArgs {
		return req, errorf(http.StatusBadRequest, "exec: %d arguments is over the limit of %d", len(req.Command), maxExecArgs)
	}
	if s := q.Get("index"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return req, errorf(http.StatusBadRequest, "exec: index %q: want a replica number, 1 or more", s)
		}
		req.Index = n
	}
	return req, nil
}

func (h *Handler) exec(c *call) (any, error) {
	env, err := h.callerEnv(c)
	if err != nil {
		return nil, err
	}
	req, err := parseExecQuery(c.r.URL.Query())
	if err != nil {
		return nil, err
	}
	if err := wantUpgradeTo(c.r, "exec", ExecProtocol); err != nil {
		return nil, err
	}
	ctx := c.r.Context()
	if _, err := workload.ServiceSpec(env, req.Service); err != nil {
		return nil, workloadError(err)
	}
	pods, err := h.tenancy.client().ServicePods(ctx, env.Namespace, env.Name, req.Service)
	if err != nil {
		return nil, err
	}
	pod, err := workload.PickReplica(env, req.Service, pods, req.Index)
	if err != nil {
		return nil, workloadError(err)
	}
	conn, rest, err := upgradeTo(c, ExecProtocol, http.Header{"Ergomake-Pod": {pod.Name}})
	if err != nil {
		return nil, err
	}
	res := h.runExec(ctx, conn, rest, pod, req)
	switch {
	case res.NotStarted != "":
		c.note = "pod " + pod.Name + ": the command could not be started"
	case res.Error != "":
		c.note = "pod " + pod.Name + ": " + res.Error
	}
	return streamed{}, nil
}

// runExec runs req in pod, its streams carried by conn (rest: bytes read past the request), and
// returns how it ended (also sent to the client as the exit frame). It closes conn.
func (h *Handler) runExec(ctx context.Context, conn net.Conn, rest []byte, pod *corev1.Pod, req ExecRequest) ExecResult {
	defer conn.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fw := &frameWriter{w: conn}
	eo := kube.ExecOptions{Pod: pod, Container: kube.MainContainer(pod), Command: req.Command, TTY: req.TTY,
		Stdout: &frameStream{f: fw, kind: FrameStdout}, Stderr: &frameStream{f: fw, kind: FrameStderr}}
	var stdin *io.PipeWriter
	if req.Stdin {
		pr, pw := io.Pipe()
		defer pr.Close() // unblocks a write of stdin the command will not read
		eo.Stdin, stdin = pr, pw
	}
	sizes := newSizeQueue()
	defer sizes.close()
	if req.TTY {
		eo.Sizes = sizes
	}

	// The client's frames: stdin, its end, the terminal's size. The client going away (or
	// breaking the protocol) ends the command's connection.
	read := make(chan struct{})
	go func() {
		defer close(read)
		defer cancel()
		br := bufio.NewReaderSize(io.MultiReader(bytes.NewReader(rest), conn), 64<<10)
		buf := make([]byte, MaxFramePayload)
		for {
			kind, payload, err := readFrame(br, buf)
			if err != nil {
				if stdin != nil {
					_ = stdin.CloseWithError(io.ErrUnexpectedEOF)
				}
				return
			}
			switch kind {
			case FrameStdin:
				if stdin != nil {
					_, _ = stdin.Write(payload) // after the command's end: dropped
				}
			case FrameStdinEnd:
				if stdin != nil {
					_ = stdin.Close()
				}
			case FrameResize:
				if s, ok := parseResize(payload); ok {
					sizes.push(s)
				}
			default:
				if stdin != nil {
					_ = stdin.CloseWithError(io.ErrUnexpectedEOF)
				}
				return
			}
		}
	}()

	run := h.execIn
	if run == nil {
		run = h.tenancy.client().Exec
	}
	code, err := run(ctx, eo)
	sizes.close()
	res := ExecResult{Pod: pod.Name, Code: code}
	var notStarted *kube.ExecStartError
	switch {
	case errors.As(err, &notStarted):
		res.NotStarted = notStarted.Reason
	case err != nil && ctx.Err() != nil:
		res.Error = "the client went away"
		return res
	case err != nil:
		res.Error = err.Error()
	}
	b, _ := json.Marshal(res)
	if fw.write(FrameExit, b) == nil {
		closeWrite(conn)
		select { // the client closes once it has the exit frame
		case <-read:
		case <-time.After(execDrain):
		}
	}
	return res
}
