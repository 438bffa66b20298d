package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ergomake/ergomake/internal/iostreams"
	"github.com/ergomake/ergomake/internal/kube"
	"github.com/ergomake/ergomake/internal/render"
	"github.com/ergomake/ergomake/internal/ui"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// RestartOptions are the options of `ergomake restart`.
type RestartOptions struct {
	IO      *iostreams.IOStreams
	Factory *Factory
	Context context.Context

	Project ProjectOptions
	Cluster ClusterOptions
	// Services are the compose services to restart (every long-running one when empty).
	Services []string
	// WaitTimeout is how long to wait until the restarted services are ready again.
	WaitTimeout time.Duration
}

// NewCmdRestart returns `ergomake restart`.
func NewCmdRestart(f *Factory, runF func(*RestartOptions) error) *cobra.Command {
	opts := &RestartOptions{IO: f.IOStreams, Factory: f}
	cmd := &cobra.Command{
		Use:   "restart [SERVICE...] [flags]",
		Short: "Restart the project's services",
		Long: `Restart the containers of the compose project's services (every service when none is named), as
"docker compose restart" does, and wait until they are ready again.

Each service's pods are replaced by new ones, the way its updates roll out: one by one, or all
stopped first for a service that holds a volume. Its definition does not change; "ergomake up"
applies changes to the compose files. One-shot services (run to completion, as a Kubernetes Job)
cannot be restarted.`,
		Example: `  ergomake restart
  ergomake restart web worker`,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Context = cmd.Context()
			if len(args) > 0 {
				opts.Services = args
			}
			if err := checkWaitTimeout(opts.WaitTimeout); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return restartRun(opts)
		},
	}
	cmd.Flags().DurationVar(&opts.WaitTimeout, "wait-timeout", 5*time.Minute, "how long to wait until the services are ready again")
	addProjectFlags(cmd, &opts.Project)
	addClusterFlags(cmd, &opts.Cluster)
	cmd.ValidArgsFunction = completeServices(f, &opts.Project)
	return cmd
}

// restartPoll is how often the rollouts are read while waiting.
const restartPoll = 500 * time.Millisecond

func restartRun(opts *RestartOptions) error {
	ctx := opts.Context
	if err := clusterOnly(opts.Factory, opts.Cluster, "restart"); err != nil {
		return err
	}
	target, err := openEnv(ctx, opts.Factory, opts.Project, opts.Cluster, nil)
	if err != nil {
		return err
	}
	client, env := target.client, target.env
	status := ui.NewStatus(opts.IO, ui.StatusOptions{Now: opts.Factory.Now})
	defer status.Stop()

	deployments, err := envDeployments(ctx, client, env)
	if err != nil {
		return err
	}
	chosen, err := restartable(env, opts.Services, deployments, status)
	if err != nil {
		return err
	}
	if len(chosen) == 0 {
		status.Logf("No service to restart.")
		return nil
	}

	// Restart them all first, then wait: they restart together, as in docker compose.
	generation := map[string]int64{}
	now := opts.Factory.Now()
	for _, name := range chosen {
		d, err := client.RestartDeployment(ctx, deployments[name], now)
		if err != nil {
			return err
		}
		generation[name] = d.Generation
	}

	status.Start("Restarting " + strings.Join(chosen, ", "))
	wctx, cancel := context.WithTimeout(ctx, opts.WaitTimeout)
	defer cancel()
	pending := append([]string(nil), chosen...)
	tick := time.NewTicker(restartPoll)
	defer tick.Stop()
	for {
		// Read with ctx, not wctx: only the select below decides that time is up.
		current, err := envDeployments(ctx, client, env)
		if err != nil {
			status.End(false)
			return err
		}
		var still []string
		for _, name := range pending {
			d := current[name]
			if d == nil {
				status.End(false)
				return fmt.Errorf("the deployment of service %s is gone: was the environment changed or removed meanwhile?", name)
			}
			r := kube.RolloutOf(d, generation[name])
			switch {
			case r.Done:
				// Ready as the Deployment counts it: its healthcheck passes, or, without one, it
				// runs (a crash after that shows in `ergomake ps`).
				state := v1alpha1.StateRunning
				if spec, _ := serviceSpec(env, name); spec != nil && spec.Healthcheck != nil {
					state = v1alpha1.StateHealthy
				}
				status.Logf("%s: %s", name, state)
			case r.Stalled != "":
				status.End(false)
				return fmt.Errorf("service %s did not become ready again (%s): %s", name, r.Stalled, restartProblem(ctx, client, env, name))
			default:
				still = append(still, name)
			}
		}
		pending = still
		if len(pending) == 0 {
			status.End(true)
			return nil
		}
		status.Update(fmt.Sprintf("%d/%d restarted", len(chosen)-len(pending), len(chosen)))
		select {
		case <-tick.C:
		case <-wctx.Done():
			status.End(false)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			var why []string
			for _, name := range pending {
				why = append(why, name+" ("+restartProblem(ctx, client, env, name)+")")
			}
			return fmt.Errorf("timed out after %s waiting for %s", opts.WaitTimeout, strings.Join(why, ", "))
		}
	}
}

// envDeployments are the Deployments of the environment's services, by compose service name.
// Only the ones the environment controls count: nothing else is ever restarted.
func envDeployments(ctx context.Context, client *kube.Client, env *v1alpha1.ErgomakeEnv) (map[string]*appsv1.Deployment, error) {
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

// errOneShot says a one-shot service cannot be restarted.
var errOneShot = errors.New("is a one-shot service (it runs once to completion, as a Kubernetes Job): it cannot be restarted")

// restartable chooses the services to restart: the named ones, each of which must be a
// long-running service that has been started; or, when none is named, every started long-running
// one (the others are mentioned on status, not restarted).
func restartable(env *v1alpha1.ErgomakeEnv, names []string, deployments map[string]*appsv1.Deployment, status *ui.Status) ([]string, error) {
	if len(names) == 0 {
		var out []string
		for _, s := range env.Spec.Services {
			switch {
			case s.Lifecycle == v1alpha1.OneShot:
				status.Logf("%s: one-shot service, not restarted", s.Name)
			case deployments[s.Name] == nil:
				status.Logf("%s: not started yet, not restarted", s.Name)
			default:
				out = append(out, s.Name)
			}
		}
		return out, nil
	}
	seen := map[string]bool{}
	var out []string
	for _, name := range names {
		spec, err := serviceSpec(env, name)
		if err != nil {
			return nil, err
		}
		if seen[name] {
			continue
		}
		seen[name] = true
		if spec.Lifecycle == v1alpha1.OneShot {
			return nil, fmt.Errorf("service %s %w", name, errOneShot)
		}
		if deployments[name] == nil {
			return nil, fmt.Errorf("service %s has not been started yet%s", name, serviceState(env, name))
		}
		out = append(out, name)
	}
	return out, nil
}

// restartProblem says what keeps a restarted service from being ready: its newest pod's state.
func restartProblem(ctx context.Context, client *kube.Client, env *v1alpha1.ErgomakeEnv, service string) string {
	pods, err := client.ServicePods(ctx, env.Namespace, env.Name, render.LabelValue(service))
	if err != nil || len(pods) == 0 {
		return "no pod"
	}
	p := &pods[len(pods)-1]
	if why := podNotRunning(p); why != "" {
		return "pod " + p.Name + ": " + why
	}
	return "pod " + p.Name + ": running, not ready (its healthcheck does not pass yet)"
}
