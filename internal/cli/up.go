package cli

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/ergomake/ergomake/internal/config"
	"github.com/ergomake/ergomake/internal/iostreams"
	"github.com/ergomake/ergomake/internal/render"
	"github.com/ergomake/ergomake/internal/session"
	"github.com/ergomake/ergomake/internal/translate"
	"github.com/ergomake/ergomake/internal/ui"
)

// UpOptions are the options of `ergomake up`.
type UpOptions struct {
	IO      *iostreams.IOStreams
	Factory *Factory
	Context context.Context

	Project ProjectOptions
	Cluster ClusterOptions

	// Detach returns once the environment is ready and leaves it running, without forwarding.
	Detach bool
	// Keep keeps the environment when `up` ends (Ctrl-C) or fails; only forwarding stops.
	Keep bool
	// WaitTimeout is how long to wait for the environment to become ready.
	WaitTimeout time.Duration
	// TTL is how long the environment survives without a CLI attached; 0 chooses (10m attached,
	// 24h detached). It may not be shorter than three heartbeats.
	TTL time.Duration
	// HeartbeatInterval is how often the session renews the heartbeat (hidden; tests).
	HeartbeatInterval time.Duration

	// Images of build: services: how they are built and where they go.
	Images ImageOptions
}

// NewCmdUp returns `ergomake up`.
func NewCmdUp(f *Factory, runF func(*UpOptions) error) *cobra.Command {
	opts := &UpOptions{IO: f.IOStreams, Factory: f}
	cmd := &cobra.Command{
		Use:   "up [flags]",
		Short: "Bring the compose project up on the cluster and forward its ports",
		Long: `Bring the compose project up on the Kubernetes cluster, wait until every service is ready, and
forward every published port to localhost, as "docker compose up" would.

The environment lives in its own namespace (default ergomake-<project>). Press Ctrl-C to tear it
down; with --keep, Ctrl-C only stops forwarding. With -d/--detach, ergomake returns once the
environment is ready and leaves it running: "ergomake forward" forwards its ports later and
"ergomake down" removes it. An environment left without a CLI attached is deleted by the operator
after --ttl (at least three heartbeats, 1m).

An environment another live "ergomake up" is attached to is not taken over: up says who holds it,
from which host and since when, and exits 3 ("ergomake forward" binds its ports without owning its
teardown; -p brings up a separate copy). Ctrl-C removes only an environment this up created: one
it re-attached to (left by "up -d", say) keeps running.

Services with build: are built first, in the cluster's builder (BuildKit, installed by "ergomake
install"), from the project's folders: .dockerignore applies before anything leaves this machine,
and no Docker is needed here. The images go to the cluster's registry, or with --registry to
yours (pushed with your docker credentials; pods pull with a pull secret made of them). An image
whose context, Dockerfile, args, target and platform are unchanged is not built again (--build
builds it anyway). Nothing is applied unless every build succeeded.`,
		Example: `  ergomake up
  ergomake up -f compose.yaml -f compose.dev.yaml --profile debug
  ergomake up -d --context staging -n my-feature
  ergomake up --build --registry registry.example.com/team`,
		Args: wrapArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Context = cmd.Context()
			if err := checkWaitTimeout(opts.WaitTimeout); err != nil {
				return err
			}
			if err := checkTTL(opts.TTL, opts.HeartbeatInterval); err != nil {
				return err
			}
			if err := opts.Images.check(); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return upRun(opts)
		},
	}
	fs := cmd.Flags()
	fs.BoolVarP(&opts.Detach, "detach", "d", false, "return once the environment is ready and leave it running (no port forwarding)")
	fs.BoolVar(&opts.Keep, "keep", false, "keep the environment when up ends or fails (Ctrl-C stops forwarding only)")
	fs.DurationVar(&opts.WaitTimeout, "wait-timeout", 10*time.Minute, "how long to wait for the environment to become ready")
	fs.DurationVar(&opts.TTL, "ttl", 0, "delete the environment after it has been left without a CLI attached this long (0: 10m, or 24h with --detach)")
	fs.DurationVar(&opts.HeartbeatInterval, "heartbeat-interval", 0, "how often to renew the environment's heartbeat (0: 20s)")
	_ = fs.MarkHidden("heartbeat-interval")
	config.MarkSetting(fs, "wait-timeout", "ttl") // ERGOMAKE_WAIT_TIMEOUT, ERGOMAKE_TTL, config file
	fs.BoolVar(&opts.Images.Force, "build", false, "build every image of a build: service, even when unchanged")
	fs.BoolVar(&opts.Images.NoBuild, "no-build", false, "build nothing: fail when a build: service's image was never built")
	addImageFlags(cmd, &opts.Images)
	addProjectFlags(cmd, &opts.Project)
	addClusterFlags(cmd, &opts.Cluster)
	addServerFlag(cmd, &opts.Cluster)
	return cmd
}

// Default TTLs of an environment: attached, the CLI renews the heartbeat every 20s; detached (or
// kept), nobody does until `ergomake forward` or `up` attaches again.
const (
	defaultAttachedTTL = 10 * time.Minute
	defaultDetachedTTL = 24 * time.Hour
)

// checkTTL refuses a TTL that would reclaim an environment whose heartbeat is late once or
// twice: below three heartbeat intervals (0 chooses a default TTL, always long enough).
func checkTTL(ttl, heartbeat time.Duration) error {
	if ttl < 0 {
		return FlagErrorf("--ttl must not be negative, got %s", ttl)
	}
	if heartbeat < 0 {
		return FlagErrorf("--heartbeat-interval must not be negative, got %s", heartbeat)
	}
	if min := session.MinTTL(heartbeat); ttl != 0 && ttl < min {
		return FlagErrorf("--ttl %s is shorter than three heartbeats (%s): the environment would be deleted whenever a heartbeat or two came late; use --ttl %s or more",
			ttl, min, min)
	}
	return nil
}

// upRun checks the project and hands it to the session, which applies it, waits, forwards and
// tears down (internal/session).
func upRun(opts *UpOptions) error {
	ctx := opts.Context
	status := ui.NewStatus(opts.IO, ui.StatusOptions{Now: opts.Factory.Now})
	defer status.Stop()

	// The project, translated: bad input fails here, before anything touches the cluster.
	project, err := loadProject(ctx, opts.Factory, opts.Project)
	if err != nil {
		return err
	}
	ttl, keptTTL := opts.TTL, opts.TTL
	if ttl == 0 {
		ttl, keptTTL = defaultAttachedTTL, defaultDetachedTTL
		if opts.Detach {
			ttl = defaultDetachedTTL
		}
	}
	srv, err := serverClient(opts.Factory, opts.Cluster)
	if err != nil {
		return err
	}
	topts := translate.Options{Namespace: opts.Cluster.Namespace, TTL: ttl}
	var rec *translate.Recorder
	if srv != nil {
		// Through the server, which translates the project again from the files read here.
		rec = translate.NewRecorder()
		topts.Files = rec
	}
	res, err := translate.Translate(project, topts)
	if err != nil {
		return err
	}
	for _, w := range res.Warnings {
		status.Warnf("%s", w.String())
	}
	// What the operator would fail to build (a port clash, say) fails here, before anything is
	// applied.
	if _, err := render.Render(res.Env, render.Options{}); err != nil {
		return err
	}
	sopts := session.Options{
		Reporter:       newLiveView(opts.IO, status, opts.Factory.Now),
		Now:            opts.Factory.Now,
		Detach:         opts.Detach,
		Keep:           opts.Keep,
		KeptTTL:        keptTTL,
		WaitTimeout:    opts.WaitTimeout,
		Owner:          ownerName(opts.Factory),
		HeartbeatEvery: opts.HeartbeatInterval,
		DownCommand:    downCommand(opts.Cluster, project.Name, res.Env.Namespace),
		Project:        project,
		Build:          opts.Images.buildOptions(project, nil),
	}
	if srv != nil {
		sopts.Files = rec.Files()
		sopts.Server = srv
		sopts.DownCommand = serverDownCommand(opts.Cluster, project.Name)
	} else if sopts.Client, err = opts.Factory.KubeClient(opts.Cluster); err != nil {
		return err
	}
	err = session.Up(ctx, sopts, res)
	if session.IsInUse(err) {
		return &ExitError{Code: ExitInUse, Err: err}
	}
	return err
}
