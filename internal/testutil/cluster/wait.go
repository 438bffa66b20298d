package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
)

// Eventually calls cond every interval until it reports true, returns an error, or timeout passes;
// it fails the test with the last state cond described.
func Eventually(t testing.TB, timeout, interval time.Duration, what string, cond func(ctx context.Context) (done bool, state string, err error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := Poll(ctx, interval, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// Poll calls cond every interval until it reports true, returns an error, or ctx ends. The error
// on timeout carries the last state cond described.
func Poll(ctx context.Context, interval time.Duration, cond func(ctx context.Context) (done bool, state string, err error)) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	last := "no answer yet"
	for {
		done, state, err := cond(ctx)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		if state != "" {
			last = state
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last state: %s)", ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// WaitDeploymentReady waits until every replica of the Deployment is updated and ready.
func WaitDeploymentReady(t testing.TB, cs kubernetes.Interface, ns, name string, timeout time.Duration) *appsv1.Deployment {
	t.Helper()
	var dep *appsv1.Deployment
	Eventually(t, timeout, 250*time.Millisecond, "deployment "+ns+"/"+name+" ready", func(ctx context.Context) (bool, string, error) {
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error(), nil
		}
		dep = d
		want := int32(1)
		if d.Spec.Replicas != nil {
			want = *d.Spec.Replicas
		}
		s := d.Status
		state := fmt.Sprintf("observed generation %d/%d, %d updated, %d ready of %d", s.ObservedGeneration, d.Generation, s.UpdatedReplicas, s.ReadyReplicas, want)
		return s.ObservedGeneration >= d.Generation && s.UpdatedReplicas == want && s.ReadyReplicas == want && s.Replicas == want, state, nil
	})
	return dep
}

// ReadyPod waits for a Ready, non-terminating pod matching the label selector and returns it.
func ReadyPod(t testing.TB, cs kubernetes.Interface, ns string, selector map[string]string, timeout time.Duration) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	sel := labels.SelectorFromSet(selector).String()
	Eventually(t, timeout, 250*time.Millisecond, "a ready pod "+sel+" in "+ns, func(ctx context.Context) (bool, string, error) {
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			return false, err.Error(), nil
		}
		for i := range pods.Items {
			p := &pods.Items[i]
			if p.DeletionTimestamp == nil && PodReady(p) {
				pod = p
				return true, "", nil
			}
		}
		return false, fmt.Sprintf("%d pods, none ready", len(pods.Items)), nil
	})
	return pod
}

// PodReady reports whether the pod's Ready condition is true.
func PodReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
