package cli

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/ergomake/ergomake/internal/iostreams"
)

// LogsOptions are the options of `ergomake logs`.
type LogsOptions struct {
	IO      *iostreams.IOStreams
	Factory *Factory
	Context context.Context

	Project ProjectOptions
	Cluster ClusterOptions
	// Services limits the logs to these compose services (all when empty).
	Services []string
	// Follow keeps streaming new lines.
	Follow bool
	// Tail is the number of lines to show from the end of each log; negative means all.
	Tail int64
	// Timestamps prefixes each line with its time.
	Timestamps bool
}

// NewCmdLogs returns `ergomake logs`.
func NewCmdLogs(f *Factory, runF func(*LogsOptions) error) *cobra.Command {
	opts := &LogsOptions{IO: f.IOStreams, Factory: f}
	cmd := &cobra.Command{
		Use:   "logs [SERVICE...] [flags]",
		Short: "Show the logs of the project's services",
		Long: `Show the logs of the compose project's services on the cluster, each line prefixed with its
service's name, as "docker compose logs" prints them.`,
		Example: `  ergomake logs
  ergomake logs -f --tail 100 web worker`,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Context = cmd.Context()
			opts.Services = args
			if runF != nil {
				return runF(opts)
			}
			return logsRun(opts)
		},
	}
	fs := cmd.Flags()
	fs.BoolVarP(&opts.Follow, "follow", "f", false, "follow log output")
	fs.Int64Var(&opts.Tail, "tail", -1, "number of lines to show from the end of each log (-1: all)")
	fs.BoolVarP(&opts.Timestamps, "timestamps", "t", false, "show timestamps")
	addProjectFlags(cmd, &opts.Project) // -f is --follow here, as in docker compose logs
	addClusterFlags(cmd, &opts.Cluster)
	return cmd
}

func logsRun(opts *LogsOptions) error {
	return notImplemented("logs")
}
