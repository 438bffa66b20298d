package render_test

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"

	"github.com/ergomake/ergomake/internal/compose"
	"github.com/ergomake/ergomake/internal/render"
	"github.com/ergomake/ergomake/internal/translate"
)

// TestEmptyValues runs compose files whose list-valued keys are empty, or hold an empty string,
// through the real loader, translate and render (testdata/empty-values/<case>.yaml, one service
// "web"). A value docker compose accepts is never an error, and means here what it means there;
// the few that fail are the ones docker rejects too (compose-go's loader, which docker compose
// uses, or the engine when it creates the container).
func TestEmptyValues(t *testing.T) {
	type pod = corev1.PodSpec
	noDNS := func(t *testing.T, p pod) {
		if p.DNSConfig != nil {
			t.Errorf("dnsConfig %+v, want none", p.DNSConfig)
		}
	}
	noSecurity := func(t *testing.T, p pod) {
		if p.SecurityContext != nil || p.Containers[0].SecurityContext != nil {
			t.Errorf("security contexts %+v %+v, want none", p.SecurityContext, p.Containers[0].SecurityContext)
		}
	}
	argv := func(command, args []string) func(*testing.T, pod) {
		return func(t *testing.T, p pod) {
			c := p.Containers[0]
			if !reflect.DeepEqual(c.Command, command) || !reflect.DeepEqual(c.Args, args) {
				t.Errorf("command %q args %q, want %q %q", c.Command, c.Args, command, args)
			}
		}
	}
	nothing := func(*testing.T, pod) {}

	cases := []struct {
		file string
		// check is called on the rendered pod when the project must render.
		check func(*testing.T, pod)
		// warn is a warning translate must give (on the key before the colon); "" for none but
		// the headless Service one.
		warn string
		// err is part of the error when docker rejects the value too.
		err string
		// services is how many Kubernetes Services web must get (0: not checked).
		services int
	}{
		// compose-go drops empty nameservers.
		{file: "dns-empty-string", check: noDNS},
		{file: "dns-empty-item", check: noDNS},
		// docker writes an empty search line: no search domains beyond the defaults, which on
		// Kubernetes are the cluster's, needed for the service names.
		{file: "dns-search-empty-string", check: noDNS},
		{file: "dns-search-empty-item", check: func(t *testing.T, p pod) {
			if p.DNSConfig == nil || !reflect.DeepEqual(p.DNSConfig.Searches, []string{"example.com"}) || len(p.DNSConfig.Options) != 0 {
				t.Errorf("dnsConfig %+v, want searches [example.com] only", p.DNSConfig)
			}
		}},
		// docker writes an empty options line, which sets nothing.
		{file: "dns-opt-empty-item", check: noDNS},
		{file: "dns-empty-lists", check: noDNS},
		{file: "cap-empty-lists", check: noSecurity},
		{file: "extra-hosts-empty-list", check: func(t *testing.T, p pod) {
			if len(p.HostAliases) != 0 {
				t.Errorf("hostAliases %+v", p.HostAliases)
			}
		}},
		{file: "extra-hosts-empty-map", check: func(t *testing.T, p pod) {
			if len(p.HostAliases) != 0 {
				t.Errorf("hostAliases %+v", p.HostAliases)
			}
		}},
		{file: "tmpfs-empty-list", check: func(t *testing.T, p pod) {
			if len(p.Volumes) != 0 || len(p.Containers[0].VolumeMounts) != 0 {
				t.Errorf("volumes %+v", p.Volumes)
			}
		}},
		{file: "misc-empty-lists", check: func(t *testing.T, p pod) {
			noSecurity(t, p)
			if len(p.Volumes) != 0 || len(p.Containers[0].Env) != 0 {
				t.Errorf("volumes %+v env %+v", p.Volumes, p.Containers[0].Env)
			}
		}},
		{file: "misc-empty-maps", check: nothing},
		{file: "annotations-empty-list", check: nothing},
		// `entrypoint: ""` (and [""], which the engine resets to nothing) clears the image's
		// ENTRYPOINT: the command is the whole argv.
		{file: "entrypoint-empty-string-command", check: argv([]string{"echo", "hi"}, nil)},
		{file: "entrypoint-empty-item-command", check: argv([]string{"echo", "hi"}, nil)},
		// Without a command docker runs the image's CMD alone, which Kubernetes cannot express.
		{file: "entrypoint-empty-string", check: argv(nil, nil), warn: "entrypoint: an empty entrypoint without a command"},
		{file: "entrypoint-empty-list", check: argv(nil, nil), warn: "entrypoint: an empty entrypoint without a command"},
		// An empty command is no command: the image's CMD runs.
		{file: "command-empty-string", check: argv(nil, nil)},
		{file: "command-empty-list", check: argv(nil, nil)},
		{file: "labels-empty-list", check: nothing},
		{file: "labels-empty-map", check: nothing},
		// The engine takes a label with an empty name; Kubernetes cannot: left out.
		{file: "labels-empty-item", warn: "labels: an empty label name", check: func(t *testing.T, p pod) {
			if p.Containers[0].Name == "" {
				t.Error("no container")
			}
		}},
		{file: "sysctls-empty", check: noSecurity},
		{file: "sysctls-empty-map", check: noSecurity},
		{file: "ports-expose-empty-lists", check: func(t *testing.T, p pod) {
			if len(p.Containers[0].Ports) != 0 {
				t.Errorf("ports %+v", p.Containers[0].Ports)
			}
		}},
		// The engine parses an empty exposed port as no port.
		{file: "expose-empty-item", check: func(t *testing.T, p pod) {
			if ports := p.Containers[0].Ports; len(ports) != 1 || ports[0].ContainerPort != 80 {
				t.Errorf("ports %+v, want 80 only", ports)
			}
		}},
		{file: "networks-empty-list", check: nothing},
		{file: "networks-empty-map", check: nothing},
		{file: "network-aliases-empty", check: nothing, services: 1},
		// docker has no name "" to resolve: no alias Service.
		{file: "network-aliases-empty-item", check: nothing, services: 1},
		{file: "environment-empty-list", check: func(t *testing.T, p pod) {
			if len(p.Containers[0].Env) != 0 {
				t.Errorf("env %+v", p.Containers[0].Env)
			}
		}},
		{file: "environment-empty-map", check: func(t *testing.T, p pod) {
			if len(p.Containers[0].Env) != 0 {
				t.Errorf("env %+v", p.Containers[0].Env)
			}
		}},
		{file: "environment-empty-item", warn: "environment: an empty entry", check: func(t *testing.T, p pod) {
			// the value is in the service's Secret (decision 15)
			if env := p.Containers[0].Env; len(env) != 1 || env[0].Name != "A" || env[0].ValueFrom == nil || env[0].ValueFrom.SecretKeyRef == nil || env[0].ValueFrom.SecretKeyRef.Key != "A" {
				t.Errorf("env %+v, want A only, from the Secret", env)
			}
		}},
		// `test: ""` is CMD-SHELL with an empty script, which succeeds, as under docker.
		{file: "healthcheck-test-empty-string", check: func(t *testing.T, p pod) {
			rp := p.Containers[0].ReadinessProbe
			if rp == nil || rp.Exec == nil || !reflect.DeepEqual(rp.Exec.Command, []string{"/bin/sh", "-c", ""}) {
				t.Errorf("readiness probe %+v, want /bin/sh -c \"\"", rp)
			}
		}},

		// The engine rejects these: "invalid CapAdd: unknown capability: \"CAP_\"".
		{file: "cap-add-empty-item", err: `cap_add: "" is not a capability`},
		{file: "cap-drop-empty-item", err: `cap_drop: "" is not a capability`},
		// The engine: a tmpfs mount path must be absolute.
		{file: "tmpfs-empty-string", err: `tmpfs: "" is not an absolute path`},
		{file: "tmpfs-empty-item", err: `tmpfs: "" is not an absolute path`},
		// runc refuses a sysctl that is not namespaced.
		{file: "sysctls-empty-item", err: "sysctls: empty sysctl name"},
		// The engine: "the empty string is not permitted as an annotation key".
		{file: "annotations-empty-item", err: "annotations: empty annotation key"},
		// The engine resets [""] to no entrypoint and then has nothing to run: "no command specified".
		{file: "entrypoint-empty-item", err: "no command specified"},
		// compose-go, as loaded by docker compose, rejects these.
		{file: "env-file-empty-string", err: `env_file: "" is not a file name`},
		{file: "ports-empty-item", err: "ports: invalid port"},
		{file: "volumes-empty-item", err: `volumes: "" is not a volume`},
		{file: "extra-hosts-empty-item", err: "extra_hosts: invalid additional host"},
		{file: "volumes-from-empty-item", err: `undefined service ""`},
	}
	logrus.SetOutput(io.Discard) // compose-go's own warnings
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			file, err := filepath.Abs(filepath.Join("testdata", "empty-values", c.file+".yaml"))
			if err != nil {
				t.Fatal(err)
			}
			p, err := compose.Load(context.Background(), compose.Options{WorkingDir: filepath.Dir(file), Files: []string{file}, Environ: []string{}})
			var res *translate.Result
			if err == nil {
				res, err = translate.Translate(p, translate.Options{})
			}
			var objs *render.Objects
			if err == nil {
				objs, err = render.Render(res.Env, render.Options{})
			}
			if c.err != "" {
				var ce *compose.Error
				switch {
				case err == nil:
					t.Fatalf("rendered; want an error with %q", c.err)
				case !errors.As(err, &ce):
					t.Errorf("error %T %v: want a *compose.Error that names the compose key", err, err)
				case !strings.Contains(err.Error(), c.err) || ce.Service != "web":
					t.Errorf("error %q (service %q): want service web and %q", err, ce.Service, c.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("docker compose accepts this value: %v", err)
			}
			var warnings []string
			for _, w := range res.Warnings {
				if !strings.HasPrefix(w.Message, "no ports or expose") {
					warnings = append(warnings, w.Key+": "+w.Message)
				}
			}
			switch {
			case c.warn == "" && len(warnings) > 0:
				t.Errorf("warnings %q, want none", warnings)
			case c.warn != "" && (len(warnings) != 1 || !strings.HasPrefix(warnings[0], c.warn)):
				t.Errorf("warnings %q, want one starting with %q", warnings, c.warn)
			}
			svc := objs.ServiceByName("web")
			if svc == nil || svc.Deployment == nil {
				t.Fatalf("no Deployment for web: %+v", svc)
			}
			c.check(t, svc.Deployment.Spec.Template.Spec)
			if c.services > 0 && len(svc.Services) != c.services {
				t.Errorf("%d Services, want %d", len(svc.Services), c.services)
			}
		})
	}
}
