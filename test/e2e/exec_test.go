//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ergomake/ergomake/internal/iostreams/termtest"
	"github.com/ergomake/ergomake/internal/kube"
	"github.com/ergomake/ergomake/internal/testutil/cluster"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// Two replicas of web, started after a one-shot migrate has completed.
const execCompose = `
services:
  web:
    image: ergomake.test/testapp:latest
    environment:
      SERVICE: web
      PORTS: "8080"
    deploy:
      replicas: 2
    depends_on:
      migrate:
        condition: service_completed_successfully
  migrate:
    image: ergomake.test/testapp:latest
    command: ["exit", "0"]
`

// execRun runs `ergomake args...` in the project's directory with stdin, and returns its output
// and exit code.
func (p *upProject) execRun(stdin io.Reader, timeout time.Duration, args ...string) (stdout, stderr string, code int) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, p.bin, args...)
	cmd.Dir, cmd.Env = p.dir, p.env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		p.t.Fatalf("ergomake %s still running after %s\n--- stdout:\n%s--- stderr:\n%s", strings.Join(args, " "), timeout, &out, &errOut)
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		p.t.Fatal(err)
	}
	return out.String(), errOut.String(), code
}

// servicePods lists the service's pods that are not going away, oldest first (as ergomake
// numbers replicas).
func (p *upProject) servicePods(service string) []corev1.Pod {
	p.t.Helper()
	l, err := p.cs.CoreV1().Pods(p.ns).List(context.Background(), metav1.ListOptions{
		LabelSelector: v1alpha1.LabelEnv + "=" + p.name + "," + v1alpha1.LabelService + "=" + service,
	})
	if err != nil {
		p.t.Fatal(err)
	}
	var pods []corev1.Pod
	for _, pod := range l.Items {
		if pod.DeletionTimestamp == nil && pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed {
			pods = append(pods, pod)
		}
	}
	sort.SliceStable(pods, func(i, j int) bool {
		ti, tj := pods[i].CreationTimestamp, pods[j].CreationTimestamp
		if !ti.Equal(&tj) {
			return ti.Before(&tj)
		}
		return pods[i].Name < pods[j].Name
	})
	return pods
}

func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// TestExecAndRestart brings a project up with `up -d` and drives exec and restart against it:
// output, stderr and exit codes passed through; stdin streamed and closed at its end; --index
// picks each replica; -e and -w; a terminal when stdin and stdout are one, left as it was found;
// the errors for an unknown service, a service that is not running, a replica that does not
// exist; then restart replaces web's pods and waits until they are ready, the operator leaves the
// restart alone when it applies a change, and a one-shot service is refused.
func TestExecAndRestart(t *testing.T) {
	t.Parallel()
	p := newUpProject(t, "e2e-exec", execCompose)
	if stdout, stderr, code := p.run(4*time.Minute, "up", "-d", "--wait-timeout", "3m"); code != 0 {
		t.Fatalf("up -d exited %d\n%s\n%s", code, stdout, stderr)
	}

	t.Run("output and exit code", func(t *testing.T) {
		stdout, stderr, code := p.execRun(nil, time.Minute, "exec", "-T", "web", "sh", "-c", "echo out; echo err >&2; exit 7")
		if code != 7 || stdout != "out\n" || stderr != "err\n" {
			t.Errorf("exit %d, stdout %q, stderr %q; want 7, \"out\\n\", \"err\\n\"", code, stdout, stderr)
		}
		stdout, stderr, code = p.execRun(nil, time.Minute, "exec", "web", "sh", "-c", "echo ok")
		if code != 0 || stdout != "ok\n" {
			t.Errorf("without a terminal and without -T: exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
	})

	t.Run("stdin streamed and closed at its end", func(t *testing.T) {
		in := strings.Repeat("line\n", 3000) + "last"
		stdout, stderr, code := p.execRun(strings.NewReader(in), time.Minute,
			"exec", "-T", "web", "sh", "-c", `n=0; while IFS= read -r l || [ -n "$l" ]; do n=$((n+1)); last=$l; done; echo "$n $last"`)
		if code != 0 || stdout != "3001 last\n" {
			t.Errorf("exit %d, stdout %q, stderr %q; want 0, \"3001 last\\n\"", code, stdout, stderr)
		}
	})

	t.Run("index", func(t *testing.T) {
		pods := p.servicePods("web")
		if len(pods) != 2 {
			t.Fatalf("web has %d pods, want 2", len(pods))
		}
		for i, pod := range pods {
			stdout, stderr, code := p.execRun(nil, time.Minute, "exec", "-T", "--index", strconv.Itoa(i+1), "web", "sh", "-c", "echo $HOSTNAME")
			if code != 0 || strings.TrimSpace(stdout) != pod.Name {
				t.Errorf("--index %d: exit %d, stdout %q, stderr %q; want pod %s", i+1, code, stdout, stderr, pod.Name)
			}
		}
		_, stderr, code := p.execRun(nil, time.Minute, "exec", "--index", "3", "web", "true")
		if code != 1 || !strings.Contains(stderr, "service web has 2 replicas: --index must be between 1 and 2") {
			t.Errorf("--index 3: exit %d, stderr %q", code, stderr)
		}
	})

	t.Run("env and workdir", func(t *testing.T) {
		p.env = append(p.env, "FROM_HERE=local value")
		defer func() { p.env = p.env[:len(p.env)-1] }()
		stdout, stderr, code := p.execRun(nil, time.Minute, "exec", "-T", "-e", "A=x y", "-e", "FROM_HERE", "-e", "NOT_SET",
			"-w", "/tmp", "web", "sh", "-c", `echo "$A|$FROM_HERE|${NOT_SET-unset}|$SERVICE|$(pwd)|$0|$#"`, "zero", "one")
		if want := "x y|local value|unset|web|/tmp|zero|1\n"; code != 0 || stdout != want {
			t.Errorf("exit %d, stdout %q, stderr %q; want %q", code, stdout, stderr, want)
		}
		_, stderr, code = p.execRun(nil, time.Minute, "exec", "-T", "-w", "/nonexistent", "web", "true")
		if code != 126 || !strings.Contains(stderr, "nonexistent") {
			t.Errorf("-w /nonexistent: exit %d, stderr %q; want 126", code, stderr)
		}
		_, stderr, code = p.execRun(nil, time.Minute, "exec", "-u", "root", "web", "id")
		if code != 1 || !strings.Contains(stderr, "Kubernetes exec runs commands as the container's user") {
			t.Errorf("-u root: exit %d, stderr %q", code, stderr)
		}
	})

	t.Run("command not found", func(t *testing.T) {
		// As docker compose: 126, and the runtime's reason.
		_, stderr, code := p.execRun(nil, time.Minute, "exec", "-T", "web", "no-such-command")
		if code != 126 || !strings.HasPrefix(stderr, "error: cannot run no-such-command in service web (pod web-") ||
			!strings.Contains(stderr, "executable file not found") {
			t.Errorf("exit %d, stderr %q; want 126 and why", code, stderr)
		}
		// Through /bin/sh (for -w), not found is the shell's 127.
		_, stderr, code = p.execRun(nil, time.Minute, "exec", "-T", "-w", "/", "web", "no-such-command")
		if code != 127 || !strings.Contains(stderr, "no-such-command") {
			t.Errorf("with -w: exit %d, stderr %q; want 127", code, stderr)
		}
	})

	t.Run("terminal", func(t *testing.T) {
		term := termtest.OpenPTY(t)
		slave := term.Slave
		before, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
		if err != nil {
			t.Fatal(err)
		}
		var errOut bytes.Buffer
		cmd := exec.Command(p.bin, "exec", "web", "sh", "-c", `[ -t 0 ] && [ -t 1 ] && echo tty; exit 3`)
		cmd.Dir, cmd.Env = p.dir, p.env
		cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, &errOut
		err = cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 3 {
			t.Errorf("exit: %v, want code 3; stderr %q", err, &errOut)
		}
		after, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
		if err != nil {
			t.Fatal(err)
		}
		if *after != *before {
			t.Errorf("the terminal was left changed: termios %+v, was %+v", *after, *before)
		}
		out := term.Output(t)
		if !strings.Contains(out, "tty") {
			t.Errorf("the command did not get a terminal: output %q, stderr %q", out, &errOut)
		}
	})

	t.Run("interrupted", func(t *testing.T) {
		// Ctrl-C ends exec at once with 130, even while stdin is still being streamed.
		pr := p.start("exec", "-T", "-e", "SLEEP=60", "web", "/testapp", "exit", "0")
		time.Sleep(3 * time.Second)
		pr.signal(syscall.SIGINT)
		if code := pr.wait(15 * time.Second); code != 130 {
			t.Errorf("exit %d after SIGINT, want 130", code)
		}
	})

	t.Run("errors", func(t *testing.T) {
		_, stderr, code := p.execRun(nil, time.Minute, "exec", "nope", "true")
		if code != 1 || !strings.Contains(stderr, "no such service: nope (the services of project "+p.name+": migrate, web)") {
			t.Errorf("unknown service: exit %d, stderr %q", code, stderr)
		}
		_, stderr, code = p.execRun(nil, time.Minute, "exec", "migrate", "true")
		if code != 1 || !strings.Contains(stderr, "service migrate is not running (completed") {
			t.Errorf("completed one-shot service: exit %d, stderr %q", code, stderr)
		}
		_, stderr, code = p.execRun(nil, time.Minute, "restart", "migrate")
		if code != 1 || !strings.Contains(stderr, "service migrate is a one-shot service") {
			t.Errorf("restart of a one-shot service: exit %d, stderr %q", code, stderr)
		}
		other := newUpProject(t, "e2e-exec-none", execCompose)
		_, stderr, code = other.execRun(nil, time.Minute, "exec", "web", "true")
		if code != 1 || !strings.Contains(stderr, "no environment of project \""+other.name+"\"") {
			t.Errorf("no environment: exit %d, stderr %q", code, stderr)
		}
	})

	t.Run("restart", func(t *testing.T) {
		old := map[types.UID]bool{}
		for _, pod := range p.servicePods("web") {
			old[pod.UID] = true
		}
		stdout, stderr, code := p.execRun(nil, 4*time.Minute, "restart", "--wait-timeout", "3m")
		if code != 0 {
			t.Fatalf("restart exited %d\n%s\n%s", code, stdout, stderr)
		}
		if !strings.Contains(stderr, "migrate: one-shot service, not restarted") || !strings.Contains(stderr, "✓ Restarting web") {
			t.Errorf("restart's progress:\n%s", stderr)
		}
		// Ready again at once, on new pods only.
		pods := p.servicePods("web")
		ready := 0
		for i := range pods {
			if old[pods[i].UID] {
				t.Errorf("pod %s was not replaced", pods[i].Name)
			}
			if podReady(&pods[i]) {
				ready++
			}
		}
		if ready != 2 {
			t.Errorf("%d of web's %d pods are ready after restart returned, want 2", ready, len(pods))
		}
		if stdout, stderr, code := p.execRun(nil, time.Minute, "exec", "-T", "web", "sh", "-c", "echo again"); code != 0 || stdout != "again\n" {
			t.Errorf("exec after restart: exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}

		// The operator applies a change to web with server-side apply: the restart annotation,
		// which it never owns, stays, so the restart is not undone (nor done again).
		deployment := func() *appsv1.Deployment {
			l, err := p.cs.AppsV1().Deployments(p.ns).List(context.Background(), metav1.ListOptions{
				LabelSelector: v1alpha1.LabelEnv + "=" + p.name + "," + v1alpha1.LabelService + "=web",
			})
			if err != nil || len(l.Items) != 1 {
				t.Fatalf("web's deployment: %v (%d found)", err, len(l.Items))
			}
			return &l.Items[0]
		}
		restartedAt := deployment().Spec.Template.Annotations[kube.AnnotationRestartedAt]
		if restartedAt == "" {
			t.Fatalf("no %s annotation on web's pod template", kube.AnnotationRestartedAt)
		}
		envVersion := deployment().Spec.Template.Annotations[v1alpha1.AnnotationEnvSecretVersion]
		changed := strings.Replace(execCompose, "SERVICE: web", "SERVICE: web-v2", 1)
		if err := os.WriteFile(filepath.Join(p.dir, "compose.yaml"), []byte(changed), 0o644); err != nil {
			t.Fatal(err)
		}
		if stdout, stderr, code := p.run(4*time.Minute, "up", "-d", "--wait-timeout", "3m"); code != 0 {
			t.Fatalf("up -d with a change exited %d\n%s\n%s", code, stdout, stderr)
		}
		// The value lives in web's env Secret; a new value gives the pod template a new
		// env-secret-version, which the operator applies.
		cluster.Eventually(t, 2*time.Minute, time.Second, "the operator applying the change", func(ctx context.Context) (bool, string, error) {
			sec, err := p.cs.CoreV1().Secrets(p.ns).Get(ctx, "env-web", metav1.GetOptions{})
			if err != nil {
				return false, "", err
			}
			if got := string(sec.Data["SERVICE"]); got != "web-v2" {
				return false, "SERVICE in env-web is " + got, nil
			}
			v := deployment().Spec.Template.Annotations[v1alpha1.AnnotationEnvSecretVersion]
			return v != "" && v != envVersion, "env-secret-version " + v, nil
		})
		if got := deployment().Spec.Template.Annotations[kube.AnnotationRestartedAt]; got != restartedAt {
			t.Errorf("after the operator applied a change, %s = %q, want %q", kube.AnnotationRestartedAt, got, restartedAt)
		}
	})
}
