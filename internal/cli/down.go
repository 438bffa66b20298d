package cli

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/ergomake/ergomake/internal/iostreams"
)

// DownOptions are the options of `ergomake down`.
type DownOptions struct {
	IO      *iostreams.IOStreams
	Factory *Factory
	Context context.Context

	Project ProjectOptions
	Cluster ClusterOptions

	// WaitTimeout is how long to wait until everything is gone.
	WaitTimeout time.Duration
}

// NewCmdDown returns `ergomake down`.
func NewCmdDown(f *Factory, runF func(*DownOptions) error) *cobra.Command {
	opts := &DownOptions{IO: f.IOStreams, Factory: f}
	cmd := &cobra.Command{
		Use:   "down [flags]",
		Short: "Remove the project's environment from the cluster",
		Long: `Remove the compose project's environment from the cluster: its services, volumes, secrets and
configs, and its namespace when ergomake created it. Waits until everything is gone.

The environment is found by project name and namespace as "ergomake up" names them; with
-p/--project-name no compose file is needed.`,
		Example: `  ergomake down
  ergomake down -p shop -n ergomake-shop`,
		Args: wrapArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Context = cmd.Context()
			if opts.WaitTimeout <= 0 {
				return FlagErrorf("--wait-timeout must be positive, got %s", opts.WaitTimeout)
			}
			if runF != nil {
				return runF(opts)
			}
			return downRun(opts)
		},
	}
	cmd.Flags().DurationVar(&opts.WaitTimeout, "wait-timeout", 5*time.Minute, "how long to wait until everything is gone")
	addProjectFlags(cmd, &opts.Project)
	addClusterFlags(cmd, &opts.Cluster)
	return cmd
}

func downRun(opts *DownOptions) error {
	return notImplemented("down")
}
