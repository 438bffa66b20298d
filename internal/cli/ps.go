package cli

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/ergomake/ergomake/internal/iostreams"
)

// PsOptions are the options of `ergomake ps`.
type PsOptions struct {
	IO      *iostreams.IOStreams
	Factory *Factory
	Context context.Context

	Project ProjectOptions
	Cluster ClusterOptions
	// Services limits the listing to these compose services (all when empty).
	Services []string
	// Output is "table" or "json".
	Output string
}

// NewCmdPs returns `ergomake ps`.
func NewCmdPs(f *Factory, runF func(*PsOptions) error) *cobra.Command {
	opts := &PsOptions{IO: f.IOStreams, Factory: f}
	cmd := &cobra.Command{
		Use:   "ps [SERVICE...] [flags]",
		Short: "List the services of the project's environment",
		Long: `List the services of the compose project's environment on the cluster: state, ready replicas,
ports, and the reason when a service is not ready.`,
		Example: `  ergomake ps
  ergomake ps web db -o json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Context = cmd.Context()
			opts.Services = args
			if runF != nil {
				return runF(opts)
			}
			return psRun(opts)
		},
	}
	addOutputFlag(cmd, &opts.Output, outputTable, outputJSON)
	addProjectFlags(cmd, &opts.Project)
	addClusterFlags(cmd, &opts.Cluster)
	return cmd
}

func psRun(opts *PsOptions) error {
	return notImplemented("ps")
}
