// Package wait watches an ErgomakeEnv (a watch, not polling) until it is ready, cannot become
// ready, is deleted, or a timeout passes, telling a callback about every change on the way.
package wait

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/ergomake/ergomake/internal/kube"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// ErrGone: the environment was deleted while waiting for it.
var ErrGone = errors.New("the environment was deleted")

// DegradedError: the operator says the environment cannot become ready without a change.
type DegradedError struct {
	Env *v1alpha1.ErgomakeEnv
	// Service is the first failed service, nil when the environment as a whole failed (a spec the
	// operator cannot build).
	Service *v1alpha1.ServiceStatus
}

func (e *DegradedError) Error() string {
	if e.Service != nil {
		return fmt.Sprintf("service %q %s", e.Service.Name, describe(e.Service))
	}
	if m := Message(e.Env); m != "" {
		return "environment cannot become ready: " + m
	}
	return "environment cannot become ready"
}

// TimeoutError: the environment was not ready in time.
type TimeoutError struct {
	Env   *v1alpha1.ErgomakeEnv // last seen; nil when never seen
	After time.Duration
	// Service is the first service that is not ready, nil when unknown.
	Service *v1alpha1.ServiceStatus
}

func (e *TimeoutError) Error() string {
	s := fmt.Sprintf("environment not ready after %s", e.After)
	if e.Service != nil {
		s += fmt.Sprintf(": service %q %s", e.Service.Name, describe(e.Service))
	}
	return s
}

func describe(s *v1alpha1.ServiceStatus) string {
	var parts []string
	switch s.State {
	case "":
	case v1alpha1.StateFailed:
		parts = append(parts, "failed")
	default:
		parts = append(parts, "is "+string(s.State))
	}
	switch {
	case s.Message != "":
		parts = append(parts, s.Message)
	case s.Reason != "":
		parts = append(parts, s.Reason)
	}
	if len(parts) == 0 {
		return "is not ready"
	}
	return strings.Join(parts, ": ")
}

// Options tune Until.
type Options struct {
	// Timeout ends the wait with a TimeoutError; zero waits until ctx ends.
	Timeout time.Duration
	// OnUpdate is called with every version of the environment seen, from the watch's goroutine
	// (one at a time).
	OnUpdate func(env *v1alpha1.ErgomakeEnv)
}

// State is what an environment's status says, for the generation of its spec.
type State int

const (
	// Pending: the operator has not yet observed this generation of the spec, or it is progressing.
	Pending State = iota
	// Ready: every service is ready or completed.
	Ready
	// Degraded: it cannot become ready without a change.
	Degraded
)

func (s State) String() string {
	switch s {
	case Ready:
		return "Ready"
	case Degraded:
		return "Degraded"
	}
	return "Pending"
}

// Evaluate says where the environment stands. A status written for an older generation of the
// spec says nothing about the current one: Pending.
func Evaluate(env *v1alpha1.ErgomakeEnv) State {
	if env.DeletionTimestamp != nil {
		return Pending
	}
	if env.Status.ObservedGeneration < env.Generation {
		return Pending
	}
	if c := current(env, v1alpha1.ConditionDegraded); c != nil && c.Status == metav1.ConditionTrue {
		return Degraded
	}
	if c := current(env, v1alpha1.ConditionReady); c != nil {
		if c.Status == metav1.ConditionTrue {
			return Ready
		}
		return Pending
	}
	switch env.Status.Phase {
	case v1alpha1.PhaseReady:
		return Ready
	case v1alpha1.PhaseDegraded:
		return Degraded
	}
	return Pending
}

// current returns the condition when it describes the current generation.
func current(env *v1alpha1.ErgomakeEnv, typ string) *metav1.Condition {
	c := meta.FindStatusCondition(env.Status.Conditions, typ)
	if c == nil || (c.ObservedGeneration != 0 && c.ObservedGeneration < env.Generation) {
		return nil
	}
	return c
}

// Message is the environment's most useful explanation: the status message, else the Degraded or
// Ready condition's message.
func Message(env *v1alpha1.ErgomakeEnv) string {
	if env == nil {
		return ""
	}
	if env.Status.Message != "" {
		return env.Status.Message
	}
	if c := current(env, v1alpha1.ConditionDegraded); c != nil && c.Status == metav1.ConditionTrue && c.Message != "" {
		return c.Message
	}
	if c := current(env, v1alpha1.ConditionReady); c != nil && c.Message != "" {
		return c.Message
	}
	return ""
}

// Failing returns the first failed service, else the first service not ready, else nil.
func Failing(env *v1alpha1.ErgomakeEnv) *v1alpha1.ServiceStatus {
	if env == nil {
		return nil
	}
	if s := failed(env); s != nil {
		return s
	}
	for i := range env.Status.Services {
		if !env.Status.Services[i].IsReady() {
			return &env.Status.Services[i]
		}
	}
	return nil
}

// Changed returns the services of cur whose state, readiness, reason, message or log tail differ
// from prev (every service when prev is nil), in cur's order.
func Changed(prev, cur *v1alpha1.ErgomakeEnv) []v1alpha1.ServiceStatus {
	old := map[string]v1alpha1.ServiceStatus{}
	if prev != nil {
		for _, s := range prev.Status.Services {
			old[s.Name] = s
		}
	}
	var out []v1alpha1.ServiceStatus
	for _, s := range cur.Status.Services {
		o, ok := old[s.Name]
		if !ok || o.State != s.State || o.Ready != s.Ready || o.Desired != s.Desired ||
			o.Reason != s.Reason || o.Message != s.Message || !slices.Equal(o.LogTail, s.LogTail) ||
			!slices.Equal(o.WaitingFor, s.WaitingFor) {
			out = append(out, s)
		}
	}
	return out
}

// Step is what a wait does with each version of the environment it sees: opts.OnUpdate, then
// whether the wait is over, with its outcome: Ready (nil) or Degraded (*DegradedError).
func Step(opts Options, env *v1alpha1.ErgomakeEnv) (over bool, err error) {
	if opts.OnUpdate != nil {
		opts.OnUpdate(env)
	}
	switch Evaluate(env) {
	case Ready:
		return true, nil
	case Degraded:
		return true, &DegradedError{Env: env, Service: failed(env)}
	}
	return false, nil
}

// Until watches the environment until it is Ready (returned with a nil error), Degraded
// (*DegradedError), deleted (ErrGone) or opts.Timeout passes (*TimeoutError). When ctx ends first,
// its error is returned.
func Until(ctx context.Context, c *kube.Client, namespace, name string, opts Options) (*v1alpha1.ErgomakeEnv, error) {
	wctx := ctx
	if opts.Timeout > 0 {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
	}
	var last *v1alpha1.ErgomakeEnv
	var result error
	check := func(u *unstructured.Unstructured) (bool, error) {
		env, err := kube.EnvFromUnstructured(u)
		if err != nil {
			return false, err
		}
		last = env
		var over bool
		over, result = Step(opts, env)
		return over, nil
	}
	pre := func(store cache.Store) (bool, error) {
		items := store.List()
		if len(items) == 0 {
			result = ErrGone
			return true, nil
		}
		return check(items[0].(*unstructured.Unstructured))
	}
	cond := func(ev watch.Event) (bool, error) {
		switch ev.Type {
		case watch.Deleted:
			result = ErrGone
			return true, nil
		case watch.Added, watch.Modified:
			u, ok := ev.Object.(*unstructured.Unstructured)
			if !ok {
				return false, nil
			}
			return check(u)
		}
		return false, nil
	}
	_, err := watchtools.UntilWithSync(wctx, c.EnvListWatch(namespace, name), &unstructured.Unstructured{}, pre, cond)
	if err != nil {
		if ctx.Err() != nil {
			return last, ctx.Err()
		}
		if wctx.Err() != nil {
			return last, &TimeoutError{Env: last, After: opts.Timeout, Service: Failing(last)}
		}
		return last, c.Explain(err)
	}
	return last, result
}

func failed(env *v1alpha1.ErgomakeEnv) *v1alpha1.ServiceStatus {
	for i := range env.Status.Services {
		if env.Status.Services[i].Failed() {
			return &env.Status.Services[i]
		}
	}
	return nil
}

// Watch calls onUpdate with every version of the environment until ctx ends (nil) or the
// environment is deleted (ErrGone).
func Watch(ctx context.Context, c *kube.Client, namespace, name string, onUpdate func(*v1alpha1.ErgomakeEnv)) error {
	var gone bool
	send := func(u *unstructured.Unstructured) {
		if env, err := kube.EnvFromUnstructured(u); err == nil {
			onUpdate(env)
		}
	}
	pre := func(store cache.Store) (bool, error) {
		items := store.List()
		if len(items) == 0 {
			gone = true
			return true, nil
		}
		send(items[0].(*unstructured.Unstructured))
		return false, nil
	}
	cond := func(ev watch.Event) (bool, error) {
		switch ev.Type {
		case watch.Deleted:
			gone = true
			return true, nil
		case watch.Added, watch.Modified:
			if u, ok := ev.Object.(*unstructured.Unstructured); ok {
				send(u)
			}
		}
		return false, nil
	}
	_, err := watchtools.UntilWithSync(ctx, c.EnvListWatch(namespace, name), &unstructured.Unstructured{}, pre, cond)
	if gone {
		return ErrGone
	}
	if ctx.Err() != nil {
		return nil
	}
	return c.Explain(err)
}
