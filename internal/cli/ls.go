package cli

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/ergomake/ergomake/internal/iostreams"
	"github.com/ergomake/ergomake/internal/server"
	"github.com/ergomake/ergomake/internal/session"
	"github.com/ergomake/ergomake/internal/ui"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
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
	addServerFlag(cmd, &opts.Cluster)
	cmd.Flags().Lookup("namespace").Usage = "list only the environments in this namespace (default: all namespaces)"
	return cmd
}

// lsEntry is one environment, as `ergomake ls -o json` prints it.
type lsEntry struct {
	Project   string    `json:"project"`
	Name      string    `json:"name"`
	Namespace string    `json:"namespace"`
	Phase     string    `json:"phase"`
	Ready     int       `json:"ready"`
	Total     int       `json:"total"`
	Created   time.Time `json:"created"`
	Owner     string    `json:"owner,omitempty"`
	Message   string    `json:"message,omitempty"`
}

func lsRun(opts *LsOptions) error {
	ctx := opts.Context
	srv, err := serverClient(opts.Factory, opts.Cluster)
	if err != nil {
		return err
	}
	if srv != nil {
		return lsServer(opts, srv)
	}
	client, err := connect(ctx, opts.Factory, opts.Cluster)
	if err != nil {
		return err
	}
	envs, err := client.ListEnvs(ctx, opts.Cluster.Namespace)
	if err != nil {
		return err
	}
	entries := make([]lsEntry, 0, len(envs))
	for i := range envs {
		e := &envs[i]
		ready, total := session.ReadyCount(e)
		phase := string(e.Status.Phase)
		if phase == "" {
			phase = string(v1alpha1.PhasePending)
		}
		if e.DeletionTimestamp != nil {
			phase = "Deleting"
		}
		entries = append(entries, lsEntry{
			Project: e.Spec.Project, Name: e.Name, Namespace: e.Namespace, Phase: phase,
			Ready: ready, Total: total, Created: e.CreationTimestamp.UTC(),
			Owner: e.Annotations[v1alpha1.AnnotationOwner], Message: e.Status.Message,
		})
	}
	return printLs(opts, entries, client.String())
}

// lsServer lists the caller's environments on the ergomake server.
func lsServer(opts *LsOptions, srv *server.Client) error {
	envs, err := srv.ListEnvs(opts.Context)
	if err != nil {
		return serverError(srv, err)
	}
	var owner string
	if who, err := srv.WhoAmI(opts.Context); err == nil {
		owner = who.User
	}
	entries := make([]lsEntry, 0, len(envs))
	for _, e := range envs {
		var ready, total int
		if _, err := fmt.Sscanf(e.Summary, "%d/%d", &ready, &total); err != nil {
			ready, total = 0, 0
		}
		entries = append(entries, lsEntry{Project: e.Name, Name: e.Name, Namespace: e.Namespace, Phase: e.Phase,
			Ready: ready, Total: total, Created: e.Created.UTC(), Owner: owner, Message: e.Message})
	}
	return printLs(opts, entries, "the ergomake server "+srv.Host())
}

// printLs prints the environments found on where.
func printLs(opts *LsOptions, entries []lsEntry, where string) error {
	sort.Slice(entries, func(i, j int) bool {
		if entries[i].Project != entries[j].Project {
			return entries[i].Project < entries[j].Project
		}
		return entries[i].Namespace < entries[j].Namespace
	})
	if opts.Output == outputJSON {
		return printJSON(opts.IO.Out, entries)
	}
	if len(entries) == 0 {
		fmt.Fprintf(opts.IO.ErrOut, "No environments on %s.\n", where)
		return nil
	}
	t := ui.NewTable(opts.IO, "PROJECT", "NAMESPACE", "PHASE", "SERVICES", "AGE", "OWNER")
	now := opts.Factory.Now()
	for _, e := range entries {
		t.AddRow(e.Project, e.Namespace, e.Phase, fmt.Sprintf("%d/%d", e.Ready, e.Total),
			duration.HumanDuration(now.Sub(e.Created)), e.Owner)
	}
	return t.Print()
}
