package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/ergomake/ergomake/internal/workload"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// `ergomake restart` through the server: the same restart (internal/workload) as with a
// kubeconfig, run by the server in the caller's environment, its progress streamed back.

// DefaultRestartTimeout and MaxRestartTimeout bound how long POST /v1/envs/{name}/restart waits
// for the restarted services.
const (
	DefaultRestartTimeout = 5 * time.Minute
	MaxRestartTimeout     = time.Hour
)

// restartKeepAlive: how often a restart with nothing new to say writes an empty line.
var restartKeepAlive = 15 * time.Second

func (h *Handler) restart(c *call) (any, error) {
	env, err := h.callerEnv(c)
	if err != nil {
		return nil, err
	}
	var req RestartRequest
	if c.r.ContentLength != 0 { // no body: every service, the default timeout
		if err := decode(c, &req); err != nil {
			return nil, err
		}
	}
	timeout := DefaultRestartTimeout
	if req.Timeout != "" {
		if timeout, err = time.ParseDuration(req.Timeout); err != nil || timeout <= 0 {
			return nil, errorf(http.StatusBadRequest, "timeout %q: want a positive duration such as 5m", req.Timeout)
		}
		timeout = min(timeout, MaxRestartTimeout)
	}
	ctx := c.r.Context()
	plan, err := workload.PlanRestart(ctx, h.tenancy.client(), env, req.Services)
	if err != nil {
		return nil, workloadError(err)
	}

	rc := longRequest(c.w)
	c.w.Header().Set("Content-Type", "application/x-ndjson")
	c.w.Header().Set("Cache-Control", "no-store")
	c.w.WriteHeader(http.StatusOK)
	var mu sync.Mutex
	last := time.Now()
	send := func(ev *RestartEvent) {
		mu.Lock()
		defer mu.Unlock()
		b := []byte("\n")
		if ev != nil {
			b, _ = json.Marshal(ev)
			b = append(b, '\n')
		} else if time.Since(last) < restartKeepAlive {
			return
		}
		last = time.Now()
		_, _ = c.w.Write(b)
		_ = rc.Flush()
	}
	send(&RestartEvent{Kind: RestartPlan, Services: plan.Services, Skipped: plan.Skipped})
	if len(plan.Services) == 0 {
		send(&RestartEvent{Kind: RestartDone})
		return streamed{}, nil
	}
	restarted := -1
	err = plan.Run(ctx, h.tenancy.now(), timeout, workload.Progress{
		Started: func(s []string) { send(&RestartEvent{Kind: RestartStarted, Services: s}) },
		Ready: func(s string, st v1alpha1.ServiceState) {
			send(&RestartEvent{Kind: RestartReady, Service: s, State: st})
		},
		Pending: func(n, total int) {
			if n != restarted {
				restarted = n
				send(&RestartEvent{Kind: RestartProgress, Restarted: n, Total: total})
				return
			}
			send(nil) // keep the connection alive
		},
	})
	switch {
	case err == nil:
		send(&RestartEvent{Kind: RestartDone})
	case ctx.Err() != nil:
		c.note = "client went away"
	default:
		c.note = err.Error()
		send(&RestartEvent{Kind: RestartFailed, Error: err.Error()})
	}
	return streamed{}, nil
}

// workloadError answers a request the environment cannot carry out (workload.RequestError: an
// unknown service, one not running) with 409, naming why.
func workloadError(err error) error {
	var re *workload.RequestError
	if errors.As(err, &re) {
		return errorf(http.StatusConflict, "%s", re.Error())
	}
	return err
}
