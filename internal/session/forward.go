package session

import (
	"context"
	"errors"

	"github.com/ergomake/ergomake/internal/wait"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// Forward forwards the published ports of a running environment (of the services in only; all
// when nil) until ctx ends: the steps of `ergomake forward`. The environment is left running.
func Forward(ctx context.Context, opts Options, env *v1alpha1.ErgomakeEnv, only map[string]bool) error {
	s := newSession(opts, env.Namespace, env.Name, env.Spec.Project)
	if env.Spec.TTL != nil {
		s.ttl = env.Spec.TTL.Duration
	}
	if wait.Evaluate(env) != wait.Ready {
		s.rep.Warnf("environment %s/%s is not ready (%s): connections wait for ready pods", s.ns, s.name, Summary(env))
	}
	s.rep.Env(env)
	fwd, err := s.bind(ctx, env, only)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	s.rep.Bound(fwd.bindings)
	s.rep.Printf("Remote services of %s are now bound to localhost. [Press CTRL+C to stop forwarding; the environment keeps running]", s.name)
	err = s.attach(ctx, env, fwd)
	if errors.Is(err, errDeleted) || ctx.Err() == nil {
		return err
	}
	return nil
}
