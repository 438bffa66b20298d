package session

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/ergomake/ergomake/internal/forward"
	"github.com/ergomake/ergomake/internal/imagebuild"
	"github.com/ergomake/ergomake/internal/kube"
	"github.com/ergomake/ergomake/internal/server"
	"github.com/ergomake/ergomake/internal/translate"
	"github.com/ergomake/ergomake/internal/wait"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// serverBackend is an ergomake server (ARCHITECTURE.md decision 16), reached with the token of
// `ergomake login`: the server translates and applies the project again, in the namespace of the
// user it gives (ergomake-<user>-<project>), and streams the environment's states, logs and
// connections back. An environment is named by its compose project name there.
type serverBackend struct {
	c    *server.Client
	s    *session
	user string
}

// serverHeartbeatEvery: through the server the heartbeat is also how a session learns that its
// token was revoked, so it runs often enough to end the session within seconds.
const serverHeartbeatEvery = 5 * time.Second

// watchRetry: how long a watch waits before it connects again after the server went away (a
// server pod restarting: another replica answers).
const watchRetry = time.Second

// LoggedOutError is the server refusing the credentials (401: an unknown, revoked or expired
// token): the session ends saying to log in again.
type LoggedOutError struct {
	Server string
	Err    *server.APIError
}

func (e *LoggedOutError) Error() string {
	msg := strings.TrimSpace(e.Err.Message)
	if !strings.Contains(msg, "ergomake login") {
		msg += ": log in again (`ergomake login`)"
	}
	return fmt.Sprintf("the ergomake server %s refused your token: %s", e.Server, msg)
}

func (e *LoggedOutError) Unwrap() error { return e.Err }

// Explain turns the server's answers a user acts on into what they say: 401 into a
// *LoggedOutError; the rest as they are.
func (b *serverBackend) explain(err error) error {
	var ae *server.APIError
	if errors.As(err, &ae) && ae.Status == http.StatusUnauthorized {
		var lo *LoggedOutError
		if errors.As(err, &lo) {
			return err
		}
		return &LoggedOutError{Server: b.c.Host(), Err: ae}
	}
	return err
}

// IsInUse says whether err refuses an environment another live session holds: exit 3.
func IsInUse(err error) bool {
	var inUse *InUseError
	return errors.As(err, &inUse) || server.IsStatus(err, http.StatusConflict)
}

func (b *serverBackend) String() string {
	if b.user != "" {
		return "ergomake server " + b.c.Host() + " as " + b.user
	}
	return "ergomake server " + b.c.Host()
}

func (b *serverBackend) check(ctx context.Context) error {
	who, err := b.c.WhoAmI(ctx)
	if err != nil {
		return b.explain(err)
	}
	b.user = who.User
	if b.s.project != "" {
		b.s.ns = server.Namespace(who.User, b.s.project)
	}
	return nil
}

func (b *serverBackend) whoAmI(ctx context.Context) (*v1alpha1.Creator, error) {
	if b.user == "" {
		if err := b.check(ctx); err != nil {
			return nil, err
		}
	}
	return &v1alpha1.Creator{Username: b.user}, nil
}

// podSecurity: the server never lets its users above baseline (it checks again, against the
// install's ceiling when that is stricter).
func (b *serverBackend) podSecurity(context.Context) (string, error) { return "baseline", nil }

func (b *serverBackend) build(ctx context.Context, rep Reporter, opts BuildOptions, namespace string) (*Built, error) {
	return BuildThroughServer(ctx, b.c, rep, opts)
}

func (b *serverBackend) findExisting(ctx context.Context, s *session) (*v1alpha1.ErgomakeEnv, error) {
	existing, err := b.c.GetEnv(ctx, s.project)
	switch {
	case server.IsStatus(err, http.StatusNotFound):
		existing = nil
	case err != nil:
		return nil, b.explain(err)
	}
	return s.settleExisting(ctx, existing, func(ctx context.Context) error {
		if _, err := b.c.DeleteEnvWait(ctx, s.project); err != nil && !server.IsStatus(err, http.StatusNotFound) {
			return b.explain(err)
		}
		return nil
	})
}

func (b *serverBackend) apply(ctx context.Context, s *session, res *translate.Result, existing *v1alpha1.ErgomakeEnv) error {
	s.rep.Start("Applying environment " + s.ns + "/" + s.name)
	project, err := translate.EncodeProject(s.opts.Project)
	if err != nil {
		s.rep.End(false)
		return err
	}
	req := server.ApplyRequest{Project: project, Files: s.opts.Files, Session: s.info}
	if s.ttl > 0 {
		req.TTL = s.ttl.String()
	}
	for _, name := range res.Env.Spec.ImagePullSecrets { // the user's registry's (Built.Apply)
		for _, sec := range res.Secrets {
			if sec.Name == name && sec.Type == corev1.SecretTypeDockerConfigJson {
				if req.PullSecrets == nil {
					req.PullSecrets = map[string][]byte{}
				}
				req.PullSecrets[name] = sec.Data[corev1.DockerConfigJsonKey]
			}
		}
	}
	for _, svc := range res.Env.Spec.Services {
		if svc.Build != nil {
			if req.Builds == nil {
				req.Builds = map[string]v1alpha1.BuildSpec{}
			}
			req.Builds[svc.Name] = *svc.Build
		}
	}
	resp, err := b.c.Apply(ctx, req)
	if err != nil {
		s.rep.End(false)
		var ae *server.APIError
		if errors.As(err, &ae) {
			// The server answered: it applied nothing, so there is nothing to tear down.
			s.created = false
			if ae.Status == http.StatusConflict {
				return fmt.Errorf("environment %s/%s is in use: %w", s.ns, s.name, err)
			}
		}
		return b.explain(err)
	}
	s.attached = true
	s.created = resp.Created
	if resp.Env != nil && resp.Env.Namespace != "" {
		s.ns = resp.Env.Namespace
	}
	// The server removes the namespace with an environment it created.
	s.ownNamespace = s.created
	s.rep.End(true)
	local := map[string]bool{}
	for _, w := range res.Warnings {
		local[w.String()] = true
		local[w.Message] = true
	}
	for _, w := range resp.Warnings {
		if !local[w] {
			s.rep.Warnf("%s", w)
		}
	}
	return nil
}

// follow calls fn with each state of the environment from the server's watch stream, connecting
// again when the stream breaks (a server replica going away), until fn says stop (true), the
// environment is deleted (wait.ErrGone), ctx ends (nil) or the server refuses (its error).
func (b *serverBackend) follow(ctx context.Context, fn func(*v1alpha1.ErgomakeEnv) bool) error {
	errStop := errors.New("stop")
	for {
		gone := false
		err := b.c.WatchEnv(ctx, b.s.project, func(ev server.WatchEvent) error {
			if ev.Deleted {
				gone = true
				return errStop
			}
			if ev.Env != nil && fn(ev.Env) {
				return errStop
			}
			return nil
		})
		switch {
		case gone, server.IsStatus(err, http.StatusNotFound):
			return wait.ErrGone
		case errors.Is(err, errStop):
			return nil
		case ctx.Err() != nil:
			return nil
		}
		var ae *server.APIError
		if errors.As(err, &ae) && ae.Status != http.StatusServiceUnavailable && ae.Status != http.StatusBadGateway &&
			ae.Status != http.StatusTooManyRequests {
			return b.explain(err)
		}
		// The stream ended or broke: connect again (the first line is the current state).
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(watchRetry):
		}
	}
}

func (b *serverBackend) waitUntil(ctx context.Context, namespace, name string, opts wait.Options) (*v1alpha1.ErgomakeEnv, error) {
	wctx := ctx
	if opts.Timeout > 0 {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
	}
	var last *v1alpha1.ErgomakeEnv
	var result error
	err := b.follow(wctx, func(env *v1alpha1.ErgomakeEnv) bool {
		last = env
		var over bool
		over, result = wait.Step(opts, env)
		return over
	})
	switch {
	case ctx.Err() != nil:
		return last, ctx.Err()
	case err != nil:
		return last, err
	case result != nil:
		return last, result
	case wctx.Err() != nil:
		return last, &wait.TimeoutError{Env: last, After: opts.Timeout, Service: wait.Failing(last)}
	}
	return last, nil
}

func (b *serverBackend) watch(ctx context.Context, namespace, name string, onUpdate func(*v1alpha1.ErgomakeEnv)) error {
	return b.follow(ctx, func(env *v1alpha1.ErgomakeEnv) bool {
		onUpdate(env)
		return false
	})
}

func (b *serverBackend) tailLogs(ctx context.Context, namespace, name, service string, lines int) ([]string, error) {
	var out []string
	err := b.c.Logs(ctx, b.s.project, server.LogOptions{Service: service, Tail: int64(lines)}, func(l server.LogLine) error {
		if l.Error == "" {
			out = append(out, l.Line)
		}
		return nil
	})
	return out, b.explain(err)
}

// forwarder dials each connection through the server, which dials a ready pod of the port's
// service.
func (b *serverBackend) forwarder(env *v1alpha1.ErgomakeEnv, opts forward.Options) (portForwarder, error) {
	project := env.Spec.Project
	return forward.NewRoutedFirst(func(ctx context.Context, p forward.Port, first *forward.First) (net.Conn, error) {
		conn, err := b.c.DialFirst(ctx, project, p.Service, p.RemotePort, first)
		return conn, b.explain(err)
	}, opts), nil
}

func (b *serverBackend) heartbeatEvery() time.Duration { return serverHeartbeatEvery }

// DeleteEnv deletes the environment through the server and waits until it is gone (gone
// already: done).
func (b *serverBackend) DeleteEnv(ctx context.Context, namespace, name string, opts kube.DeleteOptions) error {
	if opts.Progress != nil {
		opts.Progress("waiting for the server")
	}
	_, err := b.c.DeleteEnvWait(ctx, b.s.project)
	if server.IsStatus(err, http.StatusNotFound) {
		return nil
	}
	return b.explain(err)
}

func (b *serverBackend) Detach(ctx context.Context, namespace, name, sessionID string, ttl time.Duration, now time.Time) error {
	err := b.c.Detach(ctx, b.s.project, sessionID, ttl)
	if server.IsStatus(err, http.StatusNotFound) {
		return apierrors.NewNotFound(v1alpha1.GroupVersion.WithResource("ergomakeenvs").GroupResource(), name)
	}
	return b.explain(err)
}

// Heartbeat renews the heartbeat of the environment this session holds, or of the one it
// forwards into without holding it (`ergomake forward`, which keeps it alive as with a
// kubeconfig). A refused token or a deleted environment ends the session.
func (b *serverBackend) Heartbeat(ctx context.Context, namespace, name string, now time.Time) error {
	var err error
	if b.s.info.ID == "" {
		err = b.c.ForwardHeartbeat(ctx, b.s.project)
	} else {
		err = b.c.Heartbeat(ctx, b.s.project, b.s.info.ID)
	}
	if server.IsStatus(err, http.StatusNotFound) {
		return apierrors.NewNotFound(v1alpha1.GroupVersion.WithResource("ergomakeenvs").GroupResource(), name)
	}
	return b.explain(err)
}

// BuildThroughServer builds the images of the project's build: services in the cluster's builder,
// reached through the ergomake server (`ergomake build` and up's build step when logged in): the
// context goes from this machine through the server to the builder.
func BuildThroughServer(ctx context.Context, c *server.Client, rep Reporter, opts BuildOptions) (*Built, error) {
	services, err := BuiltServices(opts.Project, opts.Services)
	if err != nil || len(services) == 0 {
		return &Built{}, err
	}
	info, err := c.Builder(ctx)
	if err != nil && (opts.Registry == "" || !server.IsStatus(err, http.StatusNotFound)) {
		return nil, (&serverBackend{c: c}).explain(err)
	}
	reg := imagebuild.Registry{Push: info.RegistryPush, Pull: info.RegistryPull, Insecure: info.Insecure}
	if opts.Registry != "" {
		// The user's registry: the builder pushes there with the credentials this machine's
		// BuildKit session hands it, and the server stores the pull secret in the environment's
		// namespace (ApplyRequest.PullSecrets).
		if reg, err = userRegistry(opts.Registry); err != nil {
			return nil, err
		}
	}
	dial := func(ctx context.Context) (net.Conn, error) {
		conn, err := c.DialBuilder(ctx)
		return conn, (&serverBackend{c: c}).explain(err)
	}
	return buildWith(ctx, rep, opts, services, reg, info.Platforms, dial, "")
}
