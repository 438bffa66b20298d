package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ergomake/ergomake/internal/iostreams"
	"github.com/ergomake/ergomake/internal/ui"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
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
			if len(args) > 0 {
				opts.Services = args
			}
			if runF != nil {
				return runF(opts)
			}
			return psRun(opts)
		},
	}
	addOutputFlag(cmd, &opts.Output, outputTable, outputJSON)
	addProjectFlags(cmd, &opts.Project)
	addClusterFlags(cmd, &opts.Cluster)
	addServerFlag(cmd, &opts.Cluster)
	cmd.ValidArgsFunction = completeServices(f, &opts.Project)
	return cmd
}

// psPort is one port of a service, as `ergomake ps -o json` prints it.
type psPort struct {
	Target    int32  `json:"target"`
	Published string `json:"published,omitempty"`
	HostIP    string `json:"hostIP,omitempty"`
	Protocol  string `json:"protocol"`
}

// psEntry is one service, as `ergomake ps -o json` prints it.
type psEntry struct {
	Service    string   `json:"service"`
	State      string   `json:"state"`
	Ready      int32    `json:"ready"`
	Desired    int32    `json:"desired"`
	Ports      []psPort `json:"ports"`
	Reason     string   `json:"reason,omitempty"`
	Message    string   `json:"message,omitempty"`
	LogTail    []string `json:"logTail,omitempty"`
	WaitingFor []string `json:"waitingFor,omitempty"`
}

func psRun(opts *PsOptions) error {
	ctx := opts.Context
	target, err := openEnvVia(ctx, opts.Factory, opts.Project, opts.Cluster, opts.Services, true)
	if err != nil {
		return err
	}
	entries := psEntries(target.env, target.only)
	if opts.Output == outputJSON {
		return printJSON(opts.IO.Out, entries)
	}
	t := ui.NewTable(opts.IO, "SERVICE", "STATE", "READY", "PORTS", "REASON")
	colorStates(t, 1)
	for _, e := range entries {
		var ports []string
		for _, p := range e.Ports {
			ports = append(ports, portText(p))
		}
		reason := e.Reason
		if (v1alpha1.ServiceStatus{State: v1alpha1.ServiceState(e.State), Ready: e.Ready, Desired: e.Desired}).IsReady() {
			reason = ""
		} else if e.Message != "" {
			if reason != "" {
				reason += ": "
			}
			reason += e.Message
		} else if len(e.WaitingFor) > 0 {
			reason = "waiting for " + strings.Join(e.WaitingFor, ", ")
		}
		t.AddRow(e.Service, e.State, fmt.Sprintf("%d/%d", e.Ready, e.Desired), strings.Join(ports, ", "), reason)
	}
	if err := t.Print(); err != nil {
		return err
	}
	// The log lines that explain a failure, on stderr: stdout stays the table.
	for _, e := range entries {
		if len(e.LogTail) == 0 {
			continue
		}
		fmt.Fprintf(opts.IO.ErrOut, "Last log lines of %s:\n", e.Service)
		for _, l := range e.LogTail {
			fmt.Fprintln(opts.IO.ErrOut, "  | "+l)
		}
	}
	return nil
}

func psEntries(env *v1alpha1.ErgomakeEnv, only map[string]bool) []psEntry {
	byName := map[string]v1alpha1.ServiceStatus{}
	for _, s := range env.Status.Services {
		byName[s.Name] = s
	}
	entries := []psEntry{}
	for _, spec := range env.Spec.Services {
		if only != nil && !only[spec.Name] {
			continue
		}
		st, ok := byName[spec.Name]
		e := psEntry{Service: spec.Name, State: string(st.State), Ready: st.Ready, Desired: st.Desired,
			Reason: st.Reason, Message: st.Message, LogTail: st.LogTail, WaitingFor: st.WaitingFor, Ports: []psPort{}}
		if !ok || e.State == "" {
			e.State = "pending"
		}
		for _, p := range spec.Ports {
			pp := psPort{Target: p.Target, HostIP: p.HostIP, Protocol: strings.ToLower(orTCP(p.Protocol))}
			if p.Publish {
				pp.Published = p.Published
				if pp.Published == "" {
					pp.Published = "auto"
				}
			}
			e.Ports = append(e.Ports, pp)
		}
		for _, p := range spec.Expose {
			e.Ports = append(e.Ports, psPort{Target: p.Target, Protocol: strings.ToLower(orTCP(p.Protocol))})
		}
		entries = append(entries, e)
	}
	return entries
}

func orTCP(p string) string {
	if p == "" {
		return "TCP"
	}
	return p
}

// portText is docker compose's port notation: "9200->9200/tcp" when published, "9300/tcp" when not.
func portText(p psPort) string {
	s := fmt.Sprintf("%d/%s", p.Target, p.Protocol)
	if p.Published == "" {
		return s
	}
	host := ""
	if p.HostIP != "" {
		host = p.HostIP + ":"
	}
	return host + p.Published + "->" + s
}
