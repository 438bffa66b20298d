package cli

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// TestChangePrinterLogTail: while attached, a service that fails is printed with its last log
// lines, once; a status that changes nothing prints nothing.
func TestChangePrinterLogTail(t *testing.T) {
	var out []string
	logf := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	env := seedEnv()
	env.Status.Services[1] = v1alpha1.ServiceStatus{Name: "web", State: v1alpha1.StateRunning, Ready: 1, Desired: 1,
		Reason: "Running", Message: "1/1 running (no healthcheck)"}
	p := newChangePrinter(env, logf)
	p.update(env.DeepCopy())
	if len(out) != 0 {
		t.Fatalf("printed %q for an unchanged environment", out)
	}

	restarting := env.DeepCopy()
	restarting.Status.Services[1] = v1alpha1.ServiceStatus{Name: "web", State: v1alpha1.StateStarting, Desired: 1,
		Reason: "Restarting", Message: "exited with code 1, restarting"}
	p.update(restarting)
	failed := env.DeepCopy()
	failed.Status.Services[1] = v1alpha1.ServiceStatus{Name: "web", State: v1alpha1.StateFailed, Desired: 1,
		Reason: "CrashLoopBackOff", Message: "crash loop: exited with code 1, restarted 1 time",
		LogTail: []string{"listening on :80", "panic: boom"}}
	p.update(failed)
	p.update(failed.DeepCopy())
	want := []string{
		"web: starting 0/1: exited with code 1, restarting",
		"web: failed 0/1: crash loop: exited with code 1, restarted 1 time",
		"  | listening on :80",
		"  | panic: boom",
	}
	if strings.Join(out, "\n") != strings.Join(want, "\n") {
		t.Errorf("printed:\n%s\nwant:\n%s", strings.Join(out, "\n"), strings.Join(want, "\n"))
	}
}

func TestPsEntriesLogTail(t *testing.T) {
	env := seedEnv()
	env.Status.Services[0] = v1alpha1.ServiceStatus{Name: "db", State: v1alpha1.StateFailed, Desired: 1,
		Reason: "CrashLoopBackOff", Message: "crash loop", LogTail: []string{"FATAL: bad config"}}
	entries := psEntries(env, nil)
	if got := entries[0]; got.Message != "crash loop" || strings.Join(got.LogTail, "|") != "FATAL: bad config" {
		t.Errorf("db = %+v", got)
	}
	if entries[1].LogTail != nil {
		t.Errorf("web = %+v", entries[1])
	}
}
