package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ergomake/ergomake/internal/config"
	"github.com/ergomake/ergomake/internal/install"
	"github.com/ergomake/ergomake/internal/iostreams"
	"github.com/ergomake/ergomake/internal/kube"
	"github.com/ergomake/ergomake/internal/server"
)

// ServerInstallOptions are the --server flags of `ergomake install`.
type ServerInstallOptions struct {
	Enabled   bool
	Expose    string
	TLSSecret string
	Image     string
}

func addServerInstallFlags(cmd *cobra.Command, opts *ServerInstallOptions) {
	fs := cmd.Flags()
	fs.BoolVar(&opts.Enabled, "server", false, "also install the ergomake server, for users without cluster credentials (ergomake login)")
	fs.StringVar(&opts.Expose, "server-expose", string(install.ExposeNone), "how the server is reached from outside the cluster: none (ClusterIP; bring your own Ingress), nodeport or loadbalancer")
	fs.StringVar(&opts.TLSSecret, "server-tls-secret", "", "kubernetes.io/tls Secret (in the operator's namespace) with the server's certificate (default: a CA and certificate generated once)")
	fs.StringVar(&opts.Image, "server-image", "", "image the server runs (default: the operator's --image)")
	_ = cmd.RegisterFlagCompletionFunc("server-expose", cobra.FixedCompletions([]string{"none", "nodeport", "loadbalancer"}, cobra.ShellCompDirectiveNoFileComp))
}

func (o *ServerInstallOptions) finish(cmd *cobra.Command) error {
	if cmd.Flags().Lookup("server") == nil {
		return nil
	}
	switch install.Expose(o.Expose) {
	case install.ExposeNone, install.ExposeNodePort, install.ExposeLoadBalancer:
	default:
		return FlagErrorf("--server-expose must be none, nodeport or loadbalancer, got %q", o.Expose)
	}
	if !o.Enabled {
		for _, name := range []string{"server-expose", "server-tls-secret", "server-image"} {
			if cmd.Flags().Changed(name) {
				return FlagErrorf("--%s needs --server", name)
			}
		}
	}
	return nil
}

// installServerRun installs the server when --server was given, and prints how users log in.
func installServerRun(opts *InstallOptions, c *kube.Client) error {
	if !opts.Server.Enabled {
		return nil
	}
	s := opts.Server
	fmt.Fprintf(opts.IO.ErrOut, "installing the ergomake server (exposed: %s)\n", s.Expose)
	info, err := install.InstallServer(opts.Context, c.Config, opts.install(), install.ServerOptions{
		Expose: install.Expose(s.Expose), TLSSecret: s.TLSSecret, Image: s.Image,
	})
	if err != nil {
		return c.Explain(err)
	}
	if opts.DryRun {
		return nil
	}
	printServerInfo(opts.IO.Out, info)
	return nil
}

// printServerInfo tells the admin where users reach the server and how they log in.
func printServerInfo(w io.Writer, info *install.ServerInfo) {
	fmt.Fprintln(w, "ergomake server installed:")
	for _, u := range info.URLs {
		fmt.Fprintf(w, "  URL:            %s\n", u)
	}
	fmt.Fprintf(w, "  CA fingerprint: %s\n", info.Fingerprint)
	url := "URL"
	if len(info.URLs) > 0 {
		url = info.URLs[0]
	}
	fmt.Fprintf(w, "Create a token for each user (ergomake server token create USER); they log in with:\n")
	if info.Generated {
		fmt.Fprintf(w, "  ergomake login %s --token TOKEN --ca-fingerprint %s\n", url, info.Fingerprint)
	} else {
		fmt.Fprintf(w, "  ergomake login %s --token TOKEN\n", url)
	}
}

// ServerTokenOptions are the options of `ergomake server token ...`.
type ServerTokenOptions struct {
	IO      *iostreams.IOStreams
	Factory *Factory
	Context context.Context

	Kubeconfig  string
	KubeContext string
	// Namespace is the operator's (and server's) namespace, where tokens live.
	Namespace string

	User   string        // create: the user; ls, revoke: --user
	TTL    time.Duration // create
	IDs    []string      // revoke
	Output string        // ls
}

// NewCmdServer returns `ergomake server`, the admin's commands for the server.
func NewCmdServer(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "server <command>",
		Short: "Manage the ergomake server's users and tokens (admin)",
		Long: `Manage the ergomake server (installed by "ergomake install --server"): create, list and revoke
the tokens its users log in with. These commands talk to the cluster with your kubeconfig, as the
cluster admin; users hold no cluster credentials, only their token.`,
		Args: wrapArgs(cobra.NoArgs),
	}
	token := &cobra.Command{
		Use:   "token <command>",
		Short: "Create, list and revoke users' tokens",
		Args:  wrapArgs(cobra.NoArgs),
	}
	token.AddCommand(NewCmdServerTokenCreate(f, nil), NewCmdServerTokenLs(f, nil), NewCmdServerTokenRevoke(f, nil))
	cmd.AddCommand(token)
	return cmd
}

func addServerAdminFlags(cmd *cobra.Command, opts *ServerTokenOptions) {
	fs := cmd.Flags()
	fs.StringVarP(&opts.Namespace, "namespace", "n", install.DefaultNamespace, "namespace the operator and the server run in")
	fs.StringVar(&opts.Kubeconfig, "kubeconfig", "", "path to the kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
	fs.StringVar(&opts.KubeContext, "context", "", "kubeconfig context to use (default: the current context)")
	_ = cmd.MarkFlagFilename("kubeconfig")
	setGroup(fs, "kubeconfig", groupCluster)
	setGroup(fs, "context", groupCluster)
	config.MarkSetting(fs, "kubeconfig", "context")
}

func (opts *ServerTokenOptions) runE(runF, run func(*ServerTokenOptions) error, finish func([]string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		opts.Context = cmd.Context()
		if !cmd.Flags().Changed("namespace") {
			opts.Namespace = install.DefaultNamespace // ERGOMAKE_NAMESPACE names environments' namespaces
		}
		if err := finish(args); err != nil {
			return err
		}
		if runF != nil {
			return runF(opts)
		}
		return run(opts)
	}
}

func (opts *ServerTokenOptions) store() (*server.TokenStore, *kube.Client, error) {
	c, err := opts.Factory.KubeClient(ClusterOptions{Kubeconfig: opts.Kubeconfig, Context: opts.KubeContext})
	if err != nil {
		return nil, nil, err
	}
	return &server.TokenStore{Client: c.Kube, Namespace: opts.Namespace, Now: opts.Factory.Now}, c, nil
}

// NewCmdServerTokenCreate returns `ergomake server token create`.
func NewCmdServerTokenCreate(f *Factory, runF func(*ServerTokenOptions) error) *cobra.Command {
	opts := &ServerTokenOptions{IO: f.IOStreams, Factory: f}
	cmd := &cobra.Command{
		Use:   "create USER [flags]",
		Short: "Create a token for a user",
		Long: `Create a token for USER (letters, digits and . _ @ + -: an e-mail address works) and print it.
The token is shown once: the cluster keeps only its SHA-256 hash. Give it to the user, who logs in
with "ergomake login URL --token TOKEN". A user may hold several tokens; each can be revoked.`,
		Example: `  ergomake server token create alice
  ergomake server token create ci-bot --ttl 24h`,
		Args: wrapArgs(cobra.ExactArgs(1)),
	}
	cmd.RunE = opts.runE(runF, serverTokenCreateRun, func(args []string) error {
		opts.User = args[0]
		if err := server.ValidateUser(opts.User); err != nil {
			return FlagErrorf("%v", err)
		}
		if opts.TTL < 0 {
			return FlagErrorf("--ttl must not be negative, got %s", opts.TTL)
		}
		return nil
	})
	cmd.Flags().DurationVar(&opts.TTL, "ttl", 30*24*time.Hour, "how long the token is valid (0: until revoked)")
	addServerAdminFlags(cmd, opts)
	return cmd
}

func serverTokenCreateRun(opts *ServerTokenOptions) error {
	store, c, err := opts.store()
	if err != nil {
		return err
	}
	token, info, err := store.Create(opts.Context, opts.User, opts.TTL)
	if err != nil {
		return c.Explain(err)
	}
	expires := "never (until revoked)"
	if info.Expires != nil {
		expires = info.Expires.Local().Format(time.RFC3339)
	}
	fmt.Fprintf(opts.IO.ErrOut, "token %s for %s, expires %s; it is shown once, the cluster keeps only its hash:\n", info.ID, info.User, expires)
	fmt.Fprintln(opts.IO.Out, token)
	return nil
}

// NewCmdServerTokenLs returns `ergomake server token ls`.
func NewCmdServerTokenLs(f *Factory, runF func(*ServerTokenOptions) error) *cobra.Command {
	opts := &ServerTokenOptions{IO: f.IOStreams, Factory: f}
	cmd := &cobra.Command{
		Use:     "ls [flags]",
		Aliases: []string{"list"},
		Short:   "List the tokens",
		Long:    `List the server's tokens (never the tokens themselves): ID, user, created, expires and state (active, expired or revoked).`,
		Example: `  ergomake server token ls
  ergomake server token ls --user alice -o json`,
		Args: wrapArgs(cobra.NoArgs),
	}
	cmd.RunE = opts.runE(runF, serverTokenLsRun, func([]string) error { return nil })
	cmd.Flags().StringVar(&opts.User, "user", "", "only this user's tokens")
	addOutputFlag(cmd, &opts.Output, outputTable, outputJSON)
	addServerAdminFlags(cmd, opts)
	return cmd
}

func serverTokenLsRun(opts *ServerTokenOptions) error {
	store, c, err := opts.store()
	if err != nil {
		return err
	}
	list, err := store.List(opts.Context, opts.User)
	if err != nil {
		return c.Explain(err)
	}
	now := opts.Factory.Now()
	if opts.Output == outputJSON {
		type entry struct {
			server.TokenInfo
			State string `json:"state"`
		}
		out := make([]entry, 0, len(list))
		for _, t := range list {
			out = append(out, entry{t, t.State(now)})
		}
		enc := json.NewEncoder(opts.IO.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	if len(list) == 0 {
		fmt.Fprintln(opts.IO.ErrOut, "no tokens")
		return nil
	}
	tw := tabwriter.NewWriter(opts.IO.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tUSER\tCREATED\tEXPIRES\tSTATE")
	for _, t := range list {
		exp := "never"
		if t.Expires != nil {
			exp = t.Expires.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.ID, t.User, t.Created.UTC().Format(time.RFC3339), exp, t.State(now))
	}
	return tw.Flush()
}

// NewCmdServerTokenRevoke returns `ergomake server token revoke`.
func NewCmdServerTokenRevoke(f *Factory, runF func(*ServerTokenOptions) error) *cobra.Command {
	opts := &ServerTokenOptions{IO: f.IOStreams, Factory: f}
	cmd := &cobra.Command{
		Use:   "revoke ID... | --user USER",
		Short: "Revoke tokens",
		Long: `Revoke tokens by ID (as "ergomake server token ls" shows them), or every token of a user with
--user. The server refuses a revoked token within seconds, telling its user to log in again.`,
		Example: `  ergomake server token revoke 3f2a9c01d4e5
  ergomake server token revoke --user alice`,
	}
	cmd.RunE = opts.runE(runF, serverTokenRevokeRun, func(args []string) error {
		opts.IDs = args
		if (len(args) == 0) == (opts.User == "") {
			return FlagErrorf("give token IDs or --user, not both")
		}
		return nil
	})
	cmd.Flags().StringVar(&opts.User, "user", "", "revoke every token of this user")
	addServerAdminFlags(cmd, opts)
	return cmd
}

func serverTokenRevokeRun(opts *ServerTokenOptions) error {
	store, c, err := opts.store()
	if err != nil {
		return err
	}
	ids := opts.IDs
	if opts.User != "" {
		list, err := store.List(opts.Context, opts.User)
		if err != nil {
			return c.Explain(err)
		}
		for _, t := range list {
			if t.Revoked == nil {
				ids = append(ids, t.ID)
			}
		}
		if len(ids) == 0 {
			fmt.Fprintf(opts.IO.ErrOut, "%s has no token to revoke\n", opts.User)
			return nil
		}
	}
	var failed []string
	for _, id := range ids {
		info, err := store.Revoke(opts.Context, id)
		if err != nil {
			fmt.Fprintf(opts.IO.ErrOut, "%v\n", c.Explain(err))
			failed = append(failed, id)
			continue
		}
		fmt.Fprintf(opts.IO.Out, "revoked token %s of %s\n", info.ID, info.User)
	}
	if len(failed) > 0 {
		return fmt.Errorf("could not revoke %s", strings.Join(failed, ", "))
	}
	return nil
}
