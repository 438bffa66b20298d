package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/ergomake/ergomake/internal/config"
	"github.com/ergomake/ergomake/internal/iostreams"
	"github.com/ergomake/ergomake/internal/kube"
	"github.com/ergomake/ergomake/internal/render"
	"github.com/ergomake/ergomake/internal/translate"
	"github.com/ergomake/ergomake/internal/ui"
	"github.com/ergomake/ergomake/internal/wait"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
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
	// 24h detached).
	TTL time.Duration
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
after --ttl.`,
		Example: `  ergomake up
  ergomake up -f compose.yaml -f compose.dev.yaml --profile debug
  ergomake up -d --context staging -n my-feature`,
		Args: wrapArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Context = cmd.Context()
			if opts.WaitTimeout <= 0 {
				return FlagErrorf("--wait-timeout must be positive, got %s", opts.WaitTimeout)
			}
			if opts.TTL < 0 {
				return FlagErrorf("--ttl must not be negative, got %s", opts.TTL)
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
	config.MarkSetting(fs, "wait-timeout", "ttl") // ERGOMAKE_WAIT_TIMEOUT, ERGOMAKE_TTL, config file
	addProjectFlags(cmd, &opts.Project)
	addClusterFlags(cmd, &opts.Cluster)
	return cmd
}

// Default TTLs of an environment: attached, the CLI renews the heartbeat every heartbeatEvery;
// detached (or kept), nobody does until `ergomake forward` or `up` attaches again.
const (
	defaultAttachedTTL = 10 * time.Minute
	defaultDetachedTTL = 24 * time.Hour
	heartbeatEvery     = 20 * time.Second
	failureLogLines    = 20
	operatorSilence    = 30 * time.Second
)

func upRun(opts *UpOptions) error {
	// Signals: the first Ctrl-C (or SIGTERM) ends the session, which then tears down; a second
	// one, or the first during a teardown after a failure, abandons the teardown at once.
	ctx, cancel := context.WithCancel(opts.Context)
	defer cancel()
	sig := newSignals(cancel)
	defer sig.stop()
	ios := opts.IO
	now := opts.Factory.Now
	status := ui.NewStatus(ios, ui.StatusOptions{Now: now})
	defer status.Stop()

	// 1. The project, translated: bad input fails here, before anything touches the cluster.
	project, err := loadProject(ctx, opts.Factory, opts.Project)
	if err != nil {
		return err
	}
	ttl := opts.TTL
	if ttl == 0 {
		ttl = defaultAttachedTTL
		if opts.Detach {
			ttl = defaultDetachedTTL
		}
	}
	res, err := translate.Translate(project, translate.Options{Namespace: opts.Cluster.Namespace, TTL: ttl})
	if err != nil {
		return err
	}
	for _, w := range res.Warnings {
		status.Warnf("%s", w.String())
	}
	env := res.Env
	// What the operator would fail to build (a port clash, say) fails here, before anything is
	// applied.
	if _, err := render.Render(env, render.Options{}); err != nil {
		return err
	}
	ns, name := env.Namespace, env.Name

	// 2. The cluster: reachable, credentials accepted, the operator's CRD installed.
	client, err := newKubeClient(opts.Cluster)
	if err != nil {
		return err
	}
	status.Start("Connecting to " + client.String())
	if err := client.Check(ctx); err != nil {
		status.End(false)
		return err
	}
	status.End(true)

	u := &upSession{opts: opts, status: status, client: client, project: project.Name, ns: ns, name: name, sig: sig}
	return u.run(ctx, res)
}

// upSession is one `ergomake up`, from the first apply to the end of the teardown.
type upSession struct {
	opts    *UpOptions
	status  *ui.Status
	client  *kube.Client
	project string
	ns      string
	name    string
	sig     *signals

	// created: this run created the environment (so a failure removes it); ownNamespace:
	// ergomake created the namespace (so teardown removes it).
	created      bool
	ownNamespace bool
}

func (u *upSession) run(ctx context.Context, res *translate.Result) error {
	opts, status, client := u.opts, u.status, u.client
	env := res.Env

	// 3. An environment of this project already there? Attach to it, applying the changes.
	existing, err := client.GetEnv(ctx, u.ns, u.name)
	switch {
	case apierrors.IsNotFound(err):
		existing = nil
	case err != nil:
		return err
	}
	if err := u.checkNamespaceFree(ctx); err != nil {
		return err
	}
	if existing != nil && existing.DeletionTimestamp != nil {
		status.Start(fmt.Sprintf("Waiting for the previous environment %s/%s to finish deleting", u.ns, u.name))
		if err := client.DeleteEnv(ctx, u.ns, u.name, kube.DeleteOptions{Progress: status.Update}); err != nil {
			status.End(false)
			return err
		}
		status.End(true)
		existing = nil
	}
	if existing != nil {
		status.Logf("Found existing environment %s in namespace %s (%s): attaching and applying changes",
			u.name, u.ns, envSummary(existing))
	} else {
		status.Logf("Found no existing remote environments of project %s: creating one in namespace %s", u.project, u.ns)
		u.created = true
	}

	// From here on, a failure removes what this run made (unless --keep).
	fail := func(err error) error {
		if ctx.Err() != nil && u.created {
			return u.interrupted(ctx)
		}
		if opts.Keep || !u.created {
			if opts.Keep && (u.created || existing != nil) {
				status.Logf("Keeping the environment (--keep): %s removes it", downCommand(opts.Cluster, u.project, u.ns))
			}
			return err
		}
		return u.teardownAfter(ctx, err)
	}

	// 4. Namespace, data, environment.
	status.Start("Applying environment " + u.ns + "/" + u.name)
	own, err := client.EnsureNamespace(ctx, u.ns, u.name)
	if err != nil {
		status.End(false)
		return fail(err)
	}
	u.ownNamespace = own
	if env.Annotations == nil {
		env.Annotations = map[string]string{}
	}
	env.Annotations[v1alpha1.AnnotationOwner] = ownerName(opts.Factory)
	env.Annotations[v1alpha1.AnnotationHeartbeat] = opts.Factory.Now().UTC().Format(time.RFC3339)
	if own {
		env.Annotations[v1alpha1.AnnotationCreatedNamespace] = "true"
	}
	if err := client.ApplyData(ctx, u.ns, u.name, existing, res.Secrets, res.ConfigMaps); err != nil {
		status.End(false)
		return fail(err)
	}
	applied, err := client.ApplyEnv(ctx, env)
	if err != nil {
		status.End(false)
		return fail(err)
	}
	if existing == nil && (len(res.Secrets) > 0 || len(res.ConfigMaps) > 0) {
		if err := client.ApplyData(ctx, u.ns, u.name, applied, res.Secrets, res.ConfigMaps); err != nil {
			status.End(false)
			return fail(err)
		}
	}
	status.End(true)
	// From here on, Ctrl-C and failures tear down whatever the environment was: up is attached.
	u.created = true

	// 5. Wait, showing each service.
	view := newEnvView(opts.IO, "Waiting for services", opts.Factory.Now)
	view.Start()
	// An operator that never answers (not installed, crashing) would leave the user staring at
	// an empty table: say so after a while.
	var observed atomic.Bool
	hint := time.AfterFunc(operatorSilence, func() {
		if !observed.Load() {
			view.Logf("The ergomake operator has not reported on the environment after %s: is it running? (`ergomake install` installs it)", operatorSilence)
		}
	})
	ready, err := wait.Until(ctx, client, u.ns, u.name, wait.Options{Timeout: opts.WaitTimeout, OnUpdate: func(e *v1alpha1.ErgomakeEnv) {
		if e.Status.ObservedGeneration > 0 {
			observed.Store(true)
		}
		view.Update(e)
	}})
	hint.Stop()
	view.End(err == nil)
	if err != nil {
		if ctx.Err() != nil {
			return u.interrupted(ctx)
		}
		u.explainFailure(ctx, err, ready)
		return fail(err)
	}

	if opts.Detach {
		fmt.Fprintf(opts.IO.Out, "Environment ready in namespace %s.\n", u.ns)
		fmt.Fprintf(opts.IO.Out, "Run `ergomake forward` to bind its ports to localhost, `%s` to remove it.\n",
			downCommand(opts.Cluster, u.project, u.ns))
		return nil
	}
	return u.attach(ctx, ready)
}

// checkNamespaceFree refuses a namespace that holds another project's environment: Services carry
// compose names, so two environments can never share one (ARCHITECTURE.md, decision 1).
func (u *upSession) checkNamespaceFree(ctx context.Context) error {
	envs, err := u.client.ListEnvs(ctx, u.ns)
	if err != nil {
		return err
	}
	for _, e := range envs {
		if e.Name != u.name {
			return fmt.Errorf("namespace %s already holds environment %s (project %s); choose another namespace with -n",
				u.ns, e.Name, e.Spec.Project)
		}
	}
	return nil
}

// explainFailure prints why the environment cannot become ready and the failing service's last
// log lines.
func (u *upSession) explainFailure(ctx context.Context, err error, env *v1alpha1.ErgomakeEnv) {
	w := u.opts.IO.ErrOut
	var svc *v1alpha1.ServiceStatus
	var de *wait.DegradedError
	var te *wait.TimeoutError
	switch {
	case errors.As(err, &de):
		svc = de.Service
	case errors.As(err, &te):
		svc = te.Service
	}
	if svc == nil {
		svc = wait.Failing(env)
	}
	if env != nil && svc == nil {
		if m := wait.Message(env); m != "" {
			fmt.Fprintf(w, "Environment %s/%s cannot become ready: %s\n", u.ns, u.name, m)
		}
		return
	}
	if svc == nil {
		return
	}
	// The error itself (printed last) carries the message; the log lines that explain it, the
	// operator's or else the service's log, are printed here.
	lines := svc.LogTail
	if len(lines) == 0 {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		var lerr error
		lines, lerr = u.client.TailLogs(lctx, u.ns, u.name, svc.Name, failureLogLines)
		if lerr != nil || len(lines) == 0 {
			return
		}
	}
	fmt.Fprintf(w, "Last log lines of %s:\n", svc.Name)
	for _, l := range lines {
		fmt.Fprintln(w, "  | "+l)
	}
}

// attach forwards the published ports and renews the heartbeat until Ctrl-C (or the environment
// disappears), then tears down (or, with --keep, leaves the environment running).
func (u *upSession) attach(ctx context.Context, env *v1alpha1.ErgomakeEnv) error {
	opts := u.opts
	sess, err := startForwarding(ctx, opts.IO, u.status, u.client, env, nil)
	if err != nil {
		if ctx.Err() != nil {
			return u.interrupted(ctx)
		}
		if opts.Keep {
			return err
		}
		return u.teardownAfter(ctx, err)
	}
	fmt.Fprintln(opts.IO.Out, "Environment ready. Remote services are now bound to localhost. [Press CTRL+C to terminate the environment]")

	hctx, stopBeats := context.WithCancel(ctx)
	gone := heartbeat(hctx, u.client, u.ns, u.name, opts.Factory.Now, sess.stop)
	watched := watchAttached(hctx, u.client, env, u.status, sess.stop)
	werr := sess.wait()
	stopBeats()
	if errors.Is(<-gone, errEnvGone) || errors.Is(<-watched, wait.ErrGone) {
		return fmt.Errorf("environment %s/%s was deleted", u.ns, u.name)
	}
	if ctx.Err() == nil && werr != nil {
		// Forwarding failed on its own: the session cannot go on.
		if opts.Keep {
			return werr
		}
		return u.teardownAfter(ctx, werr)
	}
	return u.interrupted(ctx)
}

// interrupted ends an attached session after Ctrl-C: tear down, or with --keep leave the
// environment to a longer TTL.
func (u *upSession) interrupted(ctx context.Context) error {
	opts := u.opts
	if opts.Keep {
		ttl := opts.TTL
		if ttl == 0 {
			ttl = defaultDetachedTTL
		}
		bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := u.client.SetTTL(bctx, u.ns, u.name, ttl, opts.Factory.Now()); err != nil && !apierrors.IsNotFound(err) {
			u.status.Warnf("could not lengthen the environment's TTL: %v", err)
		}
		fmt.Fprintf(opts.IO.ErrOut, "Forwarding stopped. The environment keeps running (TTL %s): `ergomake forward` binds its ports again, `%s` removes it.\n",
			ttl, downCommand(opts.Cluster, u.project, u.ns))
		return nil
	}
	if err := u.teardown(ctx); err != nil {
		return err
	}
	return nil
}

// teardownAfter removes the environment after a failure and returns the failure.
func (u *upSession) teardownAfter(ctx context.Context, cause error) error {
	if err := u.teardown(ctx); err != nil {
		if errors.Is(err, ErrCancel) {
			return &ExitError{Code: ExitCancel, Err: ErrSilent}
		}
		u.status.Warnf("%v", err)
	}
	return cause
}

// teardown deletes the environment (and the namespace when ergomake created it), showing
// progress until everything is gone. It runs after ctx has ended (Ctrl-C), on a context of its
// own that a further Ctrl-C (or SIGTERM) cancels: then it stops at once, prints the command
// that finishes the job, and returns an exit code 130 error.
func (u *upSession) teardown(ctx context.Context) error {
	tctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	// After Ctrl-C, a second one abandons the teardown; after a failure, the first one does.
	interrupted := u.sig.tearingDown(ctx.Err() == nil)
	go func() {
		select {
		case <-interrupted:
			cancel()
		case <-tctx.Done():
		}
	}()

	u.status.Start(fmt.Sprintf("Deleting environment %s/%s", u.ns, u.name))
	err := u.client.DeleteEnv(tctx, u.ns, u.name, kube.DeleteOptions{Namespace: u.ownNamespace, Progress: u.status.Update})
	select {
	case <-interrupted:
		u.status.End(false)
		fmt.Fprintf(u.opts.IO.ErrOut, "Interrupted: the environment is still being deleted. To finish the job, run:\n  %s\n",
			downCommand(u.opts.Cluster, u.project, u.ns))
		return &ExitError{Code: ExitCancel, Err: ErrSilent}
	default:
	}
	if err != nil {
		u.status.End(false)
		return fmt.Errorf("%w\nTo finish removing it, run: %s", err, downCommand(u.opts.Cluster, u.project, u.ns))
	}
	u.status.End(true)
	if u.ownNamespace {
		fmt.Fprintf(u.opts.IO.ErrOut, "Environment %s and namespace %s removed.\n", u.name, u.ns)
	} else {
		fmt.Fprintf(u.opts.IO.ErrOut, "Environment %s removed from namespace %s.\n", u.name, u.ns)
	}
	return nil
}

var errEnvGone = errors.New("environment gone")

// heartbeat renews the environment's heartbeat annotation every heartbeatEvery until ctx ends.
// When the environment is gone (deleted by someone else, or reclaimed) it calls stop and reports
// errEnvGone on the returned channel; otherwise nil once ctx ends.
func heartbeat(ctx context.Context, client *kube.Client, ns, name string, now func() time.Time, stop func()) <-chan error {
	out := make(chan error, 1)
	go func() {
		t := time.NewTicker(heartbeatEvery)
		defer t.Stop()
		beat := func() bool {
			bctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			err := client.Heartbeat(bctx, ns, name, now())
			return apierrors.IsNotFound(err)
		}
		if beat() {
			stop()
			out <- errEnvGone
			return
		}
		for {
			select {
			case <-ctx.Done():
				out <- nil
				return
			case <-t.C:
				if beat() {
					stop()
					out <- errEnvGone
					return
				}
			}
		}
	}()
	return out
}

func envSummary(env *v1alpha1.ErgomakeEnv) string {
	ready, total := readyCount(env)
	phase := string(env.Status.Phase)
	if phase == "" {
		phase = string(v1alpha1.PhasePending)
	}
	return fmt.Sprintf("%s, %d/%d services ready", phase, ready, total)
}

// signals turns SIGINT, SIGTERM and SIGHUP (the terminal closed) into the two steps of `up`: the
// first cancels the session; a second (or the first once a teardown has begun without one)
// abandons the teardown.
type signals struct {
	ch      chan os.Signal
	done    chan struct{}
	abort   chan struct{}
	mu      sync.Mutex
	count   int
	tearing bool
	aborted bool
}

func newSignals(cancel context.CancelFunc) *signals {
	s := &signals{ch: make(chan os.Signal, 2), done: make(chan struct{}), abort: make(chan struct{})}
	signal.Notify(s.ch, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		for {
			select {
			case <-s.done:
				return
			case <-s.ch:
				s.mu.Lock()
				s.count++
				if s.count == 1 {
					cancel()
				}
				if (s.count > 1 || s.tearing) && !s.aborted {
					s.aborted = true
					close(s.abort)
				}
				s.mu.Unlock()
			}
		}
	}()
	return s
}

// tearingDown says a teardown begins; the returned channel closes when the user wants it
// abandoned: at the second signal, or at the first when abortOnFirst (a teardown after a failure,
// not after Ctrl-C).
func (s *signals) tearingDown(abortOnFirst bool) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tearing = abortOnFirst
	if s.tearing && s.count > 0 && !s.aborted {
		s.aborted = true
		close(s.abort)
	}
	return s.abort
}

func (s *signals) stop() {
	signal.Stop(s.ch)
	close(s.done)
}

// watchAttached reports each change of a service while attached, and stops the session when the
// environment is deleted (wait.ErrGone on the returned channel).
func watchAttached(ctx context.Context, client *kube.Client, env *v1alpha1.ErgomakeEnv, status *ui.Status, stop func()) <-chan error {
	out := make(chan error, 1)
	p := newChangePrinter(env, status.Logf)
	go func() {
		err := wait.Watch(ctx, client, env.Namespace, env.Name, p.update)
		if errors.Is(err, wait.ErrGone) {
			stop()
		}
		out <- err
	}()
	return out
}
