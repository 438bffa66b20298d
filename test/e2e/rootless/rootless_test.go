//go:build e2e

// Package rootless is the end-to-end test of the rootless builder (`ergomake install
// --builder-mode rootless`) on the local cluster. It reinstalls the builder that every other
// end-to-end test shares, so it is a package of its own, which make test-e2e runs alone after the
// others (mk/cluster.mk), and it puts the builder back as it found it when it ends.
package rootless

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/ergomake/ergomake/internal/clustersettings"
	"github.com/ergomake/ergomake/internal/install"
	"github.com/ergomake/ergomake/internal/kube"
	"github.com/ergomake/ergomake/internal/testutil/cluster"
	"github.com/ergomake/ergomake/internal/testutil/freeport"
	"github.com/ergomake/ergomake/internal/testutil/syncbuf"
	"github.com/ergomake/ergomake/internal/testutil/testapp"
)

// rootlessImage is the rootless builder image make cluster-up builds from source and loads
// (make builder-rootless-image, hack/cluster/buildkit/image.sh --rootless).
const rootlessImage = "ergomake.test/buildkit:" + install.BuildKitVersion + "-rootless"

// exclusiveEnv must be 1 for the test to run: a go test ./... or ./test/e2e/... that runs it
// together with other end-to-end tests would pull the shared builder from under their builds.
const exclusiveEnv = "ERGOMAKE_E2E_EXCLUSIVE"

// privilegedImage is the privileged builder image make cluster-up installs (make builder-image): what
// the test restores when it finds the builder not privileged (a run killed before its cleanup).
const privilegedImage = "ergomake.test/ergomake-builder:dev"

// The project: stages, ARG, ENV, COPY (from the context and from a stage) and RUN, from the test
// image and busybox, which the in-cluster registry serves through the builder's mirrors.
const (
	compose = `
services:
  web:
    build:
      context: .
      args:
        GREETING: hi
    ports: ["${WEB_PORT}:8080"]
`
	dockerfile = `ARG GREETING=hello
FROM ergomake.test/testapp:latest AS base
ARG GREETING
ENV APP_GREETING=${GREETING}
COPY message.txt /srv/message.txt
RUN echo "$APP_GREETING from the rootless builder" > /srv/greeting.txt && cat /srv/message.txt >> /srv/greeting.txt

FROM busybox AS tools
RUN echo built-with-busybox > /tools.txt

FROM base
COPY --from=tools /tools.txt /srv/tools.txt
RUN cat /srv/greeting.txt /srv/tools.txt
ENV SERVICE=rootless-web PORTS=8080
`
	wantFiles = "hi from the rootless builder\na file from the context\nbuilt-with-busybox\n"
)

// TestRootlessBuilder: `ergomake install --builder-mode rootless` with the rootless image built
// from source runs buildkitd unprivileged, as uid 1000 (RootlessKit's user namespace maps it to
// root), and `up` builds a Dockerfile with stages, ARG, ENV, COPY and RUN on it and runs the result,
// which answers on localhost. The privileged builder is put back at the end.
func TestRootlessBuilder(t *testing.T) {
	if os.Getenv(exclusiveEnv) != "1" {
		t.Skipf("it reinstalls the builder every other end-to-end test shares: it runs only alone, with %s=1 (make test-e2e does so after the others)", exclusiveEnv)
	}
	cfg := cluster.Config(t)
	cs := cluster.Clientset(t, cfg)
	ns := install.DefaultNamespace
	needImage(t, cs, rootlessImage)
	cur := currentInstall(t, cs, ns)
	start := time.Now()
	bin := ergomake(t, cur.version)
	t.Logf("ergomake built in %s", time.Since(start).Round(time.Second))
	kubecfg := cluster.KubeconfigPath(t)

	t.Cleanup(func() {
		if t.Failed() {
			cluster.DumpNamespace(t, cs, ns)
		}
		// the builder as it was (privileged) for every other test, whatever happened
		start := time.Now()
		out, code := runBin(t, bin, kubecfg, "", nil, 4*time.Minute, append([]string{"install"}, cur.args(false)...)...)
		if code != 0 {
			t.Errorf("restoring the privileged builder: install exited %d\n%s", code, out)
		}
		if s, err := clustersettings.Read(context.Background(), cs, ns); err != nil || s.BuilderMode != string(install.BuilderPrivileged) {
			t.Errorf("after the restore the builder is %q (%v), want privileged", s.BuilderMode, err)
		}
		t.Logf("privileged builder restored in %s", time.Since(start).Round(time.Second))
	})
	start = time.Now()
	out, code := runBin(t, bin, kubecfg, "", nil, 4*time.Minute, append([]string{"install"}, cur.args(true)...)...)
	if code != 0 {
		t.Fatalf("install --builder-mode rootless exited %d\n%s", code, out)
	}
	t.Logf("rootless builder installed and ready in %s", time.Since(start).Round(time.Second))
	if s, err := clustersettings.Read(context.Background(), cs, ns); err != nil || s.BuilderMode != string(install.BuilderRootless) {
		t.Fatalf("settings say builder mode %q (%v), want rootless", s.BuilderMode, err)
	}
	checkUnprivileged(t, cfg, cs, ns)

	// a project built on the rootless builder, up and answering
	dir := t.TempDir()
	port := freeport.Port(t)
	for name, content := range map[string]string{"compose.yaml": compose, "Dockerfile": dockerfile, "message.txt": "a file from the context\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	project := "rootless-" + rand.String(5)
	env := []string{"COMPOSE_PROJECT_NAME=" + project, "WEB_PORT=" + strconv.Itoa(port), "XDG_CONFIG_HOME=" + filepath.Join(dir, "xdg")}
	t.Cleanup(func() {
		start := time.Now()
		if out, code := runBin(t, bin, kubecfg, dir, env, 2*time.Minute, "down"); code != 0 {
			t.Errorf("down exited %d\n%s", code, out)
		}
		t.Logf("down in %s", time.Since(start).Round(time.Second))
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = cs.CoreV1().Namespaces().Delete(ctx, "ergomake-"+project, metav1.DeleteOptions{})
	})
	start = time.Now()
	out, code = runBin(t, bin, kubecfg, dir, env, 4*time.Minute, "up", "-d", "--wait-timeout", "3m")
	if code != 0 {
		t.Fatalf("up -d exited %d\n%s", code, out)
	}
	t.Logf("built and up in %s", time.Since(start).Round(time.Second))
	for _, step := range []string{`RUN echo "hi from the rootless builder"`, "RUN echo built-with-busybox", "RUN cat /srv/greeting.txt /srv/tools.txt"} {
		if !strings.Contains(out, step) {
			t.Errorf("up's build output lacks the step %s:\n%s", step, out)
		}
	}
	if out, code := runBin(t, bin, kubecfg, dir, env, time.Minute, "exec", "web", "cat", "/srv/greeting.txt", "/srv/tools.txt"); code != 0 || !strings.Contains(out, wantFiles) {
		t.Errorf("the built image's files: exit %d\n%s\nwant %q", code, out, wantFiles)
	}

	fwd := startBin(t, bin, kubecfg, dir, env, "forward")
	if !fwd.waitFor("are now bound to localhost", 2*time.Minute) {
		t.Fatalf("forward did not bind the ports:\n%s", fwd.out)
	}
	if r := testapp.MustGet(t, fmt.Sprintf("http://localhost:%d/", port)); r.Service != "rootless-web" {
		t.Errorf("localhost:%d answered %+v, want service rootless-web", port, r)
	}
	_ = fwd.cmd.Process.Signal(syscall.SIGINT)
	if err := fwd.wait(time.Minute); err != nil {
		t.Errorf("forward after SIGINT: %v\n%s", err, fwd.out)
	}
}

// needImage fails the test when the node lacks image (make cluster-up loads it).
func needImage(t *testing.T, cs kubernetes.Interface, image string) {
	t.Helper()
	nodes, err := cs.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes.Items {
		for _, img := range n.Status.Images {
			for _, name := range img.Names {
				if name == image || name == "docker.io/"+image {
					return
				}
			}
		}
	}
	t.Fatalf("no node has %s: run make builder-rootless-image (part of make cluster-up)", image)
}

// installed is what `ergomake install` was last run with on the cluster, read back from what it
// installed, so that the test changes only the builder and puts it back exactly.
type installed struct {
	image, revision                 string
	registryImage, registryRevision string
	version                         string // of the ergomake that installed it, which the settings record
	relayPort                       string
	podSecurity                     string
	builderImage, builderRevision   string
	mirrors                         []string
}

// args are the install flags: the builder rootless (the source-built image) or privileged.
func (c installed) args(rootless bool) []string {
	a := []string{"--image", c.image, "--revision", c.revision, "--registry-image", c.registryImage, "--registry-revision", c.registryRevision,
		"--relay-port", c.relayPort, "--pod-security", c.podSecurity, "--timeout", "3m"}
	if rootless {
		a = append(a, "--builder-mode", string(install.BuilderRootless), "--builder-image", rootlessImage)
	} else {
		a = append(a, "--builder-mode", string(install.BuilderPrivileged), "--builder-image", c.builderImage, "--builder-revision", c.builderRevision)
	}
	for _, m := range c.mirrors {
		a = append(a, "--builder-mirror", m)
	}
	return a
}

// mirrorRE finds the mirrored registry hosts in the builder's buildkitd.toml.
var mirrorRE = regexp.MustCompile(`\[registry\."([^"]+)"\]\s*\n\s*mirrors\s*=`)

func currentInstall(t *testing.T, cs kubernetes.Interface, ns string) installed {
	t.Helper()
	ctx := context.Background()
	s, err := clustersettings.Read(ctx, cs, ns)
	if err != nil || s.BuilderSelector == "" {
		t.Fatalf("the cluster has no builder (settings %+v, %v): run make cluster-up", s, err)
	}
	image := func(name string) (img, rev string) {
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("%s: %v (run make cluster-up)", name, err)
		}
		return d.Spec.Template.Spec.Containers[0].Image, d.Spec.Template.Annotations[install.AnnotationRevision]
	}
	var c installed
	c.image, c.revision = image(install.Name)
	c.registryImage, c.registryRevision = image(install.RegistryName)
	c.builderImage, c.builderRevision = image(install.BuilderName)
	if s.BuilderMode != string(install.BuilderPrivileged) { // left so by a run that did not end: the cluster's default
		c.builderImage = privilegedImage
		key, _ := os.ReadFile(filepath.Join(cluster.Dir(), "images", strings.NewReplacer("/", "_", ":", "_").Replace(privilegedImage)+".key"))
		c.builderRevision = strings.TrimSpace(string(key))
	}
	_, port, err := net.SplitHostPort(s.RegistryPull)
	if err != nil {
		t.Fatalf("registry pull address %q: %v", s.RegistryPull, err)
	}
	c.relayPort, c.podSecurity, c.version = port, s.PodSecurity, s.OperatorVersion
	cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, install.BuilderName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mirrorRE.FindAllStringSubmatch(cm.Data["buildkitd.toml"], -1) {
		c.mirrors = append(c.mirrors, m[1])
	}
	if len(c.mirrors) == 0 {
		t.Fatalf("the builder mirrors no registry: builds here need docker.io and ergomake.test mirrored\n%s", cm.Data["buildkitd.toml"])
	}
	return c
}

// procRE reads the lines checkUnprivileged's command prints: PID NAME UID(real effective saved fs) CAPEFF USERNS.
var procRE = regexp.MustCompile(`(?m)^(\d+) (\S+) Uid: (\d+) (\d+) (\d+) (\d+) CapEff: ([0-9a-f]+) (\S*)$`)

// checkUnprivileged checks the ready builder pod: not privileged, run as 1000 in its spec; in the
// pod, its first process (RootlessKit) runs as uid 1000 with no capabilities, and buildkitd as uid
// 1000 too, in a user namespace of its own; the image's setuid newuidmap maps only the user's ids.
func checkUnprivileged(t *testing.T, cfg *rest.Config, cs kubernetes.Interface, ns string) {
	t.Helper()
	ctx := context.Background()
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: install.BuilderSelector})
	if err != nil {
		t.Fatal(err)
	}
	var pod *corev1.Pod
	for i, p := range pods.Items {
		if p.DeletionTimestamp == nil && cluster.PodReady(&p) {
			pod = &pods.Items[i]
		}
	}
	if pod == nil {
		t.Fatalf("no ready builder pod (%d pods)", len(pods.Items))
	}
	c := pod.Spec.Containers[0]
	if c.Image != rootlessImage {
		t.Errorf("the builder runs %s, want %s", c.Image, rootlessImage)
	}
	if sc := c.SecurityContext; sc == nil || (sc.Privileged != nil && *sc.Privileged) || sc.RunAsUser == nil || *sc.RunAsUser != 1000 {
		t.Errorf("the builder's security context %+v: want unprivileged, user 1000", sc)
	}

	script := `for d in /proc/[0-9]*; do
  echo "${d#/proc/} $(cat $d/comm) $(grep ^Uid: $d/status | tr -s '\t ' ' ') $(grep ^CapEff: $d/status | tr -s '\t ' ' ') $(ls -l $d/ns/user 2>/dev/null | sed 's/.*-> //')"
done`
	var stdout, stderr bytes.Buffer
	kc := &kube.Client{Config: cfg, Kube: cs}
	code, err := kc.Exec(ctx, kube.ExecOptions{Pod: pod, Container: c.Name, Command: []string{"sh", "-c", script}, Stdout: &stdout, Stderr: &stderr})
	if err != nil || code != 0 {
		t.Fatalf("listing the builder's processes: exit %d, %v\n%s%s", code, err, &stdout, &stderr)
	}
	t.Logf("the builder's processes (pid, name, uids, capabilities, user namespace):\n%s", &stdout)
	var podNS, kitNS string
	found := map[string]bool{}
	for _, m := range procRE.FindAllStringSubmatch(stdout.String(), -1) {
		pid, name, uids, capEff, userNS := m[1], m[2], m[3:7], m[7], m[8]
		for _, u := range uids {
			if u != "1000" {
				t.Errorf("process %s (%s) runs with uids %v: want 1000 (seen from the pod; never root)", pid, name, uids)
				break
			}
		}
		switch name {
		case "rootlesskit":
			if pid == "1" {
				podNS = userNS
				if strings.Trim(capEff, "0") != "" {
					t.Errorf("RootlessKit has capabilities %s, want none", capEff)
				}
			}
		case "buildkitd":
			kitNS = userNS
		}
		found[name] = true
	}
	if !found["rootlesskit"] || !found["buildkitd"] {
		t.Fatalf("want rootlesskit and buildkitd among the builder's processes:\n%s", &stdout)
	}
	if podNS == "" || kitNS == "" || podNS == kitNS {
		t.Errorf("buildkitd runs in user namespace %q, the pod's is %q: want one of its own\n%s", kitNS, podNS, &stdout)
	}

	// the setuid newuidmap refuses ids that are not the user's, and maps those that are
	script = `busybox unshare -U sleep 30 & p=$!
for i in 1 2 3 4 5 6 7 8 9 10; do [ "$(ls -l /proc/$p/ns/user | sed 's/.*-> //')" != "$(ls -l /proc/self/ns/user | sed 's/.*-> //')" ] && break; sleep 0.2; done
newuidmap $p 0 0 1 2>&1; echo "root: $?"
newuidmap $p 0 1000 1 1 200000 10 2>&1; echo "others' ids: $?"
newuidmap $p 0 1000 1 1 100000 65536 2>&1; echo "own and subordinate ids: $?"
tr -s ' ' < /proc/$p/uid_map; kill $p`
	stdout.Reset()
	stderr.Reset()
	if code, err := kc.Exec(ctx, kube.ExecOptions{Pod: pod, Container: c.Name, Command: []string{"sh", "-c", script}, Stdout: &stdout, Stderr: &stderr}); err != nil || code != 0 {
		t.Fatalf("newuidmap in the builder: exit %d, %v\n%s%s", code, err, &stdout, &stderr)
	}
	out := stdout.String()
	for _, want := range []string{"root: 1", "others' ids: 1", "own and subordinate ids: 0", " 0 1000 1\n", " 1 100000 65536\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("newuidmap in the builder: want %q in\n%s%s", want, out, &stderr)
		}
	}
}

// ergomake builds cmd/ergomake from this tree, as version (when not empty: the installs then record
// the version the cluster's settings had).
func ergomake(t *testing.T, version string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "ergomake")
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		goBin = "go"
	}
	args := []string{"build", "-o", bin}
	if version != "" {
		args = append(args, "-ldflags", "-X github.com/ergomake/ergomake/internal/build.Version="+version)
	}
	if out, err := exec.Command(goBin, append(args, "github.com/ergomake/ergomake/cmd/ergomake")...).CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/ergomake: %v\n%s", err, out)
	}
	return bin
}

// proc is a running ergomake.
type proc struct {
	cmd  *exec.Cmd
	out  *syncbuf.Buffer
	done chan error
}

// startBin starts `ergomake args...` in dir against the local cluster; it is killed when the
// test ends if still running.
func startBin(t *testing.T, bin, kubecfg, dir string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), out: &syncbuf.Buffer{}, done: make(chan error, 1)}
	p.cmd.Dir = dir
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k != "KUBECONFIG" && !strings.HasPrefix(k, "COMPOSE_") && !strings.HasPrefix(k, "ERGOMAKE_") {
			p.cmd.Env = append(p.cmd.Env, kv)
		}
	}
	p.cmd.Env = append(append(p.cmd.Env, "KUBECONFIG="+kubecfg, "NO_COLOR=1"), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		_ = p.wait(10 * time.Second)
	})
	return p
}

// wait waits for the process to end and returns how it ended.
func (p *proc) wait(timeout time.Duration) error {
	select {
	case err := <-p.done:
		p.done <- err
		return err
	case <-time.After(timeout):
		return fmt.Errorf("still running after %s", timeout)
	}
}

// waitFor waits until the output contains want; false when the process ended or the time ran out first.
func (p *proc) waitFor(want string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if strings.Contains(p.out.String(), want) {
			return true
		}
		select {
		case err := <-p.done:
			p.done <- err
			return strings.Contains(p.out.String(), want)
		case <-time.After(200 * time.Millisecond):
		}
	}
	return false
}

// runBin runs `ergomake args...` to its end and returns its output (stdout and stderr) and exit code.
func runBin(t *testing.T, bin, kubecfg, dir string, env []string, timeout time.Duration, args ...string) (string, int) {
	t.Helper()
	p := startBin(t, bin, kubecfg, dir, env, args...)
	err := p.wait(timeout)
	if err == nil {
		return p.out.String(), 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return p.out.String(), ee.ExitCode()
	}
	t.Fatalf("ergomake %s: %v\n%s", strings.Join(args, " "), err, p.out)
	return "", 0
}
