// Package translate turns a loaded compose project into an ErgomakeEnv, plus the Secrets and
// ConfigMaps that carry compose secrets, configs and small bind-mounted files. It is pure: it
// reads the files the project points at (bounded: compose.ReadFile), from the disk or from what
// Options.Files serves (files.go), and touches nothing else.
//
// Secrets stay secret (ARCHITECTURE.md decision 15): environment and env_file values go to one
// Secret per service, env-<service>, that the spec references by key (environment.go); files of
// bind mounts that look private go to Secrets, not ConfigMaps; symlinks are never followed out of
// the project, and host paths are never mounted from a node (bind.go).
//
// Every compose service key is either translated (see /work/shared/COMPOSE-MAPPING.md) or reported
// as a Warning naming the file, the service and the key; nothing is dropped silently. Input that
// cannot run at all (a service without an image or build, a bind mount too large to ship) is an
// error. Images are not built here: the caller plans them (internal/imagebuild) and passes where
// each goes in Options.Builds.
//
// Values in the spec are literal: command, entrypoint and environment values hold exactly what the
// container must see ($ is not escaped here; render escapes it for Kubernetes' $(VAR) expansion).
package translate

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/ergomake/ergomake/internal/compose"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// Options tune the translation.
type Options struct {
	// Namespace of the environment; empty means "ergomake-<project>".
	Namespace string
	// TTL goes into spec.ttl; zero means none.
	TTL time.Duration
	// MaxConfigMapBytes caps the content of one ConfigMap made from a bind mount; zero means
	// DefaultMaxConfigMapBytes.
	MaxConfigMapBytes int64
	// Builds are the images of the services that have build: (compose name → what the builder
	// planned or built for it). A built service without an entry runs DefaultImage.
	Builds map[string]v1alpha1.BuildSpec
	// Files is where the files the project points at are read (bind mounts, secret and config
	// files, the compose files for line numbers); nil: the local disk. A Recorder records what
	// was read, for the ergomake server, which translates again from MapFiles of it.
	Files Files
}

// DefaultMaxConfigMapBytes is Kubernetes' limit for the data of one ConfigMap (1 MiB).
const DefaultMaxConfigMapBytes = 1 << 20

// Result is the translated project.
type Result struct {
	Env        *v1alpha1.ErgomakeEnv
	Secrets    []*corev1.Secret
	ConfigMaps []*corev1.ConfigMap
	Warnings   []Warning
}

// Warning is a compose key ergomake translates only approximately, or not at all.
type Warning struct {
	File    string
	Service string
	Key     string
	Message string
}

func (w Warning) String() string {
	var b strings.Builder
	if w.File != "" {
		b.WriteString(w.File + ": ")
	}
	if w.Service != "" {
		fmt.Fprintf(&b, "service %q: ", w.Service)
	}
	if w.Key != "" {
		b.WriteString(w.Key + ": ")
	}
	b.WriteString(w.Message)
	return b.String()
}

// Translate converts the project. Errors are *compose.Error values naming file, service and key.
func Translate(p *types.Project, opts Options) (res *Result, err error) {
	defer func() {
		if r := recover(); r != nil {
			res, err = nil, &compose.Error{Msg: fmt.Sprintf("internal error translating the project: %v", r)}
		}
	}()
	if p == nil {
		return nil, &compose.Error{Msg: "no compose project"}
	}
	if opts.Namespace != "" {
		if msgs := validation.IsDNS1123Label(opts.Namespace); len(msgs) > 0 {
			return nil, &compose.Error{Key: "namespace", Msg: fmt.Sprintf("%q is not a valid namespace: %s", opts.Namespace, strings.Join(msgs, "; "))}
		}
	}
	t := newTranslator(p, opts)
	return t.run()
}

type translator struct {
	p       *types.Project
	opts    Options
	loc     *compose.Locator
	fs      Files
	envName string
	ns      string

	warnings   []Warning
	secrets    map[string]*corev1.Secret
	configMaps map[string]*corev1.ConfigMap
	volumes    map[string]v1alpha1.VolumeSpec
	// serviceNames maps compose names to Kubernetes Service names.
	serviceNames map[string]string
	// oneShot holds the services something waits for with service_completed_successfully.
	oneShot map[string]bool
	// linkAliases are aliases other services give a service through links.
	linkAliases map[string][]string
}

func newTranslator(p *types.Project, opts Options) *translator {
	if opts.MaxConfigMapBytes <= 0 {
		opts.MaxConfigMapBytes = DefaultMaxConfigMapBytes
	}
	t := &translator{
		p:            p,
		opts:         opts,
		fs:           compose.OrDisk(opts.Files),
		secrets:      map[string]*corev1.Secret{},
		configMaps:   map[string]*corev1.ConfigMap{},
		volumes:      map[string]v1alpha1.VolumeSpec{},
		serviceNames: map[string]string{},
		oneShot:      map[string]bool{},
		linkAliases:  map[string][]string{},
	}
	t.loc = compose.NewLocatorFS(p.ComposeFiles, t.fs)
	t.envName = dns1123Label(p.Name, "project")
	t.ns = opts.Namespace
	if t.ns == "" {
		t.ns = truncate("ergomake-"+t.envName, 63)
	}
	return t
}

// file is the compose file where service's key is written (the main file when unknown).
func (t *translator) file(service, key string) string {
	f, _ := t.loc.Find(service, key)
	if f == "" && len(t.p.ComposeFiles) > 0 {
		f = t.p.ComposeFiles[0]
	}
	return f
}

func (t *translator) warn(service, key, format string, args ...any) {
	t.warnings = append(t.warnings, Warning{
		File:    t.file(service, strings.SplitN(key, ".", 2)[0]),
		Service: service,
		Key:     key,
		Message: fmt.Sprintf(format, args...),
	})
}

func (t *translator) errorf(service, key, format string, args ...any) error {
	return t.errorfAt(service, key, key, format, args...)
}

// errorfAt is errorf with a more precise path (volumes.2) to find the line.
func (t *translator) errorfAt(service, key, path, format string, args ...any) error {
	f, line := t.loc.Find(service, path)
	if f == "" && len(t.p.ComposeFiles) > 0 {
		f = t.p.ComposeFiles[0]
	}
	return &compose.Error{File: f, Line: line, Service: service, Key: key, Msg: fmt.Sprintf(format, args...)}
}

func (t *translator) labels() map[string]string {
	return map[string]string{
		v1alpha1.LabelEnv:       t.envName,
		v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue,
		v1alpha1.LabelPartOf:    t.envName,
	}
}

func (t *translator) run() (*Result, error) {
	if len(t.p.Services) == 0 {
		return nil, t.errorf("", "services", "no service to run (are all of them behind profiles? select one with --profile)")
	}
	names := t.p.ServiceNames()
	t.assignServiceNames(names)
	for _, name := range names {
		s := t.p.Services[name]
		for dep, d := range s.DependsOn {
			if d.Condition == types.ServiceConditionCompletedSuccessfully {
				t.oneShot[dep] = true
			}
		}
		for _, l := range s.Links {
			target, alias, ok := strings.Cut(l, ":")
			if ok && alias != target {
				t.linkAliases[target] = append(t.linkAliases[target], alias)
			}
		}
	}
	t.projectWarnings()

	env := &v1alpha1.ErgomakeEnv{
		TypeMeta: metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: v1alpha1.Kind},
		ObjectMeta: metav1.ObjectMeta{
			Name:      t.envName,
			Namespace: t.ns,
			Labels:    t.labels(),
		},
		Spec: v1alpha1.EnvSpec{Project: t.p.Name},
	}
	if t.opts.TTL > 0 {
		env.Spec.TTL = &metav1.Duration{Duration: t.opts.TTL}
	}
	taken := map[string]string{} // Service names and aliases → owner
	for _, name := range names {
		taken[t.serviceNames[name]] = name
	}
	for _, name := range names {
		svc, err := t.service(t.p.Services[name], taken)
		if err != nil {
			return nil, err
		}
		env.Spec.Services = append(env.Spec.Services, svc)
	}
	for _, name := range sortedKeys(t.volumes) {
		env.Spec.Volumes = append(env.Spec.Volumes, t.volumes[name])
	}

	res := &Result{Env: env, Warnings: mergeWarnings(t.warnings)}
	for _, name := range sortedKeys(t.secrets) {
		res.Secrets = append(res.Secrets, t.secrets[name])
	}
	for _, name := range sortedKeys(t.configMaps) {
		res.ConfigMaps = append(res.ConfigMaps, t.configMaps[name])
	}
	return res, nil
}

// projectWarnings covers top-level elements that have no per-service key.
func (t *translator) projectWarnings() {
	for _, name := range sortedKeys(t.p.Jobs) {
		t.warn("", "jobs."+name, "compose jobs are not run by ergomake")
	}
	if len(t.p.Models) > 0 {
		t.warn("", "models", "AI models are not supported")
	}
	for _, name := range sortedKeys(t.p.Networks) {
		if t.p.Networks[name].Internal {
			t.warn("", "networks."+name+".internal", "not enforced: services on this network can still reach outside the environment")
		}
	}
	// Networks isolate services in compose; the environment has one flat network. Say so when
	// two services share no network.
	nets := map[string]map[string]bool{}
	names := t.p.ServiceNames()
	for _, n := range names {
		s := t.p.Services[n]
		if s.NetworkMode != "" {
			continue
		}
		nets[n] = map[string]bool{}
		for net := range s.Networks {
			nets[n][net] = true
		}
		if len(s.Networks) == 0 {
			nets[n]["default"] = true
		}
	}
	for i, a := range names {
		for _, b := range names[i+1:] {
			if nets[a] == nil || nets[b] == nil || shareAny(nets[a], nets[b]) {
				continue
			}
			t.warn("", "networks", "services %q and %q share no network in compose, but every service of the environment can reach every other", a, b)
			return
		}
	}
}

func shareAny(a, b map[string]bool) bool {
	for k := range a {
		if b[k] {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// mergeWarnings folds the same warning about several services into one (big projects repeat keys
// through YAML anchors and extends), naming the other services.
func mergeWarnings(ws []Warning) []Warning {
	type id struct{ file, key, msg string }
	var out []Warning
	others := map[id][]string{}
	first := map[id]int{}
	for _, w := range ws {
		k := id{w.File, w.Key, w.Message}
		if i, ok := first[k]; ok && w.Service != "" && out[i].Service != "" {
			if w.Service != out[i].Service {
				others[k] = append(others[k], w.Service)
			}
			continue
		}
		first[k] = len(out)
		out = append(out, w)
	}
	for k, names := range others {
		w := &out[first[k]]
		list := names
		more := ""
		if len(list) > 5 {
			list, more = list[:5], fmt.Sprintf(" and %d more", len(names)-5)
		}
		quoted := make([]string, len(list))
		for i, n := range list {
			quoted[i] = fmt.Sprintf("%q", n)
		}
		w.Message += fmt.Sprintf(" (same for %s%s)", strings.Join(quoted, ", "), more)
	}
	return out
}
