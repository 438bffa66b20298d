package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/ergomake/ergomake/internal/config"
	"github.com/ergomake/ergomake/internal/install"
	"github.com/ergomake/ergomake/internal/iostreams"
)

// InstallOptions are the options of `ergomake install` and `ergomake uninstall`.
type InstallOptions struct {
	IO      *iostreams.IOStreams
	Factory *Factory
	Context context.Context

	Kubeconfig  string
	KubeContext string
	// Namespace the operator runs in (ERGOMAKE_NAMESPACE, which names environments' namespaces,
	// does not apply).
	Namespace string
	Image     string
	Revision  string
	Timeout   time.Duration
	DryRun    bool
	// RegistryImage is the in-cluster registry's image; RelayPort the port of its node relay.
	RegistryImage    string
	RegistryRevision string
	RelayPort        int
	// PodSecurity is the security ceiling of environments (--pod-security).
	PodSecurity string
	// The builder: its image (default by mode), revision, mode and registry mirrors.
	BuilderImage    string
	BuilderRevision string
	BuilderMode     string
	BuilderMirrors  []string
}

// NewCmdInstall returns `ergomake install`.
func NewCmdInstall(f *Factory, runF func(*InstallOptions) error) *cobra.Command {
	opts := &InstallOptions{IO: f.IOStreams, Factory: f}
	cmd := &cobra.Command{
		Use:   "install [flags]",
		Short: "Install the ergomake operator on the cluster",
		Long: `Install the ergomake operator on the cluster: the ErgomakeEnv CustomResourceDefinition, the
operator's ClusterRole, ServiceAccount and binding, and its Deployment; and the in-cluster registry
(a Deployment and Service, its images on a PersistentVolumeClaim when the cluster has a default
StorageClass, else on an emptyDir) with its node relay, a DaemonSet that lets every node pull
127.0.0.1:<relay-port>/NAME from it; and the builder, BuildKit's daemon, which builds the images of
services with build: (privileged by default; --builder-mode rootless where only privileged pods are
refused; its cache on a PersistentVolumeClaim or an emptyDir, as the registry's). It also
writes the settings the CLI reads (ConfigMap ergomake-settings, readable by every authenticated
user). Waits until they are available. Running it again updates what it installed (server-side
apply).`,
		Example: `  ergomake install
  ergomake install --builder-mode rootless
  ergomake install --image ergomake.test/ergomake-operator:dev --registry-image ergomake.test/ergomake-registry:dev \
    --builder-image ergomake.test/ergomake-builder:dev --builder-mirror docker.io --builder-mirror ergomake.test`,
		Args: wrapArgs(cobra.NoArgs),
		RunE: opts.runE(runF, installRun),
	}
	addInstallFlags(cmd, opts)
	cmd.Flags().StringVar(&opts.Image, "image", install.DefaultImage(), "operator image")
	cmd.Flags().StringVar(&opts.Revision, "revision", "", "value recorded on the pods of the operator's image (the operator's and the relay's); a new value restarts them (for an image rebuilt under the same tag)")
	cmd.Flags().StringVar(&opts.RegistryImage, "registry-image", install.DefaultRegistryImage(), "image of the in-cluster registry")
	cmd.Flags().StringVar(&opts.RegistryRevision, "registry-revision", "", "value recorded on the registry's pod; a new value restarts it (for an image rebuilt under the same tag)")
	cmd.Flags().IntVar(&opts.RelayPort, "relay-port", install.DefaultRelayPort, "port on each node's 127.0.0.1 where the node relay serves the registry")
	cmd.Flags().StringVar(&opts.PodSecurity, "pod-security", "baseline", "security ceiling of environments, a Pod Security Standards level: baseline, restricted or privileged (namespaces ergomake creates enforce it; up and the operator refuse what exceeds it)")
	cmd.Flags().StringVar(&opts.BuilderMode, "builder-mode", string(install.BuilderPrivileged), "how the builder runs: privileged, rootless (for clusters whose policy refuses privileged pods; it needs seccomp and AppArmor Unconfined, which Pod Security baseline refuses too) or none (no builder: services with build: cannot be built)")
	cmd.Flags().StringVar(&opts.BuilderImage, "builder-image", "", "image of the builder (default "+install.DefaultBuilderImage+", with --builder-mode rootless "+install.DefaultRootlessBuilderImage+")")
	cmd.Flags().StringVar(&opts.BuilderRevision, "builder-revision", "", "value recorded on the builder's pod; a new value restarts it (for an image rebuilt under the same tag)")
	cmd.Flags().StringArrayVar(&opts.BuilderMirrors, "builder-mirror", nil, "registry host whose images the builder looks for in the in-cluster registry first (docker.io: at its root; others under HOST/); repeatable")
	return cmd
}

// NewCmdUninstall returns `ergomake uninstall`.
func NewCmdUninstall(f *Factory, runF func(*InstallOptions) error) *cobra.Command {
	opts := &InstallOptions{IO: f.IOStreams, Factory: f}
	cmd := &cobra.Command{
		Use:   "uninstall [flags]",
		Short: "Remove the ergomake operator from the cluster",
		Long: `Remove what "ergomake install" installed: the ErgomakeEnv CustomResourceDefinition (and with it
every environment on the cluster, and everything they own), the operator and its RBAC, the registry
(and the images in it) and its node relay, the builder (and its cache), the settings, and its
namespace when ergomake created it. Waits until they are gone.`,
		Example: `  ergomake uninstall`,
		Args:    wrapArgs(cobra.NoArgs),
		RunE:    opts.runE(runF, uninstallRun),
	}
	addInstallFlags(cmd, opts)
	return cmd
}

func addInstallFlags(cmd *cobra.Command, opts *InstallOptions) {
	fs := cmd.Flags()
	fs.StringVarP(&opts.Namespace, "namespace", "n", install.DefaultNamespace, "namespace the operator runs in")
	fs.DurationVar(&opts.Timeout, "timeout", 3*time.Minute, "how long to wait")
	fs.BoolVar(&opts.DryRun, "dry-run", false, "send every change as a server-side dry run: validated by the cluster, nothing changed")
	fs.StringVar(&opts.Kubeconfig, "kubeconfig", "", "path to the kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
	fs.StringVar(&opts.KubeContext, "context", "", "kubeconfig context to use (default: the current context)")
	_ = cmd.MarkFlagFilename("kubeconfig")
	setGroup(fs, "kubeconfig", groupCluster)
	setGroup(fs, "context", groupCluster)
	config.MarkSetting(fs, "kubeconfig", "context") // ERGOMAKE_KUBECONFIG, ERGOMAKE_CONTEXT, config file
}

// runE is the RunE of install and uninstall: it checks the flags, then runs run (runF instead, when
// given).
func (opts *InstallOptions) runE(runF, run func(*InstallOptions) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		opts.Context = cmd.Context()
		if err := opts.finish(cmd); err != nil {
			return err
		}
		if runF != nil {
			return runF(opts)
		}
		return run(opts)
	}
}

func (opts *InstallOptions) finish(cmd *cobra.Command) error {
	if !cmd.Flags().Changed("namespace") {
		opts.Namespace = install.DefaultNamespace
	}
	if opts.Timeout <= 0 {
		return FlagErrorf("--timeout must be positive, got %s", opts.Timeout)
	}
	if cmd.Flags().Lookup("image") != nil && opts.Image == "" {
		return FlagErrorf("--image must not be empty")
	}
	if cmd.Flags().Lookup("registry-image") != nil && opts.RegistryImage == "" {
		return FlagErrorf("--registry-image must not be empty")
	}
	if f := cmd.Flags().Lookup("pod-security"); f != nil {
		switch opts.PodSecurity {
		case "baseline", "restricted", "privileged":
		default:
			return FlagErrorf("--pod-security must be baseline, restricted or privileged, got %q", opts.PodSecurity)
		}
	}
	if cmd.Flags().Lookup("relay-port") != nil && (opts.RelayPort < 1 || opts.RelayPort > 65535) {
		return FlagErrorf("--relay-port must be a TCP port (1-65535), got %d", opts.RelayPort)
	}
	if cmd.Flags().Lookup("builder-mode") != nil {
		switch install.BuilderMode(opts.BuilderMode) {
		case install.BuilderPrivileged, install.BuilderRootless, install.BuilderNone:
		default:
			return FlagErrorf("--builder-mode must be privileged, rootless or none, got %q", opts.BuilderMode)
		}
		if opts.BuilderMode == string(install.BuilderNone) && (opts.BuilderImage != "" || len(opts.BuilderMirrors) > 0) {
			return FlagErrorf("--builder-image and --builder-mirror make no sense with --builder-mode none")
		}
		for _, m := range opts.BuilderMirrors {
			if err := install.ValidMirrorHost(m); err != nil {
				return FlagErrorf("--builder-mirror: %v", err)
			}
		}
	}
	return nil
}

func (opts *InstallOptions) install() install.Options {
	return install.Options{Image: opts.Image, Namespace: opts.Namespace, Revision: opts.Revision, Timeout: opts.Timeout, Out: opts.IO.ErrOut, DryRun: opts.DryRun,
		RegistryImage: opts.RegistryImage, RegistryRevision: opts.RegistryRevision, RelayPort: opts.RelayPort,
		BuilderMode: install.BuilderMode(opts.BuilderMode), BuilderImage: opts.BuilderImage, BuilderRevision: opts.BuilderRevision, BuilderMirrors: opts.BuilderMirrors, PodSecurity: opts.PodSecurity}
}

func installRun(opts *InstallOptions) error {
	c, err := opts.Factory.KubeClient(ClusterOptions{Kubeconfig: opts.Kubeconfig, Context: opts.KubeContext})
	if err != nil {
		return err
	}
	builder := "no builder"
	if opts.BuilderMode != string(install.BuilderNone) {
		img := opts.BuilderImage
		if img == "" {
			img = install.DefaultBuilderImageFor(install.BuilderMode(opts.BuilderMode))
		}
		builder = fmt.Sprintf("builder (%s, %s)", img, opts.BuilderMode)
	}
	fmt.Fprintf(opts.IO.ErrOut, "installing the ergomake operator (%s), registry (%s) and %s on %s\n", opts.Image, opts.RegistryImage, builder, c)
	if err := install.Install(opts.Context, c.Config, opts.install()); err != nil {
		return c.Explain(err)
	}
	if opts.DryRun {
		fmt.Fprintln(opts.IO.Out, "dry run: nothing was changed")
		return nil
	}
	fmt.Fprintf(opts.IO.Out, "ergomake operator installed in namespace %s; nodes pull built images from %s\n", opts.Namespace, install.RelayAddress(opts.RelayPort))
	return nil
}

func uninstallRun(opts *InstallOptions) error {
	c, err := opts.Factory.KubeClient(ClusterOptions{Kubeconfig: opts.Kubeconfig, Context: opts.KubeContext})
	if err != nil {
		return err
	}
	fmt.Fprintf(opts.IO.ErrOut, "removing the ergomake operator from %s\n", c)
	if err := install.Uninstall(opts.Context, c.Config, opts.install()); err != nil {
		return c.Explain(err)
	}
	if opts.DryRun {
		fmt.Fprintln(opts.IO.Out, "dry run: nothing was changed")
		return nil
	}
	fmt.Fprintln(opts.IO.Out, "ergomake operator uninstalled")
	return nil
}
