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
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// DeleteOptions say what DeleteEnv removes and whom it tells.
type DeleteOptions struct {
	// Namespace: also delete the namespace, when ergomake created it for this environment (it
	// carries the environment's UID, or NamespaceCreated) and it holds nothing else of note.
	Namespace bool
	// NamespaceCreated: this process created the namespace, maybe before the environment had a
	// UID to mark it with.
	NamespaceCreated bool
	// Progress, when not nil, is told what is still being removed.
	Progress func(string)
	// KeptNamespace, when not nil, is told why the namespace was not deleted although Namespace
	// asked for it.
	KeptNamespace func(why string)
}

// DeleteEnv deletes the environment in the foreground (the API server keeps it until the garbage
// collector has removed everything it owns), waits until it is gone, then, when asked, deletes the
// namespace and waits until that is gone too. An environment that does not exist is not an error.
func (c *Client) DeleteEnv(ctx context.Context, namespace, name string, opts DeleteOptions) error {
	progress := opts.Progress
	if progress == nil {
		progress = func(string) {}
	}
	var uid types.UID
	if opts.Namespace {
		env, err := c.GetEnv(ctx, namespace, name)
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting ErgomakeEnv %s/%s: %w", namespace, name, err)
		}
		if env != nil {
			uid = env.UID
		}
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
	kept := opts.KeptNamespace
	if kept == nil {
		kept = func(string) {}
	}
	why, err := c.namespaceRemovable(ctx, namespace, name, uid, opts.NamespaceCreated)
	if err != nil {
		return err
	}
	if why != "" {
		kept(why)
		return nil
	}
	progress(fmt.Sprintf("deleting namespace %s", namespace))
	return c.DeleteNamespace(ctx, namespace, nil)
}

// namespaceRemovable says why the namespace of the environment envName (of that UID; "" when it
// was never created) must be kept, "" when ergomake may delete it: it created the namespace for
// this environment (the UID mark, or created by this process and marked for no other
// environment) and the namespace holds nothing else of note.
func (c *Client) namespaceRemovable(ctx context.Context, namespace, envName string, uid types.UID, createdHere bool) (string, error) {
	ns, err := c.Kube.CoreV1().Namespaces().Get(ctx, namespace, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("namespace %s: %w", namespace, c.Explain(err))
	}
	mark := ns.Labels[v1alpha1.LabelNamespaceEnvUID]
	ours := NamespaceMarkedFor(ns, uid) || (createdHere && IsOurNamespace(ns) && (mark == "" || mark == string(uid)))
	if !ours {
		return fmt.Sprintf("namespace %s was not created by ergomake for this environment", namespace), nil
	}
	foreign, err := c.Foreign(ctx, namespace, envName)
	if err != nil {
		return "", err
	}
	if len(foreign) > 0 {
		return fmt.Sprintf("namespace %s holds more than the environment (%s)", namespace, DescribeForeign(foreign)), nil
	}
	return "", nil
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
