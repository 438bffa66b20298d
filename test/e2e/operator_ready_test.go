//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/clock"

	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// TestOperatorReadyWhenRunning: services without a healthcheck are ready as soon as their
// containers run, as docker compose counts them started: each one's readyAt is when the kubelet
// called its pod Ready, not a waiting period after its container started.
func TestOperatorReadyWhenRunning(t *testing.T) {
	t.Parallel()
	e := opSetup(t, "e2e-op-readyrun", clock.RealClock{})
	e.create(e.newEnv("quick", testService("api"), testService("web")))
	env := e.waitReady("quick", 2*time.Minute)
	seen := time.Now()
	t.Logf("ready: %s", describeStatus(env))

	ctx := context.Background()
	pods, err := e.cs.CoreV1().Pods(e.ns).List(ctx, metav1.ListOptions{LabelSelector: v1alpha1.LabelEnv + "=quick"})
	if err != nil {
		t.Fatal(err)
	}
	started := map[string]time.Time{}
	for _, p := range pods.Items {
		for _, cs := range p.Status.ContainerStatuses {
			if cs.State.Running != nil {
				started[p.Labels[v1alpha1.LabelService]] = cs.State.Running.StartedAt.Time
			}
		}
	}
	var last time.Time
	for _, name := range []string{"api", "web"} {
		s := serviceStatus(env, name)
		if !s.IsReady() || s.State != v1alpha1.StateRunning || s.ReadyAt == nil {
			t.Errorf("%s: %s %d/%d readyAt %v", name, s.State, s.Ready, s.Desired, s.ReadyAt)
			continue
		}
		st, ok := started[name]
		if !ok {
			t.Errorf("%s: no running container", name)
			continue
		}
		if st.After(last) {
			last = st
		}
		// Both are the cluster's times, to the second: the kubelet calls the pod Ready within a
		// second or two of the container's start. A waiting period would show here.
		if d := s.ReadyAt.Sub(st); d > 3*time.Second {
			t.Errorf("%s: ready %s after its container started", name, d)
		}
	}
	// For the record (not a test of speed: this machine's load decides it).
	t.Logf("the environment was seen Ready %s after its last container started", seen.Sub(last).Round(10*time.Millisecond))
}

// TestOperatorConflicts: Services of the environment's names that someone else owns are left
// alone, and every such conflict is reported in one Degraded message, on one line.
func TestOperatorConflicts(t *testing.T) {
	t.Parallel()
	e := opSetup(t, "e2e-op-conflict", clock.RealClock{})
	ctx := context.Background()
	for _, name := range []string{"api", "web"} {
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.ns},
			Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(80)}}},
		}
		if _, err := e.cs.CoreV1().Services(e.ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	e.create(e.newEnv("clash", testService("api"), testService("web")))
	env := e.waitEnv("clash", time.Minute, "Degraded", func(env *v1alpha1.ErgomakeEnv) bool {
		return env.Status.Phase == v1alpha1.PhaseDegraded
	})
	msg := env.Status.Message
	t.Logf("message: %s", msg)
	for _, want := range []string{"cannot build the environment: ", `Service "api" exists and is not owned`, `Service "web" exists and is not owned`} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("message %q is not one line", msg)
	}
	// Theirs are untouched, and no workload was created.
	for _, name := range []string{"api", "web"} {
		svc, err := e.cs.CoreV1().Services(e.ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(svc.OwnerReferences) > 0 || svc.Spec.Ports[0].Port != 80 {
			t.Errorf("%s was changed: owners %v ports %v", name, svc.OwnerReferences, svc.Spec.Ports)
		}
	}
	deps, err := e.cs.AppsV1().Deployments(e.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(deps.Items) > 0 {
		t.Errorf("%d Deployments created although the Services clash", len(deps.Items))
	}
}
