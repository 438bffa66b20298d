package kube

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// DeleteOptions say what DeleteEnv removes and whom it tells.
type DeleteOptions struct {
	// Namespace: also delete the namespace (when ergomake created it).
	Namespace bool
	// Progress, when not nil, is told what is still being removed.
	Progress func(string)
}

// DeleteEnv deletes the environment in the foreground (the API server keeps it until the garbage
// collector has removed everything it owns), waits until it is gone, then, when asked, deletes the
// namespace and waits until that is gone too. An environment that does not exist is not an error.
func (c *Client) DeleteEnv(ctx context.Context, namespace, name string, opts DeleteOptions) error {
	progress := opts.Progress
	if progress == nil {
		progress = func(string) {}
	}
	fg := metav1.DeletePropagationForeground
	err := c.Envs(namespace).Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &fg})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting ErgomakeEnv %s/%s: %w", namespace, name, c.Explain(err))
	}

	pctx, stopPods := context.WithCancel(ctx)
	defer stopPods()
	go c.reportPods(pctx, namespace, progress)

	if err := c.waitGone(ctx, c.EnvListWatch(namespace, name), &unstructured.Unstructured{}, nil); err != nil {
		return fmt.Errorf("waiting for ErgomakeEnv %s/%s to be deleted: %w", namespace, name, err)
	}
	// Secrets and ConfigMaps are owned by the environment, but not blocking its deletion: remove
	// any the garbage collector has not reached yet (and any written before the owner existed).
	sel := v1alpha1.LabelEnv + "=" + name
	_ = c.Kube.CoreV1().Secrets(namespace).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: sel})
	_ = c.Kube.CoreV1().ConfigMaps(namespace).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: sel})
	if !opts.Namespace {
		return nil
	}
	progress(fmt.Sprintf("deleting namespace %s", namespace))
	return c.DeleteNamespace(ctx, namespace, nil)
}

// reportPods tells progress how many pods of the namespace remain, each time that changes.
func (c *Client) reportPods(ctx context.Context, namespace string, progress func(string)) {
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return c.Kube.CoreV1().Pods(namespace).List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return c.Kube.CoreV1().Pods(namespace).Watch(ctx, o)
		},
	}
	last := -1
	_ = c.waitGone(ctx, lw, &corev1.Pod{}, func(n int) {
		if n != last {
			last = n
			progress(fmt.Sprintf("%d %s terminating", n, plural(n, "pod", "pods")))
		}
	})
}

// EnvListWatch lists and watches one environment by name.
func (c *Client) EnvListWatch(namespace, name string) cache.ListerWatcher {
	sel := fields.OneTermEqualSelector("metadata.name", name).String()
	return &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = sel
			return c.Envs(namespace).List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = sel
			return c.Envs(namespace).Watch(ctx, o)
		},
	}
}

// waitGone watches until the list is empty. onCount, when not nil, is told the number of objects
// each time something changes.
func (c *Client) waitGone(ctx context.Context, lw cache.ListerWatcher, obj runtime.Object, onCount func(int)) error {
	var store cache.Store
	pre := func(s cache.Store) (bool, error) {
		store = s
		n := len(s.List())
		if onCount != nil && n > 0 {
			onCount(n)
		}
		return n == 0, nil
	}
	cond := func(watch.Event) (bool, error) {
		n := len(store.List())
		if onCount != nil && n > 0 {
			onCount(n)
		}
		return n == 0, nil
	}
	_, err := watchtools.UntilWithSync(ctx, lw, obj, pre, cond)
	if err != nil {
		return c.Explain(err)
	}
	return nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
