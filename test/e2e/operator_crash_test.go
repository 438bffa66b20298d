//go:build e2e

package e2e

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ergomake/ergomake/internal/operator"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// TestOperatorCrashNoHealthcheck: a long-running service without a healthcheck whose container
// exits right away. It counts as ready as soon as its container runs, so the environment may be
// Ready for the moment before the first exit is seen; from that exit on it must never be Ready
// (nor the worker running) again, and it must turn Degraded, with the crash's log line, within
// seconds of the second exit rather than after minutes of back-off, and stay so.
func TestOperatorCrashNoHealthcheck(t *testing.T) {
	t.Parallel()
	e := opSetup(t, "e2e-op-crashnohc", clock.RealClock{})
	svc := testService("worker")
	svc.Command = []string{"crash"}
	if svc.Healthcheck != nil {
		t.Fatal("the service must have no healthcheck")
	}

	// Watch the environment's status from before it exists, so that no version of it is missed.
	wc, err := client.NewWithWatch(e.cfg, client.Options{Scheme: e.c.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	w, err := wc.Watch(ctx, &v1alpha1.ErgomakeEnvList{}, client.InNamespace(e.ns))
	if err != nil {
		t.Fatalf("watching ErgomakeEnvs: %v", err)
	}
	defer w.Stop()

	created := time.Now()
	e.create(e.newEnv("crashy", svc))

	var (
		// exitSeen: a status has shown the worker not ready after it started (restarting or
		// failed); from then on nothing may say it is ready.
		exitSeen   bool
		readyFirst bool
		degradedAt time.Time
		degraded   *v1alpha1.ErgomakeEnv
		versions   int
		// After Degraded, keep watching through a few more restarts (the kubelet backs off 10s,
		// then 20s): the pod is Ready for a moment after each, the environment must stay Degraded.
		holdFor = 35 * time.Second
	)
	deadline := time.After(2 * time.Minute)
watching:
	for {
		var ev watch.Event
		select {
		case ev = <-w.ResultChan():
		case <-deadline:
			break watching
		}
		if ev.Type == watch.Error {
			t.Fatalf("watch error: %v", ev.Object)
		}
		if ev.Object == nil {
			t.Fatalf("the watch ended early")
		}
		env, ok := ev.Object.(*v1alpha1.ErgomakeEnv)
		if !ok || env.Name != "crashy" {
			continue
		}
		versions++
		worker := serviceStatus(env, "worker")
		envReady := env.Status.Phase == v1alpha1.PhaseReady || meta.IsStatusConditionTrue(env.Status.Conditions, v1alpha1.ConditionReady)
		if !exitSeen {
			if envReady {
				readyFirst = true
				t.Logf("Ready before the first exit was seen (after %s): %s", time.Since(created).Round(time.Millisecond), describeStatus(env))
			}
			if worker.Reason == operator.ReasonRestarting || worker.Failed() {
				exitSeen = true
				t.Logf("exit seen after %s: %s", time.Since(created).Round(time.Millisecond), describeStatus(env))
			}
		}
		if exitSeen {
			if envReady {
				t.Fatalf("the environment was reported Ready after its only service exited (after %s): %s",
					time.Since(created).Round(time.Millisecond), describeStatus(env))
			}
			if worker.IsReady() || worker.State == v1alpha1.StateRunning || worker.State == v1alpha1.StateHealthy || worker.ReadyAt != nil {
				t.Errorf("worker reported %s %d/%d (readyAt %v) after it exited: %s", worker.State, worker.Ready, worker.Desired, worker.ReadyAt, describeStatus(env))
			}
		}
		if !degradedAt.IsZero() && env.Status.Phase != v1alpha1.PhaseDegraded {
			t.Errorf("Degraded, then %s while the worker still crashes: %s", env.Status.Phase, describeStatus(env))
		}
		if degradedAt.IsZero() && env.Status.Phase == v1alpha1.PhaseDegraded {
			degradedAt, degraded = time.Now(), env
			deadline = time.After(holdFor)
			t.Logf("Degraded after %s: %s", degradedAt.Sub(created).Round(time.Millisecond), describeStatus(env))
		}
	}
	t.Logf("ready before the first exit: %v", readyFirst)
	if degraded == nil {
		t.Fatalf("not Degraded within 2 minutes (%d status versions seen): %s", versions, describeStatus(e.get("crashy")))
	}

	// The image is on the node and the container exits at once: the second exit comes within
	// seconds of the pod's creation, and Degraded right after it.
	if took := degradedAt.Sub(created); took > 45*time.Second {
		t.Errorf("Degraded only %s after the environment was created", took.Round(time.Second))
	}
	worker := serviceStatus(degraded, "worker")
	if worker.State != v1alpha1.StateFailed || worker.Reason != "CrashLoopBackOff" || worker.Ready != 0 {
		t.Errorf("worker: %s %s %d/%d %q", worker.State, worker.Reason, worker.Ready, worker.Desired, worker.Message)
	}
	if !strings.Contains(worker.Message, "exited with code 1") || strings.Contains(worker.Message, "\n") {
		t.Errorf("worker message %q is not one line saying the exit code", worker.Message)
	}
	// The log lines come with the failure (read in the same pass), unless the runtime had
	// already removed the container; then a later status carries them.
	if !slices.Contains(worker.LogTail, "testapp: crash requested, exiting with 1") {
		final := serviceStatus(e.get("crashy"), "worker")
		if !slices.Contains(final.LogTail, "testapp: crash requested, exiting with 1") {
			t.Errorf("worker log tail %q (at Degraded), %q (now) lacks the crash's line", worker.LogTail, final.LogTail)
		}
	}
	if !strings.Contains(degraded.Status.Message, "worker: ") {
		t.Errorf("environment message %q does not name the worker", degraded.Status.Message)
	}

	// The pod did crash repeatedly (the test is about a crash loop, not a slow start).
	pods, err := e.cs.CoreV1().Pods(e.ns).List(ctx, metav1.ListOptions{LabelSelector: v1alpha1.LabelEnv + "=crashy"})
	if err != nil {
		t.Fatal(err)
	}
	restarts := int32(0)
	for _, p := range pods.Items {
		for _, cs := range p.Status.ContainerStatuses {
			restarts += cs.RestartCount
		}
	}
	if restarts < 2 {
		t.Errorf("the worker restarted %d times, want at least 2", restarts)
	}
}
