package cli

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/spf13/cobra"

	"github.com/ergomake/ergomake/internal/config"
	"github.com/ergomake/ergomake/internal/iostreams"
	"github.com/ergomake/ergomake/internal/session"
	"github.com/ergomake/ergomake/internal/ui"
)

// ImageOptions say how the images of build: services are built and where they go (up, build).
type ImageOptions struct {
	// Registry is the user's registry (host[:port][/path]); empty: the cluster's.
	Registry string
	// NoCache builds without the builder's cache.
	NoCache bool
	// Force builds even unchanged images (up --build); NoBuild builds none (up --no-build).
	Force, NoBuild bool
}

// addImageFlags registers --no-cache and --registry.
func addImageFlags(cmd *cobra.Command, o *ImageOptions) {
	fs := cmd.Flags()
	fs.BoolVar(&o.NoCache, "no-cache", false, "build without the builder's cache")
	fs.StringVar(&o.Registry, "registry", "", "push built images to this registry (host[:port][/path]) with your docker credentials (default: the cluster's registry)")
	config.MarkSetting(fs, "registry") // ERGOMAKE_REGISTRY, config file
}

func (o ImageOptions) check() error {
	switch {
	case o.Force && o.NoBuild:
		return FlagErrorf("--build and --no-build cannot be used together")
	case o.NoCache && o.NoBuild:
		return FlagErrorf("--no-cache and --no-build cannot be used together")
	}
	return nil
}

// buildOptions are the session's options for building project's services (nil: every service
// that has build:).
func (o ImageOptions) buildOptions(project *types.Project, services []string) session.BuildOptions {
	return session.BuildOptions{
		Project:  project,
		Services: services,
		Registry: o.Registry,
		Force:    o.Force,
		NoCache:  o.NoCache,
		NoBuild:  o.NoBuild,
	}
}

// BuildOptions are the options of `ergomake build`.
type BuildOptions struct {
	IO      *iostreams.IOStreams
	Factory *Factory
	Context context.Context

	Project ProjectOptions
	Cluster ClusterOptions
	Images  ImageOptions
	// Services to build; empty: every service that has build:.
	Services []string
	// Output is "text" or "json".
	Output string
}

// NewCmdBuild returns `ergomake build`.
func NewCmdBuild(f *Factory, runF func(*BuildOptions) error) *cobra.Command {
	opts := &BuildOptions{IO: f.IOStreams, Factory: f}
	cmd := &cobra.Command{
		Use:   "build [SERVICE...] [flags]",
		Short: "Build the images of the compose project's build: services in the cluster",
		Long: `Build the images of the services that have build: (all of them, or those named) in the
cluster's builder and push them, as "docker compose build" would; nothing else is created. "ergomake
up" then runs them without building again.

The context is sent from this machine after .dockerignore applies; no Docker is needed here. The
images go to the cluster's registry (installed by "ergomake install"), or with --registry to yours,
pushed with your docker credentials (~/.docker/config.json, or $DOCKER_CONFIG).`,
		Example: `  ergomake build
  ergomake build web --no-cache
  ergomake build --registry registry.example.com/team -o json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Context = cmd.Context()
			opts.Services = args
			if runF != nil {
				return runF(opts)
			}
			return buildRun(opts)
		},
	}
	addImageFlags(cmd, &opts.Images)
	addOutputFlag(cmd, &opts.Output, outputText, outputJSON)
	addProjectFlags(cmd, &opts.Project)
	addClusterFlags(cmd, &opts.Cluster)
	addServerFlag(cmd, &opts.Cluster)
	return cmd
}

// builtImage is one line of `ergomake build`'s result.
type builtImage struct {
	Service      string `json:"service"`
	Image        string `json:"image"`
	Digest       string `json:"digest"`
	Reused       bool   `json:"reused"`
	ContextBytes int64  `json:"contextBytes"`
}

func buildRun(opts *BuildOptions) error {
	ctx := opts.Context
	status := ui.NewStatus(opts.IO, ui.StatusOptions{Now: opts.Factory.Now})
	defer status.Stop()

	project, err := loadProject(ctx, opts.Factory, opts.Project)
	if err != nil {
		return err
	}
	var only []string
	if len(opts.Services) > 0 {
		only = opts.Services
	}
	services, err := session.BuiltServices(project, only)
	if err != nil {
		return err
	}
	if len(services) == 0 {
		status.Logf("No service of project %s has build: nothing to build.", project.Name)
		if opts.Output == outputJSON {
			return printJSON(opts.IO.Out, []builtImage{})
		}
		return nil
	}
	srv, err := serverClient(opts.Factory, opts.Cluster)
	if err != nil {
		return err
	}
	rep := newLiveView(opts.IO, status, opts.Factory.Now)
	// `ergomake build` always runs the builds (the builder's cache makes unchanged steps
	// instant), as docker compose build does.
	bopts := opts.Images.buildOptions(project, services)
	bopts.Force = true
	var built *session.Built
	if srv != nil {
		status.Start("Connecting to the ergomake server " + srv.Host())
		if _, err := srv.WhoAmI(ctx); err != nil {
			status.End(false)
			return serverError(srv, err)
		}
		status.End(true)
		built, err = session.BuildThroughServer(ctx, srv, rep, bopts)
	} else {
		client, cerr := opts.Factory.KubeClient(opts.Cluster)
		if cerr != nil {
			return cerr
		}
		status.Start("Connecting to " + client.String())
		if err := client.Check(ctx); err != nil {
			status.End(false)
			return err
		}
		status.End(true)
		built, err = session.Build(ctx, client, rep, bopts, "")
	}
	if err != nil {
		if ctx.Err() != nil {
			status.Logf("Interrupted: the build was cancelled.")
			return ErrCancel
		}
		return err
	}
	out := make([]builtImage, 0, len(built.Results))
	for _, r := range built.Results {
		spec := built.Specs[r.Service]
		out = append(out, builtImage{Service: r.Service, Image: r.Image, Digest: spec.Digest, Reused: r.Reused, ContextBytes: r.ContextBytes})
	}
	if opts.Output == outputJSON {
		return printJSON(opts.IO.Out, out)
	}
	tw := tabwriter.NewWriter(opts.IO.Out, 0, 4, 2, ' ', 0)
	for _, b := range out {
		what := "built"
		if b.Reused {
			what = "unchanged"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s sent\n", b.Service, what, b.Image, humanBytes(b.ContextBytes))
	}
	return tw.Flush()
}

// humanBytes is n in B, KiB, MiB or GiB.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 2; m /= unit {
		div *= unit
		exp++
	}
	return strings.TrimSuffix(fmt.Sprintf("%.1f", float64(n)/float64(div)), ".0") + " " + string("KMG"[exp]) + "iB"
}
