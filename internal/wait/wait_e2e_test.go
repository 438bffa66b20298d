//go:build e2e

package wait_test

import (
	"context"
	"errors"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"

	"github.com/ergomake/ergomake/internal/kube"
	"github.com/ergomake/ergomake/internal/testutil/cluster"
	"github.com/ergomake/ergomake/internal/wait"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// TestEnvLifecycle drives internal/kube and internal/wait against the local cluster and the
// operator running in it: namespace creation and ownership, server-side apply of the environment
// and its Secrets (owned by it, stale ones pruned), waiting until Ready with every update seen,
// a timeout, the heartbeat, and deletion that ends when the namespace is gone.
func TestEnvLifecycle(t *testing.T) {
	kc := cluster.KubeconfigPath(t)
	c, err := kube.New(kube.Options{Kubeconfig: kc})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	if err := c.Check(ctx); err != nil {
		t.Fatalf("Check: %v", err)
	}
	name := "life-" + rand.String(5)
	ns := kube.DefaultNamespace(name)
	t.Cleanup(func() {
		if t.Failed() {
			cluster.DumpNamespace(t, c.Kube, ns)
		}
		_ = c.Kube.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	})

	owned, err := c.EnsureNamespace(ctx, ns, name)
	if err != nil || !owned {
		t.Fatalf("EnsureNamespace = %v, %v; want owned", owned, err)
	}
	if owned, err := c.EnsureNamespace(ctx, ns, name); err != nil || !owned {
		t.Fatalf("EnsureNamespace again = %v, %v; want owned", owned, err)
	}

	// A namespace someone else made is not ours.
	foreign := "foreign-" + rand.String(5)
	if _, err := c.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: foreign}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	defer c.Kube.CoreV1().Namespaces().Delete(context.Background(), foreign, metav1.DeleteOptions{})
	if owned, err := c.EnsureNamespace(ctx, foreign, name); err != nil || owned {
		t.Fatalf("EnsureNamespace(foreign) = %v, %v; want not owned", owned, err)
	}

	env := &v1alpha1.ErgomakeEnv{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{v1alpha1.LabelEnv: name}},
		Spec: v1alpha1.EnvSpec{Project: name, Services: []v1alpha1.ServiceSpec{{
			Name: "web", ServiceName: "web", Image: cluster.TestImage, ImagePullPolicy: "IfNotPresent",
			Environment: []v1alpha1.EnvVar{{Name: "PORTS", Value: "8080"}, {Name: "READY_AFTER", Value: "3"}},
			Ports:       []v1alpha1.PortSpec{{Name: "http", Target: 8080, Protocol: "TCP"}},
			Healthcheck: &v1alpha1.Healthcheck{
				Exec:     []string{"/testapp", "probe", "http://127.0.0.1:8080/healthz"},
				Interval: metav1.Duration{Duration: time.Second}, Timeout: metav1.Duration{Duration: time.Second}, Retries: 3,
			},
		}}},
	}
	secret := func(n string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: n}, StringData: map[string]string{"k": "v"}}
	}
	if err := c.ApplyData(ctx, ns, name, nil, []*corev1.Secret{secret("a"), secret("b")}, nil); err != nil {
		t.Fatal(err)
	}
	applied, err := c.ApplyEnv(ctx, env)
	if err != nil {
		t.Fatal(err)
	}
	if applied.UID == "" || applied.Generation != 1 {
		t.Fatalf("applied env: uid %q generation %d", applied.UID, applied.Generation)
	}
	// As up does: the namespace made for the environment is marked with its UID, which is what
	// lets DeleteEnv remove the namespace with it.
	if err := c.MarkNamespace(ctx, ns, applied.UID); err != nil {
		t.Fatal(err)
	}
	if err := c.ApplyData(ctx, ns, name, applied, []*corev1.Secret{secret("a")}, nil); err != nil {
		t.Fatal(err)
	}
	s, err := c.Kube.CoreV1().Secrets(ns).Get(ctx, "a", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.OwnerReferences) != 1 || s.OwnerReferences[0].UID != applied.UID {
		t.Errorf("secret a owners = %+v, want the environment", s.OwnerReferences)
	}
	if _, err := c.Kube.CoreV1().Secrets(ns).Get(ctx, "b", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("stale secret b not pruned: %v", err)
	}

	// Too short a timeout: a TimeoutError naming the last state seen.
	_, err = wait.Until(ctx, c, ns, name, wait.Options{Timeout: 200 * time.Millisecond})
	var te *wait.TimeoutError
	if !errors.As(err, &te) {
		t.Fatalf("Until with a tiny timeout = %v, want a TimeoutError", err)
	}

	var updates int
	var states []string
	ready, err := wait.Until(ctx, c, ns, name, wait.Options{Timeout: 3 * time.Minute, OnUpdate: func(e *v1alpha1.ErgomakeEnv) {
		updates++
		for _, s := range e.Status.Services {
			if len(states) == 0 || states[len(states)-1] != string(s.State) {
				states = append(states, string(s.State))
			}
		}
	}})
	if err != nil {
		t.Fatalf("Until: %v", err)
	}
	t.Logf("%d updates; web went through %v", updates, states)
	if wait.Evaluate(ready) != wait.Ready || ready.Status.ObservedGeneration != ready.Generation {
		t.Errorf("returned env is not ready: %+v", ready.Status)
	}
	if len(states) < 2 || states[len(states)-1] != string(v1alpha1.StateHealthy) {
		t.Errorf("web's states %v: want several, ending healthy (READY_AFTER=3 holds it back)", states)
	}

	// A changed spec is a new generation: the old Ready status says nothing about it.
	env.Spec.Services[0].Environment = append(env.Spec.Services[0].Environment, v1alpha1.EnvVar{Name: "X", Value: "1"})
	changed, err := c.ApplyEnv(ctx, env)
	if err != nil {
		t.Fatal(err)
	}
	if changed.Generation != 2 || wait.Evaluate(changed) == wait.Ready && changed.Status.ObservedGeneration < 2 {
		t.Errorf("after a change: generation %d, observed %d, state %s", changed.Generation, changed.Status.ObservedGeneration, wait.Evaluate(changed))
	}
	if _, err := wait.Until(ctx, c, ns, name, wait.Options{Timeout: 3 * time.Minute}); err != nil {
		t.Fatalf("Until after a change: %v", err)
	}

	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := c.Heartbeat(ctx, ns, name, now); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetEnv(ctx, ns, name)
	if err != nil {
		t.Fatal(err)
	}
	if got.Annotations[v1alpha1.AnnotationHeartbeat] != "2030-01-02T03:04:05Z" {
		t.Errorf("heartbeat = %q", got.Annotations[v1alpha1.AnnotationHeartbeat])
	}

	// Waiting on an environment that gets deleted ends with ErrGone.
	gone := make(chan error, 1)
	go func() {
		gone <- wait.Watch(ctx, c, ns, name, func(*v1alpha1.ErgomakeEnv) {})
	}()
	var progress []string
	if err := c.DeleteEnv(ctx, ns, name, kube.DeleteOptions{Namespace: true, Progress: func(s string) { progress = append(progress, s) }}); err != nil {
		t.Fatal(err)
	}
	t.Logf("deletion progress: %v", progress)
	if err := <-gone; !errors.Is(err, wait.ErrGone) {
		t.Errorf("Watch during deletion = %v, want ErrGone", err)
	}
	if _, err := c.Kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("namespace after DeleteEnv: %v", err)
	}
	// Deleting what is gone is fine.
	if err := c.DeleteEnv(ctx, ns, name, kube.DeleteOptions{}); err != nil {
		t.Errorf("second DeleteEnv: %v", err)
	}
}
