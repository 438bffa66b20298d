package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// Envs is the dynamic client of ErgomakeEnvs in a namespace ("" = every namespace).
func (c *Client) Envs(namespace string) dynamic.ResourceInterface {
	r := c.Dynamic.Resource(v1alpha1.GroupVersionResource)
	if namespace == "" {
		return r
	}
	return r.Namespace(namespace)
}

// EnvFromUnstructured converts what the dynamic client returns into the typed environment.
func EnvFromUnstructured(u *unstructured.Unstructured) (*v1alpha1.ErgomakeEnv, error) {
	env := &v1alpha1.ErgomakeEnv{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.UnstructuredContent(), env); err != nil {
		return nil, fmt.Errorf("decoding ErgomakeEnv %s/%s: %w", u.GetNamespace(), u.GetName(), err)
	}
	return env, nil
}

// GetEnv returns the environment, or an error for which apierrors.IsNotFound is true.
func (c *Client) GetEnv(ctx context.Context, namespace, name string) (*v1alpha1.ErgomakeEnv, error) {
	u, err := c.Envs(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil, err
		}
		return nil, c.Explain(err)
	}
	return EnvFromUnstructured(u)
}

// ListEnvs lists the environments of a namespace, or of every namespace when it is "".
func (c *Client) ListEnvs(ctx context.Context, namespace string) ([]v1alpha1.ErgomakeEnv, error) {
	l, err := c.Envs(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, c.Explain(err)
	}
	out := make([]v1alpha1.ErgomakeEnv, 0, len(l.Items))
	for i := range l.Items {
		env, err := EnvFromUnstructured(&l.Items[i])
		if err != nil {
			return nil, err
		}
		out = append(out, *env)
	}
	return out, nil
}

// ApplyEnv server-side applies the environment (field manager "ergomake", forcing conflicts: the
// CLI owns the spec) and returns what the API server stored.
func (c *Client) ApplyEnv(ctx context.Context, env *v1alpha1.ErgomakeEnv) (*v1alpha1.ErgomakeEnv, error) {
	obj := env.DeepCopy()
	obj.APIVersion = v1alpha1.GroupVersion.String()
	obj.Kind = v1alpha1.Kind
	// Fields the server owns must not be part of an apply configuration.
	obj.Status = v1alpha1.EnvStatus{}
	obj.ResourceVersion = ""
	obj.UID = ""
	obj.CreationTimestamp = metav1.Time{}
	obj.ManagedFields = nil
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("encoding ErgomakeEnv: %w", err)
	}
	unstructured.RemoveNestedField(u, "status")
	unstructured.RemoveNestedField(u, "metadata", "creationTimestamp")
	data, err := json.Marshal(u)
	if err != nil {
		return nil, fmt.Errorf("encoding ErgomakeEnv: %w", err)
	}
	out, err := c.Envs(env.Namespace).Patch(ctx, env.Name, types.ApplyPatchType, data,
		metav1.PatchOptions{FieldManager: FieldManager, Force: ptr(true)})
	if err != nil {
		return nil, fmt.Errorf("applying ErgomakeEnv %s/%s: %w", env.Namespace, env.Name, c.Explain(err))
	}
	return EnvFromUnstructured(out)
}

// HeartbeatValue is the heartbeat annotation's value at now: RFC 3339 with nanoseconds, so that
// each renewal changes it (the operator judges staleness by when it saw the value change).
func HeartbeatValue(now time.Time) string { return now.UTC().Format(time.RFC3339Nano) }

// Heartbeat renews the heartbeat annotation the operator's TTL reclaim reads.
func (c *Client) Heartbeat(ctx context.Context, namespace, name string, now time.Time) error {
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{
			"annotations": map[string]string{v1alpha1.AnnotationHeartbeat: HeartbeatValue(now)},
		},
	})
	if err != nil {
		return err
	}
	_, err = c.Envs(namespace).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager})
	if err != nil && !apierrors.IsNotFound(err) {
		return c.Explain(err)
	}
	return err
}

// SetTTL changes the environment's TTL (re-attaching renews a detached environment's TTL, and a
// detach lengthens an attached one's).
func (c *Client) SetTTL(ctx context.Context, namespace, name string, ttl time.Duration, now time.Time) error {
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{
			"annotations": map[string]string{v1alpha1.AnnotationHeartbeat: HeartbeatValue(now)},
		},
		"spec": map[string]any{"ttl": metav1.Duration{Duration: ttl}},
	})
	if err != nil {
		return err
	}
	_, err = c.Envs(namespace).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager})
	if err != nil && !apierrors.IsNotFound(err) {
		return c.Explain(err)
	}
	return err
}

func ptr[T any](v T) *T { return &v }

// Detach ends a session's attachment: the environment's TTL becomes ttl (counted from now) and
// its session annotation is removed, when it still names sessionID (a session that took over
// since keeps its own). An environment that is gone is not an error.
func (c *Client) Detach(ctx context.Context, namespace, name, sessionID string, ttl time.Duration, now time.Time) error {
	for try := 0; ; try++ {
		env, err := c.GetEnv(ctx, namespace, name)
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		annotations := map[string]any{v1alpha1.AnnotationHeartbeat: HeartbeatValue(now)}
		meta := map[string]any{"annotations": annotations, "resourceVersion": env.ResourceVersion}
		if s, _ := v1alpha1.EnvSession(env); s != nil && s.ID == sessionID {
			annotations[v1alpha1.AnnotationSession] = nil
		}
		patch, err := json.Marshal(map[string]any{"metadata": meta, "spec": map[string]any{"ttl": metav1.Duration{Duration: ttl}}})
		if err != nil {
			return err
		}
		_, err = c.Envs(namespace).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager})
		switch {
		case apierrors.IsConflict(err) && try < 5:
			// Changed meanwhile (another session's heartbeat, say): look again.
			continue
		case err != nil && !apierrors.IsNotFound(err):
			return c.Explain(err)
		}
		return nil
	}
}
