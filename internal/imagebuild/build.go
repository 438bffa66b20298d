package imagebuild

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	controlapi "github.com/moby/buildkit/api/services/control"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	gateway "github.com/moby/buildkit/frontend/gateway/client"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/auth/authprovider"
	"github.com/moby/buildkit/session/secrets/secretsprovider"
	"github.com/moby/buildkit/session/sshforward/sshprovider"
	"github.com/moby/buildkit/util/progress/progressui"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/tonistiigi/fsutil"
	"google.golang.org/grpc"

	"github.com/containerd/platforms"

	"github.com/ergomake/ergomake/internal/forward"
)

// DefaultLargeContext is the context size above which Build warns.
const DefaultLargeContext = 100 << 20

// Options tune Build.
type Options struct {
	// Dial opens one connection to buildkitd (a tunnel to the builder
	// pod's loopback port: forward.PodDialer.DialPod). Required.
	Dial func(ctx context.Context) (net.Conn, error)
	// Registry is where the plans push (the one given to Plan): Insecure
	// pushes over plain HTTP.
	Registry Registry
	// NoCache builds every step again (--no-cache); it implies Force.
	NoCache bool
	// Force builds even when an image with the plan's key exists
	// (--build).
	Force bool
	// NoBuild builds nothing: a plan whose image does not exist is an
	// error (--no-build).
	NoBuild bool
	// Pull always pulls base images again (--pull).
	Pull bool
	// Out receives the one progress display of every build, each line
	// prefixed with its service, and then the warnings. nil: nothing is
	// shown.
	Out io.Writer
	// TTY: Out is a terminal (an *os.File): the live display; else plain
	// lines.
	TTY bool
	// LargeContext is the context size above which a warning names the
	// biggest paths sent. 0: DefaultLargeContext.
	LargeContext int64
	// DockerConfig is the folder of the docker config.json whose
	// credentials the builder may use (pushing to --registry, pulling
	// private base images, cache_from). Empty: docker's default
	// (~/.docker, $DOCKER_CONFIG).
	DockerConfig string
}

// Result is one service's image.
type Result struct {
	Service string
	// Image is where pods pull it: the PullRef's repository at the
	// digest (127.0.0.1:5100/proj/web@sha256:...).
	Image string
	// Digest is the image's (manifest or index) digest.
	Digest string
	// Reused: an image with the plan's key existed; nothing was built.
	Reused bool
	// ContextBytes is what was sent of the build context(s): the files
	// the builder did not have yet, after .dockerignore.
	ContextBytes int64
	// Warnings are said after the display (a large context).
	Warnings []string
}

// BuildError is a failed build: the step that failed and its last lines
// of output.
type BuildError struct {
	Service string
	Step    string // the failing step as the display names it ("[web 3/5] RUN make"); may be empty
	Output  string // its last lines of output
	Err     error
}

func (e *BuildError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "service %q: build failed", e.Service)
	if e.Step != "" {
		fmt.Fprintf(&b, " at %s", e.Step)
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	if e.Output != "" {
		b.WriteString("\n" + e.Output)
	}
	return b.String()
}

func (e *BuildError) Unwrap() error { return e.Err }

// ErrRegistryFull is wrapped by the error of a push the registry could not store for want of
// space (a *RegistryFullError).
var ErrRegistryFull = errors.New("the registry is full")

// RegistryFullError is a push that failed because the registry's storage is full.
type RegistryFullError struct {
	Registry string // where the push went (Registry.Push)
	Err      error  // the builder's error
}

func (e *RegistryFullError) Error() string {
	return fmt.Sprintf("the registry %s is full: it ran out of space while storing the image (%v). "+
		"Make room there (delete images you no longer need, or give its storage more space), or push to another registry with --registry",
		e.Registry, e.Err)
}

func (e *RegistryFullError) Unwrap() error        { return e.Err }
func (e *RegistryFullError) Is(target error) bool { return target == ErrRegistryFull }

// registryFull tells a push the registry could not store: its storage said so (ENOSPC, HTTP 507),
// or an upload it had accepted part of was lost (the builder retries a blob upload the registry
// failed to write, and the registry, having kept only part of it, refuses the retry's range).
// Only a push's error counts: the builder's own disk filling up is not the registry's.
func registryFull(err error) bool {
	msg := err.Error()
	if !strings.Contains(msg, "failed to push") {
		return false
	}
	for _, sign := range []string{"no space left on device", "insufficient storage", "507 ", "invalid content range", "upload resumed at wrong offset"} {
		if strings.Contains(strings.ToLower(msg), sign) {
			return true
		}
	}
	return false
}

// ErrBuilderUnreachable is wrapped when buildkitd cannot be reached.
var ErrBuilderUnreachable = errors.New("cannot reach the builder")

// Build runs the plans (from Plan, in its order) on buildkitd: each
// service whose key's image already exists in the registry is reused
// unless Force or NoCache; the others are built, in parallel, a service
// after those its additional_contexts name, and pushed. It returns one
// Result per plan, in the plans' order, or the first error: a
// *BuildError for a failed build (the others are cancelled), ctx's error
// when ctx ended (the builds are cancelled on the builder).
func Build(ctx context.Context, plans []Planned, opts Options) ([]Result, error) {
	if opts.Dial == nil {
		return nil, errors.New("imagebuild: no way to reach the builder (Options.Dial)")
	}
	if len(plans) == 0 {
		return nil, nil
	}
	// Reaching the builder: the first connection may be slow to come (a
	// loaded API server), so gRPC may dial a few times; no ready builder
	// pod, or three failed dials, is the answer.
	var (
		lastDialErr atomic.Pointer[error]
		dialFails   atomic.Int32
		giveUp      atomic.Pointer[context.CancelFunc]
	)
	c, err := client.New(ctx, "tcp://buildkitd:1234", client.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
		conn, err := opts.Dial(ctx)
		if err != nil {
			lastDialErr.Store(&err)
			if (dialFails.Add(1) >= 3 || errors.Is(err, forward.ErrNoReadyPod)) && giveUp.Load() != nil {
				(*giveUp.Load())()
			}
		}
		return conn, err
	}))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBuilderUnreachable, err)
	}
	defer c.Close()
	ictx, icancel := context.WithTimeout(ctx, 2*time.Minute)
	giveUp.Store(&icancel)
	_, err = c.ControlClient().Info(ictx, &controlapi.InfoRequest{}, grpc.WaitForReady(true))
	giveUp.Store(nil)
	icancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		if p := lastDialErr.Load(); p != nil {
			err = *p
		}
		return nil, fmt.Errorf("%w: %v", ErrBuilderUnreachable, err)
	}

	b := &builder{c: c, opts: opts, plans: plans, results: make([]Result, len(plans))}
	cf, err := LoadDockerConfig(opts.DockerConfig)
	if err != nil {
		return nil, fmt.Errorf("imagebuild: %w", err)
	}
	b.auth = authprovider.NewDockerAuthProvider(authprovider.DockerAuthProviderConfig{AuthConfigProvider: authprovider.LoadAuthConfig(cf)})

	// The one display.
	b.display = make(chan *client.SolveStatus, 64)
	displayed := make(chan struct{})
	go func() {
		defer close(displayed)
		b.runDisplay()
	}()
	defer func() {
		close(b.display)
		<-displayed
	}()

	// Reuse: the images that exist already.
	existing := map[string]digest.Digest{}
	if !opts.Force && !opts.NoCache {
		if existing, err = b.existing(ctx); err != nil {
			return nil, err
		}
	}

	parent := ctx
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	done := make(map[string]chan struct{}, len(plans))
	for _, p := range plans {
		done[p.Service] = make(chan struct{})
	}
	var wg sync.WaitGroup
	var firstErr atomic.Pointer[error]
	fail := func(err error) {
		if firstErr.CompareAndSwap(nil, &err) {
			cancel(err)
		}
	}
	for i := range plans {
		p := &plans[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(done[p.Service])
			for _, dep := range p.After {
				ch, ok := done[dep]
				if !ok {
					fail(fmt.Errorf("imagebuild: service %q needs %q, which is not among the plans", p.Service, dep))
					return
				}
				select {
				case <-ch:
				case <-ctx.Done():
					return
				}
			}
			if ctx.Err() != nil {
				return
			}
			if d, ok := existing[p.Service]; ok {
				b.results[i] = Result{Service: p.Service, Image: repoOf(p.PullRef) + "@" + d.String(), Digest: d.String(), Reused: true}
				b.note(p.Service, fmt.Sprintf("unchanged: reusing %s", p.PullRef))
				return
			}
			if opts.NoBuild {
				fail(fmt.Errorf("service %q: its image %s was never built, and --no-build builds nothing: run `ergomake build %s`", p.Service, p.PushRef, p.Service))
				return
			}
			r, err := b.build(ctx, i)
			if err != nil {
				fail(err)
				return
			}
			b.results[i] = r
		}()
	}
	wg.Wait()
	if parent.Err() != nil {
		return nil, context.Cause(parent)
	}
	if p := firstErr.Load(); p != nil {
		return nil, *p
	}
	return b.results, nil
}

type builder struct {
	c       *client.Client
	opts    Options
	plans   []Planned
	results []Result
	auth    session.Attachable

	display chan *client.SolveStatus
	mu      sync.Mutex
	warns   []string
}

// repoOf strips the tag from a reference.
func repoOf(ref string) string {
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		return ref[:i]
	}
	return ref
}

// existing asks the builder, through the gateway's image resolution (its
// registry configuration and the user's credentials, so any registry
// works), which plans' images exist already, and their digests.
func (b *builder) existing(ctx context.Context) (map[string]digest.Digest, error) {
	found := map[string]digest.Digest{}
	var mu sync.Mutex
	_, err := b.c.Build(ctx, client.SolveOpt{Session: []session.Attachable{b.auth}}, "ergomake", func(ctx context.Context, gc gateway.Client) (*gateway.Result, error) {
		var wg sync.WaitGroup
		for _, p := range b.plans {
			wg.Add(1)
			go func() {
				defer wg.Done()
				opt := sourceresolver.Opt{LogName: "", ImageOpt: &sourceresolver.ResolveImageOpt{ResolveMode: "pull"}}
				if len(p.Platforms) > 0 {
					if pf, err := platforms.Parse(p.Platforms[0]); err == nil {
						opt.ImageOpt.Platform = &ocispecs.Platform{OS: pf.OS, Architecture: pf.Architecture, Variant: pf.Variant}
					}
				}
				_, d, _, err := gc.ResolveImageConfig(ctx, p.PushRef, opt)
				if err == nil && d != "" {
					mu.Lock()
					found[p.Service] = d
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		return gateway.NewResult(), nil
	}, nil)
	if err != nil {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		// Not knowing is no reason to fail: everything is built.
		b.warn(fmt.Sprintf("could not check the registry for existing images (%v); building everything", err))
		return map[string]digest.Digest{}, nil
	}
	return found, nil
}

func (b *builder) warn(msg string) {
	b.mu.Lock()
	b.warns = append(b.warns, msg)
	b.mu.Unlock()
}

// build runs one plan's solve and push.
func (b *builder) build(ctx context.Context, i int) (Result, error) {
	p := &b.plans[i]
	res := Result{Service: p.Service}
	var sent atomic.Int64
	cfs, err := newCountingFS(p.ContextDir, &sent)
	if err != nil {
		return res, &BuildError{Service: p.Service, Err: fmt.Errorf("the context folder: %w", err)}
	}
	mounts := map[string]fsutil.FS{"context": cfs}
	dfDir := p.spec.dockerfileDir
	if p.spec.inline != "" {
		tmp, err := os.MkdirTemp("", "ergomake-dockerfile-")
		if err != nil {
			return res, err
		}
		defer os.RemoveAll(tmp)
		if err := os.WriteFile(filepath.Join(tmp, p.spec.dockerfileName), []byte(p.spec.inline), 0o644); err != nil {
			return res, err
		}
		dfDir = tmp
	}
	dfs, err := fsutil.NewFS(dfDir)
	if err != nil {
		return res, &BuildError{Service: p.Service, Err: fmt.Errorf("the Dockerfile's folder: %w", err)}
	}
	mounts["dockerfile"] = dfs
	var others []*countingFS
	for name, dir := range p.spec.locals {
		fs, err := newCountingFS(dir, &sent)
		if err != nil {
			return res, &BuildError{Service: p.Service, Err: fmt.Errorf("additional context %s: %w", dir, err)}
		}
		mounts[name] = fs
		others = append(others, fs)
	}

	attrs := maps.Clone(p.spec.attrs)
	if b.opts.NoCache {
		attrs["no-cache"] = ""
	}
	if b.opts.Pull {
		attrs["image-resolve-mode"] = "pull"
	}
	for name, dep := range p.spec.serviceCtx {
		var d *Result
		for j := range b.plans {
			if b.plans[j].Service == dep {
				d = &b.results[j]
				if d.Digest == "" {
					return res, &BuildError{Service: p.Service, Err: fmt.Errorf("service %q was not built", dep)}
				}
				attrs["context:"+name] = "docker-image://" + repoOf(b.plans[j].PushRef) + "@" + d.Digest
			}
		}
	}

	attachables := []session.Attachable{b.auth}
	if len(p.spec.secrets) > 0 {
		store, err := secretsprovider.NewStore(p.spec.secrets)
		if err != nil {
			return res, &BuildError{Service: p.Service, Err: fmt.Errorf("build secrets: %w", err)}
		}
		attachables = append(attachables, secretsprovider.NewSecretProvider(store))
	}
	if len(p.spec.ssh) > 0 {
		sp, err := sshprovider.NewSSHAgentProvider(p.spec.ssh)
		if err != nil {
			return res, &BuildError{Service: p.Service, Err: fmt.Errorf("build ssh: %w", err)}
		}
		attachables = append(attachables, sp)
	}

	names := append([]string{p.PushRef}, p.Names...)
	exp := client.ExportEntry{Type: client.ExporterImage, Attrs: map[string]string{
		"name": strings.Join(names, ","),
		"push": "true",
	}}
	if b.opts.Registry.Insecure {
		exp.Attrs["registry.insecure"] = "true"
	}
	solveOpt := client.SolveOpt{
		// The builder keeps the last copy of each local source under the
		// session's shared key: one per context folder, so that a build
		// sends only what changed since the last one from that folder.
		SharedKey:           digest.FromString(p.ContextDir).Encoded()[:20],
		Frontend:            "dockerfile.v0",
		FrontendAttrs:       attrs,
		LocalMounts:         mounts,
		Exports:             []client.ExportEntry{exp},
		CacheImports:        p.spec.cacheFrom,
		CacheExports:        p.spec.cacheTo,
		Session:             attachables,
		AllowedEntitlements: p.spec.entitlement,
	}

	tr := newTracker(p.Service)
	ch := make(chan *client.SolveStatus)
	relayed := make(chan struct{})
	go func() {
		defer close(relayed)
		for s := range ch {
			tr.observe(s)
			b.display <- s
		}
	}()
	resp, err := b.c.Solve(ctx, nil, solveOpt, ch)
	<-relayed
	res.ContextBytes = sent.Load()
	b.note(p.Service, fmt.Sprintf("build context: %s sent", humanBytes(res.ContextBytes)))
	limit := b.opts.LargeContext
	if limit <= 0 {
		limit = DefaultLargeContext
	}
	if res.ContextBytes > limit {
		var parts []string
		for _, ps := range append(cfs.biggest(5), biggestOf(others)...) {
			parts = append(parts, fmt.Sprintf("%s (%s)", ps.path, humanBytes(ps.size)))
		}
		w := fmt.Sprintf("service %q: the build context is large: %s sent; biggest: %s. Leave out what the image does not need with a .dockerignore in %s",
			p.Service, humanBytes(res.ContextBytes), strings.Join(parts, ", "), p.ContextDir)
		res.Warnings = append(res.Warnings, w)
		b.warn(w)
	}
	if err != nil {
		if ctx.Err() != nil {
			return res, context.Cause(ctx)
		}
		step, out := tr.failure()
		err = cleanErr(err)
		if registryFull(err) {
			err = &RegistryFullError{Registry: b.opts.Registry.Push, Err: err}
		}
		return res, &BuildError{Service: p.Service, Step: step, Output: out, Err: err}
	}
	d := resp.ExporterResponse["containerimage.digest"]
	if d == "" {
		return res, &BuildError{Service: p.Service, Err: errors.New("the builder returned no image digest")}
	}
	res.Digest = d
	res.Image = repoOf(p.PullRef) + "@" + d
	return res, nil
}

func biggestOf(fss []*countingFS) []pathSize {
	var out []pathSize
	for _, f := range fss {
		out = append(out, f.biggest(2)...)
	}
	return out
}

// cleanErr drops the gRPC wrapping of a builder error, keeping its message.
func cleanErr(err error) error {
	msg := err.Error()
	for _, p := range []string{"rpc error: code = Unknown desc = ", "failed to solve: "} {
		msg = strings.ReplaceAll(msg, p, "")
	}
	return &cleanError{msg: msg, err: err}
}

type cleanError struct {
	msg string
	err error
}

func (e *cleanError) Error() string { return e.msg }
func (e *cleanError) Unwrap() error { return e.err }

// runDisplay shows every build's progress in one display, then the
// warnings.
func (b *builder) runDisplay() {
	out := b.opts.Out
	if out == nil {
		for range b.display {
		}
		return
	}
	mode := progressui.PlainMode
	if b.opts.TTY {
		mode = progressui.TtyMode
	}
	d, err := progressui.NewDisplay(out, mode)
	if err != nil {
		d, _ = progressui.NewDisplay(out, progressui.PlainMode)
	}
	// The display ends when the channel is closed; its context is not
	// the builds': a cancelled build still shows how it ended.
	_, _ = d.UpdateFrom(context.Background(), b.display)
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, w := range b.warns {
		fmt.Fprintf(out, "WARNING: %s\n", w)
	}
}

// note shows one finished line for service in the display.
func (b *builder) note(service, msg string) {
	now := timeNow()
	v := &client.Vertex{
		Digest:    digest.FromString("ergomake-note/" + service + "/" + msg + now.String()),
		Name:      "[" + service + "] " + msg,
		Started:   &now,
		Completed: &now,
	}
	b.display <- &client.SolveStatus{Vertexes: []*client.Vertex{v}}
}
