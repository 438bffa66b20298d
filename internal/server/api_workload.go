package server

import (
	"github.com/ergomake/ergomake/internal/workload"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// RestartRequest is POST /v1/envs/{name}/restart's body.
type RestartRequest struct {
	// Services are the compose services to restart (every started long-running one when empty).
	Services []string `json:"services,omitempty"`
	// Timeout is how long to wait until they are ready again (a time.Duration string; empty:
	// DefaultRestartTimeout; at most MaxRestartTimeout).
	Timeout string `json:"timeout,omitempty"`
}

// Kinds of RestartEvent.
const (
	// RestartPlan (the first line): Services will be restarted, Skipped are left alone.
	RestartPlan = "plan"
	// RestartStarted: the pods of Services are being replaced; the server waits.
	RestartStarted = "started"
	// RestartReady: Service is ready again, in State.
	RestartReady = "ready"
	// RestartProgress: Restarted services of Total are ready again.
	RestartProgress = "progress"
	// RestartDone (the last line): every service is ready again.
	RestartDone = "done"
	// RestartFailed (the last line): Error says why the restart did not finish.
	RestartFailed = "error"
)

// RestartEvent is one line of POST /v1/envs/{name}/restart's NDJSON answer.
type RestartEvent struct {
	Kind      string                `json:"kind"`
	Services  []string              `json:"services,omitempty"`
	Skipped   []workload.Skip       `json:"skipped,omitempty"`
	Service   string                `json:"service,omitempty"`
	State     v1alpha1.ServiceState `json:"state,omitempty"`
	Restarted int                   `json:"restarted,omitempty"`
	Total     int                   `json:"total,omitempty"`
	Error     string                `json:"error,omitempty"`
}

// ExecRequest is what GET /v1/envs/{name}/exec runs (its query): Command in a running container
// of Service, as `ergomake exec` does with a kubeconfig.
type ExecRequest struct {
	Service string
	// Index picks the replica (1-based); 0 the first running one.
	Index int
	// Command is the argv, run as is (no shell).
	Command []string
	// Stdin attaches the command's standard input; TTY allocates a terminal.
	Stdin, TTY bool
}

// ExecResult is how a command run through GET /v1/envs/{name}/exec ended: the last frame
// (FrameExit) of the stream, as JSON.
type ExecResult struct {
	// Pod is the pod the command ran in.
	Pod string `json:"pod"`
	// Code is the command's exit code.
	Code int `json:"code"`
	// NotStarted, when set, is the container runtime's reason for not starting the command: it
	// never ran (Code is meaningless).
	NotStarted string `json:"notStarted,omitempty"`
	// Error, when set, says why the command did not run to an exit status (the connection to the
	// pod failed).
	Error string `json:"error,omitempty"`
}
