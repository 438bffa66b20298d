//go:build e2e

package render_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/ergomake/ergomake/internal/compose"
	"github.com/ergomake/ergomake/internal/render"
	"github.com/ergomake/ergomake/internal/testutil/cluster"
	"github.com/ergomake/ergomake/internal/testutil/fixtures"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// TestAPIServerAcceptsRenderedObjects has the local cluster's API server validate what render
// produces: for every golden case, every translated testdata project, every empty-value case
// that renders and every translated compose fixture, the Services are created for real in a throw-away namespace (to learn their ClusterIPs),
// the environment is rendered again with those IPs (so hostAliases are exercised), and every claim
// and workload is created with server-side dry run, which runs the full validation and admission.
func TestAPIServerAcceptsRenderedObjects(t *testing.T) {
	cfg := cluster.Config(t)
	cs := cluster.Clientset(t, cfg)
	c, err := client.New(cfg, client.Options{Scheme: scheme.Scheme})
	if err != nil {
		t.Fatal(err)
	}

	var envs []namedEnv
	goldens, _ := filepath.Glob(filepath.Join("testdata", "*", "env.yaml"))
	for _, f := range goldens {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		env := &v1alpha1.ErgomakeEnv{}
		if err := yaml.UnmarshalStrict(b, env); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		envs = append(envs, namedEnv{"golden/" + filepath.Base(filepath.Dir(f)), env})
	}
	if entries, err := os.ReadDir(filepath.Join("..", "..", "testdata")); err == nil {
		for _, e := range entries {
			if !e.IsDir() || e.Name() == "bad" {
				continue
			}
			env, _, loadErr, err := renderTranslated(t, compose.Options{WorkingDir: filepath.Join("..", "..", "testdata", e.Name()), Environ: []string{}})
			if loadErr == nil && err == nil {
				envs = append(envs, namedEnv{"testdata/" + e.Name(), env})
			}
		}
	}
	// The empty compose values that render (TestEmptyValues).
	empties, _ := filepath.Glob(filepath.Join("testdata", "empty-values", "*.yaml"))
	for _, f := range empties {
		abs, err := filepath.Abs(f)
		if err != nil {
			t.Fatal(err)
		}
		env, _, loadErr, err := renderTranslated(t, compose.Options{WorkingDir: filepath.Dir(abs), Files: []string{abs}, Environ: []string{}})
		if loadErr == nil && err == nil {
			envs = append(envs, namedEnv{"empty-values/" + filepath.Base(f), env})
		}
	}
	fixturesDir, all, err := fixtures.Find()
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	for _, f := range all {
		opts := compose.Options{WorkingDir: filepath.Join(fixturesDir, f.Path), Files: f.Files, EnvFiles: f.EnvFiles, Environ: f.Environ()}
		env, _, loadErr, err := renderTranslated(t, opts)
		if loadErr == nil && err == nil {
			envs = append(envs, namedEnv{"fixture/" + f.Path, env})
		}
	}

	// One namespace for all; each case deletes its Services when done, as names repeat.
	ns := cluster.Namespace(t, cs, "render")
	for _, ne := range envs {
		t.Run(ne.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			env := ne.env.DeepCopy()
			env.Namespace = ns
			objs, err := render.Render(env, render.Options{})
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			ips := map[string]string{}
			for i := range objs.Services {
				for _, s := range objs.Services[i].Services {
					if err := c.Create(ctx, s); err != nil {
						t.Fatalf("creating Service %s: %v", s.Name, err)
					}
					t.Cleanup(func() {
						ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
						defer cancel()
						if err := c.Delete(ctx, s); err != nil {
							t.Errorf("deleting Service %s: %v", s.Name, err)
						}
					})
					ips[s.Name] = s.Spec.ClusterIP
				}
			}
			objs, err = render.Render(env, render.Options{ClusterIPs: ips})
			if err != nil {
				t.Fatalf("render with ClusterIPs: %v", err)
			}
			var dry []client.Object
			for _, cl := range objs.Claims {
				dry = append(dry, cl)
			}
			aliases := 0
			for i := range objs.Services {
				w := objs.Services[i].Workload()
				dry = append(dry, w)
				if d := objs.Services[i].Deployment; d != nil {
					aliases += len(d.Spec.Template.Spec.HostAliases)
				}
			}
			for _, o := range dry {
				if err := c.Create(ctx, o, client.DryRunAll); err != nil {
					t.Errorf("%s %s rejected: %v", o.GetObjectKind().GroupVersionKind().Kind, o.GetName(), err)
				}
			}
			if want := render.HostAliases(env, ips); len(want) > 0 && aliases == 0 {
				t.Errorf("hostAliases %v not rendered into the pods", want)
			}
		})
	}
}

type namedEnv struct {
	name string
	env  *v1alpha1.ErgomakeEnv
}
