package operator

import (
	"context"
	"errors"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ergomake/ergomake/internal/policy"
	"github.com/ergomake/ergomake/internal/render"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// convergence is one reconcile pass of an environment, handed from phase to phase: what the cluster
// holds, what has been applied so far and what stands in the way.
type convergence struct {
	env *v1alpha1.ErgomakeEnv
	p   *pass
	o   *owned
	// dnsServer is the environment DNS's address ("" without one), read once per pass.
	dnsServer string
	// ceiling is the cluster's security ceiling, read once per pass (policy.go).
	ceiling policy.Level

	// objs is the rendered environment: without ClusterIPs at first, then with them.
	objs *render.Objects
	// clusterIPs of the environment's Services, by name (headless ones left out).
	clusterIPs map[string]string
	// workloads and gates of the services, once the workload phase has decided them (nil before:
	// the status then finds the workloads by their labels).
	workloads map[string]client.Object
	gates     map[string]gate

	// renderErr: the spec cannot be rendered. conflicts: objects that cannot be applied as the
	// spec says (owned by someone else, rejected by the API server). Either is why the
	// environment cannot be built, which its status tells.
	renderErr error
	conflicts []error
}

// buildErr is why the environment cannot be built, nil when nothing stands in the way.
func (c *convergence) buildErr() error {
	if c.renderErr != nil {
		return c.renderErr
	}
	return errors.Join(c.conflicts...)
}

// phaseResult says whether the pass goes on after a phase.
type phaseResult int

const (
	// phaseNext: on to the next phase.
	phaseNext phaseResult = iota
	// phaseStop: the environment cannot be built further (c.buildErr says why); only its status
	// is written.
	phaseStop
)

// convergePhase is one step of a pass. An error is transient: the pass ends and is retried.
type convergePhase func(ctx context.Context, c *convergence) (phaseResult, error)

// converge applies what may be applied, in phases, and returns the status that describes the
// result:
//
//  1. checkSpec: render the spec without ClusterIPs and check it against the security ceiling;
//     nothing is created for one that cannot be built or exceeds the ceiling (what an earlier
//     spec built stays).
//  2. applyNetwork: the claims and Services, whose ClusterIPs the pods need for hostAliases.
//  3. renderWithClusterIPs: render again with the ClusterIPs and the environment DNS.
//  4. applyHosts: the /etc/hosts ConfigMap for names nothing else resolves, or its removal.
//  5. prune: delete what the spec no longer has.
//  6. applyWorkloads: the Deployments and Jobs, each once its dependencies allow.
func (r *Reconciler) converge(ctx context.Context, env *v1alpha1.ErgomakeEnv, p *pass) (*v1alpha1.EnvStatus, error) {
	o, err := r.listOwned(ctx, env)
	if err != nil {
		return nil, err
	}
	c := &convergence{env: env, p: p, o: o, dnsServer: r.DNS.ServerIP(ctx), ceiling: r.Ceiling.Level(ctx)}
	phases := []convergePhase{r.checkSpec, r.applyNetwork, r.renderWithClusterIPs, r.applyHosts, r.prune, r.applyWorkloads}
	for _, phase := range phases {
		res, err := phase(ctx, c)
		if err != nil {
			return nil, err
		}
		if res == phaseStop {
			break
		}
	}
	return r.status(ctx, env, o, c.workloads, c.gates, p, c.buildErr())
}

// checkSpec renders the spec without ClusterIPs: is it buildable at all, within the security
// ceiling, and which Services does it have?
func (r *Reconciler) checkSpec(_ context.Context, c *convergence) (phaseResult, error) {
	c.objs, c.renderErr = render.Render(c.env, render.Options{})
	if c.renderErr == nil {
		c.renderErr = checkCeiling(c.env, c.ceiling)
	}
	if c.renderErr != nil {
		return phaseStop, nil
	}
	return phaseNext, nil
}

// applyNetwork applies the claims and Services and learns the Services' ClusterIPs. Each object
// is applied whatever happens to the others; the errors are joined.
func (r *Reconciler) applyNetwork(ctx context.Context, c *convergence) (phaseResult, error) {
	var errs []error
	apply := func(obj client.Object, knownOwned bool) bool {
		err := r.applyOwned(ctx, c.env, obj, knownOwned)
		switch {
		case err == nil:
			return true
		case permanent(err):
			c.conflicts = append(c.conflicts, err)
		default:
			errs = append(errs, err)
		}
		return false
	}
	for _, claim := range c.objs.Claims {
		apply(claim, c.o.claims[claim.Name] != nil)
	}
	c.clusterIPs = map[string]string{}
	for _, s := range c.objs.Services {
		for _, svc := range s.Services {
			existing := c.o.services[svc.Name]
			if existing != nil && (existing.Spec.ClusterIP == corev1.ClusterIPNone) != (svc.Spec.ClusterIP == corev1.ClusterIPNone) {
				// Headless to ClusterIP or back: the field is immutable, so the Service is made
				// again, on the pass after this one is gone.
				if existing.DeletionTimestamp.IsZero() {
					if err := r.Client.Delete(ctx, existing, client.Preconditions{UID: &existing.UID}); err != nil && !apierrors.IsNotFound(err) {
						errs = append(errs, err)
					}
				}
				continue
			}
			ip := ""
			switch {
			case existing != nil && serviceUpToDate(existing, svc):
				ip = existing.Spec.ClusterIP
			case apply(svc, existing != nil):
				ip = svc.Spec.ClusterIP
			}
			if ip != "" && ip != corev1.ClusterIPNone {
				c.clusterIPs[svc.Name] = ip
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return phaseStop, err
	}
	if len(c.conflicts) > 0 {
		return phaseStop, nil
	}
	return phaseNext, nil
}

// renderWithClusterIPs renders the spec again with the ClusterIPs and the environment DNS: the
// workloads carry hostAliases for names that are not DNS labels.
func (r *Reconciler) renderWithClusterIPs(_ context.Context, c *convergence) (phaseResult, error) {
	c.objs, c.renderErr = render.Render(c.env, render.Options{ClusterIPs: c.clusterIPs, DNSServer: c.dnsServer, ClusterDomain: r.ClusterDomain})
	if c.renderErr != nil {
		return phaseStop, nil
	}
	policy.Harden(c.objs, c.ceiling)
	return phaseNext, nil
}

// applyHosts: names hostAliases cannot carry (web_app) resolve through the environment DNS when
// there is one (render points the pods at it); without it, the operator writes /etc/hosts itself,
// from a ConfigMap every workload mounts. An environment that no longer needs it loses it.
func (r *Reconciler) applyHosts(ctx context.Context, c *convergence) (phaseResult, error) {
	var plan *hostsPlan
	if c.dnsServer == "" {
		plan = planHosts(c.env, c.objs, c.clusterIPs)
	}
	if plan == nil {
		return phaseNext, r.dropHosts(ctx, c.env, c.o)
	}
	if err := r.applyOwned(ctx, c.env, plan.configMap(c.env), false); err != nil {
		if !permanent(err) {
			return phaseStop, err
		}
		c.conflicts = append(c.conflicts, err)
		return phaseStop, nil
	}
	for i := range c.objs.Services {
		plan.mount(&c.objs.Services[i])
	}
	return phaseNext, nil
}

// applyWorkloads creates the services' Deployments and Jobs in dependency order (a service is
// created once its dependencies meet their conditions) and keeps those that exist up to date.
// Each service is applied whatever happens to the others; the errors are joined.
func (r *Reconciler) applyWorkloads(ctx context.Context, c *convergence) (phaseResult, error) {
	specs := map[string]*v1alpha1.ServiceSpec{}
	for i := range c.env.Spec.Services {
		specs[c.env.Spec.Services[i].Name] = &c.env.Spec.Services[i]
	}
	events, err := r.events(ctx, c.env, c.o)
	if err != nil {
		return phaseStop, err
	}
	states := map[string]assessment{}
	c.workloads = map[string]client.Object{}
	for _, rs := range c.objs.Services {
		if w := currentWorkload(c.o, &rs); w != nil {
			c.workloads[rs.Name] = w
			states[rs.Name] = assessService(observe(c.o, &rs, w), events, c.p.cluster)
		}
	}
	// Creating one service never satisfies another's dependency in the same pass (it has no pods
	// yet), so the gates decided before creating anything hold for the whole pass.
	c.gates = decideGates(c.env, specs, states)
	var errs []error
	for _, rs := range c.objs.Services {
		if _, exists := c.workloads[rs.Name]; !exists && !c.gates[rs.Name].Open {
			continue
		}
		w, err := r.applyWorkload(ctx, c.env, c.o, &rs)
		switch {
		case err != nil && permanent(err):
			c.conflicts = append(c.conflicts, err)
		case err != nil:
			errs = append(errs, err)
		case w != nil:
			c.workloads[rs.Name] = w
		default:
			delete(c.workloads, rs.Name)
		}
	}
	return phaseNext, errors.Join(errs...)
}
