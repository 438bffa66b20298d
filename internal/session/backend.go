package session

import (
	"context"
	"time"

	"github.com/ergomake/ergomake/internal/forward"
	"github.com/ergomake/ergomake/internal/kube"
	"github.com/ergomake/ergomake/internal/translate"
	"github.com/ergomake/ergomake/internal/wait"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// backend is where a session's environment lives: the cluster itself, with the credentials of a
// kubeconfig (kubeBackend: Options.Client), or an ergomake server, with a login's token
// (serverBackend: Options.Server). The session's steps (session.go) are the same on both; each
// step asks its backend what it cannot do alone.
type backend interface {
	// clusterAPI renews the heartbeat, detaches and deletes (the session's endings).
	clusterAPI
	// String names where the session connects ("Connecting to ...").
	String() string
	// check checks that it answers and accepts the credentials.
	check(ctx context.Context) error
	// whoAmI is the identity of the credentials, recorded as the creator of what the session creates.
	whoAmI(ctx context.Context) (*v1alpha1.Creator, error)
	// podSecurity is the name of the security ceiling the project is checked against.
	podSecurity(ctx context.Context) (string, error)
	// build builds the images of the project's build: services (build.go).
	build(ctx context.Context, rep Reporter, opts BuildOptions, namespace string) (*Built, error)
	// findExisting returns the environment already there (nil: none), refusing one another live
	// session holds; apply applies the project. Up's steps 2 and 3.
	findExisting(ctx context.Context, s *session) (*v1alpha1.ErgomakeEnv, error)
	apply(ctx context.Context, s *session, res *translate.Result, existing *v1alpha1.ErgomakeEnv) error
	// waitUntil and watch follow the environment (wait.Until, wait.Watch).
	waitUntil(ctx context.Context, namespace, name string, opts wait.Options) (*v1alpha1.ErgomakeEnv, error)
	watch(ctx context.Context, namespace, name string, onUpdate func(*v1alpha1.ErgomakeEnv)) error
	// tailLogs returns the last lines of a service's log.
	tailLogs(ctx context.Context, namespace, name, service string, lines int) ([]string, error)
	// forwarder forwards local ports to the environment's pods.
	forwarder(env *v1alpha1.ErgomakeEnv, opts forward.Options) (portForwarder, error)
	// heartbeatEvery is the default heartbeat interval.
	heartbeatEvery() time.Duration
}

// portForwarder is what a session asks of its forwarder (*forward.Forwarder).
type portForwarder interface {
	Bind(ports []forward.Port) ([]forward.Binding, error)
	Serve(ctx context.Context) error
	Close() error
}

// kubeBackend is the cluster, reached with a kubeconfig's credentials.
type kubeBackend struct {
	*kube.Client
}

func (k kubeBackend) check(ctx context.Context) error { return k.Client.Check(ctx) }

func (k kubeBackend) whoAmI(ctx context.Context) (*v1alpha1.Creator, error) {
	return k.Client.WhoAmI(ctx)
}

func (k kubeBackend) podSecurity(ctx context.Context) (string, error) {
	return k.Client.PodSecurity(ctx)
}

func (k kubeBackend) build(ctx context.Context, rep Reporter, opts BuildOptions, namespace string) (*Built, error) {
	return Build(ctx, k.Client, rep, opts, namespace)
}

func (k kubeBackend) findExisting(ctx context.Context, s *session) (*v1alpha1.ErgomakeEnv, error) {
	return s.findExisting(ctx)
}

func (k kubeBackend) apply(ctx context.Context, s *session, res *translate.Result, existing *v1alpha1.ErgomakeEnv) error {
	return s.apply(ctx, res, existing)
}

func (k kubeBackend) waitUntil(ctx context.Context, namespace, name string, opts wait.Options) (*v1alpha1.ErgomakeEnv, error) {
	return wait.Until(ctx, k.Client, namespace, name, opts)
}

func (k kubeBackend) watch(ctx context.Context, namespace, name string, onUpdate func(*v1alpha1.ErgomakeEnv)) error {
	return wait.Watch(ctx, k.Client, namespace, name, onUpdate)
}

func (k kubeBackend) tailLogs(ctx context.Context, namespace, name, service string, lines int) ([]string, error) {
	return k.Client.TailLogs(ctx, namespace, name, service, lines)
}

func (k kubeBackend) forwarder(env *v1alpha1.ErgomakeEnv, opts forward.Options) (portForwarder, error) {
	return forward.New(k.Client.Config, env.Namespace, opts)
}

func (k kubeBackend) heartbeatEvery() time.Duration { return defaultHeartbeatEvery }
