package session

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/ergomake/ergomake/internal/clustersettings"
	"github.com/ergomake/ergomake/internal/forward"
	"github.com/ergomake/ergomake/internal/imagebuild"
	"github.com/ergomake/ergomake/internal/kube"
	"github.com/ergomake/ergomake/internal/translate"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// BuildOptions configure the building of a project's images: the build step of Up, and Build
// (`ergomake build`).
type BuildOptions struct {
	// Project is the loaded compose project: its build: sections and folders. Nil: nothing to
	// build.
	Project *types.Project
	// Services limits the build to these services; nil: every service that has build:.
	Services []string
	// Registry is the user's registry (--registry, [http://]host[:port][/prefix]; http: it serves
	// plain HTTP): images are pushed there
	// with the user's docker credentials, and pods pull them with an imagePullSecret made of the
	// same credentials. Empty: the cluster's registry (ergomake install), else the one the cluster
	// publishes (KEP-1755, kube-public/local-registry-hosting).
	Registry string
	// Force builds even an unchanged image (up --build); NoCache builds without the builder's
	// cache (--no-cache); NoBuild builds nothing and fails when an image was never built
	// (up --no-build).
	Force, NoCache, NoBuild bool
	// DockerConfig is the folder of the user's docker config.json (empty: $DOCKER_CONFIG, else
	// ~/.docker).
	DockerConfig string
}

// BuildReporter is a Reporter that shows the builder's progress display itself: BuildStart
// returns where the display goes and whether that is a terminal, BuildEnd follows the display.
// A Reporter without it gets the display's lines through Logf.
type BuildReporter interface {
	BuildStart(title string) (out io.Writer, tty bool)
	BuildEnd(ok bool)
}

// Built is what a build made: per built service, what its spec records, and the pull secret of
// the user's registry.
type Built struct {
	// Results are the builder's, one per built service, in build order.
	Results []imagebuild.Result
	// Specs are the services' spec.build, by compose name.
	Specs map[string]v1alpha1.BuildSpec
	// PullSecret, when not nil, lets pods pull from the user's registry.
	PullSecret *corev1.Secret
}

// Apply makes res run what was built: each built service's image by digest, its build recorded,
// and the pull secret among the environment's Secrets.
func (b *Built) Apply(res *translate.Result) {
	if b == nil {
		return
	}
	for i := range res.Env.Spec.Services {
		svc := &res.Env.Spec.Services[i]
		spec, ok := b.Specs[svc.Name]
		if !ok {
			continue
		}
		svc.Build = &spec
		svc.Image = translate.ImageRef(spec)
	}
	if b.PullSecret != nil {
		s := b.PullSecret.DeepCopy()
		s.Namespace = res.Env.Namespace
		res.Secrets = append(res.Secrets, s)
		res.Env.Spec.ImagePullSecrets = append(res.Env.Spec.ImagePullSecrets, s.Name)
	}
}

// BuiltServices are the services of p that have build:, sorted, limited to only when not nil.
// An unknown name in only, or one without build:, is an error.
func BuiltServices(p *types.Project, only []string) ([]string, error) {
	if p == nil {
		return nil, nil
	}
	if only != nil {
		for _, n := range only {
			s, ok := p.Services[n]
			switch {
			case !ok:
				return nil, fmt.Errorf("no service %q in project %s", n, p.Name)
			case s.Build == nil:
				return nil, fmt.Errorf("service %q has no build: section: its image %q is pulled, not built", n, s.Image)
			}
		}
		out := append([]string{}, only...)
		sort.Strings(out)
		return out, nil
	}
	var out []string
	for _, n := range p.ServiceNames() {
		if p.Services[n].Build != nil {
			out = append(out, n)
		}
	}
	return out, nil
}

// ErrNoBuilder is wrapped by the error of a build on a cluster without ergomake's builder.
var ErrNoBuilder = errors.New("this cluster has no image builder: run `ergomake install` (or build the images elsewhere and set image:)")

// Build builds the images of the project's build: services in the cluster's builder, pushes them
// and returns what each service must run. Nothing is applied to the cluster, apart from the
// builder's own work; the pull secret is returned, not created. Ctrl-C (ctx ending) cancels the
// builds.
func Build(ctx context.Context, client *kube.Client, rep Reporter, opts BuildOptions, namespace string) (*Built, error) {
	services, err := BuiltServices(opts.Project, opts.Services)
	if err != nil || len(services) == 0 {
		return &Built{}, err
	}
	settings, err := clustersettings.Read(ctx, client.Kube, "")
	switch {
	case errors.Is(err, clustersettings.ErrNotInstalled):
		return nil, ErrNoBuilder
	case err != nil:
		return nil, err
	case settings.BuilderSelector == "" || settings.BuilderPort == 0:
		return nil, ErrNoBuilder
	}
	reg, err := registryFor(ctx, client.Kube, settings, opts.Registry)
	if err != nil {
		return nil, err
	}
	dialer, err := forward.NewPodDialer(client.Config, settings.Namespace)
	if err != nil {
		return nil, err
	}
	if err := awaitBuilder(ctx, rep, settings.Namespace, func(ctx context.Context) error {
		_, err := dialer.ReadyPod(ctx, settings.BuilderSelector)
		return err
	}); err != nil {
		return nil, err
	}
	dial := func(ctx context.Context) (net.Conn, error) {
		return dialer.Dial(ctx, settings.BuilderSelector, int32(settings.BuilderPort))
	}
	return buildWith(ctx, rep, opts, services, reg, kube.NodePlatforms(ctx, client.Kube), dial, settings.Namespace)
}

// builderWait bounds how long a build waits for a builder pod that exists but is not ready yet:
// starting, or being replaced by an install or an upgrade; builderPoll is how often it looks.
var builderWait, builderPoll = 2 * time.Minute, time.Second

// awaitBuilder returns once ready (a look for a ready builder pod) finds one. While builder pods
// exist and none is ready it waits, up to builderWait, saying so once; when none exists, or the
// wait ends, the error says to install the builder; Ctrl-C ends the wait.
func awaitBuilder(ctx context.Context, rep Reporter, ns string, ready func(context.Context) error) error {
	deadline := time.Now().Add(builderWait)
	said := false
	for {
		err := ready(ctx)
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return context.Cause(ctx)
		case !errors.Is(err, forward.ErrNoReadyPod) || errors.Is(err, forward.ErrNoPodMatches) || !time.Now().Before(deadline):
			return fmt.Errorf("the image builder in namespace %s is not ready (%w): `ergomake install` installs it", ns, err)
		case !said:
			rep.Logf("Waiting for the image builder in namespace %s: %v", ns, err)
			said = true
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(builderPoll):
		}
	}
}

// buildWith plans the builds of services for reg and the platforms, and runs them on the builder
// dial reaches; installNS is the namespace of ergomake's install (its registry), for messages.
func buildWith(ctx context.Context, rep Reporter, opts BuildOptions, services []string, reg imagebuild.Registry,
	platforms []string, dial func(ctx context.Context) (net.Conn, error), installNS string) (*Built, error) {
	if opts.Registry != "" && reg.Insecure {
		host, _ := imagebuild.RegistryHost(reg.Push)
		rep.Warnf("--registry %s: images are pushed over plain HTTP; the nodes pull them from %s only if their container runtime is configured to use plain HTTP there (containerd: a hosts.toml with server = \"http://%s\")", opts.Registry, host, host)
	}
	plans, err := imagebuild.Plan(opts.Project, services, reg, imagebuild.PlanOptions{Platforms: platforms})
	if err != nil {
		return nil, err
	}
	for _, p := range plans {
		for _, w := range p.Warnings {
			rep.Warnf("%s", w.String())
		}
	}
	built := &Built{Specs: map[string]v1alpha1.BuildSpec{}}
	if opts.Registry != "" {
		if built.PullSecret, err = pullSecret(reg.Push, opts.DockerConfig); err != nil { // reg.Push: the reference without its scheme
			return nil, err
		}
	}

	title := fmt.Sprintf("Building %s", plural(len(plans), "image"))
	out, tty, end := buildDisplay(rep, title)
	results, err := imagebuild.Build(ctx, plans, imagebuild.Options{
		Dial: dial, Registry: reg, NoCache: opts.NoCache, Force: opts.Force, NoBuild: opts.NoBuild, Out: out, TTY: tty,
		DockerConfig: opts.DockerConfig,
	})
	end(err == nil)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(err, imagebuild.ErrRegistryFull) && opts.Registry == "" && installNS != "" {
			err = fmt.Errorf("%w\n(the cluster's registry keeps its images on the volume of PersistentVolumeClaim %s/ergomake-registry: a cluster admin can grow it where its StorageClass allows expansion)", err, installNS)
		}
		return nil, err
	}
	byService := map[string]imagebuild.Planned{}
	for _, p := range plans {
		byService[p.Service] = p
	}
	for _, r := range results {
		p := byService[r.Service]
		built.Specs[r.Service] = v1alpha1.BuildSpec{Key: p.Key, Image: p.PullRef, Digest: r.Digest}
	}
	built.Results = results
	return built, nil
}

// build is Up's build step: after connect, before anything is applied. A failed build applies
// nothing; Ctrl-C cancels the builds, applies nothing and ends the session with ErrCancel.
func (s *session) build(ctx context.Context, res *translate.Result) error {
	if s.opts.Build.Project == nil {
		return nil
	}
	built, err := s.be.build(ctx, s.rep, s.opts.Build, s.ns)
	if err != nil {
		if ctx.Err() != nil {
			s.rep.Noticef("Interrupted: the build was cancelled and nothing was applied.")
			return ErrCancel
		}
		return err
	}
	built.Apply(res)
	return nil
}

// buildDisplay is where the builder's progress goes: the Reporter's own display when it has
// one, else a line at a time through Logf. end follows the display.
func buildDisplay(rep Reporter, title string) (out io.Writer, tty bool, end func(ok bool)) {
	if br, ok := rep.(BuildReporter); ok {
		out, tty = br.BuildStart(title)
		return out, tty, br.BuildEnd
	}
	rep.Logf("%s", title)
	lw := NewLineWriter(func(line string) { rep.Logf("%s", line) })
	return lw, false, func(bool) { lw.Flush() }
}

// NewLineWriter returns a writer that calls emit for each complete line written to it (without
// its line ending); Flush emits what is left.
func NewLineWriter(emit func(line string)) *LineWriter {
	return &LineWriter{emit: emit}
}

// LineWriter is NewLineWriter's writer. It is safe for concurrent use.
type LineWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	emit func(string)
}

func (w *LineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	for {
		i := bytes.IndexByte(w.buf.Bytes(), '\n')
		if i < 0 {
			return len(p), nil
		}
		line := strings.TrimRight(string(w.buf.Next(i+1)), "\r\n")
		w.emit(line)
	}
}

// Flush emits the last, unfinished line.
func (w *LineWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.buf.Len() > 0 {
		w.emit(w.buf.String())
		w.buf.Reset()
	}
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// The registry a cluster publishes for local development (KEP-1755: kind, k3d, minikube...).
const (
	localRegistryNamespace = "kube-public"
	localRegistryConfigMap = "local-registry-hosting"
	localRegistryKey       = "localRegistryHosting.v1"
)

// registryFor is where images go: the user's registry (--registry), else the cluster's registry
// (ergomake install's settings), else the one the cluster publishes (KEP-1755).
func registryFor(ctx context.Context, cs kubernetes.Interface, settings clustersettings.Settings, user string) (imagebuild.Registry, error) {
	if user != "" {
		return userRegistry(user)
	}
	if settings.RegistryPush != "" {
		pull := settings.RegistryPull
		if pull == "" {
			pull = settings.RegistryPush
		}
		return imagebuild.Registry{Push: settings.RegistryPush, Pull: pull, Insecure: true}, nil
	}
	if reg, ok := localRegistry(ctx, cs); ok {
		return reg, nil
	}
	return imagebuild.Registry{}, errors.New("no registry for built images: `ergomake install` installs one in the cluster, or name yours with --registry")
}

// userRegistry is the registry --registry names. http://: a registry that serves plain HTTP (the
// builder pushes over HTTP; the nodes' container runtime must be configured to pull from it so).
func userRegistry(user string) (imagebuild.Registry, error) {
	plain := strings.HasPrefix(user, "http://")
	ref := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(user, "https://"), "http://"), "/")
	if ref == "" || strings.ContainsAny(ref, " @") || strings.Contains(ref, "//") {
		return imagebuild.Registry{}, fmt.Errorf("--registry %q is not a registry reference ([http://]host[:port][/path])", user)
	}
	return imagebuild.Registry{Push: ref, Pull: ref, Insecure: plain}, nil
}

// localRegistry reads the registry the cluster publishes (KEP-1755), if it does.
func localRegistry(ctx context.Context, cs kubernetes.Interface) (imagebuild.Registry, bool) {
	cm, err := cs.CoreV1().ConfigMaps(localRegistryNamespace).Get(ctx, localRegistryConfigMap, metav1.GetOptions{})
	if err != nil {
		return imagebuild.Registry{}, false
	}
	var hosting struct {
		Host                     string `json:"host"`
		HostFromContainerRuntime string `json:"hostFromContainerRuntime"`
		HostFromClusterNetwork   string `json:"hostFromClusterNetwork"`
	}
	if err := yaml.Unmarshal([]byte(cm.Data[localRegistryKey]), &hosting); err != nil {
		return imagebuild.Registry{}, false
	}
	push := firstNonEmpty(hosting.HostFromClusterNetwork, hosting.Host)
	pull := firstNonEmpty(hosting.HostFromContainerRuntime, hosting.Host)
	if push == "" || pull == "" {
		return imagebuild.Registry{}, false
	}
	// These registries serve plain HTTP, which container runtimes accept for them by their
	// configuration (the KEP's contract).
	return imagebuild.Registry{Push: push, Pull: pull, Insecure: true}, true
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// pullSecret is a kubernetes.io/dockerconfigjson Secret holding the user's credentials for the
// registry of ref, from their docker config; nil when they have none (a public registry).
func pullSecret(ref, dockerConfig string) (*corev1.Secret, error) {
	cf, err := imagebuild.LoadDockerConfig(dockerConfig)
	if err != nil {
		return nil, err
	}
	auth, err := imagebuild.UserCredentials(cf, ref)
	if err != nil || auth == nil {
		return nil, err
	}
	host, key := imagebuild.RegistryHost(ref)
	data, err := json.Marshal(map[string]any{"auths": map[string]any{key: auth}})
	if err != nil {
		return nil, err
	}
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: pullSecretName(host)},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: data},
	}, nil
}

// pullSecretName is the Secret name of a registry host's credentials.
func pullSecretName(host string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(host) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	name := "ergomake-pull-" + strings.Trim(b.String(), "-.")
	if len(name) > 253 {
		name = name[:253]
	}
	return strings.TrimRight(name, "-.")
}
