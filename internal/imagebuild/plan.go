package imagebuild

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/distribution/reference"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/session/secrets/secretsprovider"
	"github.com/moby/buildkit/session/sshforward/sshprovider"
	"github.com/moby/patternmatcher/ignorefile"

	"github.com/ergomake/ergomake/internal/compose"
)

// Registry is where built images go.
type Registry struct {
	// Push is where the builder pushes: host[:port][/path-prefix]
	// ("ergomake-registry.ergomake-system.svc:5000").
	Push string
	// Pull is the same registry as the nodes pull from it
	// ("127.0.0.1:5100"). Empty: Push.
	Pull string
	// Insecure: the builder pushes over plain HTTP (the in-cluster
	// registry).
	Insecure bool
}

func (r Registry) pull() string {
	if r.Pull != "" {
		return r.Pull
	}
	return r.Push
}

// PlanOptions tune Plan.
type PlanOptions struct {
	// Platforms are the target platforms of a service that names none (in
	// build.platforms or platform): the nodes' ("linux/amd64"), so that an
	// arm64 laptop builds for amd64 nodes. Empty: the builder's own.
	Platforms []string
	// Lenient: a missing context folder or Dockerfile is a Warning, not an
	// error (ergomake render of a project whose sources are elsewhere);
	// the key then covers the compose configuration only.
	Lenient bool
}

// Warning is a build key that is ignored or only partly honoured.
type Warning struct {
	File    string // compose file, when known
	Service string
	Key     string // "build.network"
	Message string
}

func (w Warning) String() string {
	var b strings.Builder
	if w.File != "" {
		b.WriteString(w.File + ": ")
	}
	fmt.Fprintf(&b, "service %q: %s: %s", w.Service, w.Key, w.Message)
	return b.String()
}

// Planned is one service's build, ready to run: what Plan decided.
type Planned struct {
	Service string
	// Key is the content key: a digest of everything the image is made of
	// (the context after .dockerignore, the Dockerfile, args, target,
	// platforms, labels, additional contexts with the keys of the services
	// they name, ...). An unchanged key means an unchanged image.
	Key string
	// PushRef is <Registry.Push>/<project>/<service>:<key>, PullRef the
	// same image in Registry.Pull.
	PushRef, PullRef string
	// Names are further names the image is pushed as (image:, tags: that
	// are in the registry), as the builder sees them.
	Names []string
	// After are the services whose images this build uses
	// (additional_contexts "service:NAME"): they are built first.
	After []string
	// Platforms is the target platforms ("linux/amd64"); empty: the
	// builder's.
	Platforms []string
	// ContextDir is the context folder.
	ContextDir string
	// Warnings are keys that are ignored or only partly honoured.
	Warnings []Warning

	spec spec
}

// spec is how a Planned build runs.
type spec struct {
	dockerfileDir  string // the folder of the Dockerfile ("" with inline)
	dockerfileName string // its name in that folder
	inline         string // dockerfile_inline

	attrs       map[string]string // frontend attributes
	locals      map[string]string // additional local contexts: name -> folder
	serviceCtx  map[string]string // additional contexts: name -> service
	cacheFrom   []client.CacheOptionsEntry
	cacheTo     []client.CacheOptionsEntry
	secrets     []secretsprovider.Source
	ssh         []sshprovider.AgentConfig
	entitlement []string
}

// Plan validates the builds of services (all the project's services that
// have build: when services is empty; the services their
// additional_contexts "service:NAME" name are added) and computes their
// keys and where their images go. It needs no cluster. An error is a
// *compose.Error naming the file, service and key. The result is in
// build order: a service comes after those it needs.
func Plan(p *types.Project, services []string, reg Registry, opts PlanOptions) ([]Planned, error) {
	if p == nil {
		return nil, errors.New("imagebuild: no project")
	}
	pl := &planner{p: p, reg: reg, opts: opts, loc: compose.NewLocator(p.ComposeFiles), done: map[string]*Planned{}, busy: map[string]bool{}}
	if reg.Push == "" {
		return nil, errors.New("imagebuild: no registry to push to")
	}
	if len(services) == 0 {
		for name, s := range p.Services {
			if s.Build != nil {
				services = append(services, name)
			}
		}
		sort.Strings(services)
	}
	for _, name := range services {
		s, ok := p.Services[name]
		if !ok {
			return nil, &compose.Error{Msg: fmt.Sprintf("no such service: %q", name)}
		}
		if s.Build == nil {
			return nil, pl.errorf(name, "build", "the service has no build section")
		}
		if _, err := pl.plan(name); err != nil {
			return nil, err
		}
	}
	return pl.order, nil
}

type planner struct {
	p     *types.Project
	reg   Registry
	opts  PlanOptions
	loc   *compose.Locator
	done  map[string]*Planned
	busy  map[string]bool // being planned: a service: cycle
	order []Planned
}

func (pl *planner) errorf(service, key, format string, args ...any) error {
	f, line := pl.loc.Find(service, key)
	if f == "" && len(pl.p.ComposeFiles) > 0 {
		f = pl.p.ComposeFiles[0]
	}
	return &compose.Error{File: f, Line: line, Service: service, Key: key, Msg: fmt.Sprintf(format, args...)}
}

func (pl *planner) warn(pb *Planned, key, format string, args ...any) {
	f, _ := pl.loc.Find(pb.Service, key)
	if f == "" && len(pl.p.ComposeFiles) > 0 {
		f = pl.p.ComposeFiles[0]
	}
	pb.Warnings = append(pb.Warnings, Warning{File: f, Service: pb.Service, Key: key, Message: fmt.Sprintf(format, args...)})
}

// keyInput is everything the content key covers, hashed as JSON.
type keyInput struct {
	Version    int               `json:"v"`
	Context    string            `json:"context"`
	Dockerfile string            `json:"dockerfile"`
	DockerName string            `json:"dockerfileName"`
	Ignore     string            `json:"ignore"`
	Args       map[string]string `json:"args,omitempty"`
	Target     string            `json:"target,omitempty"`
	Platforms  []string          `json:"platforms,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
	Network    string            `json:"network,omitempty"`
	ShmSize    int64             `json:"shm,omitempty"`
	Hosts      string            `json:"hosts,omitempty"`
	Ulimits    string            `json:"ulimits,omitempty"`
	Contexts   map[string]string `json:"contexts,omitempty"`
	Secrets    []string          `json:"secrets,omitempty"`
	SSH        []string          `json:"ssh,omitempty"`
	Names      []string          `json:"names,omitempty"`
}

func (pl *planner) plan(name string) (*Planned, error) {
	if pb, ok := pl.done[name]; ok {
		return pb, nil
	}
	if pl.busy[name] {
		return nil, pl.errorf(name, "build.additional_contexts", "services name each other in additional_contexts (a cycle through %q)", name)
	}
	pl.busy[name] = true
	defer delete(pl.busy, name)

	s := pl.p.Services[name]
	b := s.Build
	pb := &Planned{Service: name, spec: spec{attrs: map[string]string{}, locals: map[string]string{}, serviceCtx: map[string]string{}}}
	in := keyInput{Version: 1}

	// context
	ctxDir := b.Context
	if ctxDir == "" {
		ctxDir = pl.p.WorkingDir
	}
	if isRemote(ctxDir) {
		return nil, pl.errorf(name, "build.context", "%q is a remote (git or URL) context: ergomake builds from a folder on this machine; clone it and point build.context at the folder", ctxDir)
	}
	if !filepath.IsAbs(ctxDir) {
		ctxDir = filepath.Join(pl.p.WorkingDir, ctxDir)
	}
	missing := false // Lenient: the context or Dockerfile is missing
	if st, err := os.Stat(ctxDir); err != nil {
		if os.IsNotExist(err) && pl.opts.Lenient {
			pl.warn(pb, "build.context", "the context folder %s does not exist: the build will fail", ctxDir)
			missing = true
		} else if os.IsNotExist(err) {
			return nil, pl.errorf(name, "build.context", "the context folder %s does not exist", ctxDir)
		} else {
			return nil, pl.errorf(name, "build.context", "%v", err)
		}
	} else if !st.IsDir() {
		return nil, pl.errorf(name, "build.context", "the context %s is not a folder", ctxDir)
	}
	pb.ContextDir = ctxDir

	// Dockerfile
	var dockerfile []byte
	switch {
	case b.DockerfileInline != "" && b.Dockerfile != "" && b.Dockerfile != "Dockerfile":
		return nil, pl.errorf(name, "build.dockerfile_inline", "dockerfile and dockerfile_inline cannot both be set")
	case b.DockerfileInline != "":
		pb.spec.inline = b.DockerfileInline
		pb.spec.dockerfileName = "Dockerfile"
		dockerfile = []byte(b.DockerfileInline)
	default:
		df := b.Dockerfile
		if df == "" {
			df = "Dockerfile"
		}
		if !filepath.IsAbs(df) {
			df = filepath.Join(ctxDir, df)
		}
		var err error
		if dockerfile, err = os.ReadFile(df); err != nil {
			if os.IsNotExist(err) && pl.opts.Lenient {
				if !missing {
					pl.warn(pb, "build.dockerfile", "the Dockerfile %s does not exist: the build will fail", df)
				}
				missing = true
			} else if os.IsNotExist(err) {
				return nil, pl.errorf(name, "build.dockerfile", "the Dockerfile %s does not exist", df)
			} else {
				return nil, pl.errorf(name, "build.dockerfile", "%v", err)
			}
		}
		pb.spec.dockerfileDir, pb.spec.dockerfileName = filepath.Dir(df), filepath.Base(df)
	}
	var stages []string
	var err error
	if !missing {
		stages, err = parseDockerfile(dockerfile)
	}
	if err != nil {
		key := "build.dockerfile"
		if pb.spec.inline != "" {
			key = "build.dockerfile_inline"
		}
		return nil, pl.errorf(name, key, "%v", err)
	}
	in.Dockerfile, in.DockerName = string(dockerfile), pb.spec.dockerfileName
	pb.spec.attrs["filename"] = pb.spec.dockerfileName

	// .dockerignore: <Dockerfile>.dockerignore next to the Dockerfile wins
	// over the context's, as in the Dockerfile frontend.
	ownIgnore := pb.spec.dockerfileName
	if pb.spec.inline != "" {
		ownIgnore = ""
	}
	if !missing {
		ignore, err := readIgnore(ctxDir, pb.spec.dockerfileDir, ownIgnore)
		if err != nil {
			return nil, pl.errorf(name, "build.context", "%v", err)
		}
		in.Ignore = strings.Join(ignore, "\n")
		if in.Context, err = treeDigest(ctxDir, ignore); err != nil {
			return nil, pl.errorf(name, "build.context", "reading the context: %v", err)
		}
	}

	// target
	if b.Target != "" {
		if !missing && !slices.Contains(stages, strings.ToLower(b.Target)) {
			return nil, pl.errorf(name, "build.target", "the Dockerfile has no stage %q (stages: %s)", b.Target, strings.Join(stages, ", "))
		}
		pb.spec.attrs["target"] = b.Target
		in.Target = b.Target
	}

	// args: compose-go interpolated them; an arg without a value is
	// taken from the environment when set there, else left out (as
	// docker compose does).
	if len(b.Args) > 0 {
		in.Args = map[string]string{}
		for k, v := range b.Args {
			val := ""
			if v != nil {
				val = *v
			} else if e, ok := pl.p.Environment[k]; ok {
				val = e
			} else {
				continue
			}
			pb.spec.attrs["build-arg:"+k] = val
			in.Args[k] = val
		}
	}

	// labels
	if len(b.Labels) > 0 {
		in.Labels = map[string]string{}
		for k, v := range b.Labels {
			pb.spec.attrs["label:"+k] = v
			in.Labels[k] = v
		}
	}

	// platforms
	switch {
	case len(b.Platforms) > 0:
		pb.Platforms = append([]string(nil), b.Platforms...)
		if s.Platform != "" && !slices.Contains(pb.Platforms, s.Platform) {
			return nil, pl.errorf(name, "build.platforms", "the service's platform %q is not among build.platforms", s.Platform)
		}
	case s.Platform != "":
		pb.Platforms = []string{s.Platform}
	default:
		pb.Platforms = append([]string(nil), pl.opts.Platforms...)
	}
	for _, pf := range pb.Platforms {
		if !validPlatform(pf) {
			return nil, pl.errorf(name, "build.platforms", "%q is not a platform (os/arch[/variant], e.g. linux/amd64)", pf)
		}
	}
	if len(pb.Platforms) > 0 {
		pb.spec.attrs["platform"] = strings.Join(pb.Platforms, ",")
		in.Platforms = pb.Platforms
	}

	// network
	switch b.Network {
	case "", "default":
	case "none":
		pb.spec.attrs["force-network-mode"] = "none"
		in.Network = "none"
	case "host":
		pb.spec.attrs["force-network-mode"] = "host"
		pb.spec.entitlement = append(pb.spec.entitlement, "network.host")
		in.Network = "host"
		pl.warn(pb, "build.network", "RUN steps use the builder pod's network, not this machine's")
	default:
		pl.warn(pb, "build.network", "ignored: RUN steps cannot join the compose network %q in the cluster's builder; they use the default network", b.Network)
	}

	// shm_size
	if b.ShmSize > 0 {
		pb.spec.attrs["shm-size"] = strconv.FormatInt(int64(b.ShmSize), 10)
		in.ShmSize = int64(b.ShmSize)
	}

	// extra_hosts
	if len(b.ExtraHosts) > 0 {
		var hosts []string
		for h, ips := range b.ExtraHosts {
			for _, ip := range ips {
				hosts = append(hosts, h+"="+ip)
			}
		}
		sort.Strings(hosts)
		pb.spec.attrs["add-hosts"] = strings.Join(hosts, ",")
		in.Hosts = pb.spec.attrs["add-hosts"]
	}

	// ulimits
	if len(b.Ulimits) > 0 {
		var ls []string
		for n, u := range b.Ulimits {
			soft, hard := u.Soft, u.Hard
			if u.Single != 0 {
				soft, hard = u.Single, u.Single
			}
			ls = append(ls, fmt.Sprintf("%s=%d:%d", n, soft, hard))
		}
		sort.Strings(ls)
		pb.spec.attrs["ulimit"] = strings.Join(ls, ",")
		in.Ulimits = pb.spec.attrs["ulimit"]
	}

	// no_cache, no_cache_filter, pull
	if b.NoCache {
		pb.spec.attrs["no-cache"] = ""
	} else if len(b.NoCacheFilter) > 0 {
		pb.spec.attrs["no-cache"] = strings.Join(b.NoCacheFilter, ",")
	}
	if b.Pull {
		pb.spec.attrs["image-resolve-mode"] = "pull"
	}

	// cache_from / cache_to
	for i, c := range b.CacheFrom {
		e, err := parseCacheEntry(c)
		if errors.Is(err, errLocalCache) {
			pl.warn(pb, fmt.Sprintf("build.cache_from.%d", i), "ignored: %v", err)
			continue
		}
		if err != nil {
			return nil, pl.errorf(name, fmt.Sprintf("build.cache_from.%d", i), "%v", err)
		}
		pb.spec.cacheFrom = append(pb.spec.cacheFrom, e)
	}
	for i, c := range b.CacheTo {
		e, err := parseCacheEntry(c)
		if errors.Is(err, errLocalCache) {
			pl.warn(pb, fmt.Sprintf("build.cache_to.%d", i), "ignored: %v", err)
			continue
		}
		if err != nil {
			return nil, pl.errorf(name, fmt.Sprintf("build.cache_to.%d", i), "%v", err)
		}
		pb.spec.cacheTo = append(pb.spec.cacheTo, e)
	}

	// additional_contexts
	if len(b.AdditionalContexts) > 0 {
		in.Contexts = map[string]string{}
		names := make([]string, 0, len(b.AdditionalContexts))
		for n := range b.AdditionalContexts {
			names = append(names, n)
		}
		sort.Strings(names)
		for i, n := range names {
			v := b.AdditionalContexts[n]
			key := "build.additional_contexts." + n
			switch {
			case strings.HasPrefix(v, "service:"):
				dep := strings.TrimPrefix(v, "service:")
				ds, ok := pl.p.Services[dep]
				if !ok || ds.Build == nil {
					return nil, pl.errorf(name, key, "%q names service %q, which has no build section", v, dep)
				}
				dp, err := pl.plan(dep)
				if err != nil {
					return nil, err
				}
				pb.spec.serviceCtx[n] = dep
				if !slices.Contains(pb.After, dep) {
					pb.After = append(pb.After, dep)
				}
				in.Contexts[n] = "service:" + dp.Key
			case strings.Contains(v, "://") || strings.HasPrefix(v, "git@") || strings.HasPrefix(v, "target:"):
				if strings.HasPrefix(v, "oci-layout://") {
					return nil, pl.errorf(name, key, "oci-layout contexts are not supported: push the image to a registry and use docker-image://")
				}
				pb.spec.attrs["context:"+n] = v
				in.Contexts[n] = v
			default:
				dir := v
				if !filepath.IsAbs(dir) {
					dir = filepath.Join(ctxDir, dir)
				}
				if st, err := os.Stat(dir); err != nil || !st.IsDir() {
					if pl.opts.Lenient {
						pl.warn(pb, key, "the folder %s does not exist: the build will fail", dir)
						in.Contexts[n] = "missing:" + dir
						continue
					}
					return nil, pl.errorf(name, key, "the folder %s does not exist", dir)
				}
				local := fmt.Sprintf("ctx%d", i)
				pb.spec.locals[local] = dir
				pb.spec.attrs["context:"+n] = "local:" + local
				ign, err := readIgnore(dir, "", "")
				if err != nil {
					return nil, pl.errorf(name, key, "%v", err)
				}
				d, err := treeDigest(dir, ign)
				if err != nil {
					return nil, pl.errorf(name, key, "reading %s: %v", dir, err)
				}
				in.Contexts[n] = "local:" + d
			}
		}
	}

	// secrets: served from this machine through the session
	for i, sc := range b.Secrets {
		key := fmt.Sprintf("build.secrets.%d", i)
		cfg, ok := pl.p.Secrets[sc.Source]
		if !ok {
			return nil, pl.errorf(name, key, "secret %q is not defined in the top-level secrets", sc.Source)
		}
		id := sc.Source
		if sc.Target != "" {
			id = sc.Target
		}
		switch {
		case cfg.File != "":
			f := cfg.File
			if !filepath.IsAbs(f) {
				f = filepath.Join(pl.p.WorkingDir, f)
			}
			if _, err := os.Stat(f); err != nil && pl.opts.Lenient {
				pl.warn(pb, key, "secret %q: the file %s does not exist: the build will fail", sc.Source, f)
			} else if err != nil {
				return nil, pl.errorf(name, key, "secret %q: the file %s does not exist", sc.Source, f)
			}
			pb.spec.secrets = append(pb.spec.secrets, secretsprovider.Source{ID: id, FilePath: f})
		case cfg.Environment != "":
			pb.spec.secrets = append(pb.spec.secrets, secretsprovider.Source{ID: id, Env: cfg.Environment})
		case pl.opts.Lenient:
			pl.warn(pb, key, "secret %q: a build secret comes from a file or an environment variable: the build will fail", sc.Source)
			continue
		default:
			return nil, pl.errorf(name, key, "secret %q: a build secret comes from a file or an environment variable", sc.Source)
		}
		in.Secrets = append(in.Secrets, id)
	}

	// ssh: agents or keys of this machine, through the session; compose-go's order of them is
	// not stable (it comes from a map), and the content key must be
	ssh := slices.Clone(b.SSH)
	slices.SortFunc(ssh, func(a, b types.SSHKey) int { return strings.Compare(a.ID, b.ID) })
	for _, k := range ssh {
		ac := sshprovider.AgentConfig{ID: k.ID}
		if k.Path != "" {
			ac.Paths = []string{k.Path}
		}
		pb.spec.ssh = append(pb.spec.ssh, ac)
		in.SSH = append(in.SSH, k.ID)
	}

	// keys without an equivalent
	if len(b.Entitlements) > 0 {
		pl.warn(pb, "build.entitlements", "ignored: the cluster's builder grants no entitlements")
	}
	if b.Privileged {
		pl.warn(pb, "build.privileged", "ignored: RUN steps are not privileged in the cluster's builder")
	}
	if b.Isolation != "" {
		pl.warn(pb, "build.isolation", "ignored: Linux builds have no isolation modes")
	}
	if b.Provenance != "" || b.SBOM != "" {
		k := "build.provenance"
		if b.Provenance == "" {
			k = "build.sbom"
		}
		pl.warn(pb, k, "ignored: ergomake pushes images without attestations")
	}

	// image: and tags: are pushed too when they are in the registry
	extra := []struct{ key, ref string }{}
	if s.Image != "" {
		extra = append(extra, struct{ key, ref string }{"image", s.Image})
	}
	for i, t := range b.Tags {
		extra = append(extra, struct{ key, ref string }{fmt.Sprintf("build.tags.%d", i), t})
	}
	for _, e := range extra {
		named, err := reference.ParseNormalizedNamed(e.ref)
		if err != nil {
			return nil, pl.errorf(name, e.key, "%q is not an image reference: %v", e.ref, err)
		}
		named = reference.TagNameOnly(named)
		if inRegistry(named.String(), pl.reg.Push) || inRegistry(named.String(), pl.reg.pull()) {
			if inRegistry(named.String(), pl.reg.pull()) && !inRegistry(named.String(), pl.reg.Push) {
				named, _ = reference.ParseNormalizedNamed(strings.TrimSuffix(pl.reg.Push, "/") + strings.TrimPrefix(named.String(), strings.TrimSuffix(pl.reg.pull(), "/")))
			}
			pb.Names = append(pb.Names, named.String())
			in.Names = append(in.Names, named.String())
			continue
		}
		pl.warn(pb, e.key, "the built image is not pushed as %s (not in the registry %s); the service runs %s/%s@<digest>", e.ref, pl.reg.pull(), strings.TrimSuffix(pl.reg.pull(), "/"), repoName(pl.p.Name, name))
	}

	// the key and where the image goes
	raw, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(raw)
	pb.Key = hex.EncodeToString(sum[:])[:32]
	repo := repoName(pl.p.Name, name)
	pb.PushRef = strings.TrimSuffix(pl.reg.Push, "/") + "/" + repo + ":" + pb.Key
	pb.PullRef = strings.TrimSuffix(pl.reg.pull(), "/") + "/" + repo + ":" + pb.Key
	if _, err := reference.ParseNormalizedNamed(pb.PushRef); err != nil {
		return nil, pl.errorf(name, "build", "cannot name the image %s: %v", pb.PushRef, err)
	}

	pl.done[name] = pb
	pl.order = append(pl.order, *pb)
	return pb, nil
}

// repoName is the repository of a service's image: <project>/<service>,
// lower case, characters a registry refuses replaced.
func repoName(project, service string) string {
	clean := func(s string) string {
		s = strings.ToLower(s)
		var b strings.Builder
		for _, r := range s {
			switch {
			case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
				b.WriteRune(r)
			default:
				b.WriteByte('-')
			}
		}
		out := strings.Trim(b.String(), "-_.")
		if out == "" {
			out = "x"
		}
		return out
	}
	if project == "" {
		return clean(service)
	}
	return clean(project) + "/" + clean(service)
}

// inRegistry says whether ref (normalized) is in the registry reg
// (host[:port][/prefix]).
func inRegistry(ref, reg string) bool {
	reg = strings.TrimSuffix(reg, "/")
	return reg != "" && strings.HasPrefix(ref, reg+"/")
}

// isRemote says whether a build context is a git repository or a URL
// rather than a folder.
func isRemote(c string) bool {
	for _, p := range []string{"git://", "git@", "github.com/", "http://", "https://", "ssh://"} {
		if strings.HasPrefix(c, p) {
			return true
		}
	}
	return strings.Contains(c, "://")
}

func validPlatform(p string) bool {
	parts := strings.Split(p, "/")
	if len(parts) < 2 || len(parts) > 3 {
		return false
	}
	for _, x := range parts {
		if x == "" {
			return false
		}
	}
	return true
}

var errLocalCache = errors.New("a local cache is on this machine but the builder runs in the cluster; use type=registry")

// parseCacheEntry reads a cache_from / cache_to entry: "type=registry,ref=X"
// (comma-separated key=value pairs) or a plain image reference.
func parseCacheEntry(s string) (client.CacheOptionsEntry, error) {
	e := client.CacheOptionsEntry{Attrs: map[string]string{}}
	if !strings.Contains(s, "=") {
		if _, err := reference.ParseNormalizedNamed(s); err != nil {
			return e, fmt.Errorf("%q is neither type=...,key=value nor an image reference", s)
		}
		e.Type = "registry"
		e.Attrs["ref"] = s
		return e, nil
	}
	for _, f := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(f), "=")
		if !ok {
			return e, fmt.Errorf("%q: %q is not key=value", s, f)
		}
		if k == "type" {
			e.Type = v
		} else {
			e.Attrs[k] = v
		}
	}
	if e.Type == "" {
		e.Type = "registry"
	}
	switch e.Type {
	case "registry", "inline", "gha", "s3", "azblob":
	case "local":
		return e, fmt.Errorf("%q: %w", s, errLocalCache)
	default:
		return e, fmt.Errorf("%q: unknown cache type %q", s, e.Type)
	}
	return e, nil
}

// parseDockerfile checks the Dockerfile's syntax and returns its stage
// names (lower case).
func parseDockerfile(dt []byte) ([]string, error) {
	res, err := parser.Parse(bytes.NewReader(dt))
	if err != nil {
		return nil, fmt.Errorf("the Dockerfile is not valid: %v", err)
	}
	var stages []string
	for _, n := range res.AST.Children {
		if !strings.EqualFold(n.Value, "from") {
			continue
		}
		var words []string
		for c := n.Next; c != nil; c = c.Next {
			words = append(words, c.Value)
		}
		if len(words) == 3 && strings.EqualFold(words[1], "as") {
			stages = append(stages, strings.ToLower(words[2]))
		}
	}
	return stages, nil
}

// readIgnore returns the exclude patterns of a context: those of
// <dockerfileName>.dockerignore next to the Dockerfile when it exists, else
// those of the context's .dockerignore.
func readIgnore(ctxDir, dockerfileDir, dockerfileName string) ([]string, error) {
	var files []string
	if dockerfileName != "" {
		dir := dockerfileDir
		if dir == "" {
			dir = ctxDir
		}
		files = append(files, filepath.Join(dir, dockerfileName+".dockerignore"))
	}
	files = append(files, filepath.Join(ctxDir, ".dockerignore"))
	for _, f := range files {
		fh, err := os.Open(f)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		pats, err := ignorefile.ReadAll(fh)
		_ = fh.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %v", f, err)
		}
		return pats, nil
	}
	return nil, nil
}
