package cli

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/ergomake/ergomake/internal/iostreams"
)

// LsOptions are the options of `ergomake ls`.
type LsOptions struct {
	IO      *iostreams.IOStreams
	Factory *Factory
	Context context.Context

	Cluster ClusterOptions
	// Output is "table" or "json".
	Output string
}

// NewCmdLs returns `ergomake ls`.
func NewCmdLs(f *Factory, runF func(*LsOptions) error) *cobra.Command {
	opts := &LsOptions{IO: f.IOStreams, Factory: f}
	cmd := &cobra.Command{
		Use:     "ls [flags]",
		Aliases: []string{"list"},
		Short:   "List the environments on the cluster",
		Long: `List the ergomake environments on the cluster, in every namespace (or only in -n/--namespace):
project, namespace, services ready/total, age and who brought it up.`,
		Example: `  ergomake ls
  ergomake ls --context staging -o json`,
		Args: wrapArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Context = cmd.Context()
			if runF != nil {
				return runF(opts)
			}
			return lsRun(opts)
		},
	}
	addOutputFlag(cmd, &opts.Output, outputTable, outputJSON)
	addClusterFlags(cmd, &opts.Cluster)
	cmd.Flags().Lookup("namespace").Usage = "list only the environments in this namespace (default: all namespaces)"
	return cmd
}

func lsRun(opts *LsOptions) error {
	return notImplemented("ls")
}
