//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// TestOperatorCrashNoHealthcheck: a long-running service without a healthcheck whose container
// exits right away. Without a readiness probe its pod is Ready for a moment after each restart;
// the environment must never be reported Ready for that, and must turn Degraded, with the
// crash's log line, within seconds of the second exit rather than after minutes of back-off.
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
		if env.Status.Phase == v1alpha1.PhaseReady || meta.IsStatusConditionTrue(env.Status.Conditions, v1alpha1.ConditionReady) {
			t.Fatalf("the environment was reported Ready while its only service crashes (after %s): %s",
				time.Since(created).Round(time.Millisecond), describeStatus(env))
		}
		if worker.State == v1alpha1.StateRunning || worker.State == v1alpha1.StateHealthy {
			t.Errorf("worker reported %s while it crashes: %s", worker.State, describeStatus(env))
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
	for _, want := range []string{"exited with code 1", "testapp: crash requested, exiting with 1"} {
		if !strings.Contains(worker.Message, want) {
			t.Errorf("worker message %q lacks %q", worker.Message, want)
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
