package render_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/ergomake/ergomake/internal/compose"
	"github.com/ergomake/ergomake/internal/render"
	"github.com/ergomake/ergomake/internal/testutil/fixtures"
	"github.com/ergomake/ergomake/internal/translate"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// renderTranslated loads and translates a compose project and renders the result. loadErr is set
// when compose or translate reject the project (not render's business); err is render's answer.
func renderTranslated(t *testing.T, opts compose.Options) (env *v1alpha1.ErgomakeEnv, objs *render.Objects, loadErr, err error) {
	t.Helper()
	logrus.SetOutput(io.Discard) // compose-go's own warnings
	p, loadErr := compose.Load(context.Background(), opts)
	if loadErr != nil {
		return nil, nil, loadErr, nil
	}
	res, loadErr := translate.Translate(p, translate.Options{})
	if loadErr != nil {
		return nil, nil, loadErr, nil
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	objs, err = render.Render(res.Env, render.Options{})
	return res.Env, objs, nil, err
}

// checkRendered checks what every rendering of a translated project must satisfy.
func checkRendered(t *testing.T, name string, env *v1alpha1.ErgomakeEnv, objs *render.Objects) {
	t.Helper()
	if len(objs.Services) != len(env.Spec.Services) {
		t.Errorf("%s: %d services rendered for %d in the spec", name, len(objs.Services), len(env.Spec.Services))
	}
	for _, o := range objs.List() {
		gvk := o.GetObjectKind().GroupVersionKind()
		if gvk.Kind == "" || gvk.Version == "" {
			t.Errorf("%s: %s has no apiVersion/kind", name, o.GetName())
		}
		if o.GetNamespace() != env.Namespace {
			t.Errorf("%s: %s %s is in namespace %q, not %q", name, gvk.Kind, o.GetName(), o.GetNamespace(), env.Namespace)
		}
		if o.GetLabels()[v1alpha1.LabelEnv] == "" {
			t.Errorf("%s: %s %s has no %s label", name, gvk.Kind, o.GetName(), v1alpha1.LabelEnv)
		}
	}
	for i := range objs.Services {
		s := &objs.Services[i]
		if (s.Deployment == nil) == (s.Job == nil) {
			t.Errorf("%s: service %q must have exactly one of a Deployment and a Job", name, s.Name)
		}
		if len(s.Services) == 0 || s.Services[0].Name != env.Spec.Services[i].ServiceName {
			t.Errorf("%s: service %q: the first Service is not named %q", name, s.Name, env.Spec.Services[i].ServiceName)
		}
	}
}

// TestRenderTranslatedTestdata renders every example project of the repository's testdata/ as
// translate produces it: every project that loads and translates must render.
func TestRenderTranslatedTestdata(t *testing.T) {
	root := filepath.Join("..", "..", "testdata")
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Skipf("no testdata projects: %v", err)
	}
	n := 0
	for _, e := range entries {
		dir := filepath.Join(root, e.Name())
		if !e.IsDir() || e.Name() == "bad" {
			continue
		}
		t.Run(e.Name(), func(t *testing.T) {
			env, objs, loadErr, err := renderTranslated(t, compose.Options{WorkingDir: dir, Environ: []string{}})
			if loadErr != nil {
				t.Skipf("does not load or translate: %v", loadErr)
			}
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			checkRendered(t, e.Name(), env, objs)
			n++
		})
	}
	if n == 0 {
		t.Log("no project of testdata/ translated")
	}
}

// TestRenderTranslatedFixtures renders every compose fixture of ../shared/compose-fixtures that
// translates: none may panic, and each renders or fails with render's own *Error, one line, naming
// the service.
func TestRenderTranslatedFixtures(t *testing.T) {
	dir, all := fixtures.Load(t)
	translated, rendered := 0, 0
	for _, f := range all {
		opts := compose.Options{WorkingDir: filepath.Join(dir, f.Path), Files: f.Files, EnvFiles: f.EnvFiles, Environ: f.Environ()}
		env, objs, loadErr, err := renderTranslated(t, opts)
		if loadErr != nil {
			continue
		}
		translated++
		if err != nil {
			var re *render.Error
			switch {
			case strings.HasPrefix(err.Error(), "panic:"):
				t.Errorf("%s: %v", f.Path, err)
			case !errors.As(err, &re):
				t.Errorf("%s: error is a %T, not a *render.Error: %v", f.Path, err, err)
			default:
				t.Logf("%s: %v", f.Path, err)
			}
			continue
		}
		rendered++
		checkRendered(t, f.Path, env, objs)
	}
	t.Logf("%d fixtures translate, %d of them render", translated, rendered)
}
