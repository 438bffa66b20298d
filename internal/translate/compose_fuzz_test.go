package translate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/ergomake/ergomake/internal/compose"
	"github.com/ergomake/ergomake/internal/render"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// FuzzComposeRender feeds a compose file, as the user would write it in a project folder that
// holds a few files to mount and a .env, through the real loader, Translate and Render (what `up`
// and `render` do): nothing may panic, every error is the package's own kind (a *compose.Error
// naming file, service and key; a *render.Error naming service and field), what renders satisfies
// the basic shape of an environment, and doing it all twice gives the same objects (and the same
// translate or render error) byte for byte. Two load errors are only required to be both errors.
//
// The seed corpus is the repository's example projects (testdata/) and a selection of the shared
// compose fixtures (testdata/fuzz/FuzzComposeRender).
func FuzzComposeRender(f *testing.F) {
	dir := filepath.Join(f.TempDir(), "fuzz")
	for name, content := range map[string]string{
		".env":                    "TAG=1.0\nPORT=8080\nDB_PASSWORD=s3cr3t\n",
		"app.toml":                "[server]\nport = 8080\n",
		"secrets/db_password.txt": "s3cr3t\n",
		"secrets/cert.pem":        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
		"nginx/nginx.conf":        "events {}\nhttp { include conf.d/*.conf; }\n",
		"nginx/conf.d/site.conf":  "server { listen 80; }\n",
		"scripts/run.sh":          "#!/bin/sh\nexec \"$@\"\n",
		"app.env":                 "MODE=dev\n",
	} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			f.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
			f.Fatal(err)
		}
	}
	projects, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "*", "*compose*.y*ml"))
	for _, p := range projects {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, file []byte) {
		if touchesSpecialFiles(file) {
			return
		}
		if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), file, 0o644); err != nil {
			t.Fatal(err)
		}
		first, err1 := composeRender(t, dir)
		second, err2 := composeRender(t, dir)
		var le1, le2 *loadError
		if errors.As(err1, &le1) && errors.As(err2, &le2) {
			// compose-go's schema validation reports the first violation it meets in map
			// order; internal/compose places the ones it can in file order, not all
			return
		}
		if fmt.Sprint(err1) != fmt.Sprint(err2) {
			t.Fatalf("two runs failed differently:\n%v\n%v", err1, err2)
		}
		if !bytes.Equal(first, second) {
			t.Fatalf("two runs gave different objects:\n%s\n---\n%s", first, second)
		}
	})
}

// touchesSpecialFiles keeps the fuzzer away from files that never end or block when read
// (/dev/zero, /dev/stdin, /proc/kmsg, a file descriptor): compose-go and translate read env
// files, secret and config files and bind-mounted files.
func touchesSpecialFiles(b []byte) bool {
	l := bytes.ToLower(b)
	for _, s := range []string{"dev", "proc", "fd", "/sys"} {
		if bytes.Contains(l, []byte(s)) {
			return true
		}
	}
	return false
}

// composeRender loads, translates and renders the project in dir, and returns everything made
// as YAML.
func composeRender(t *testing.T, dir string) ([]byte, error) {
	p, err := compose.Load(context.Background(), compose.Options{WorkingDir: dir, Environ: []string{}, Warn: func(string) {}})
	if err != nil {
		var ce *compose.Error
		if !errors.As(err, &ce) {
			t.Fatalf("load error is a %T, not a *compose.Error: %v", err, err)
		}
		return nil, &loadError{err}
	}
	res, err := Translate(p, Options{})
	if err != nil {
		var ce *compose.Error
		if !errors.As(err, &ce) {
			t.Fatalf("translate error is a %T, not a *compose.Error: %v", err, err)
		}
		if strings.Contains(err.Error(), "internal error translating") {
			t.Fatalf("translate panicked: %v", err)
		}
		return nil, err
	}
	var out bytes.Buffer
	add := func(v any) {
		b, err := yaml.Marshal(v)
		if err != nil {
			t.Fatalf("marshal %T: %v", v, err)
		}
		out.WriteString("---\n")
		out.Write(b)
	}
	add(res.Env)
	for _, s := range res.Secrets {
		add(s)
	}
	for _, c := range res.ConfigMaps {
		add(c)
	}
	for _, w := range res.Warnings {
		out.WriteString("# warning: " + w.String() + "\n")
	}
	objs, err := render.Render(res.Env.DeepCopy(), render.Options{DNSServer: "10.96.0.53"})
	if err != nil {
		var re *render.Error
		var errs []error
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			errs = j.Unwrap()
		} else {
			errs = []error{err}
		}
		for _, e := range errs {
			if !errors.As(e, &re) {
				t.Fatalf("render error is a %T, not a *render.Error: %v", e, e)
			}
		}
		return out.Bytes(), err
	}
	env := res.Env
	if len(objs.Services) != len(env.Spec.Services) {
		t.Errorf("%d services rendered for %d in the spec", len(objs.Services), len(env.Spec.Services))
	}
	for _, o := range objs.List() {
		gvk := o.GetObjectKind().GroupVersionKind()
		if gvk.Kind == "" || gvk.Version == "" || o.GetName() == "" {
			t.Errorf("%s %q has no apiVersion, kind or name", gvk.Kind, o.GetName())
		}
		if o.GetNamespace() != env.Namespace || o.GetLabels()[v1alpha1.LabelEnv] == "" {
			t.Errorf("%s %s: namespace %q (want %q), labels %v", gvk.Kind, o.GetName(), o.GetNamespace(), env.Namespace, o.GetLabels())
		}
		add(o)
	}
	for i := range objs.Services {
		s := &objs.Services[i]
		if (s.Deployment == nil) == (s.Job == nil) {
			t.Errorf("service %q: not exactly one of a Deployment and a Job", s.Name)
		}
	}
	return out.Bytes(), nil
}

// loadError is an error of the loader (compose-go and internal/compose).
type loadError struct{ error }

func (e *loadError) Unwrap() error { return e.error }
