package cli

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/ergomake/ergomake/internal/iostreams"
	"github.com/ergomake/ergomake/internal/session"
	"github.com/ergomake/ergomake/internal/ui"
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
	addServerFlag(cmd, &opts.Cluster)
	cmd.ValidArgsFunction = completeServices(f, &opts.Project)
	return cmd
}

func forwardRun(opts *ForwardOptions) error {
	ctx := opts.Context
	target, err := openEnvVia(ctx, opts.Factory, opts.Project, opts.Cluster, opts.Services, true)
	if err != nil {
		return err
	}
	status := ui.NewStatus(opts.IO, ui.StatusOptions{Now: opts.Factory.Now})
	defer status.Stop()
	return session.Forward(ctx, session.Options{
		Client:   target.client,
		Server:   target.srv,
		Reporter: newLiveView(opts.IO, status, opts.Factory.Now),
		Now:      opts.Factory.Now,
	}, target.env, target.only)
}
