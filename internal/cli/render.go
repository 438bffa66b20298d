package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	"github.com/ergomake/ergomake/internal/compose"
	"github.com/ergomake/ergomake/internal/config"
	"github.com/ergomake/ergomake/internal/imagebuild"
	"github.com/ergomake/ergomake/internal/iostreams"
	"github.com/ergomake/ergomake/internal/policy"
	"github.com/ergomake/ergomake/internal/render"
	"github.com/ergomake/ergomake/internal/session"
	"github.com/ergomake/ergomake/internal/translate"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// RenderOptions are the options of `ergomake render`.
type RenderOptions struct {
	// ShowSecrets prints Secret values as they are instead of redacted (--show-secrets).
	ShowSecrets bool
	IO          *iostreams.IOStreams
	Factory     *Factory
	Context     context.Context

	Project ProjectOptions
	// Namespace of the environment; empty means ergomake-<project>.
	Namespace string
	// Output is "yaml" or "json".
	Output string
	// PodSecurity is the security ceiling the project is checked against (--pod-security).
	PodSecurity string
	// Registry is where built images would go (--registry); empty: DefaultRegistry.
	Registry string
}

// DefaultRegistry is where `render` shows built images going when no --registry names one: the
// cluster's registry as nodes pull from it, where `ergomake install` puts it.
const DefaultRegistry = "127.0.0.1:5100"

// NewCmdRender returns `ergomake render`.
func NewCmdRender(f *Factory, runF func(*RenderOptions) error) *cobra.Command {
	opts := &RenderOptions{IO: f.IOStreams, Factory: f}
	cmd := &cobra.Command{
		Use:   "render [flags]",
		Short: "Print the Kubernetes objects the compose project becomes",
		Long: `Print what "ergomake up" would create for the compose project, without a cluster: the
ErgomakeEnv first, then the Secrets and ConfigMaps it references, then every object the operator
makes of it (PersistentVolumeClaims, Services, Deployments and Jobs), as a multi-document YAML
stream, or with -o json as one JSON List.

Compose keys that ergomake translates only approximately, or not at all, are reported on stderr,
one "warning: " line each, and so are settings beyond the security ceiling (--pod-security, the
cluster's as "ergomake install --pod-security" set it), which "ergomake up" refuses; under the
restricted ceiling the pods are shown hardened as the operator makes them. Secret values
(environment, env_file, compose secrets, private bind-mounted files) are never printed: each
Secret lists its keys, every value replaced by "` + redacted + `", and carries the annotation
` + annotationRedacted + `.

Services with build: run the image they would be built into: the registry (the cluster's,
` + DefaultRegistry + `, or --registry), the project and the service, tagged with the content key
of the build (its context after .dockerignore, Dockerfile, args, target, platforms). A stderr
line names each; nothing is built.`,
		Example: `  ergomake render
  ergomake render -f compose.yaml --profile debug -o json
  ergomake render | kubectl apply --dry-run=client -f -`,
		Args: wrapArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Context = cmd.Context()
			if runF != nil {
				return runF(opts)
			}
			return renderRun(opts)
		},
	}
	addOutputFlag(cmd, &opts.Output, outputYAML, outputJSON)
	addProjectFlags(cmd, &opts.Project)
	addNamespaceFlag(cmd, &opts.Namespace)
	cmd.Flags().BoolVar(&opts.ShowSecrets, "show-secrets", false, "print Secret values (environment, env_file, secrets) instead of redacting them, e.g. to pipe into kubectl apply")
	cmd.Flags().StringVar(&opts.PodSecurity, "pod-security", "baseline", "security ceiling to check the project against: baseline, restricted or privileged")
	cmd.Flags().StringVar(&opts.Registry, "registry", "", "registry built images would go to (default: the cluster's, "+DefaultRegistry+")")
	config.MarkSetting(cmd.Flags(), "registry")
	return cmd
}

func renderRun(opts *RenderOptions) error {
	level, err := policy.ParseLevel(opts.PodSecurity)
	if err != nil || opts.PodSecurity == "" {
		return FlagErrorf("--pod-security must be baseline, restricted or privileged, got %q", opts.PodSecurity)
	}
	copts, err := opts.Project.composeOptions(opts.Factory)
	if err != nil {
		return err
	}
	project, err := compose.Load(opts.Context, copts)
	if err != nil {
		return err
	}
	builds := planBuilds(project, opts.Registry, func(format string, args ...any) {
		fmt.Fprintf(opts.IO.ErrOut, format+"\n", args...)
	})
	res, err := translate.Translate(project, translate.Options{Namespace: opts.Namespace, Builds: builds})
	if err != nil {
		return err
	}
	for _, w := range res.Warnings {
		fmt.Fprintln(opts.IO.ErrOut, "warning: "+w.String())
	}
	for _, v := range policy.Check(project, &res.Env.Spec, level) {
		fmt.Fprintln(opts.IO.ErrOut, "warning: "+v.String())
	}
	objs, err := render.Render(res.Env, render.Options{})
	if err != nil {
		return err
	}
	policy.Harden(objs, level)

	items := []runtime.Object{withKind(res.Env, v1alpha1.GroupVersion.String(), v1alpha1.Kind)}
	for _, s := range res.Secrets {
		if !opts.ShowSecrets {
			s = redactSecret(s)
		}
		items = append(items, withKind(s, "v1", "Secret"))
	}
	for _, c := range res.ConfigMaps {
		items = append(items, withKind(c, "v1", "ConfigMap"))
	}
	for _, o := range objs.List() {
		items = append(items, o)
	}
	return printObjects(opts.IO.Out, opts.Output, items)
}

// What `render` prints instead of a Secret's values (ARCHITECTURE.md decision 15).
const (
	redacted           = "(redacted)"
	annotationRedacted = "ergomake.dev/redacted"
)

// redactSecret returns a copy of s whose values are all replaced by redacted (as stringData,
// so that the output still applies), marked with annotationRedacted.
func redactSecret(s *corev1.Secret) *corev1.Secret {
	out := s.DeepCopy()
	out.Data = nil
	out.StringData = map[string]string{}
	for k := range s.Data {
		out.StringData[k] = redacted
	}
	for k := range s.StringData {
		out.StringData[k] = redacted
	}
	if out.Annotations == nil {
		out.Annotations = map[string]string{}
	}
	out.Annotations[annotationRedacted] = "values are not shown; ergomake up creates this Secret with them"
	return out
}

// planBuilds says where the image of each build: service goes, with no cluster: registry, or
// DefaultRegistry. A build that cannot be planned (a missing context folder, a git context) is a
// warning: render shows the project anyway, and up and build report it.
func planBuilds(project *types.Project, registry string, printf func(format string, args ...any)) map[string]v1alpha1.BuildSpec {
	if registry == "" {
		registry = DefaultRegistry
	}
	services, _ := session.BuiltServices(project, nil)
	builds := map[string]v1alpha1.BuildSpec{}
	for _, name := range services {
		plans, err := imagebuild.Plan(project, []string{name}, imagebuild.Registry{Push: registry, Pull: registry}, imagebuild.PlanOptions{Lenient: true})
		if err != nil {
			printf("warning: %v", err)
			continue
		}
		for _, p := range plans {
			if p.Service == name {
				for _, w := range p.Warnings {
					printf("warning: %s", w.String())
				}
				builds[name] = v1alpha1.BuildSpec{Key: p.Key, Image: p.PullRef}
				printf("build: %s → %s", name, p.PullRef)
			}
		}
	}
	return builds
}

// withKind sets apiVersion and kind where the object lacks them.
func withKind[T runtime.Object](o T, apiVersion, kind string) T {
	gvk := o.GetObjectKind().GroupVersionKind()
	if gvk.Kind == "" {
		o.GetObjectKind().SetGroupVersionKind(schema.FromAPIVersionAndKind(apiVersion, kind))
	}
	return o
}

// printObjects prints Kubernetes objects as a multi-document YAML stream (format "yaml") or as
// a v1 List (format "json"). Fields that only say "unset" (creationTimestamp: null, an empty
// status) are left out.
func printObjects(w io.Writer, format string, items []runtime.Object) error {
	docs := make([]any, 0, len(items))
	for _, o := range items {
		m, err := toMap(o)
		if err != nil {
			return err
		}
		docs = append(docs, m)
	}
	if format == outputJSON {
		return printJSON(w, map[string]any{
			"apiVersion": "v1",
			"kind":       "List",
			"metadata":   map[string]any{},
			"items":      docs,
		})
	}
	var b bytes.Buffer
	for _, d := range docs {
		y, err := yaml.Marshal(d)
		if err != nil {
			return err
		}
		b.WriteString("---\n")
		b.Write(y)
	}
	_, err := w.Write(b.Bytes())
	return err
}

// toMap turns an object into its JSON form, without nulls and without an empty status.
func toMap(o runtime.Object) (map[string]any, error) {
	raw, err := json.Marshal(o)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	dropNulls(m)
	if isEmpty(m["status"]) {
		delete(m, "status")
	}
	return m, nil
}

// isEmpty tells whether v holds nothing but empty objects ({}, {loadBalancer: {}}).
func isEmpty(v any) bool {
	m, ok := v.(map[string]any)
	if !ok {
		return v == nil
	}
	for _, e := range m {
		if !isEmpty(e) {
			return false
		}
	}
	return true
}

func dropNulls(v any) {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			if e == nil {
				delete(t, k)
				continue
			}
			dropNulls(e)
		}
	case []any:
		for _, e := range t {
			dropNulls(e)
		}
	}
}
