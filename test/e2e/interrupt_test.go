//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"

	"github.com/ergomake/ergomake/internal/testutil/cluster"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
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

// TestOperatorReclaimOwnClock: the operator (this tree's, run in the test on the real clock)
// reclaims an environment whose heartbeat has not changed for its TTL, counting from when it saw
// the heartbeat, not from the time the annotation says (a client clock an hour ahead keeps
// nothing alive); the namespace ergomake created for the environment (marked with its UID) goes
// with it, and one that holds anything else stays.
func TestOperatorReclaimOwnClock(t *testing.T) {
	t.Parallel()
	for _, foreign := range []bool{false, true} {
		name := "alone"
		if foreign {
			name = "shared"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			const ttl = 8 * time.Second
			e := opSetup(t, "e2e-op-reclaim", clock.RealClock{})
			env := e.newEnv("idle", testService("web"))
			env.Spec.TTL = &metav1.Duration{Duration: ttl}
			env.Annotations = map[string]string{v1alpha1.AnnotationHeartbeat: time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano)}
			e.create(env)
			created := e.get("idle")
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			patch := fmt.Sprintf(`{"metadata":{"labels":{%q:%q,%q:%q}}}`, v1alpha1.LabelManagedBy, v1alpha1.ManagedByValue,
				v1alpha1.LabelNamespaceEnvUID, created.UID)
			if _, err := e.cs.CoreV1().Namespaces().Patch(ctx, e.ns, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
				t.Fatal(err)
			}
			if foreign {
				cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "not-ergomakes"}}
				svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "not-ergomakes"},
					Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}
				if _, err := e.cs.CoreV1().ConfigMaps(e.ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
				if _, err := e.cs.CoreV1().Services(e.ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			start := time.Now()
			e.waitGone("idle", 2*time.Minute)
			if took := time.Since(start); took > ttl+30*time.Second {
				t.Errorf("reclaimed %s after creation, TTL %s", took, ttl)
			}
			if foreign {
				time.Sleep(3 * time.Second)
				ns, err := e.cs.CoreV1().Namespaces().Get(ctx, e.ns, metav1.GetOptions{})
				if err != nil || ns.DeletionTimestamp != nil {
					t.Fatalf("the namespace holding a Service of someone else's was deleted: %v", err)
				}
				return
			}
			cluster.Eventually(t, time.Minute, time.Second, "namespace "+e.ns+" deleted", func(ctx context.Context) (bool, string, error) {
				ns, err := e.cs.CoreV1().Namespaces().Get(ctx, e.ns, metav1.GetOptions{})
				if apierrors.IsNotFound(err) {
					return true, "", nil
				}
				if err != nil {
					return false, err.Error(), nil
				}
				return ns.DeletionTimestamp != nil, "not being deleted", nil
			})
		})
	}
}
