//go:build e2e

package imagebuild_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/ergomake/ergomake/internal/clustersettings"
	"github.com/ergomake/ergomake/internal/compose"
	"github.com/ergomake/ergomake/internal/forward"
	"github.com/ergomake/ergomake/internal/imagebuild"
	"github.com/ergomake/ergomake/internal/testutil/cluster"
	"github.com/ergomake/ergomake/internal/testutil/syncbuf"
)

// builderEnv reaches the cluster's builder as ergomake does: the settings,
// the builder's ready pod, a tunnel to its loopback port.
type builderEnv struct {
	reg  imagebuild.Registry
	dial func(ctx context.Context) (net.Conn, error)
}

func setupBuilder(t *testing.T) (*builderEnv, *clusterHandle) {
	t.Helper()
	cfg := cluster.Config(t)
	cs := cluster.Clientset(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := clustersettings.Read(ctx, cs, "")
	if err != nil {
		t.Fatalf("settings: %v", err)
	}
	pd, err := forward.NewPodDialer(cfg, s.Namespace)
	if err != nil {
		t.Fatal(err)
	}
	pod, err := pd.ReadyPod(ctx, s.BuilderSelector)
	if err != nil {
		t.Fatalf("the builder: %v", err)
	}
	return &builderEnv{
		reg: imagebuild.Registry{Push: s.RegistryPush, Pull: s.RegistryPull, Insecure: true},
		dial: func(ctx context.Context) (net.Conn, error) {
			return pd.DialPod(ctx, pod, int32(s.BuilderPort))
		},
	}, &clusterHandle{t: t, cs: cs}
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for p, c := range files {
		f := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func load(t *testing.T, dir, name string) *types.Project {
	t.Helper()
	p, err := compose.Load(context.Background(), compose.Options{WorkingDir: dir, ProjectName: name, Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func nonce() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x", b)
}

const appDockerfile = `ARG GREETING=hello
FROM ergomake.test/testapp:latest AS base
ARG GREETING
ARG NONCE
ENV APP_GREETING=${GREETING}
COPY message.txt /srv/message.txt
RUN echo "$APP_GREETING from the builder $NONCE" > /srv/greeting.txt && cat /srv/message.txt >> /srv/greeting.txt

FROM busybox AS tools
RUN echo built-with-busybox > /tools.txt

FROM base AS final
COPY --from=tools /tools.txt /srv/tools.txt
COPY . /ctx/
RUN if [ -e /ctx/big.bin ] || [ -e /ctx/node_modules ]; then echo "ignored files reached the image"; exit 1; fi; ls /ctx
`

// TestBuildOnCluster builds a project of two services on the cluster's
// builder: a multi-stage Dockerfile FROM the test image (RUN, COPY, ARG,
// ENV, stages, a target) whose .dockerignore keeps a large file and
// node_modules out (not sent, not in the image), and a dockerfile_inline
// service using the first's image as a service: context. The image runs
// by digest. A second Build reuses both without building; a failing RUN
// gives its step and output; cancelling ctx cancels a build.
func TestBuildOnCluster(t *testing.T) {
	env, ch := setupBuilder(t)
	id := nonce()
	dir := t.TempDir()
	big := make([]byte, 24<<20)
	_, _ = rand.Read(big)
	writeFiles(t, dir, map[string]string{
		"compose.yaml": `services:
  web:
    build:
      context: .
      target: final
      args:
        GREETING: hi
        NONCE: ` + id + `
  tools:
    build:
      context: ./tools
      dockerfile_inline: |
        FROM busybox
        COPY --from=web /srv/greeting.txt /greeting.txt
        RUN cat /greeting.txt
      additional_contexts:
        web: service:web
`,
		"Dockerfile":                  appDockerfile,
		".dockerignore":               "big.bin\nnode_modules\n",
		"message.txt":                 "a file from the context " + id + "\n",
		"big.bin":                     string(big),
		"node_modules/pkg/index.js":   strings.Repeat("x", 8<<20),
		"node_modules/pkg/other.json": "{}",
		"tools/.keep":                 "",
	})
	p := load(t, dir, "bt-"+id)
	plans, err := imagebuild.Plan(p, nil, env.reg, imagebuild.PlanOptions{Platforms: []string{"linux/amd64"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(plans) != 2 || plans[0].Service != "web" || plans[1].Service != "tools" {
		t.Fatalf("plans %+v", plans)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	var out syncbuf.Buffer
	start := time.Now()
	res, err := imagebuild.Build(ctx, plans, imagebuild.Options{Dial: env.dial, Registry: env.reg, Out: &out})
	t.Logf("first build: %s\n%s", time.Since(start), out.String())
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	for i, r := range res {
		if r.Service != plans[i].Service || r.Reused || !strings.HasPrefix(r.Digest, "sha256:") ||
			r.Image != strings.TrimSuffix(plans[i].PullRef, ":"+plans[i].Key)+"@"+r.Digest {
			t.Errorf("result %+v for plan %s", r, plans[i].PullRef)
		}
	}
	if cb := res[0].ContextBytes; cb == 0 || cb > 1<<20 {
		t.Errorf("web sent %d bytes of context; want a few (big.bin and node_modules are ignored)", cb)
	}
	for _, want := range []string{"[web] ", "[tools] ", "RUN cat /greeting.txt", "build context:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the display lacks %q", want)
		}
	}

	// The image runs by digest, as built.
	logs := ch.run(res[0].Image, "cat", "/srv/greeting.txt", "/srv/tools.txt")
	for _, want := range []string{"hi from the builder " + id, "a file from the context " + id, "built-with-busybox"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the image's files: %q lacks %q", logs, want)
		}
	}

	// Unchanged: reused, nothing built. A change to an ignored file
	// changes nothing.
	writeFiles(t, dir, map[string]string{"node_modules/pkg/index.js": "changed"})
	plans2, err := imagebuild.Plan(load(t, dir, "bt-"+id), nil, env.reg, imagebuild.PlanOptions{Platforms: []string{"linux/amd64"}})
	if err != nil {
		t.Fatal(err)
	}
	var out2 syncbuf.Buffer
	start = time.Now()
	res2, err := imagebuild.Build(ctx, plans2, imagebuild.Options{Dial: env.dial, Registry: env.reg, Out: &out2})
	t.Logf("second build: %s\n%s", time.Since(start), out2.String())
	if err != nil {
		t.Fatalf("second Build: %v", err)
	}
	for i, r := range res2 {
		if !r.Reused || r.Digest != res[i].Digest || r.Image != res[i].Image {
			t.Errorf("second result %+v; want %s reused", r, res[i].Image)
		}
	}
	if strings.Contains(out2.String(), "RUN ") {
		t.Errorf("a step ran on the second build")
	}

	// Force builds again (from the cache) and gives the same image.
	var out3 syncbuf.Buffer
	res3, err := imagebuild.Build(ctx, plans2[:1], imagebuild.Options{Dial: env.dial, Registry: env.reg, Out: &out3, Force: true})
	if err != nil {
		t.Fatalf("forced Build: %v", err)
	}
	if res3[0].Reused || res3[0].Digest != res[0].Digest {
		t.Errorf("forced result %+v; want built again, digest %s", res3[0], res[0].Digest)
	}
}

func TestBuildFailureAndCancel(t *testing.T) {
	env, _ := setupBuilder(t)
	id := nonce()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"compose.yaml": "services:\n  bad:\n    build:\n      context: bad\n  slow:\n    build:\n      context: slow\n",
		"bad/Dockerfile": "FROM busybox\nRUN echo " + id + "\nRUN echo first-line-of-output && echo the-reason-" + id +
			" && exit 3\n",
		"slow/Dockerfile": "FROM busybox\nRUN echo " + id + " && sleep 600\n",
	})
	p := load(t, dir, "bf-"+id)

	// A failing RUN: its step and output.
	plans, err := imagebuild.Plan(p, []string{"bad"}, env.reg, imagebuild.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var out syncbuf.Buffer
	_, err = imagebuild.Build(ctx, plans, imagebuild.Options{Dial: env.dial, Registry: env.reg, Out: &out})
	t.Logf("failing build: %v\n%s", err, out.String())
	var be *imagebuild.BuildError
	if !errors.As(err, &be) {
		t.Fatalf("Build = %v (%T); want a *BuildError", err, err)
	}
	if be.Service != "bad" || !strings.Contains(be.Step, "RUN echo first-line-of-output") ||
		!strings.Contains(be.Output, "the-reason-"+id) || !strings.Contains(be.Err.Error(), "exit code: 3") {
		t.Errorf("BuildError{Service %q, Step %q, Output %q, Err %v}", be.Service, be.Step, be.Output, be.Err)
	}

	// Cancelling: the build ends at once with ctx's error.
	plans, err = imagebuild.Plan(p, []string{"slow"}, env.reg, imagebuild.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cctx, ccancel := context.WithCancel(ctx)
	var sout syncbuf.Buffer
	done := make(chan error, 1)
	go func() {
		_, err := imagebuild.Build(cctx, plans, imagebuild.Options{Dial: env.dial, Registry: env.reg, Out: &sout})
		done <- err
	}()
	deadline := time.Now().Add(3 * time.Minute)
	for !strings.Contains(sout.String(), "sleep 600") && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(sout.String(), "sleep 600") {
		t.Fatalf("the slow step never started:\n%s", sout.String())
	}
	time.Sleep(2 * time.Second)
	ccancel()
	start := time.Now()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled Build = %v; want context.Canceled", err)
		}
		if d := time.Since(start); d > 20*time.Second {
			t.Errorf("cancelling took %s", d)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("Build did not return 60s after its context was cancelled")
	}
	t.Logf("cancelled build:\n%s", sout.String())
}

// TestBuildNoBuilder: a builder that cannot be reached is one clear error.
func TestBuildNoBuilder(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"compose.yaml": "services:\n  web:\n    build: .\n", "Dockerfile": "FROM busybox\n"})
	plans, err := imagebuild.Plan(load(t, dir, "nb"), nil, imagebuild.Registry{Push: "r:5000"}, imagebuild.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = imagebuild.Build(ctx, plans, imagebuild.Options{Dial: func(ctx context.Context) (net.Conn, error) {
		return nil, fmt.Errorf("%w: no pod matches x", forward.ErrNoReadyPod)
	}})
	if !errors.Is(err, imagebuild.ErrBuilderUnreachable) || !strings.Contains(err.Error(), "no pod matches x") {
		t.Fatalf("Build = %v; want ErrBuilderUnreachable with the dial's reason", err)
	}
}

// clusterHandle runs an image in a pod of a test namespace.
type clusterHandle struct {
	t  *testing.T
	cs kubernetes.Interface
}

// run runs image by its command in a fresh namespace and returns its logs.
func (h *clusterHandle) run(image string, command ...string) string {
	t := h.t
	t.Helper()
	ns := cluster.Namespace(t, h.cs, "imagebuild")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "run", Namespace: ns},
		Spec: corev1.PodSpec{
			RestartPolicy:                 corev1.RestartPolicyNever,
			TerminationGracePeriodSeconds: ptr.To[int64](1),
			Containers:                    []corev1.Container{{Name: "run", Image: image, Command: command, ImagePullPolicy: corev1.PullIfNotPresent}},
		},
	}
	if _, err := h.cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cluster.Eventually(t, 2*time.Minute, time.Second, "the pod of "+image+" to finish", func(ctx context.Context) (bool, string, error) {
		p, err := h.cs.CoreV1().Pods(ns).Get(ctx, "run", metav1.GetOptions{})
		if err != nil {
			return false, "", err
		}
		return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed, string(p.Status.Phase), nil
	})
	raw, err := h.cs.CoreV1().Pods(ns).GetLogs("run", &corev1.PodLogOptions{}).DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}
