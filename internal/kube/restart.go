package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
)

// AnnotationRestartedAt is set on a Deployment's pod template by `ergomake restart` (RFC 3339):
// changing it rolls every pod over, as `kubectl rollout restart` does with its own annotation.
const AnnotationRestartedAt = "ergomake.dev/restarted-at"

// RestartFieldManager is the field manager of the restart annotation. The operator applies each
// Deployment with server-side apply as "ergomake-operator" and never sets this annotation, so it
// never owns it: its applies (forced or not) leave a field another manager owns alone, and the
// annotation, and the restarted pods, stay. The operator's own notion of "same template" is its
// spec-hash annotation, which a restart does not touch, so it neither re-applies nor counts the
// new pods as belonging to an outdated template.
const RestartFieldManager = "ergomake-restart"

// Deployments lists the Deployments that carry every label of sel.
func (c *Client) Deployments(ctx context.Context, namespace string, sel map[string]string) ([]appsv1.Deployment, error) {
	l, err := c.Kube.AppsV1().Deployments(namespace).List(ctx, metav1.ListOptions{
		LabelSelector: labels.SelectorFromSet(sel).String(),
	})
	if err != nil {
		return nil, fmt.Errorf("listing deployments in %s: %w", namespace, c.Explain(err))
	}
	return l.Items, nil
}

// RestartDeployment sets the restart annotation of d's pod template to at, which makes the
// Deployment replace every pod (with its own strategy: rolling, or recreate for a service that
// holds a volume claim). It returns the Deployment as patched; the rollout is done when
// RolloutDone says so for its generation. The patch is made only if d is still the object of
// that UID.
func (c *Client) RestartDeployment(ctx context.Context, d *appsv1.Deployment, at time.Time) (*appsv1.Deployment, error) {
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"uid": d.UID},
		"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{
			"annotations": map[string]string{AnnotationRestartedAt: at.UTC().Format(time.RFC3339Nano)},
		}}},
	})
	if err != nil {
		return nil, err
	}
	out, err := c.Kube.AppsV1().Deployments(d.Namespace).Patch(ctx, d.Name, types.StrategicMergePatchType, patch,
		metav1.PatchOptions{FieldManager: RestartFieldManager})
	if err != nil {
		return nil, fmt.Errorf("restarting deployment %s/%s: %w", d.Namespace, d.Name, c.Explain(err))
	}
	return out, nil
}

// Rollout is how far a Deployment is in rolling out one generation of its template.
type Rollout struct {
	// Done: the controller has seen the generation, every replica runs its template and is
	// available, and no replica of an older template is left.
	Done bool
	// Ready replicas of the generation, out of Want.
	Ready, Want int32
	// Stalled is the controller's reason when it gave up progressing (ProgressDeadlineExceeded).
	Stalled string
}

// RolloutOf reads the rollout of generation gen from d, with `kubectl rollout status`'s rules.
func RolloutOf(d *appsv1.Deployment, gen int64) Rollout {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	r := Rollout{Want: want}
	if d.Generation < gen || d.Status.ObservedGeneration < gen || d.Status.ObservedGeneration < d.Generation {
		return r // the controller has not acted on the change yet
	}
	r.Ready = min(d.Status.UpdatedReplicas, d.Status.AvailableReplicas)
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Reason == "ProgressDeadlineExceeded" {
			r.Stalled = c.Reason
		}
	}
	r.Done = d.Status.UpdatedReplicas >= want && d.Status.Replicas <= d.Status.UpdatedReplicas &&
		d.Status.AvailableReplicas >= d.Status.UpdatedReplicas
	return r
}
