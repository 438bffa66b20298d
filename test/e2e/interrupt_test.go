//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Faults of `up` itself (issue 11, Faults 5): Ctrl-C at any moment exits and leaves nothing within a
// minute; `up` killed with SIGKILL is reclaimed after its TTL, on the real clock.

// slowCompose is a web service that becomes ready only after READY_AFTER seconds, so that `up`
// spends a while waiting.
const slowCompose = `
services:
  web:
    image: ergomake.test/testapp:latest
    environment:
      SERVICE: web
      PORTS: "8080"
      READY_AFTER: "%d"
    ports:
      - "${WEB_PORT}:8080"
    healthcheck:
      test: ["CMD", "/testapp", "probe", "http://127.0.0.1:8080/healthz"]
      interval: 1s
      retries: 60
`

// TestUpInterruptedAnyMoment: SIGINT to the real binary as its output reaches each stage
// (connecting, applying, waiting, bound and attached): it exits (0, or 130 before anything was
// applied) within a minute and leaves neither the environment nor its namespace within another.
func TestUpInterruptedAnyMoment(t *testing.T) {
	t.Parallel()
	for _, moment := range []string{"Connecting to", "Applying environment", "Waiting for services", "Environment ready."} {
		t.Run(strings.Fields(moment)[0], func(t *testing.T) {
			t.Parallel()
			p := newUpProject(t, "e2e-int", fmt.Sprintf(slowCompose, 10), fmt.Sprintf("WEB_PORT=%d", freePort(t)))
			up := p.start("up", "--wait-timeout", "3m")
			up.waitOutput(moment, 4*time.Minute)
			up.signal(syscall.SIGINT)
			start := time.Now()
			code := up.wait(time.Minute)
			if code != 0 && code != 130 {
				t.Fatalf("up exited %d after SIGINT at %q\n%s", code, moment, up.stderr)
			}
			t.Logf("SIGINT at %q: exit %d after %s", moment, code, time.Since(start).Round(100*time.Millisecond))
			p.waitNothingLeft(time.Minute)
		})
	}
}

// TestUpKilledReclaimed: `up` with a short TTL (allowed by the three-heartbeat rule with a short
// heartbeat interval) survives a wait longer than its TTL (the heartbeat runs through the wait);
// killed with SIGKILL, its environment and namespace are reclaimed by the operator after the TTL.
func TestUpKilledReclaimed(t *testing.T) {
	t.Parallel()
	const ttl = 6 * time.Second
	p := newUpProject(t, "e2e-killed", fmt.Sprintf(slowCompose, 15), fmt.Sprintf("WEB_PORT=%d", freePort(t)))
	up := p.start("up", "--wait-timeout", "3m", "--ttl", ttl.String(), "--heartbeat-interval", "2s")
	up.waitOutput("Environment ready.", 4*time.Minute)
	env := p.getEnv()
	if env == nil || env.DeletionTimestamp != nil {
		t.Fatal("the environment was reclaimed while up was attached")
	}
	if env.Status.Heartbeat == nil || env.Status.Heartbeat.ExpiresAt == nil {
		t.Errorf("status.heartbeat = %+v: is this worktree's operator installed (make operator-install)?", env.Status.Heartbeat)
	}
	up.signal(syscall.SIGKILL)
	killed := time.Now()
	_ = up.wait(10 * time.Second)
	if env := p.getEnv(); env == nil || env.DeletionTimestamp != nil {
		t.Fatal("reclaimed at once, before its TTL")
	}
	p.waitNothingLeft(ttl + time.Minute)
	t.Logf("reclaimed (environment and namespace gone) %s after SIGKILL, TTL %s", time.Since(killed).Round(time.Second), ttl)
}
