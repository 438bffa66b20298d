package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"
)

// ExecOptions say what to run in a pod's container and where its streams go.
type ExecOptions struct {
	// Pod and Container name where the command runs.
	Pod       *corev1.Pod
	Container string
	// Command is the argv, run as is (no shell).
	Command []string
	// Stdin, when not nil, is streamed to the command; the command's stdin is closed at its EOF.
	Stdin io.Reader
	// Stdout and Stderr receive the command's output. With TTY, the terminal merges both into
	// Stdout and Stderr is unused.
	Stdout, Stderr io.Writer
	// TTY allocates a terminal for the command.
	TTY bool
	// Sizes, with TTY, gives the terminal's size and then each change; nil keeps the default.
	Sizes remotecommand.TerminalSizeQueue
}

// ExecStartError says the container runtime could not start the command: it never ran.
type ExecStartError struct {
	// Reason is the runtime's explanation.
	Reason string
}

func (e *ExecStartError) Error() string { return "the command could not be started: " + e.Reason }

// Exec runs a command in a container as `kubectl exec` does: WebSocket first, SPDY when the API
// server cannot upgrade to WebSocket. It returns the command's exit code; err is not nil only
// when the command did not run to an exit status (it could not start, the connection failed,
// ctx ended).
func (c *Client) Exec(ctx context.Context, o ExecOptions) (int, error) {
	req := c.Kube.CoreV1().RESTClient().Post().
		Resource("pods").Namespace(o.Pod.Namespace).Name(o.Pod.Name).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{
			Container: o.Container,
			Command:   o.Command,
			Stdin:     o.Stdin != nil,
			Stdout:    o.Stdout != nil,
			Stderr:    o.Stderr != nil && !o.TTY,
			TTY:       o.TTY,
		}, scheme.ParameterCodec)
	spdyExec, err := remotecommand.NewSPDYExecutor(c.Config, http.MethodPost, req.URL())
	if err != nil {
		return 0, err
	}
	wsExec, err := remotecommand.NewWebSocketExecutor(c.Config, http.MethodGet, req.URL().String())
	if err != nil {
		return 0, err
	}
	// Known limit, shared with kubectl 1.37 over WebSocket: a command that exits without reading a
	// large streamed stdin (past a few hundred KB) leaves the exchange stuck until the connection
	// times out; SPDY first was tried and hangs too, only less often. Ctrl-C ends it (below).
	executor, err := remotecommand.NewFallbackExecutor(wsExec, spdyExec, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
	if err != nil {
		return 0, err
	}
	opts := remotecommand.StreamOptions{Stdin: o.Stdin, Stdout: o.Stdout, Tty: o.TTY, TerminalSizeQueue: o.Sizes}
	if !o.TTY {
		opts.Stderr = o.Stderr
	}
	// The executors do not always return when ctx ends (a stream blocked on a peer that stopped
	// reading): stop waiting for them then, so that Ctrl-C always ends exec.
	done := make(chan error, 1)
	go func() { done <- executor.StreamWithContext(ctx, opts) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	var exit utilexec.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &exit):
		return exit.ExitStatus(), nil
	case ctx.Err() != nil:
		return 0, ctx.Err()
	}
	if why, ok := startFailure(err.Error()); ok {
		return 0, &ExecStartError{Reason: why}
	}
	return 0, fmt.Errorf("exec in pod %s/%s: %w", o.Pod.Namespace, o.Pod.Name, c.Explain(err))
}

// startFailure recognises the kubelet's report of a command the container runtime could not
// start (no such executable, a runtime refusal), sent on the error channel with this phrase
// before the runtime's words, and returns the runtime's reason without its layers of context.
func startFailure(msg string) (string, bool) {
	const startFailed = "error executing command in container: "
	i := strings.LastIndex(msg, startFailed)
	if i < 0 {
		return "", false
	}
	why := msg[i+len(startFailed):]
	if j := strings.LastIndex(why, "exec failed: "); j >= 0 {
		why = why[j+len("exec failed: "):] // containerd's and runc's
	}
	return strings.TrimSuffix(why, ": unknown"), true
}
