//go:build e2e

package e2e

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestUpCrashNoHealthcheck: a service without a healthcheck is ready as soon as its container
// runs, so `up` may see the environment ready before the container exits (after 2 s, at every
// start). Exactly two outcomes are right, and the test takes either:
//
//   - up saw the crash loop before it saw the environment ready: it fails (exit 1) naming the
//     service, the crash loop and the service's last log line, and tears down;
//   - up saw it ready and attached: it prints the service's failure with its last log line while
//     attached (never stays silent), and Ctrl-C tears down as usual (exit 0).
func TestUpCrashNoHealthcheck(t *testing.T) {
	t.Parallel()
	p := newUpProject(t, "e2e-crashnohc", `
services:
  api:
    image: ergomake.test/testapp:latest
    command: ["exit", "1"]
    environment:
      SLEEP: "2"
`)
	const logLine = "exiting with 1 after 2s"
	up := p.start("up", "--wait-timeout", "3m")
	deadline := time.Now().Add(3 * time.Minute)
	for {
		select {
		case <-up.done:
			// Failed before ready.
			stderr := up.stderr.String()
			if up.code != 1 {
				t.Fatalf("up exited %d, want 1 (or to stay attached)\n%s\n%s", up.code, up.stdout, stderr)
			}
			for _, want := range []string{`service "api" failed: crash loop`, "  | " + logLine} {
				if !strings.Contains(stderr, want) {
					t.Errorf("up's output lacks %q:\n%s", want, stderr)
				}
			}
			t.Logf("up failed before the environment was ready:\n%s", stderr)
			if !p.namespaceGone() {
				t.Errorf("namespace %s still exists", p.ns)
			}
			return
		case <-time.After(100 * time.Millisecond):
		}
		if strings.Contains(up.stderr.String(), "  | "+logLine) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("up neither failed nor printed the crash loop with %q after 3m\n%s\n%s", logLine, up.stdout, up.stderr)
		}
	}
	// Attached, and the failure was printed with the log line.
	stdout, stderr := up.stdout.String(), up.stderr.String()
	if !strings.Contains(stdout, "Environment ready.") {
		t.Errorf("up printed the log line, yet not that the environment was ready:\n%s\n%s", stdout, stderr)
	}
	if !strings.Contains(stderr, "api: failed 0/1: crash loop") {
		t.Errorf("up's output lacks the service's failure line:\n%s", stderr)
	}
	t.Logf("up attached, then reported:\n%s", stderr)
	up.signal(syscall.SIGINT)
	if code := up.wait(3 * time.Minute); code != 0 {
		t.Fatalf("up exited %d after SIGINT\n%s", code, up.stderr)
	}
	if !p.namespaceGone() {
		t.Errorf("namespace %s still exists", p.ns)
	}
}
