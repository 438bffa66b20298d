// Package session is an attached ergomake session: what `ergomake up` does from the first apply
// to the end of the teardown, and what `ergomake forward` does while it holds the ports of a
// running environment. Up reads as its list of steps; each step follows it in this file, in
// order. Forward (forward.go) reuses the steps from bind on.
//
// The session talks to the user only through a Reporter (the CLI's live view implements it) and
// to the cluster through a *kube.Client, so it runs the same in the command and in tests.
package session

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/ergomake/ergomake/internal/forward"
	"github.com/ergomake/ergomake/internal/kube"
	"github.com/ergomake/ergomake/internal/server"
	"github.com/ergomake/ergomake/internal/translate"
	"github.com/ergomake/ergomake/internal/wait"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// ErrCancel is the error of a session the user interrupted (Ctrl-C, SIGTERM) before it could
// finish: the session has already said what was left undone. The command exits 130 on it and
// prints nothing more.
var ErrCancel = errors.New("CancelError")

// Reporter is what a session tells the user.
type Reporter interface {
	// Start begins a phase ("Applying environment ns/name"), Update tells its progress, End
	// ends it with ✓ (ok) or ✗.
	Start(phase string)
	Update(detail string)
	End(ok bool)
	// Logf and Warnf print a line as the session goes (above a spinner or the live table).
	Logf(format string, args ...any)
	Warnf(format string, args ...any)
	// Noticef prints a line on stderr that stands on its own: why the environment failed, how
	// to finish an interrupted teardown.
	Noticef(format string, args ...any)
	// Printf prints a result line on stdout ("Environment ready ...").
	Printf(format string, args ...any)

	// WaitStart begins the wait for the services and WaitEnd ends it; Env reports each update
	// of the environment: during the wait, to show every service; while attached, to say what
	// changed (a service that crashes after it was ready).
	WaitStart(title string)
	Env(env *v1alpha1.ErgomakeEnv)
	WaitEnd(ok bool)

	// Bound tells where the published ports were bound on localhost (nil: there are none).
	Bound(bindings []forward.Binding)
}

// Options configure a session.
type Options struct {
	// Client is the cluster, reached with a kubeconfig's credentials; or else
	Client *kube.Client
	// Server is the ergomake server, reached with a login's token (backend_server.go).
	Server *server.Client
	// Reporter is told what happens.
	Reporter Reporter
	// Now is the clock of heartbeats and TTLs (time.Now when nil).
	Now func() time.Time
	// Signals are the interrupts of the user; nil: the process's SIGINT, SIGTERM and SIGHUP.
	// The first one ends the session, which then tears down; a second one, or the first during
	// a teardown after a failure, abandons the teardown.
	Signals <-chan os.Signal

	// Detach returns once the environment is ready and leaves it running, binding nothing.
	Detach bool
	// Keep leaves the environment running when the session ends or fails, with KeptTTL.
	Keep    bool
	KeptTTL time.Duration
	// WaitTimeout bounds the wait for every service to be ready.
	WaitTimeout time.Duration
	// Owner (user@host) is recorded on the environment.
	Owner string
	// HeartbeatEvery is how often the session renews the heartbeat (0: every 20s).
	HeartbeatEvery time.Duration
	// DownCommand is the command line that removes the environment, for the messages that
	// tell the user how to finish a job the session could not.
	DownCommand string
	// Project is the compose project the environment was translated from (nil: none), for
	// the ceiling check (policy.go).
	Project *types.Project
	// Build builds the project's images before anything is applied (build.go).
	Build BuildOptions
	// Files are the contents of the files translating the project read (path → contents):
	// through the server, they are sent with the project, which the server translates again.
	Files map[string][]byte
}

// Timings of a session.
const (
	// operatorSilence: how long the wait shows an unobserved environment before it asks
	// whether the operator runs.
	operatorSilence = 30 * time.Second
	// failureLogLines: how many log lines of a failing service are shown.
	failureLogLines = 20
)

// clusterAPI is what the session's heartbeat and endings (teardown, --keep, detach) ask of the
// cluster: *kube.Client, or in the tests of those decisions a fake.
type clusterAPI interface {
	DeleteEnv(ctx context.Context, namespace, name string, opts kube.DeleteOptions) error
	Detach(ctx context.Context, namespace, name, sessionID string, ttl time.Duration, now time.Time) error
	Heartbeat(ctx context.Context, namespace, name string, now time.Time) error
}

// session is one run of Up or Forward.
type session struct {
	opts    Options
	rep     Reporter
	client  *kube.Client
	api     clusterAPI
	now     func() time.Time
	ns      string
	name    string
	project string
	sig     *signals
	be      backend

	// existed: an environment was there before this run; created: this run created the
	// environment (so a failure or Ctrl-C removes it unless --keep); attached: this run has
	// applied to it (so it detaches from one it did not create); ownNamespace: ergomake created
	// the namespace for this environment (so teardown removes it, when nothing else is there).
	existed      bool
	created      bool
	attached     bool
	ownNamespace bool

	// Ownership (ownership.go): this session, the environment's creator, the TTL the
	// environment had before this session attached, the TTL it has, and the heartbeat.
	info    v1alpha1.Session
	creator *v1alpha1.Creator
	prevTTL *time.Duration
	ttl     time.Duration
	beats   *heartbeat
}

func newSession(opts Options, ns, name, project string) *session {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	s := &session{opts: opts, rep: opts.Reporter, client: opts.Client, now: now, ns: ns, name: name, project: project}
	switch {
	case opts.Server != nil:
		sb := &serverBackend{c: opts.Server, s: s}
		s.be, s.api = sb, sb
	default:
		s.be = kubeBackend{opts.Client}
		if opts.Client != nil {
			s.api = opts.Client
		}
	}
	return s
}

// Up brings the translated project up and stays attached to it: the steps of `ergomake up`.
func Up(ctx context.Context, opts Options, res *translate.Result) error {
	env := res.Env
	s := newSession(opts, env.Namespace, env.Name, env.Spec.Project)
	if env.Spec.TTL != nil {
		s.ttl = env.Spec.TTL.Duration
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.sig = watchSignals(opts.Signals, cancel)
	defer s.sig.stop()

	// 1. The cluster answers, accepts the credentials and serves ErgomakeEnvs.
	if err := s.connect(ctx); err != nil {
		return s.notApplied(ctx, err)
	}
	// 1b. Nothing exceeds the cluster's security ceiling (policy.go).
	if err := s.checkCeiling(ctx, res); err != nil {
		return s.notApplied(ctx, err)
	}
	// 1c. The images of build: services, built and pushed; nothing is applied unless they are.
	if err := s.build(ctx, res); err != nil {
		return err
	}
	// 2. An environment of this project already there is attached to; one being deleted is
	// waited for. Nothing is changed yet, so a failure here leaves nothing behind.
	existing, err := s.be.findExisting(ctx, s)
	if err != nil {
		return s.notApplied(ctx, err)
	}
	// 3. Namespace, data, environment. From here on a failure removes what this run made.
	if err := s.be.apply(ctx, s, res, existing); err != nil {
		return s.failed(ctx, err)
	}
	// The heartbeat runs from here through the wait and while attached.
	s.beats = s.startHeartbeat(ctx, false)
	if opts.Detach {
		// 4d. Wait for every service, then leave the environment running.
		if _, err := s.wait(ctx); err != nil {
			return s.failed(ctx, err)
		}
		s.detached(ctx)
		return nil
	}
	// 4. Bind the published ports now: connections wait for a ready pod, so each port answers
	// the moment its service is ready.
	fwd, err := s.bind(ctx, env, nil)
	if err != nil {
		return s.failed(ctx, err)
	}
	// 5. Wait for every service; a failure closes the listeners before the teardown.
	ready, err := s.wait(ctx)
	if err != nil {
		fwd.close()
		return s.failed(ctx, err)
	}
	// 6. Attached: forward, renew the heartbeat and report changes until Ctrl-C.
	s.rep.Bound(fwd.bindings)
	s.rep.Printf("Environment ready. Remote services are now bound to localhost. [Press CTRL+C to terminate the environment]")
	err = s.attach(ctx, ready, fwd)
	// 7. Tear down, or with --keep leave the environment running.
	return s.end(ctx, err)
}

// connect checks the cluster.
func (s *session) connect(ctx context.Context) error {
	s.rep.Start("Connecting to " + s.be.String())
	if err := s.be.check(ctx); err != nil {
		s.rep.End(false)
		return err
	}
	s.rep.End(true)
	return nil
}

// findExisting returns the environment of this project already in the namespace (nil: none),
// after refusing a namespace that holds another project's environment and waiting for a
// previous environment that is being deleted.
func (s *session) findExisting(ctx context.Context) (*v1alpha1.ErgomakeEnv, error) {
	if err := s.checkNamespaceAllowed(); err != nil {
		return nil, err
	}
	existing, err := s.client.GetEnv(ctx, s.ns, s.name)
	switch {
	case apierrors.IsNotFound(err):
		existing = nil
	case err != nil:
		return nil, err
	}
	if err := s.checkNamespaceFree(ctx); err != nil {
		return nil, err
	}
	return s.settleExisting(ctx, existing, func(ctx context.Context) error {
		return s.client.DeleteEnv(ctx, s.ns, s.name, kube.DeleteOptions{Progress: s.rep.Update})
	})
}

// settleExisting is the end of findExisting on either backend: it waits (with waitDeleted) for
// an environment being deleted to be gone, refuses one another live session is attached to
// (nothing changed), and says what up is about to do.
func (s *session) settleExisting(ctx context.Context, existing *v1alpha1.ErgomakeEnv, waitDeleted func(context.Context) error) (*v1alpha1.ErgomakeEnv, error) {
	if existing != nil && existing.DeletionTimestamp != nil {
		s.rep.Start(fmt.Sprintf("Waiting for the previous environment %s/%s to finish deleting", s.ns, s.name))
		if err := waitDeleted(ctx); err != nil {
			s.rep.End(false)
			return nil, err
		}
		s.rep.End(true)
		existing = nil
	}
	// Another live session attached to it keeps it: refused, nothing changed (through the
	// server, the server refuses it too: 409).
	if err := s.claim(ctx, existing); err != nil {
		return nil, err
	}
	if existing != nil {
		s.rep.Logf("Found existing environment %s in namespace %s (%s): attaching and applying changes",
			s.name, s.ns, Summary(existing))
	} else {
		s.rep.Logf("Found no existing remote environments of project %s: creating one in namespace %s", s.project, s.ns)
	}
	s.existed = existing != nil
	s.created = existing == nil
	return existing, nil
}

// checkNamespaceFree refuses a namespace that holds another project's environment: Services carry
// compose names, so two environments can never share one (ARCHITECTURE.md, decision 1).
func (s *session) checkNamespaceFree(ctx context.Context) error {
	envs, err := s.client.ListEnvs(ctx, s.ns)
	if err != nil {
		return err
	}
	for _, e := range envs {
		if e.Name != s.name {
			return fmt.Errorf("namespace %s already holds environment %s (project %s); choose another namespace with -n",
				s.ns, e.Name, e.Spec.Project)
		}
	}
	return nil
}

// apply creates or updates the namespace, the secrets and configmaps, and the environment.
func (s *session) apply(ctx context.Context, res *translate.Result, existing *v1alpha1.ErgomakeEnv) error {
	env := res.Env
	s.rep.Start("Applying environment " + s.ns + "/" + s.name)
	own, err := s.client.EnsureNamespace(ctx, s.ns, s.name)
	if err != nil {
		// The create may have reached the API server before the failure (Ctrl-C while it was
		// on its way): for a new environment, teardown removes the namespace if it is an
		// unmarked ergomake namespace holding nothing (kube.DeleteEnv checks).
		s.ownNamespace = existing == nil
		s.rep.End(false)
		return err
	}
	// Until the environment has a UID to mark the namespace with, a new environment's teardown
	// removes the namespace ergomake made.
	s.ownNamespace = own && existing == nil
	// The owner, the creator and the session; the rest of the apply is the cluster's side
	// (kube.ApplyEnvironment, which the ergomake server runs too).
	annotations := map[string]string{v1alpha1.AnnotationOwner: s.opts.Owner}
	s.ownership(annotations)
	out, err := s.client.ApplyEnvironment(ctx, kube.EnvApply{Env: env, Secrets: res.Secrets, ConfigMaps: res.ConfigMaps,
		Existing: existing, OwnNamespace: own, Annotations: annotations, Now: s.now()})
	s.attached = out.Env != nil
	if out.MarkChecked {
		s.ownNamespace = out.NamespaceMarked
	}
	if err != nil {
		s.rep.End(false)
		return err
	}
	s.rep.End(true)
	return nil
}

// forwarding is the port forwarding of a session: listeners bound, serving until closed.
type forwarding struct {
	bindings []forward.Binding
	stop     context.CancelFunc
	errc     chan error
	err      error
	ended    bool
}

// wait blocks until forwarding has ended (ctx ended, close called, or a
// failure) and its listeners are closed, and returns the failure (nil when it was stopped).
func (f *forwarding) wait() error {
	if !f.ended {
		f.err, f.ended = <-f.errc, true
	}
	return f.err
}

// close stops forwarding and waits until the listeners are closed.
func (f *forwarding) close() {
	f.stop()
	_ = f.wait()
}

// bind binds a local listener for every published port of the environment (of the services in
// only; all when nil) and serves them until ctx ends or the forwarding is closed.
func (s *session) bind(ctx context.Context, env *v1alpha1.ErgomakeEnv, only map[string]bool) (*forwarding, error) {
	fctx, cancel := context.WithCancel(ctx)
	f := &forwarding{stop: cancel, errc: make(chan error, 1)}
	ports := PublishedPorts(env, only)
	if len(ports) == 0 {
		go func() { <-fctx.Done(); f.errc <- nil }()
		return f, nil
	}
	fwd, err := s.be.forwarder(env, forward.Options{
		Logf: func(format string, args ...any) { s.rep.Logf("%s", shortenForwardError(fmt.Sprintf(format, args...))) },
	})
	if err != nil {
		cancel()
		return nil, err
	}
	f.bindings, err = fwd.Bind(ports)
	if err != nil {
		cancel()
		_ = fwd.Close()
		return nil, err
	}
	go func() {
		err := fwd.Serve(fctx)
		if fctx.Err() != nil {
			err = nil
		}
		f.errc <- err
	}()
	return f, nil
}

// wait waits until every service is ready, showing each one. On a failure it explains it.
func (s *session) wait(ctx context.Context) (*v1alpha1.ErgomakeEnv, error) {
	s.rep.WaitStart("Waiting for services")
	// An operator that never answers (not installed, crashing) would leave the user staring at
	// an empty table: say so after a while.
	var observed atomic.Bool
	hint := time.AfterFunc(operatorSilence, func() {
		if !observed.Load() {
			s.rep.Logf("The ergomake operator has not reported on the environment after %s: is it running? (`ergomake install` installs it)", operatorSilence)
		}
	})
	// A refused token (the heartbeat says) ends the wait too.
	wctx, stopWait := context.WithCancel(ctx)
	defer stopWait()
	if s.beats != nil {
		go func() {
			select {
			case <-s.beats.gone:
				if s.beats.refused != nil {
					stopWait()
				}
			case <-wctx.Done():
			}
		}()
	}
	ready, err := s.be.waitUntil(wctx, s.ns, s.name, wait.Options{Timeout: s.opts.WaitTimeout, OnUpdate: func(e *v1alpha1.ErgomakeEnv) {
		if e.Status.ObservedGeneration > 0 {
			observed.Store(true)
		}
		s.rep.Env(e)
	}})
	hint.Stop()
	s.rep.WaitEnd(err == nil)
	if rerr := s.beats.refusedErr(); rerr != nil {
		return ready, rerr
	}
	if err != nil && ctx.Err() == nil {
		s.explainFailure(ctx, err, ready)
	}
	return ready, err
}

// explainFailure prints why the environment cannot become ready and the failing service's last
// log lines.
func (s *session) explainFailure(ctx context.Context, err error, env *v1alpha1.ErgomakeEnv) {
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
			s.rep.Noticef("Environment %s/%s cannot become ready: %s", s.ns, s.name, m)
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
		lines, lerr = s.be.tailLogs(lctx, s.ns, s.name, svc.Name, failureLogLines)
		if lerr != nil || len(lines) == 0 {
			return
		}
	}
	s.rep.Noticef("Last log lines of %s:", svc.Name)
	for _, l := range lines {
		s.rep.Noticef("  | %s", l)
	}
}

// detached leaves the environment running, its session record removed, and tells the user it
// is ready and how to reach it later.
func (s *session) detached(ctx context.Context) {
	s.stopHeartbeat()
	if err := s.release(ctx, s.ttl); err != nil {
		s.rep.Warnf("could not detach from the environment: %v", err)
	}
	s.rep.Printf("Environment ready in namespace %s.", s.ns)
	s.rep.Printf("Run `ergomake forward` to bind its ports to localhost, `%s` to remove it.", s.opts.DownCommand)
}

var errDeleted = errors.New("was deleted")

// attach holds the session while forwarding: it renews the heartbeat (started here unless it
// runs already) and reports each change of a service, until ctx ends, forwarding fails, or the
// environment is deleted (an error wrapping errDeleted). It returns once the listeners are
// closed and the heartbeat stopped.
func (s *session) attach(ctx context.Context, env *v1alpha1.ErgomakeEnv, fwd *forwarding) error {
	hctx, stopWatch := context.WithCancel(ctx)
	if s.beats == nil {
		s.beats = s.startHeartbeat(ctx, true)
	}
	go func() {
		select {
		case <-s.beats.gone:
			fwd.stop()
		case <-hctx.Done():
		}
	}()
	watched := s.watch(hctx, fwd.stop)
	werr := fwd.wait()
	stopWatch()
	s.stopHeartbeat()
	if err := s.beats.refusedErr(); err != nil {
		<-watched
		return fmt.Errorf("%w; the session ended, the environment is left to its TTL", err)
	}
	if s.beats.isGone() || errors.Is(<-watched, wait.ErrGone) {
		return fmt.Errorf("environment %s/%s %w", s.ns, s.name, errDeleted)
	}
	return werr
}

// stopHeartbeat stops the heartbeat, when one runs.
func (s *session) stopHeartbeat() {
	s.beats.stop()
}

// watch reports each update of the environment while attached, and stops the session when the
// environment is deleted (wait.ErrGone on the returned channel).
func (s *session) watch(ctx context.Context, stop func()) <-chan error {
	out := make(chan error, 1)
	go func() {
		err := s.be.watch(ctx, s.ns, s.name, s.rep.Env)
		if errors.Is(err, wait.ErrGone) {
			stop()
		}
		out <- err
	}()
	return out
}

// end ends an attached session on what attach returned: the environment deleted by someone
// else ends it as is; forwarding that failed on its own is a failure; otherwise the user ended
// it.
func (s *session) end(ctx context.Context, err error) error {
	if errors.Is(err, errDeleted) || isLoggedOut(err) {
		return err
	}
	if ctx.Err() == nil && err != nil {
		return s.failed(ctx, err)
	}
	return s.interrupted(ctx)
}

// failed ends the session after a failure: after Ctrl-C as interrupted does; otherwise the
// environment is removed when this run created or attached to it, unless --keep.
func (s *session) failed(ctx context.Context, err error) error {
	s.stopHeartbeat()
	if rerr := s.beats.refusedErr(); rerr != nil {
		err = rerr
	}
	if isLoggedOut(err) && s.attached {
		// Nothing more can be done with these credentials.
		return fmt.Errorf("%w; the session ended, the environment is left to its TTL", err)
	}
	if ctx.Err() != nil && (s.created || s.attached) {
		return s.interrupted(ctx)
	}
	if s.opts.Keep || !s.created {
		if s.attached {
			if rerr := s.release(ctx, s.leftTTL()); rerr != nil {
				s.rep.Warnf("could not detach from the environment: %v", rerr)
			}
		}
		if s.opts.Keep && (s.created || s.existed) {
			s.rep.Logf("Keeping the environment (--keep): %s removes it", s.opts.DownCommand)
		} else if s.attached {
			s.rep.Logf("Leaving the environment running: this session did not create it (%s removes it)", s.opts.DownCommand)
		}
		return err
	}
	if terr := s.teardown(ctx); terr != nil {
		if errors.Is(terr, ErrCancel) {
			return terr
		}
		s.rep.Warnf("%v", terr)
	}
	return err
}

// interrupted ends a session the user ended (Ctrl-C): tear down, or with --keep leave the
// environment to a longer TTL.
func (s *session) interrupted(ctx context.Context) error {
	s.stopHeartbeat()
	if s.opts.Keep || !s.created {
		ttl := s.leftTTL()
		if err := s.release(ctx, ttl); err != nil && !apierrors.IsNotFound(err) {
			s.rep.Warnf("could not detach from the environment: %v", err)
		}
		if s.opts.Keep {
			s.rep.Noticef("Forwarding stopped. The environment keeps running (TTL %s): `ergomake forward` binds its ports again, `%s` removes it.",
				ttl, s.opts.DownCommand)
		} else {
			s.rep.Noticef("Detached. This session did not create the environment, so it keeps running (TTL %s): `ergomake forward` binds its ports again, `%s` removes it.",
				ttl, s.opts.DownCommand)
		}
		return nil
	}
	return s.teardown(ctx)
}

// teardown deletes the environment (and the namespace when ergomake created it), showing
// progress until everything is gone. It runs after ctx has ended (Ctrl-C) or after a failure,
// on a context of its own that the user can cancel: a second signal after Ctrl-C, the first one
// after a failure. Then it stops at once, prints the command that finishes the job, and returns
// ErrCancel.
func (s *session) teardown(ctx context.Context) error {
	tctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	abandon := s.sig.tearingDown(ctx.Err() == nil)
	go func() {
		select {
		case <-abandon:
			cancel()
		case <-tctx.Done():
		}
	}()

	s.rep.Start(fmt.Sprintf("Deleting environment %s/%s", s.ns, s.name))
	kept := ""
	err := s.api.DeleteEnv(tctx, s.ns, s.name, kube.DeleteOptions{Namespace: s.ownNamespace, NamespaceCreated: s.created,
		Progress: s.rep.Update, KeptNamespace: func(why string) { kept = why }})
	select {
	case <-abandon:
		s.rep.End(false)
		s.rep.Noticef("Interrupted: the environment is still being deleted. To finish the job, run:\n  %s", s.opts.DownCommand)
		return ErrCancel
	default:
	}
	if err != nil {
		s.rep.End(false)
		return fmt.Errorf("%w\nTo finish removing it, run: %s", err, s.opts.DownCommand)
	}
	s.rep.End(true)
	if kept != "" {
		s.rep.Noticef("Environment %s removed; %s, so it was kept.", s.name, kept)
	} else if s.ownNamespace {
		s.rep.Noticef("Environment %s and namespace %s removed.", s.name, s.ns)
	} else {
		s.rep.Noticef("Environment %s removed from namespace %s.", s.name, s.ns)
	}
	return nil
}
