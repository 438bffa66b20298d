package workload

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ergomake/ergomake/internal/kube"
	"github.com/ergomake/ergomake/internal/render"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// RestartPoll is how often a restart reads the rollouts while waiting (a variable for tests).
var RestartPoll = 500 * time.Millisecond

// Deployments are the Deployments of the environment's services, by compose service name. Only
// the ones the environment controls count: nothing else is ever restarted.
func Deployments(ctx context.Context, client *kube.Client, env *v1alpha1.ErgomakeEnv) (map[string]*appsv1.Deployment, error) {
	list, err := client.Deployments(ctx, env.Namespace, map[string]string{v1alpha1.LabelEnv: render.LabelValue(env.Name)})
	if err != nil {
		return nil, err
	}
	byLabel := map[string]*appsv1.Deployment{}
	for i := range list {
		if metav1.IsControlledBy(&list[i], env) {
			byLabel[list[i].Labels[v1alpha1.LabelService]] = &list[i]
		}
	}
	out := map[string]*appsv1.Deployment{}
	for _, s := range env.Spec.Services {
		if d := byLabel[render.LabelValue(s.Name)]; d != nil {
			out[s.Name] = d
		}
	}
	return out, nil
}

// Skip is a service a restart of every service leaves alone, and why.
type Skip struct {
	Service string `json:"service"`
	Why     string `json:"why"`
}

// errOneShot says a one-shot service cannot be restarted.
var errOneShot = errors.New("is a one-shot service (it runs once to completion, as a Kubernetes Job): it cannot be restarted")

// Restartable chooses the services to restart: the named ones, each of which must be a
// long-running service that has been started (else a *RequestError); or, when none is named,
// every started long-running one, the others returned as skipped.
func Restartable(env *v1alpha1.ErgomakeEnv, names []string, deployments map[string]*appsv1.Deployment) (chosen []string, skipped []Skip, err error) {
	if len(names) == 0 {
		for _, s := range env.Spec.Services {
			switch {
			case s.Lifecycle == v1alpha1.OneShot:
				skipped = append(skipped, Skip{s.Name, "one-shot service, not restarted"})
			case deployments[s.Name] == nil:
				skipped = append(skipped, Skip{s.Name, "not started yet, not restarted"})
			default:
				chosen = append(chosen, s.Name)
			}
		}
		return chosen, skipped, nil
	}
	seen := map[string]bool{}
	for _, name := range names {
		spec, err := ServiceSpec(env, name)
		if err != nil {
			return nil, nil, err
		}
		if seen[name] {
			continue
		}
		seen[name] = true
		if spec.Lifecycle == v1alpha1.OneShot {
			return nil, nil, &RequestError{Err: fmt.Errorf("service %s %w", name, errOneShot)}
		}
		if deployments[name] == nil {
			return nil, nil, requestErrorf("service %s has not been started yet%s", name, ServiceState(env, name))
		}
		chosen = append(chosen, name)
	}
	return chosen, nil, nil
}

// Restart is a restart of an environment's services, planned: PlanRestart, then Run.
type Restart struct {
	client      *kube.Client
	env         *v1alpha1.ErgomakeEnv
	deployments map[string]*appsv1.Deployment
	// Services are the services Run restarts (none: nothing to do).
	Services []string
	// Skipped are the services a restart of every service leaves alone.
	Skipped []Skip
}

// PlanRestart chooses the services of env to restart (Restartable): the named ones, or every
// started long-running one when names is empty.
func PlanRestart(ctx context.Context, client *kube.Client, env *v1alpha1.ErgomakeEnv, names []string) (*Restart, error) {
	deployments, err := Deployments(ctx, client, env)
	if err != nil {
		return nil, err
	}
	chosen, skipped, err := Restartable(env, names, deployments)
	if err != nil {
		return nil, err
	}
	return &Restart{client: client, env: env, deployments: deployments, Services: chosen, Skipped: skipped}, nil
}

// Progress receives what a restart does (each may be nil).
type Progress struct {
	// Started: the Deployments were told to replace their pods; Run now waits.
	Started func(services []string)
	// Ready: service is ready again, in state (running, or healthy with a healthcheck).
	Ready func(service string, state v1alpha1.ServiceState)
	// Pending: after each reading of the rollouts, how many services are ready again of all.
	Pending func(restarted, total int)
}

// Run restarts the planned services, all together as docker compose does, and waits up to
// timeout until each is ready again: its pods are replaced by new ones, the way its updates roll
// out. at is the time recorded on the pod templates. It returns ctx.Err() when ctx ends.
func (r *Restart) Run(ctx context.Context, at time.Time, timeout time.Duration, p Progress) error {
	chosen, env, client := r.Services, r.env, r.client
	if len(chosen) == 0 {
		return nil
	}
	// Restart them all first, then wait: they restart together, as in docker compose.
	generation := map[string]int64{}
	for _, name := range chosen {
		d, err := client.RestartDeployment(ctx, r.deployments[name], at)
		if err != nil {
			return err
		}
		generation[name] = d.Generation
	}
	if p.Started != nil {
		p.Started(chosen)
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	pending := append([]string(nil), chosen...)
	tick := time.NewTicker(RestartPoll)
	defer tick.Stop()
	for {
		// Read with ctx, not wctx: only the select below decides that time is up.
		current, err := Deployments(ctx, client, env)
		if err != nil {
			return err
		}
		var still []string
		for _, name := range pending {
			d := current[name]
			if d == nil {
				return fmt.Errorf("the deployment of service %s is gone: was the environment changed or removed meanwhile?", name)
			}
			ro := kube.RolloutOf(d, generation[name])
			switch {
			case ro.Done:
				// Ready as the Deployment counts it: its healthcheck passes, or, without one, it
				// runs (a crash after that shows in `ergomake ps`).
				state := v1alpha1.StateRunning
				if spec, _ := ServiceSpec(env, name); spec != nil && spec.Healthcheck != nil {
					state = v1alpha1.StateHealthy
				}
				if p.Ready != nil {
					p.Ready(name, state)
				}
			case ro.Stalled != "":
				return fmt.Errorf("service %s did not become ready again (%s): %s", name, ro.Stalled, restartProblem(ctx, client, env, name))
			default:
				still = append(still, name)
			}
		}
		pending = still
		if len(pending) == 0 {
			return nil
		}
		if p.Pending != nil {
			p.Pending(len(chosen)-len(pending), len(chosen))
		}
		select {
		case <-tick.C:
		case <-wctx.Done():
			if ctx.Err() != nil {
				return ctx.Err()
			}
			var why []string
			for _, name := range pending {
				why = append(why, name+" ("+restartProblem(ctx, client, env, name)+")")
			}
			return fmt.Errorf("timed out after %s waiting for %s", timeout, strings.Join(why, ", "))
		}
	}
}

// restartProblem says what keeps a restarted service from being ready: its newest pod's state.
func restartProblem(ctx context.Context, client *kube.Client, env *v1alpha1.ErgomakeEnv, service string) string {
	pods, err := client.ServicePods(ctx, env.Namespace, env.Name, render.LabelValue(service))
	if err != nil || len(pods) == 0 {
		return "no pod"
	}
	p := &pods[len(pods)-1]
	if why := PodNotRunning(p); why != "" {
		return "pod " + p.Name + ": " + why
	}
	return "pod " + p.Name + ": running, not ready (its healthcheck does not pass yet)"
}
