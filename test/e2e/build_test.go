//go:build e2e

package e2e

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/ergomake/ergomake/internal/clustersettings"
	"github.com/ergomake/ergomake/internal/testutil/testapp"
	"github.com/ergomake/ergomake/internal/testutil/tree"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// buildTimeout bounds one build or up of these tests: the shared builder has 2 CPUs.
const buildTimeout = 6 * time.Minute

// buildCompose is a project of three built services (a string build:, a target with args, an
// inline Dockerfile) and one pulled image, every one of them the test app under its own name.
const buildCompose = `
services:
  web:
    build: ./web
    ports: ["${WEB_PORT}:8080"]
  api:
    build:
      context: ./api
      target: release
      args:
        VERSION: "7"
    ports: ["${API_PORT}:9000"]
  jobs:
    build:
      context: .
      dockerfile_inline: |
        FROM ergomake.test/testapp:latest
        ENV SERVICE=inline PORTS=7000
    ports: ["${JOBS_PORT}:7000"]
  cache:
    image: ergomake.test/testapp:latest
    environment:
      SERVICE: cache
      PORTS: "6379"
    ports: ["${CACHE_PORT}:6379"]
`

// bigFile is the size of the file .dockerignore keeps out of web's context.
const bigFile = 32 << 20

// writeFiles writes files (path relative to dir → content) under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	tree.Write(t, dir, files)
}

// needBuilder skips nothing: it fails the test when the cluster has no builder, since these
// tests are about it.
func needBuilder(t *testing.T, p *upProject) {
	t.Helper()
	s, err := clustersettings.Read(context.Background(), p.cs, "")
	if err != nil || s.BuilderSelector == "" {
		t.Fatalf("the cluster has no image builder (settings %+v, %v): install it with ergomake install (make cluster-up)", s, err)
	}
}

// envSpec reads the project's ErgomakeEnv.
func (p *upProject) envSpec() *v1alpha1.ErgomakeEnv {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u, err := p.dyn.Resource(v1alpha1.GroupVersionResource).Namespace(p.ns).Get(ctx, p.name, metav1.GetOptions{})
	if err != nil {
		p.t.Fatal(err)
	}
	var env v1alpha1.ErgomakeEnv
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &env); err != nil {
		p.t.Fatal(err)
	}
	return &env
}

// builtDigests are the digests the environment's built services run (their image by digest).
func builtDigests(env *v1alpha1.ErgomakeEnv) map[string]string {
	out := map[string]string{}
	for _, s := range env.Spec.Services {
		if _, d, ok := strings.Cut(s.Image, "@"); ok {
			out[s.Name] = d
		}
	}
	return out
}

// TestUpBuild: `ergomake build` builds the three built services in the cluster (.dockerignore
// keeps a large file and node_modules from being sent or copied in); `up` then reuses every
// image, runs them by digest, and each service answers on localhost as built and reaches its
// peers by name; after a change in web's context, `up` builds web again and reuses the others.
func TestUpBuild(t *testing.T) {
	t.Parallel()
	webPort, apiPort, jobsPort, cachePort := freePort(t), freePort(t), freePort(t), freePort(t)
	p := newUpProject(t, "e2e-build", buildCompose, fmt.Sprintf("WEB_PORT=%d", webPort), fmt.Sprintf("API_PORT=%d", apiPort),
		fmt.Sprintf("JOBS_PORT=%d", jobsPort), fmt.Sprintf("CACHE_PORT=%d", cachePort))
	needBuilder(t, p)
	writeFiles(t, p.dir, map[string]string{
		"web/Dockerfile": `FROM ergomake.test/testapp:latest
COPY . /srv/web
RUN test ! -e /srv/web/node_modules && test ! -e /srv/web/big.bin && test -f /srv/web/index.html
ENV SERVICE=web PORTS=8080
`,
		"web/.dockerignore":                  "node_modules\nbig.bin\n",
		"web/index.html":                     "<h1>one</h1>\n",
		"web/node_modules/left-pad/index.js": strings.Repeat("module.exports = x => x;\n", 4096),
		"api/Dockerfile": `FROM ergomake.test/testapp:latest AS base
ENV PORTS=9000

FROM base AS debug
ENV SERVICE=api-debug

FROM base AS release
ARG VERSION=dev
ENV SERVICE=api-${VERSION}
RUN echo "$VERSION" > /version
`,
	})
	big := make([]byte, bigFile)
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p.dir, "web", "big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}

	// 1. ergomake build: every built service, built and pushed; nothing else created.
	var results []struct {
		Service      string `json:"service"`
		Image        string `json:"image"`
		Digest       string `json:"digest"`
		Reused       bool   `json:"reused"`
		ContextBytes int64  `json:"contextBytes"`
	}
	p.runJSON(buildTimeout, &results, "build")
	built := map[string]string{}
	for _, r := range results {
		built[r.Service] = r.Digest
		if !strings.Contains(r.Image, "@sha256:") || !strings.HasPrefix(r.Digest, "sha256:") {
			t.Errorf("%s: image %q digest %q, want an image by digest", r.Service, r.Image, r.Digest)
		}
		if r.Service == "web" && (r.ContextBytes <= 0 || r.ContextBytes >= 1<<20) {
			t.Errorf("web's context sent %d bytes: want its few small files, not big.bin (%d bytes) nor node_modules", r.ContextBytes, bigFile)
		}
	}
	if len(built) != 3 || built["web"] == "" || built["api"] == "" || built["jobs"] == "" {
		t.Fatalf("build results %+v, want web, api and jobs", results)
	}
	if !p.namespaceGone() {
		t.Errorf("ergomake build created namespace %s", p.ns)
	}

	// 2. up: unchanged images are reused, run by digest.
	_, stderr := p.upDetached(buildTimeout, "--wait-timeout", "4m")
	if strings.Contains(stderr, "COPY . /srv/web") || strings.Contains(stderr, "RUN echo") {
		t.Errorf("up ran build steps for unchanged images:\n%s", stderr)
	}
	env := p.envSpec()
	for svc, d := range builtDigests(env) {
		if d != built[svc] {
			t.Errorf("%s runs digest %q, ergomake build made %q", svc, d, built[svc])
		}
	}
	for _, s := range env.Spec.Services {
		if _, ok := built[s.Name]; ok && (s.Build == nil || s.Build.Digest != built[s.Name] || !strings.HasSuffix(s.Image, "@"+s.Build.Digest)) {
			t.Errorf("%s runs %q, build recorded %+v: want its image by digest, and the build recorded", s.Name, s.Image, s.Build)
		}
	}

	// 3. As built, on localhost, reaching peers by name.
	p.forwarding(func(*upProc) {
		answering(t, map[int]string{webPort: "web", apiPort: "api-7", jobsPort: "inline", cachePort: "cache"})
		for from, to := range map[int]string{webPort: "http://api:9000/", apiPort: "http://jobs:7000/", jobsPort: "http://cache:6379/", cachePort: "http://web:8080/"} {
			r := testapp.MustGet(t, fmt.Sprintf("http://localhost:%d/fetch?url=%s", from, to))
			if r.Status != 200 {
				t.Errorf("localhost:%d fetching %s: %+v", from, to, r)
			}
		}
		out, errOut, code := p.execRun(nil, time.Minute, "exec", "web", "ls", "-a", "/srv/web")
		if code != 0 || !strings.Contains(out, "index.html") || strings.Contains(out, "node_modules") || strings.Contains(out, "big.bin") {
			t.Errorf("ls /srv/web in web: exit %d\n%s%s", code, out, errOut)
		}
	})

	// 4. A change in web's context: up builds web again, reuses api and jobs.
	writeFiles(t, p.dir, map[string]string{"web/index.html": "<h1>two</h1>\n"})
	p.upDetached(buildTimeout, "--wait-timeout", "4m")
	again := builtDigests(p.envSpec())
	if again["web"] == built["web"] || again["api"] != built["api"] || again["jobs"] != built["jobs"] {
		t.Errorf("after a change in web/: digests %v, before %v: want only web's changed", again, built)
	}
	if out, _, _ := p.execRun(nil, time.Minute, "exec", "web", "cat", "/srv/web/index.html"); !strings.Contains(out, "two") {
		t.Errorf("web serves %q after the rebuild", out)
	}

	if _, stderr, code := p.run(3*time.Minute, "down"); code != 0 {
		t.Fatalf("down exited %d\n%s", code, stderr)
	}
}

// TestUpBuildFails: a build that fails exits 1 with the failing step and its output, and leaves
// nothing on the cluster; Ctrl-C during a build cancels it, exits 130 and leaves nothing.
func TestUpBuildFails(t *testing.T) {
	t.Parallel()
	compose := `
services:
  db:
    image: ergomake.test/testapp:latest
  app:
    build: ./app
    depends_on: [db]
`
	t.Run("failing RUN", func(t *testing.T) {
		p := newUpProject(t, "e2e-buildfail", compose)
		needBuilder(t, p)
		writeFiles(t, p.dir, map[string]string{
			"app/Dockerfile": "FROM ergomake.test/testapp:latest\nRUN echo compiling the app && echo 'error: missing semicolon' >&2 && exit 3\n",
		})
		_, stderr, code := p.run(buildTimeout, "up")
		if code != 1 {
			t.Fatalf("up exited %d, want 1\n%s", code, stderr)
		}
		for _, want := range []string{"exit 3", "error: missing semicolon", `"app"`} {
			if !strings.Contains(stderr, want) {
				t.Errorf("stderr does not show %q:\n%s", want, stderr)
			}
		}
		if !p.namespaceGone() || len(p.envsOfProject()) > 0 {
			t.Errorf("a failed build left namespace %s or environment %v", p.ns, p.envsOfProject())
		}
	})
	// Bad input is found before anything reaches the cluster: one error naming the compose file,
	// the service and the key, exit 1, nothing created.
	for _, tc := range []struct {
		name, build string
		files       map[string]string
		want        []string
	}{
		{"context folder missing", "./nope", nil, []string{"compose.yaml", `service "app"`, "build.context", "does not exist"}},
		{"Dockerfile missing", "{context: ./app, dockerfile: Prod.Dockerfile}", map[string]string{"app/Dockerfile": "FROM ergomake.test/testapp:latest\n"},
			[]string{"compose.yaml", `service "app"`, "build.dockerfile", "Prod.Dockerfile does not exist"}},
		{"Dockerfile syntax error", "./app", map[string]string{"app/Dockerfile": "FROM ergomake.test/testapp:latest\nRUN <<EOF\n"},
			[]string{"compose.yaml", `service "app"`, "build.dockerfile", "not valid"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newUpProject(t, "e2e-buildbad", strings.Replace(compose, "build: ./app", "build: "+tc.build, 1))
			writeFiles(t, p.dir, tc.files)
			_, stderr, code := p.run(time.Minute, "up")
			if code != 1 {
				t.Fatalf("up exited %d, want 1\n%s", code, stderr)
			}
			for _, want := range tc.want {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr does not say %q:\n%s", want, stderr)
				}
			}
			if !p.namespaceGone() || len(p.envsOfProject()) > 0 {
				t.Errorf("bad input left namespace %s or environment %v", p.ns, p.envsOfProject())
			}
		})
	}
	t.Run("--no-build of an image never built", func(t *testing.T) {
		p := newUpProject(t, "e2e-nobuild", compose)
		needBuilder(t, p)
		writeFiles(t, p.dir, map[string]string{
			"app/Dockerfile": fmt.Sprintf("FROM ergomake.test/testapp:latest\nENV NONCE=%s\n", p.name),
		})
		_, stderr, code := p.run(buildTimeout, "up", "--no-build")
		if code != 1 || !strings.Contains(stderr, "never built") || !strings.Contains(stderr, `"app"`) {
			t.Fatalf("up --no-build exited %d, want 1 saying app's image was never built\n%s", code, stderr)
		}
		if !p.namespaceGone() || len(p.envsOfProject()) > 0 {
			t.Errorf("up --no-build left namespace %s or environment %v", p.ns, p.envsOfProject())
		}
	})
	t.Run("Ctrl-C during the build", func(t *testing.T) {
		p := newUpProject(t, "e2e-buildint", compose)
		needBuilder(t, p)
		writeFiles(t, p.dir, map[string]string{
			// A fresh random argument: the step cannot come from the cache.
			"app/Dockerfile": fmt.Sprintf("FROM ergomake.test/testapp:latest\nRUN echo %s && sleep 120\n", p.name),
		})
		up := p.start("up")
		up.waitOutput("sleep 120", 3*time.Minute)
		up.signal(syscall.SIGINT)
		if code := up.wait(time.Minute); code != 130 {
			t.Fatalf("up exited %d after Ctrl-C, want 130\n%s", code, up.stderr)
		}
		if !p.namespaceGone() || len(p.envsOfProject()) > 0 {
			t.Errorf("an interrupted build left namespace %s or environment %v", p.ns, p.envsOfProject())
		}
	})
}
