package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ergomake/ergomake/internal/iostreams"
	"github.com/ergomake/ergomake/internal/kube"
	"github.com/ergomake/ergomake/internal/server"
	"github.com/ergomake/ergomake/internal/ui"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
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
	// Force removes an environment another identity created.
	Force bool
}

// NewCmdDown returns `ergomake down`.
func NewCmdDown(f *Factory, runF func(*DownOptions) error) *cobra.Command {
	opts := &DownOptions{IO: f.IOStreams, Factory: f}
	cmd := &cobra.Command{
		Use:   "down [flags]",
		Short: "Remove the project's environment from the cluster",
		Long: `Remove the compose project's environment from the cluster: its services, volumes, secrets and
configs, and its namespace when ergomake created it for this environment and it holds nothing
else. Waits until everything is gone.

The environment is found by project name and namespace as "ergomake up" names them; with
-p/--project-name no compose file is needed. An environment created by another identity (as the
cluster authenticates your credentials) is removed only with --force; ergomake exits 3 without it.`,
		Example: `  ergomake down
  ergomake down -p shop -n ergomake-shop
  ergomake down -p shop --force`,
		Args: wrapArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Context = cmd.Context()
			if err := checkWaitTimeout(opts.WaitTimeout); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return downRun(opts)
		},
	}
	cmd.Flags().DurationVar(&opts.WaitTimeout, "wait-timeout", 5*time.Minute, "how long to wait until everything is gone")
	cmd.Flags().BoolVar(&opts.Force, "force", false, "remove the environment even when another identity created it")
	addProjectFlags(cmd, &opts.Project)
	addClusterFlags(cmd, &opts.Cluster)
	addServerFlag(cmd, &opts.Cluster)
	return cmd
}

func downRun(opts *DownOptions) error {
	ctx := opts.Context
	srv, err := serverClient(opts.Factory, opts.Cluster)
	if err != nil {
		return err
	}
	if srv != nil {
		return downServer(opts, srv)
	}
	project, client, err := openProject(ctx, opts.Factory, opts.Project, opts.Cluster)
	if err != nil {
		return err
	}
	status := ui.NewStatus(opts.IO, ui.StatusOptions{Now: opts.Factory.Now})
	defer status.Stop()
	dctx, cancel := context.WithTimeout(ctx, opts.WaitTimeout)
	defer cancel()

	env, err := findEnv(ctx, client, project)
	var nf *notFoundError
	if errors.As(err, &nf) {
		// Nothing to delete, but an earlier, interrupted teardown may have left our namespace.
		return downLeftNamespace(dctx, opts, client, status, project, nf)
	}
	if err != nil {
		return err
	}
	if err := checkDownAllowed(ctx, client, env, opts.Force); err != nil {
		return err
	}
	// The namespace goes too when ergomake created it for this environment (marked with its
	// UID; or, for an environment from before the mark, recorded as created with it) and holds
	// nothing else.
	created := env.Annotations[v1alpha1.AnnotationCreatedNamespace] == "true"
	ownNS := false
	if ns, err := client.Kube.CoreV1().Namespaces().Get(ctx, env.Namespace, metav1.GetOptions{}); err == nil {
		ownNS = kube.NamespaceMarkedFor(ns, env.UID) || (created && kube.IsOurNamespace(ns))
	}
	kept := ""
	status.Start(fmt.Sprintf("Deleting environment %s/%s", env.Namespace, env.Name))
	err = client.DeleteEnv(dctx, env.Namespace, env.Name, kube.DeleteOptions{
		Namespace: ownNS, NamespaceCreated: created,
		Progress: status.Update, KeptNamespace: func(why string) { kept = why }})
	if err != nil {
		status.End(false)
		if dctx.Err() != nil && ctx.Err() == nil {
			return fmt.Errorf("environment %s/%s not gone after %s (its objects are still being deleted; run down again to wait)",
				env.Namespace, env.Name, opts.WaitTimeout)
		}
		return err
	}
	status.End(true)
	switch {
	case ownNS && kept != "":
		fmt.Fprintf(opts.IO.Out, "Environment %s removed; %s, so it was kept.\n", env.Name, kept)
	case ownNS:
		fmt.Fprintf(opts.IO.Out, "Environment %s and namespace %s removed.\n", env.Name, env.Namespace)
	default:
		fmt.Fprintf(opts.IO.Out, "Environment %s removed from namespace %s.\n", env.Name, env.Namespace)
	}
	return nil
}

// downServer removes the caller's environment of the project through the ergomake server and
// waits until it is gone.
func downServer(opts *DownOptions, srv *server.Client) error {
	ctx := opts.Context
	project, err := projectName(ctx, opts.Factory, opts.Project)
	if err != nil {
		return err
	}
	env, err := serverEnv(ctx, srv, project)
	var nf *notFoundError
	if errors.As(err, &nf) {
		fmt.Fprintf(opts.IO.Out, "Nothing to do: %s.\n", nf.msg)
		return nil
	}
	if err != nil {
		return err
	}
	status := ui.NewStatus(opts.IO, ui.StatusOptions{Now: opts.Factory.Now})
	defer status.Stop()
	dctx, cancel := context.WithTimeout(ctx, opts.WaitTimeout)
	defer cancel()
	status.Start(fmt.Sprintf("Deleting environment %s/%s", env.Namespace, env.Name))
	d, err := srv.DeleteEnvWait(dctx, project)
	if server.IsStatus(err, http.StatusNotFound) {
		err = nil
		d.Namespace = env.Namespace
	}
	if err != nil {
		status.End(false)
		if dctx.Err() != nil && ctx.Err() == nil {
			return fmt.Errorf("environment %s/%s not gone after %s (its objects are still being deleted; run down again to wait)",
				env.Namespace, env.Name, opts.WaitTimeout)
		}
		return serverError(srv, err)
	}
	status.End(true)
	if d.Namespace == "" {
		d.Namespace = env.Namespace
	}
	fmt.Fprintf(opts.IO.Out, "Environment %s and namespace %s removed.\n", env.Name, d.Namespace)
	return nil
}

// downLeftNamespace removes the namespace of a project whose environment is already gone, when
// ergomake created it and nothing else lives in it; otherwise it says there is nothing to do.
func downLeftNamespace(ctx context.Context, opts *DownOptions, client *kube.Client, status *ui.Status,
	project string, nf *notFoundError) error {
	name := client.EnvNamespace(project)
	ns, err := client.Kube.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) || (err == nil && (!kube.IsOurNamespace(ns) || ns.Labels[v1alpha1.LabelPartOf] != kube.EnvName(project))) {
		fmt.Fprintf(opts.IO.Out, "Nothing to do: %s.\n", nf.msg)
		return nil
	}
	if err != nil {
		return client.Explain(err)
	}
	foreign, err := client.Foreign(ctx, name, kube.EnvName(project))
	if err != nil {
		return err
	}
	if len(foreign) > 0 {
		fmt.Fprintf(opts.IO.Out, "Nothing to do: %s (namespace %s holds other things: %s, so it is kept).\n",
			nf.msg, name, kube.DescribeForeign(foreign))
		return nil
	}
	status.Start("Deleting namespace " + name)
	if err := client.DeleteNamespace(ctx, name, status.Update); err != nil {
		status.End(false)
		return err
	}
	status.End(true)
	fmt.Fprintf(opts.IO.Out, "Namespace %s removed.\n", name)
	return nil
}

// checkDownAllowed refuses, without --force, to remove an environment another identity created
// (exit 3). An environment that records no creator (older than the record, or applied with
// kubectl) is anyone's.
func checkDownAllowed(ctx context.Context, client *kube.Client, env *v1alpha1.ErgomakeEnv, force bool) error {
	creator, err := v1alpha1.EnvCreator(env)
	if err != nil || creator == nil || force {
		return nil
	}
	me, err := client.WhoAmI(ctx)
	if err != nil {
		return &ExitError{Code: ExitInUse, Err: fmt.Errorf("environment %s/%s was created by %s, and %v; --force removes it anyway",
			env.Namespace, env.Name, creator.Username, err)}
	}
	if me.Username == creator.Username {
		return nil
	}
	return &ExitError{Code: ExitInUse, Err: fmt.Errorf("environment %s/%s was created by %s, not by you (%s): --force removes it anyway",
		env.Namespace, env.Name, creator.Username, me.Username)}
}
