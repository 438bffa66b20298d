package imagebuild

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/session/secrets/secretsprovider"
	"github.com/moby/buildkit/session/sshforward/sshprovider"
	"github.com/sirupsen/logrus"

	"github.com/ergomake/ergomake/internal/compose"
	"github.com/ergomake/ergomake/internal/testutil/fixtures"
)

func TestMain(m *testing.M) {
	logrus.SetOutput(io.Discard) // compose-go's own warnings
	os.Exit(m.Run())
}

var testReg = Registry{Push: "ergomake-registry.ergomake-system.svc:5000", Pull: "127.0.0.1:5100", Insecure: true}

const testDockerfile = "FROM busybox AS base\nRUN echo hi\n\nFROM base AS final\nCOPY . /app\n"

// project writes files (path -> content) into a fresh folder and loads its
// compose.yaml.
func project(t *testing.T, files map[string]string) (string, *types.Project) {
	t.Helper()
	dir := t.TempDir()
	for p, c := range files {
		f := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p, err := compose.Load(context.Background(), compose.Options{WorkingDir: dir, ProjectName: "proj", Environ: []string{"FROM_ENV=env-value", "SECRET_ENV=s3cret"}})
	if err != nil {
		t.Fatalf("loading the project: %v", err)
	}
	return dir, p
}

func planOne(t *testing.T, files map[string]string, opts PlanOptions) (string, Planned) {
	t.Helper()
	dir, p := project(t, files)
	plans, err := Plan(p, nil, testReg, opts)
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	for _, pl := range plans {
		if pl.Service == "web" {
			return dir, pl
		}
	}
	t.Fatalf("no plan for web in %+v", plans)
	return "", Planned{}
}

// TestPlanKeys maps every compose build key to what the build does.
func TestPlanKeys(t *testing.T) {
	base := map[string]string{"Dockerfile": testDockerfile, "app.txt": "app"}
	with := func(compose string, extra ...string) map[string]string {
		m := map[string]string{"compose.yaml": compose}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i]] = extra[i+1]
		}
		return m
	}
	tests := []struct {
		name  string
		files map[string]string
		opts  PlanOptions
		check func(t *testing.T, dir string, p Planned)
	}{
		{"string build", with("services:\n  web:\n    build: .\n"), PlanOptions{}, func(t *testing.T, dir string, p Planned) {
			if p.ContextDir != dir || p.spec.dockerfileDir != dir || p.spec.dockerfileName != "Dockerfile" || p.spec.attrs["filename"] != "Dockerfile" {
				t.Errorf("context %s, dockerfile %s/%s, attrs %v", p.ContextDir, p.spec.dockerfileDir, p.spec.dockerfileName, p.spec.attrs)
			}
			if p.PushRef != testReg.Push+"/proj/web:"+p.Key || p.PullRef != "127.0.0.1:5100/proj/web:"+p.Key || len(p.Key) != 32 {
				t.Errorf("refs %s %s key %s", p.PushRef, p.PullRef, p.Key)
			}
			if len(p.Platforms) != 0 || p.spec.attrs["platform"] != "" {
				t.Errorf("platforms %v", p.Platforms)
			}
		}},
		{"context and dockerfile", with("services:\n  web:\n    build:\n      context: sub\n      dockerfile: ../build/App.Dockerfile\n", "sub/x", "x", "build/App.Dockerfile", testDockerfile), PlanOptions{}, func(t *testing.T, dir string, p Planned) {
			if p.ContextDir != filepath.Join(dir, "sub") || p.spec.dockerfileDir != filepath.Join(dir, "build") || p.spec.attrs["filename"] != "App.Dockerfile" {
				t.Errorf("context %s, dockerfile dir %s, attrs %v", p.ContextDir, p.spec.dockerfileDir, p.spec.attrs)
			}
		}},
		{"dockerfile_inline", with("services:\n  web:\n    build:\n      context: .\n      dockerfile_inline: |\n        FROM busybox\n        RUN true\n"), PlanOptions{}, func(t *testing.T, dir string, p Planned) {
			if p.spec.inline != "FROM busybox\nRUN true\n" || p.spec.dockerfileName != "Dockerfile" {
				t.Errorf("inline %q name %q", p.spec.inline, p.spec.dockerfileName)
			}
		}},
		{"target", with("services:\n  web:\n    build:\n      context: .\n      target: base\n"), PlanOptions{}, func(t *testing.T, dir string, p Planned) {
			if p.spec.attrs["target"] != "base" {
				t.Errorf("attrs %v", p.spec.attrs)
			}
		}},
		{"args map", with("services:\n  web:\n    build:\n      context: .\n      args:\n        A: one\n        B: ${FROM_ENV}\n"), PlanOptions{}, func(t *testing.T, dir string, p Planned) {
			if p.spec.attrs["build-arg:A"] != "one" || p.spec.attrs["build-arg:B"] != "env-value" {
				t.Errorf("attrs %v", p.spec.attrs)
			}
		}},
		{"args list", with("services:\n  web:\n    build:\n      context: .\n      args:\n        - A=one\n        - FROM_ENV\n        - UNSET_ANYWHERE\n"), PlanOptions{}, func(t *testing.T, dir string, p Planned) {
			if p.spec.attrs["build-arg:A"] != "one" || p.spec.attrs["build-arg:FROM_ENV"] != "env-value" {
				t.Errorf("attrs %v", p.spec.attrs)
			}
			if _, ok := p.spec.attrs["build-arg:UNSET_ANYWHERE"]; ok {
				t.Errorf("an arg set nowhere is passed: %v", p.spec.attrs)
			}
		}},
		{"labels", with("services:\n  web:\n    build:\n      context: .\n      labels:\n        com.example.x: y\n"), PlanOptions{}, func(t *testing.T, dir string, p Planned) {
			if p.spec.attrs["label:com.example.x"] != "y" {
				t.Errorf("attrs %v", p.spec.attrs)
			}
		}},
		{"tags and image in the registry", with("services:\n  web:\n    image: 127.0.0.1:5100/proj/web:v1\n    build:\n      context: .\n      tags:\n        - ergomake-registry.ergomake-system.svc:5000/other:2\n        - docker.io/me/web:3\n"), PlanOptions{}, func(t *testing.T, dir string, p Planned) {
			want := []string{testReg.Push + "/proj/web:v1", testReg.Push + "/other:2"}
			if !reflect.DeepEqual(p.Names, want) {
				t.Errorf("names %v, want %v", p.Names, want)
			}
			if len(p.Warnings) != 1 || p.Warnings[0].Key != "build.tags.1" || !strings.Contains(p.Warnings[0].Message, "docker.io/me/web:3") {
				t.Errorf("warnings %v", p.Warnings)
			}
		}},
		{"image elsewhere", with("services:\n  web:\n    image: myorg/web:1\n    build: .\n"), PlanOptions{}, func(t *testing.T, dir string, p Planned) {
			if len(p.Names) != 0 || len(p.Warnings) != 1 || p.Warnings[0].Key != "image" ||
				!strings.Contains(p.Warnings[0].Message, "127.0.0.1:5100/proj/web@<digest>") {
				t.Errorf("names %v warnings %v", p.Names, p.Warnings)
			}
		}},
		{"no_cache pull", with("services:\n  web:\n    build:\n      context: .\n      no_cache: true\n      pull: true\n"), PlanOptions{}, func(t *testing.T, dir string, p Planned) {
			if v, ok := p.spec.attrs["no-cache"]; !ok || v != "" || p.spec.attrs["image-resolve-mode"] != "pull" {
				t.Errorf("attrs %v", p.spec.attrs)
			}
		}},
		{"no_cache_filter", with("services:\n  web:\n    build:\n      context: .\n      no_cache_filter: [base]\n"), PlanOptions{}, func(t *testing.T, dir string, p Planned) {
			if p.spec.attrs["no-cache"] != "base" {
				t.Errorf("attrs %v", p.spec.attrs)
			}
		}},
		{"network none", with("services:\n  web:\n    build:\n      context: .\n      network: none\n"), PlanOptions{}, func(t *testing.T, dir string, p Planned) {
			if p.spec.attrs["force-network-mode"] != "none" || len(p.Warnings) != 0 {
				t.Errorf("attrs %v warnings %v", p.spec.attrs, p.Warnings)
			}
		}},
		{"network host", with("services:\n  web:\n    build:\n      context: .\n      network: host\n"), PlanOptions{}, func(t *testing.T, dir string, p Planned) {
			if p.spec.attrs["force-network-mode"] != "host" || !slices.Equal(p.spec.entitlement, []string{"network.host"}) {
				t.Errorf("attrs %v entitlements %v", p.spec.attrs, p.spec.entitlement)
			}
		}},
		{"network other", with("services:\n  web:\n    build:\n      context: .\n      network: mynet\n"), PlanOptions{}, func(t *testing.T, dir string, p Planned) {
			if _, ok := p.spec.attrs["force-network-mode"]; ok || len(p.Warnings) != 1 || p.Warnings[0].Key != "build.network" {
				t.Errorf("attrs %v warnings %v", p.spec.attrs, p.Warnings)
			}
		}},
		{"shm_size", with("services:\n  web:\n    build:\n      context: .\n      shm_size: 2gb\n"), PlanOptions{}, func(t *testing.T, dir string, p Planned) {
			if p.spec.attrs["shm-size"] != "2147483648" {
				t.Errorf("attrs %v", p.spec.attrs)
			}
		}},
		{"extra_hosts", with("services:\n  web:\n    build:\n      context: .\n      extra_hosts:\n        - somehost=162.242.195.82\n        - otherhost:50.31.209.229\n"), PlanOptions{}, func(t *testing.T, dir string, p Planned) {
			if p.spec.attrs["add-hosts"] != "otherhost=50.31.209.229,somehost=162.242.195.82" {
				t.Errorf("attrs %v", p.spec.attrs)
			}
		}},
		{"ulimits", with("services:\n  web:\n    build:\n      context: .\n      ulimits:\n        nproc: 65535\n        nofile:\n          soft: 20000\n          hard: 40000\n"), PlanOptions{}, func(t *testing.T, dir string, p Planned) {
			if p.spec.attrs["ulimit"] != "nofile=20000:40000,nproc=65535:65535" {
				t.Errorf("attrs %v", p.spec.attrs)
			}
		}},
		{"platforms default", with("services:\n  web:\n    build: .\n"), PlanOptions{Platforms: []string{"linux/amd64"}}, func(t *testing.T, dir string, p Planned) {
			if p.spec.attrs["platform"] != "linux/amd64" || !slices.Equal(p.Platforms, []string{"linux/amd64"}) {
				t.Errorf("attrs %v", p.spec.attrs)
			}
		}},
		{"platforms", with("services:\n  web:\n    platform: linux/arm64\n    build:\n      context: .\n      platforms: [linux/amd64, linux/arm64]\n"), PlanOptions{Platforms: []string{"linux/amd64"}}, func(t *testing.T, dir string, p Planned) {
			if p.spec.attrs["platform"] != "linux/amd64,linux/arm64" {
				t.Errorf("attrs %v", p.spec.attrs)
			}
		}},
		{"service platform", with("services:\n  web:\n    platform: linux/arm64\n    build: .\n"), PlanOptions{Platforms: []string{"linux/amd64"}}, func(t *testing.T, dir string, p Planned) {
			if p.spec.attrs["platform"] != "linux/arm64" {
				t.Errorf("attrs %v", p.spec.attrs)
			}
		}},
		{"cache_from cache_to", with("services:\n  web:\n    build:\n      context: .\n      cache_from:\n        - example.com/cache:web\n        - type=registry,ref=example.com/c2,mode=max\n      cache_to:\n        - type=inline\n"), PlanOptions{}, func(t *testing.T, dir string, p Planned) {
			wantFrom := []client.CacheOptionsEntry{
				{Type: "registry", Attrs: map[string]string{"ref": "example.com/cache:web"}},
				{Type: "registry", Attrs: map[string]string{"ref": "example.com/c2", "mode": "max"}},
			}
			wantTo := []client.CacheOptionsEntry{{Type: "inline", Attrs: map[string]string{}}}
			if !reflect.DeepEqual(p.spec.cacheFrom, wantFrom) || !reflect.DeepEqual(p.spec.cacheTo, wantTo) {
				t.Errorf("cache from %v to %v", p.spec.cacheFrom, p.spec.cacheTo)
			}
		}},
		{"additional_contexts", with("services:\n  base:\n    build:\n      context: .\n      target: base\n  web:\n    build:\n      context: .\n      additional_contexts:\n        assets: ./assets\n        img: docker-image://busybox:latest\n        parent: service:base\n", "assets/a.css", "x"), PlanOptions{}, func(t *testing.T, dir string, p Planned) {
			if p.spec.attrs["context:assets"] != "local:ctx0" || p.spec.locals["ctx0"] != filepath.Join(dir, "assets") {
				t.Errorf("attrs %v locals %v", p.spec.attrs, p.spec.locals)
			}
			if p.spec.attrs["context:img"] != "docker-image://busybox:latest" || p.spec.serviceCtx["parent"] != "base" || !slices.Equal(p.After, []string{"base"}) {
				t.Errorf("attrs %v service contexts %v after %v", p.spec.attrs, p.spec.serviceCtx, p.After)
			}
		}},
		{"secrets", with("services:\n  web:\n    build:\n      context: .\n      secrets:\n        - token\n        - source: envsecret\n          target: npmrc\nsecrets:\n  token:\n    file: ./token.txt\n  envsecret:\n    environment: SECRET_ENV\n", "token.txt", "t0ken"), PlanOptions{}, func(t *testing.T, dir string, p Planned) {
			want := []secretsprovider.Source{{ID: "token", FilePath: filepath.Join(dir, "token.txt")}, {ID: "npmrc", Env: "SECRET_ENV"}}
			if !reflect.DeepEqual(p.spec.secrets, want) {
				t.Errorf("secrets %+v, want %+v", p.spec.secrets, want)
			}
		}},
		{"ssh", with("services:\n  web:\n    build:\n      context: .\n      ssh:\n        - default\n        - key=/home/me/.ssh/id_ed25519\n"), PlanOptions{}, func(t *testing.T, dir string, p Planned) {
			want := []sshprovider.AgentConfig{{ID: "default"}, {ID: "key", Paths: []string{"/home/me/.ssh/id_ed25519"}}}
			if !reflect.DeepEqual(p.spec.ssh, want) {
				t.Errorf("ssh %+v, want %+v", p.spec.ssh, want)
			}
		}},
		{"ignored keys", with("services:\n  web:\n    build:\n      context: .\n      privileged: true\n      isolation: hyperv\n      entitlements: [network.host]\n      provenance: \"true\"\n      cache_to: [type=local,dest=/tmp/c]\n"), PlanOptions{}, func(t *testing.T, dir string, p Planned) {
			var keys []string
			for _, w := range p.Warnings {
				keys = append(keys, w.Key)
				if w.File != filepath.Join(dir, "compose.yaml") || w.Service != "web" {
					t.Errorf("warning %+v does not name file and service", w)
				}
			}
			slices.Sort(keys)
			if !slices.Equal(keys, []string{"build.cache_to.0", "build.entitlements", "build.isolation", "build.privileged", "build.provenance"}) {
				t.Errorf("warnings %v", keys)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir, p := planOne(t, tc.files, tc.opts)
			tc.check(t, dir, p)
		})
	}
}

// TestPlanOrder: a service comes after those it names, which Plan adds.
func TestPlanOrder(t *testing.T) {
	_, p := project(t, map[string]string{
		"compose.yaml": "services:\n  web:\n    build:\n      context: .\n      additional_contexts:\n        b: service:base\n  base:\n    build: .\n  db:\n    image: postgres\n",
		"Dockerfile":   testDockerfile,
	})
	plans, err := Plan(p, []string{"web"}, testReg, PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, pl := range plans {
		got = append(got, pl.Service)
	}
	if !slices.Equal(got, []string{"base", "web"}) {
		t.Fatalf("order %v, want base, web", got)
	}
	// A change to base changes web's key.
	all, err := Plan(p, nil, testReg, PlanOptions{})
	if err != nil || len(all) != 2 {
		t.Fatalf("Plan(all) = %v, %v", all, err)
	}
	p.Services["base"].Build.Args = types.MappingWithEquals{"X": ptr("1")}
	again, err := Plan(p, nil, testReg, PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if again[0].Key == all[0].Key || again[1].Key == all[1].Key {
		t.Fatalf("keys did not change with base's args: %s %s -> %s %s", all[0].Key, all[1].Key, again[0].Key, again[1].Key)
	}
}

func ptr(s string) *string { return &s }

// TestContentKey: the key follows what is sent, not what is ignored.
func TestContentKey(t *testing.T) {
	files := map[string]string{
		"compose.yaml":            "services:\n  web:\n    build: .\n",
		"Dockerfile":              testDockerfile,
		".dockerignore":           "# comment\nnode_modules\n*.log\n!keep.log\n",
		"src/main.go":             "package main",
		"node_modules/x/index.js": "x",
		"debug.log":               "log",
		"keep.log":                "kept",
	}
	dir, p := project(t, files)
	key := func() string {
		t.Helper()
		plans, err := Plan(p, nil, testReg, PlanOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return plans[0].Key
	}
	write := func(name, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	k0 := key()
	if k0 != key() {
		t.Fatal("the key is not stable")
	}
	for _, ignored := range []string{"node_modules/x/index.js", "node_modules/y/new.js", "debug.log", "other.log"} {
		write(ignored, "changed")
		if k := key(); k != k0 {
			t.Errorf("changing ignored %s changed the key", ignored)
		}
	}
	steps := []struct{ what, file, content string }{
		{"an included file", "src/main.go", "package main // changed"},
		{"a new file", "src/new.go", "package main"},
		{"a re-included file", "keep.log", "changed"},
		{"the Dockerfile", "Dockerfile", testDockerfile + "RUN true\n"},
		{"the .dockerignore", ".dockerignore", "node_modules\n"},
		{"the Dockerfile's own ignore file", "Dockerfile.dockerignore", "node_modules\n*.log\n"},
	}
	prev := key()
	for _, s := range steps {
		write(s.file, s.content)
		k := key()
		if k == prev {
			t.Errorf("changing %s (%s) did not change the key", s.what, s.file)
		}
		prev = k
	}
	// Dockerfile.dockerignore wins over .dockerignore: debug.log is now
	// ignored again by it, so changing it changes nothing.
	write("debug.log", "changed again")
	if k := key(); k != prev {
		t.Errorf("Dockerfile.dockerignore is not the one applied")
	}
	// A mode change is a change.
	if err := os.Chmod(filepath.Join(dir, "src/main.go"), 0o755); err != nil {
		t.Fatal(err)
	}
	if k := key(); k == prev {
		t.Errorf("a mode change did not change the key")
	}
	// Args, target, platforms are in the key.
	prev = key()
	p.Services["web"].Build.Args = types.MappingWithEquals{"V": ptr("1")}
	if k := key(); k == prev {
		t.Errorf("args are not in the key")
	}
	prev = key()
	p.Services["web"].Build.Target = "base"
	if k := key(); k == prev {
		t.Errorf("target is not in the key")
	}
	prev = key()
	plans, _ := Plan(p, nil, testReg, PlanOptions{Platforms: []string{"linux/arm64"}})
	if plans[0].Key == prev {
		t.Errorf("platforms are not in the key")
	}
	// Nor no_cache: it says how to build, not what.
	prev = key()
	p.Services["web"].Build.NoCache = true
	if k := key(); k != prev {
		t.Errorf("no_cache changed the key")
	}
}

// TestPlanBadInput: each fails with a *compose.Error naming file, service
// and key.
func TestPlanBadInput(t *testing.T) {
	tests := []struct {
		name, compose string
		files         map[string]string
		key, msg      string
	}{
		{"context missing", "services:\n  web:\n    build: ./nope\n", nil, "build.context", "does not exist"},
		{"context is a file", "services:\n  web:\n    build: ./afile\n", map[string]string{"afile": "x"}, "build.context", "is not a folder"},
		{"git context", "services:\n  web:\n    build: https://github.com/docker/welcome.git#main\n", nil, "build.context", "clone it"},
		{"git ssh context", "services:\n  web:\n    build: git@github.com:docker/welcome.git\n", nil, "build.context", "remote (git or URL) context"},
		{"dockerfile missing", "services:\n  web:\n    build:\n      context: .\n      dockerfile: Nope.Dockerfile\n", nil, "build.dockerfile", "Nope.Dockerfile does not exist"},
		{"dockerfile syntax", "services:\n  web:\n    build: .\n", map[string]string{"Dockerfile": "FROM busybox\nRUN echo <<EOF\n"}, "build.dockerfile", "not valid"},
		{"inline syntax", "services:\n  web:\n    build:\n      context: .\n      dockerfile_inline: \"FROM busybox\\nRUN <<EOT\\n\"\n", nil, "build.dockerfile_inline", "not valid"},
		{"unknown target", "services:\n  web:\n    build:\n      context: .\n      target: prod\n", nil, "build.target", `no stage "prod" (stages: base, final)`},
		{"secret file missing", "services:\n  web:\n    build:\n      context: .\n      secrets: [s]\nsecrets:\n  s:\n    file: ./missing.txt\n", nil, "build.secrets.0", "does not exist"},
		{"bad cache", "services:\n  web:\n    build:\n      context: .\n      cache_from: [type=floppy,src=/tmp/cache]\n", nil, "build.cache_from.0", `unknown cache type "floppy"`},
		{"context cycle", "services:\n  a:\n    build:\n      context: .\n      additional_contexts:\n        b: service:web\n  web:\n    build:\n      context: .\n      additional_contexts:\n        a: service:a\n", nil, "build.additional_contexts", "cycle"},
		{"additional folder missing", "services:\n  web:\n    build:\n      context: .\n      additional_contexts:\n        x: ./gone\n", nil, "build.additional_contexts.x", "does not exist"},
		{"bad platform", "services:\n  web:\n    build:\n      context: .\n      platforms: [amd64]\n", nil, "build.platforms", "not a platform"},
		{"bad tag", "services:\n  web:\n    build:\n      context: .\n      tags: [\"UPPER/Case:x\"]\n", nil, "build.tags.0", "not an image reference"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{"compose.yaml": tc.compose, "Dockerfile": testDockerfile}
			for k, v := range tc.files {
				files[k] = v
			}
			dir, p := project(t, files)
			_, err := Plan(p, nil, testReg, PlanOptions{})
			var ce *compose.Error
			if !errors.As(err, &ce) {
				t.Fatalf("Plan = %v (%T); want a *compose.Error", err, err)
			}
			if ce.File != filepath.Join(dir, "compose.yaml") || ce.Service == "" || ce.Key != tc.key || !strings.Contains(ce.Msg, tc.msg) {
				t.Fatalf("error %q (file %q, service %q, key %q); want key %q and %q", err, ce.File, ce.Service, ce.Key, tc.key, tc.msg)
			}
			if !strings.HasPrefix(err.Error(), ce.File) {
				t.Errorf("the message does not start with the file: %q", err)
			}
		})
	}
	// Not a build service; no registry.
	_, p := project(t, map[string]string{"compose.yaml": "services:\n  db:\n    image: postgres\n"})
	if _, err := Plan(p, []string{"db"}, testReg, PlanOptions{}); err == nil || !strings.Contains(err.Error(), "no build section") {
		t.Errorf("Plan(db) = %v", err)
	}
	if _, err := Plan(p, []string{"nope"}, testReg, PlanOptions{}); err == nil || !strings.Contains(err.Error(), `no such service: "nope"`) {
		t.Errorf("Plan(nope) = %v", err)
	}
	if _, err := Plan(p, nil, Registry{}, PlanOptions{}); err == nil {
		t.Errorf("Plan without a registry succeeded")
	}
}

// TestPlanFixtures: every shared fixture with build: plans, or fails with
// one clear error naming its file.
func TestPlanFixtures(t *testing.T) {
	root, all := fixtures.Load(t)
	planned, failed := 0, 0
	for _, f := range all {
		dir := filepath.Join(root, f.Path)
		p, err := compose.Load(context.Background(), compose.Options{WorkingDir: dir, Files: f.Files, EnvFiles: f.EnvFiles, Environ: f.Environ()})
		if err != nil {
			continue // translate's fixture test covers loading
		}
		has := false
		for _, s := range p.Services {
			has = has || s.Build != nil
		}
		if !has {
			continue
		}
		plans, err := func() (pl []Planned, err error) {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("%s: panic: %v", f.Path, r)
				}
			}()
			return Plan(p, nil, testReg, PlanOptions{Platforms: []string{"linux/amd64"}})
		}()
		if err != nil {
			failed++
			var ce *compose.Error
			if !errors.As(err, &ce) || ce.File == "" || ce.Service == "" || ce.Key == "" || strings.Contains(err.Error(), "\n") {
				t.Errorf("%s: unclear error %q", f.Path, err)
			}
			t.Logf("%s: %v", f.Path, strings.ReplaceAll(err.Error(), dir+string(filepath.Separator), ""))
			continue
		}
		planned++
		checkPlans(t, f.Path, plans)
	}
	t.Logf("%d fixtures with build: plan, %d fail with an error", planned, failed)
	if planned == 0 {
		t.Error("no fixture planned")
	}
}

// TestPlanFixturesLenient: with Lenient (render), every shared fixture
// with build: plans, but for a remote context.
func TestPlanFixturesLenient(t *testing.T) {
	root, all := fixtures.Load(t)
	for _, f := range all {
		dir := filepath.Join(root, f.Path)
		p, err := compose.Load(context.Background(), compose.Options{WorkingDir: dir, Files: f.Files, EnvFiles: f.EnvFiles, Environ: f.Environ()})
		if err != nil {
			continue
		}
		plans, err := Plan(p, nil, testReg, PlanOptions{Lenient: true})
		if err != nil {
			if !strings.Contains(err.Error(), "remote (git or URL) context") {
				t.Errorf("%s: %v", f.Path, err)
			}
			continue
		}
		checkPlans(t, f.Path, plans)
	}
}

func checkPlans(t *testing.T, fixture string, plans []Planned) {
	t.Helper()
	{
		for _, pl := range plans {
			if pl.Key == "" || !strings.HasPrefix(pl.PullRef, "127.0.0.1:5100/") {
				t.Errorf("%s: service %s: plan %+v", fixture, pl.Service, pl)
			}
		}
	}
}
