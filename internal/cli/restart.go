package cli

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ergomake/ergomake/internal/iostreams"
	"github.com/ergomake/ergomake/internal/server"
	"github.com/ergomake/ergomake/internal/ui"
	"github.com/ergomake/ergomake/internal/workload"
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
	addServerFlag(cmd, &opts.Cluster)
	cmd.ValidArgsFunction = completeServices(f, &opts.Project)
	return cmd
}

func restartRun(opts *RestartOptions) error {
	ctx := opts.Context
	target, err := openEnvVia(ctx, opts.Factory, opts.Project, opts.Cluster, nil, true)
	if err != nil {
		return err
	}
	status := ui.NewStatus(opts.IO, ui.StatusOptions{Now: opts.Factory.Now})
	defer status.Stop()
	progress := workload.Progress{
		Started: func(services []string) { status.Start("Restarting " + strings.Join(services, ", ")) },
		Ready:   func(service string, state v1alpha1.ServiceState) { status.Logf("%s: %s", service, state) },
		Pending: func(restarted, total int) { status.Update(fmt.Sprintf("%d/%d restarted", restarted, total)) },
	}
	skipped := func(skips []workload.Skip, services []string) {
		for _, s := range skips {
			status.Logf("%s: %s", s.Service, s.Why)
		}
		if len(services) == 0 {
			status.Logf("No service to restart.")
		}
	}
	if target.srv != nil {
		err = serverRestart(ctx, target.srv, target.env.Spec.Project, opts, skipped, progress)
	} else {
		var plan *workload.Restart
		if plan, err = workload.PlanRestart(ctx, target.client, target.env, opts.Services); err != nil {
			return err
		}
		skipped(plan.Skipped, plan.Services)
		err = plan.Run(ctx, opts.Factory.Now(), opts.WaitTimeout, progress)
	}
	status.End(err == nil) // only once started
	return err
}

// serverRestart restarts through the ergomake server (POST /v1/envs/{name}/restart): the same
// restart, run by the server, its progress streamed back.
func serverRestart(ctx context.Context, c *server.Client, project string, opts *RestartOptions,
	skipped func([]workload.Skip, []string), p workload.Progress) error {
	err := c.Restart(ctx, project, server.RestartRequest{Services: opts.Services, Timeout: opts.WaitTimeout.String()},
		func(ev server.RestartEvent) error {
			switch ev.Kind {
			case server.RestartPlan:
				skipped(ev.Skipped, ev.Services)
			case server.RestartStarted:
				p.Started(ev.Services)
			case server.RestartReady:
				p.Ready(ev.Service, ev.State)
			case server.RestartProgress:
				p.Pending(ev.Restarted, ev.Total)
			}
			return nil
		})
	if server.IsStatus(err, http.StatusNotFound) {
		return &notFoundError{msg: fmt.Sprintf("you have no environment of project %q on the ergomake server %s", project, c.Host())}
	}
	return serverError(c, err)
}
