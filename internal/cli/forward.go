package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ergomake/ergomake/internal/iostreams"
	"github.com/ergomake/ergomake/internal/ui"
	"github.com/ergomake/ergomake/internal/wait"
)

// ForwardOptions are the options of `ergomake forward`.
type ForwardOptions struct {
	IO      *iostreams.IOStreams
	Factory *Factory
	Context context.Context

	Project ProjectOptions
	Cluster ClusterOptions
	// Services limits forwarding to these compose services (all when empty).
	Services []string
}

// NewCmdForward returns `ergomake forward`.
func NewCmdForward(f *Factory, runF func(*ForwardOptions) error) *cobra.Command {
	opts := &ForwardOptions{IO: f.IOStreams, Factory: f}
	cmd := &cobra.Command{
		Use:   "forward [SERVICE...] [flags]",
		Short: "Forward the published ports of a running environment to localhost",
		Long: `Forward the published ports of an environment that is already running (one started with
"ergomake up -d", say) to localhost, until Ctrl-C. The environment is left running.`,
		Example: `  ergomake forward
  ergomake forward web`,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Context = cmd.Context()
			if len(args) > 0 {
				opts.Services = args
			}
			if runF != nil {
				return runF(opts)
			}
			return forwardRun(opts)
		},
	}
	addProjectFlags(cmd, &opts.Project)
	addClusterFlags(cmd, &opts.Cluster)
	cmd.ValidArgsFunction = completeServices(f, &opts.Project)
	return cmd
}

func forwardRun(opts *ForwardOptions) error {
	ctx := opts.Context
	target, err := openEnv(ctx, opts.Factory, opts.Project, opts.Cluster, opts.Services)
	if err != nil {
		return err
	}
	client, env, only := target.client, target.env, target.only
	status := ui.NewStatus(opts.IO, ui.StatusOptions{Now: opts.Factory.Now})
	defer status.Stop()
	if wait.Evaluate(env) != wait.Ready {
		status.Warnf("environment %s/%s is not ready (%s): connections wait for ready pods", env.Namespace, env.Name, envSummary(env))
	}
	sess, err := startForwarding(ctx, opts.IO, status, client, env, only)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	fmt.Fprintf(opts.IO.Out, "Remote services of %s are now bound to localhost. [Press CTRL+C to stop forwarding; the environment keeps running]\n", env.Name)
	hctx, stopBeats := context.WithCancel(ctx)
	gone := heartbeat(hctx, client, env.Namespace, env.Name, opts.Factory.Now, sess.stop)
	watched := watchAttached(hctx, client, env, status, sess.stop)
	werr := sess.wait()
	stopBeats()
	if errors.Is(<-gone, errEnvGone) || errors.Is(<-watched, wait.ErrGone) {
		return fmt.Errorf("environment %s/%s was deleted", env.Namespace, env.Name)
	}
	if ctx.Err() != nil {
		return nil
	}
	return werr
}
