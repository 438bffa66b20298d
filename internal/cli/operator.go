package cli

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/ergomake/ergomake/internal/config"
	"github.com/ergomake/ergomake/internal/iostreams"
	"github.com/ergomake/ergomake/internal/operator"
)

// OperatorOptions are the options of `ergomake operator`.
type OperatorOptions struct {
	IO      *iostreams.IOStreams
	Factory *Factory
	Context context.Context

	Kubeconfig  string
	KubeContext string
	Instance    string
	Namespaces  []string
	HealthAddr  string
	MetricsAddr string
	// DNSAddr, DNSUpstream, ClusterDomain: the environment DNS (see operator.Options).
	DNSAddr       string
	DNSUpstream   string
	ClusterDomain string
}

// NewCmdOperator returns `ergomake operator`: the operator's controller run in this process
// against the current kubeconfig, for development.
func NewCmdOperator(f *Factory, runF func(*OperatorOptions) error) *cobra.Command {
	opts := &OperatorOptions{IO: f.IOStreams, Factory: f}
	cmd := &cobra.Command{
		Use:   "operator [flags]",
		Short: "Run the ergomake operator in this process (development)",
		Long: `Run the ergomake operator's controller in this process against the current kubeconfig, as
the installed operator runs in the cluster. Logs go to stderr; Ctrl-C stops it.

Do not run it beside an installed operator for the same environments: give it an --instance and
label the environments it should handle ergomake.dev/operator=<instance>, which the installed
operator then leaves alone.`,
		Example: `  ergomake operator
  ergomake operator --instance dev -n ergomake-shop`,
		Args: wrapArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Context = cmd.Context()
			if runF != nil {
				return runF(opts)
			}
			return operatorRun(opts)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&opts.Instance, "instance", "", "handle only environments labelled "+operator.LabelInstance+"=<instance> (default: those without the label)")
	fs.StringSliceVar(&opts.Namespaces, "watch-namespace", nil, "handle only environments in these namespaces (default: all)")
	fs.StringVar(&opts.HealthAddr, "health-probe-bind-address", "", "serve /healthz and /readyz on this address (default: off)")
	fs.StringVar(&opts.MetricsAddr, "metrics-bind-address", "0", `serve metrics on this loopback address, e.g. 127.0.0.1:8080 ("0": off)`)
	fs.StringVar(&opts.DNSAddr, "dns-addr", "", `serve the environment DNS on this address, UDP and TCP (default: off; pods use the installed operator's ergomake-dns)`)
	fs.StringVar(&opts.DNSUpstream, "dns-upstream", "", "cluster DNS the environment DNS passes queries to, IP or IP:port (default: the kube-dns Service)")
	fs.StringVar(&opts.ClusterDomain, "cluster-domain", "cluster.local", "the cluster's DNS domain")
	fs.StringVar(&opts.Kubeconfig, "kubeconfig", "", "path to the kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
	fs.StringVar(&opts.KubeContext, "context", "", "kubeconfig context to use (default: the current context)")
	_ = cmd.MarkFlagFilename("kubeconfig")
	setGroup(fs, "kubeconfig", groupCluster)
	setGroup(fs, "context", groupCluster)
	config.MarkSetting(fs, "kubeconfig", "context") // ERGOMAKE_KUBECONFIG, ERGOMAKE_CONTEXT, config file
	return cmd
}

func operatorRun(opts *OperatorOptions) error {
	c, err := opts.Factory.KubeClient(ClusterOptions{Kubeconfig: opts.Kubeconfig, Context: opts.KubeContext})
	if err != nil {
		return err
	}
	if err := c.Check(opts.Context); err != nil {
		return err
	}
	logger := operator.TextLogger(opts.IO.ErrOut)
	err = operator.Run(opts.Context, operator.Options{
		Config:        c.Config,
		Instance:      opts.Instance,
		Namespaces:    opts.Namespaces,
		HealthAddr:    opts.HealthAddr,
		MetricsAddr:   opts.MetricsAddr,
		DNSAddr:       opts.DNSAddr,
		DNSUpstream:   opts.DNSUpstream,
		ClusterDomain: opts.ClusterDomain,
		Log:           &logger,
	})
	if err != nil && opts.Context.Err() != nil {
		return nil // stopped by Ctrl-C
	}
	return c.Explain(err)
}
