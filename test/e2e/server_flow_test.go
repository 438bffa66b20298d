//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"

	"github.com/ergomake/ergomake/internal/install"
	"github.com/ergomake/ergomake/internal/iostreams/termtest"
	"github.com/ergomake/ergomake/internal/server"
	"github.com/ergomake/ergomake/internal/testutil/testapp"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// serverFlowCompose is a small project: web answers on a published port as its user's, after
// hello ran once and logged a line.
const serverFlowCompose = `
services:
  web:
    image: ergomake.test/testapp:latest
    environment:
      SERVICE: web-${WHO}
      PORTS: "8080"
    ports:
      - "${WEB_PORT}:8080"
    depends_on:
      hello:
        condition: service_completed_successfully
  hello:
    image: ergomake.test/testapp:latest
    command: ["exit", "0"]
`

// asUser makes the project's ergomake run as u: their config directory (their login), no
// kubeconfig; named name, in the namespace the server gives u.
func (p *upProject) asUser(u *serverUser, name string) {
	p.name = name
	p.ns = server.Namespace(u.name, name)
	p.env = append(p.env, "HOME="+u.home, "XDG_CONFIG_HOME="+filepath.Join(u.home, ".config"),
		"KUBECONFIG="+filepath.Join(u.home, "no-kubeconfig"), "COMPOSE_PROJECT_NAME="+name)
}

// heartbeatOf reads the heartbeat of the project's environment (with the admin's credentials).
func (p *upProject) heartbeatOf() (time.Time, bool) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u, err := p.dyn.Resource(v1alpha1.GroupVersionResource).Namespace(p.ns).Get(ctx, p.name, metav1.GetOptions{})
	if err != nil {
		return time.Time{}, false
	}
	return v1alpha1.EnvHeartbeat(&v1alpha1.ErgomakeEnv{ObjectMeta: metav1.ObjectMeta{Annotations: u.GetAnnotations()}})
}

// TestServerFlow runs up, ps, ls, logs, forward and down through the server with the real binary,
// as two developers who hold no cluster credentials: they bring up the same project at once, each
// in a namespace of their own, and each reaches their own ports on localhost; neither can list,
// read the logs of, forward into or delete the other's; a server pod deleted during a transfer
// lets it finish (the server drains its open streams), the next connection works and the
// environment keeps its heartbeat; a
// token revoked mid-session ends that session within seconds, saying to log in again.
func TestServerFlow(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	s := setupServer(t, ctx)
	suffix := rand.String(5)
	alice, bob := s.newUser(ctx, "e2e-flow-alice-"+suffix), s.newUser(ctx, "e2e-flow-bob-"+suffix)

	name := "e2e-srv-" + suffix
	type dev struct {
		u    *serverUser
		p    *upProject
		port int
		up   *upProc
	}
	devs := []*dev{{u: alice}, {u: bob}}
	for _, d := range devs {
		d.port = freePort(t)
		who := strings.SplitN(d.u.name, "-", 4)[2] // alice, bob
		d.p = newUpProject(t, "e2e-srv", serverFlowCompose, fmt.Sprintf("WEB_PORT=%d", d.port), "WHO="+who)
		d.p.asUser(d.u, name)
	}
	// Both at once.
	for _, d := range devs {
		d.up = d.p.start("up", "--wait-timeout", "4m")
	}
	for _, d := range devs {
		d.up.waitOutput("Environment ready. Remote services are now bound to localhost.", 5*time.Minute)
		if !strings.Contains(d.up.stderr.String(), "Connecting to ergomake server") {
			t.Errorf("%s's up did not go through the server:\n%s", d.u.name, d.up.stderr)
		}
	}
	if devs[0].p.ns == devs[1].p.ns {
		t.Fatalf("alice and bob share namespace %s", devs[0].p.ns)
	}

	t.Run("each reaches their own ports", func(t *testing.T) {
		for _, d := range devs {
			want := "web-" + strings.SplitN(d.u.name, "-", 4)[2]
			if r := testapp.MustGet(t, fmt.Sprintf("http://localhost:%d/", d.port)); r.Service != want {
				t.Errorf("%s's port answered %+v, want %s", d.u.name, r, want)
			}
		}
	})

	t.Run("each lists, ps and logs their own only", func(t *testing.T) {
		for _, d := range devs {
			stdout, stderr, code := d.p.run(time.Minute, "ls", "-o", "json")
			var ls []struct {
				Project, Namespace string
			}
			if code != 0 || json.Unmarshal([]byte(stdout), &ls) != nil || len(ls) != 1 || ls[0].Namespace != d.p.ns || ls[0].Project != name {
				t.Errorf("%s: ls = %d %s %s", d.u.name, code, stdout, stderr)
			}
			stdout, stderr, code = d.p.run(time.Minute, "ps")
			if code != 0 || !strings.Contains(stdout, fmt.Sprintf("%d->8080/tcp", d.port)) {
				t.Errorf("%s: ps = %d\n%s%s", d.u.name, code, stdout, stderr)
			}
			stdout, stderr, code = d.p.run(time.Minute, "logs", "hello")
			if code != 0 || !strings.Contains(stdout, "hello-1 | exiting with 0") {
				t.Errorf("%s: logs hello = %d\n%s%s", d.u.name, code, stdout, stderr)
			}
		}
	})

	t.Run("neither reaches the other's", func(t *testing.T) {
		a, b := devs[0], devs[1]
		// alice names bob's environment the only ways she can: by his namespace as a project name.
		for _, args := range [][]string{{"ps", "-p", b.p.ns}, {"logs", "-p", b.p.ns}, {"forward", "-p", b.p.ns}} {
			stdout, stderr, code := a.p.run(time.Minute, args...)
			if code == 0 || !strings.Contains(stderr, "you have no environment") {
				t.Errorf("alice: ergomake %s = %d\n%s%s", strings.Join(args, " "), code, stdout, stderr)
			}
		}
		if stdout, stderr, code := a.p.run(time.Minute, "down", "-p", b.p.ns); code != 0 || !strings.Contains(stdout, "Nothing to do") {
			t.Errorf("alice: down -p %s = %d\n%s%s", b.p.ns, code, stdout, stderr)
		}
		// bob's is untouched.
		if r := testapp.MustGet(t, fmt.Sprintf("http://localhost:%d/", b.port)); r.Service != "web-bob" {
			t.Errorf("bob's port after alice's attempts: %+v", r)
		}
	})

	t.Run("exec and restart through the server", func(t *testing.T) {
		// alice's and bob's projects, failing this subtest.
		ap, bp := *devs[0].p, *devs[1].p
		ap.t, bp.t = t, t
		a := &dev{u: devs[0].u, p: &ap}
		b := &dev{u: devs[1].u, p: &bp}
		secret := "e2e-secret-" + suffix
		stdout, stderr, code := a.p.execRun(nil, time.Minute, "exec", "web", "--", "sh", "-c", "echo hi; echo err >&2; exit 3", secret)
		if code != 3 || stdout != "hi\n" || stderr != "err\n" {
			t.Errorf("exec: exit %d, stdout %q, stderr %q; want 3, \"hi\\n\", \"err\\n\"", code, stdout, stderr)
		}
		in := strings.Repeat("line\n", 3000) + "last"
		stdout, stderr, code = a.p.execRun(strings.NewReader(in), time.Minute,
			"exec", "-T", "web", "sh", "-c", `n=0; while IFS= read -r l || [ -n "$l" ]; do n=$((n+1)); last=$l; done; echo "$n $last"`)
		if code != 0 || stdout != "3001 last\n" {
			t.Errorf("exec reading stdin: exit %d, stdout %q, stderr %q; want 0, \"3001 last\\n\"", code, stdout, stderr)
		}
		_, stderr, code = a.p.execRun(nil, time.Minute, "exec", "-T", "web", "no-such-command")
		if code != 126 || !strings.HasPrefix(stderr, "error: cannot run no-such-command in service web (pod web-") || !strings.Contains(stderr, "executable file not found") {
			t.Errorf("exec of a command that does not exist: exit %d, stderr %q; want 126 and why", code, stderr)
		}
		_, stderr, code = a.p.execRun(nil, time.Minute, "exec", "nope", "true")
		if code != 1 || !strings.Contains(stderr, "no such service: nope") {
			t.Errorf("exec in an unknown service: exit %d, stderr %q", code, stderr)
		}

		// A terminal, as with a kubeconfig.
		term := termtest.OpenPTY(t)
		var errOut bytes.Buffer
		cmd := exec.Command(a.p.bin, "exec", "web", "sh", "-c", `[ -t 0 ] && [ -t 1 ] && echo tty; exit 4`)
		cmd.Dir, cmd.Env = a.p.dir, a.p.env
		cmd.Stdin, cmd.Stdout, cmd.Stderr = term.Slave, term.Slave, &errOut
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 4 {
			t.Errorf("exec with a terminal: %v, want code 4; stderr %q", err, &errOut)
		}
		if out := term.Output(t); !strings.Contains(out, "tty") {
			t.Errorf("the command did not get a terminal: output %q, stderr %q", out, &errOut)
		}

		// Ctrl-C ends exec at once with 130.
		pr := a.p.start("exec", "-T", "web", "sleep", "60")
		time.Sleep(3 * time.Second)
		pr.signal(syscall.SIGINT)
		if code := pr.wait(15 * time.Second); code != 130 {
			t.Errorf("exec: exit %d after SIGINT, want 130", code)
		}

		// restart replaces web's pod and waits until it is ready again.
		old := map[string]bool{}
		for _, pod := range a.p.servicePods("web") {
			old[string(pod.UID)] = true
		}
		stdout, stderr, code = a.p.execRun(nil, 4*time.Minute, "restart", "web", "--wait-timeout", "3m")
		if code != 0 || !strings.Contains(stderr, "Restarting web") || !strings.Contains(stderr, "web: running") {
			t.Fatalf("restart: exit %d\n%s\n%s", code, stdout, stderr)
		}
		ready := 0
		for _, pod := range a.p.servicePods("web") {
			if old[string(pod.UID)] {
				t.Errorf("pod %s was not replaced", pod.Name)
			}
			if podReady(&pod) {
				ready++
			}
		}
		if ready != 1 {
			t.Errorf("%d of web's pods ready after restart returned, want 1", ready)
		}
		if stdout, stderr, code := a.p.execRun(nil, time.Minute, "exec", "-T", "web", "sh", "-c", "echo again"); code != 0 || stdout != "again\n" {
			t.Errorf("exec after restart: exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
		_, stderr, code = a.p.execRun(nil, time.Minute, "restart", "hello")
		if code != 1 || !strings.Contains(stderr, "service hello is a one-shot service") {
			t.Errorf("restart of a one-shot service: exit %d, stderr %q", code, stderr)
		}

		// bob reaches neither.
		for _, args := range [][]string{{"exec", "-p", a.p.ns, "web", "true"}, {"restart", "-p", a.p.ns, "web"}} {
			stdout, stderr, code := b.p.run(time.Minute, args...)
			if code == 0 || !strings.Contains(stderr, "you have no environment") {
				t.Errorf("bob: ergomake %s = %d\n%s%s", strings.Join(args, " "), code, stdout, stderr)
			}
		}
		wants := []string{"user=" + a.u.name + " action=envs.exec env=" + name + " status=101", "user=" + a.u.name + " action=envs.restart env=" + name + " status=200"}
		logs := s.serverLogsWith(ctx, wants...)
		for _, want := range wants {
			if !strings.Contains(logs, want) {
				t.Errorf("the server's audit has no %q", want)
			}
		}
		if strings.Contains(logs, secret) {
			t.Errorf("the server's log has the command's arguments")
		}
	})

	t.Run("forward binds the ports of a running environment", func(t *testing.T) {
		a := devs[0]
		// alice's project, asking for another local port (hers is held by her up).
		fp := *a.p
		fp.t = t
		fp.env = append(append([]string{}, a.p.env...), fmt.Sprintf("WEB_PORT=%d", freePort(t)))
		fwd := fp.start("forward", "web")
		fwd.waitOutput("are now bound to localhost", time.Minute)
		ports := fwd.localPorts()
		if r := testapp.MustGet(t, fmt.Sprintf("http://localhost:%d/", ports["web/8080"])); r.Service != "web-alice" {
			t.Errorf("forwarded port answered %+v (table %v)", r, ports)
		}
		fwd.signal(syscall.SIGINT)
		if code := fwd.wait(time.Minute); code != 0 {
			t.Errorf("forward exited %d", code)
		}
	})

	t.Run("a server pod deleted during a transfer", func(t *testing.T) {
		a := devs[0]
		before, _ := a.p.heartbeatOf()
		// A transfer of several seconds, read slowly, through the server: the deleted pods'
		// servers stop accepting but let it finish (within their shutdown grace, 25s).
		const size = 48 << 20
		var wg sync.WaitGroup
		var got int64
		var terr error
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get(fmt.Sprintf("http://localhost:%d/bytes?n=%d", a.port, size))
			if err != nil {
				terr = err
				return
			}
			defer resp.Body.Close()
			buf := make([]byte, 64<<10)
			for {
				n, err := resp.Body.Read(buf)
				got += int64(n)
				if err != nil {
					if err != io.EOF {
						terr = err
					}
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
		time.Sleep(2 * time.Second)
		pods, err := s.cs.CoreV1().Pods(install.DefaultNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=" + server.ServiceName})
		if err != nil || len(pods.Items) == 0 {
			t.Fatalf("server pods: %v", err)
		}
		deleted := time.Now()
		for _, p := range pods.Items {
			if err := s.cs.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		wg.Wait()
		if terr != nil || got != size {
			t.Errorf("the transfer through a server pod deleted meanwhile: %d of %d bytes, %v; want it whole (the server drains)", got, size, terr)
		}
		t.Logf("transfer of %d bytes ended %s after its server pods were deleted", got, time.Since(deleted).Round(time.Millisecond))
		// The next connection works (once a new server pod answers).
		deadline := time.Now().Add(2 * time.Minute)
		for {
			r, err := testapp.Get(ctx, fmt.Sprintf("http://localhost:%d/", a.port))
			if err == nil && r.Service == "web-alice" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no connection through the server 2m after its pods were deleted: %v", err)
			}
			time.Sleep(time.Second)
		}
		// The environment keeps its heartbeat.
		for {
			hb, ok := a.p.heartbeatOf()
			if ok && hb.After(deleted) && hb.After(before) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("heartbeat %s (before %s), not renewed since the server pods were deleted at %s", hb, before, deleted)
			}
			time.Sleep(time.Second)
		}
		select {
		case <-a.up.done:
			t.Fatalf("alice's up ended (code %d) when the server's pods went", a.up.code)
		default:
		}
	})

	t.Run("a revoked token ends the session within seconds", func(t *testing.T) {
		b := devs[1]
		s.revoke(ctx, b.u)
		start := time.Now()
		code := b.up.wait(time.Minute)
		took := time.Since(start)
		if code == 0 || !strings.Contains(b.up.stderr.String(), "token revoked") || !strings.Contains(b.up.stderr.String(), "ergomake login") {
			t.Errorf("bob's up after revocation: exit %d\n%s", code, b.up.stderr)
		}
		if took > 30*time.Second {
			t.Errorf("bob's up ended %s after the revocation", took)
		}
		// Any command now says to log in again, in one line.
		_, stderr, code := b.p.run(time.Minute, "ls")
		if code == 0 || !strings.Contains(stderr, "ergomake login") {
			t.Errorf("ls with a revoked token: %d %s", code, stderr)
		}
	})

	t.Run("Ctrl-C tears alice's down", func(t *testing.T) {
		a := devs[0]
		a.up.signal(syscall.SIGINT)
		if code := a.up.wait(3 * time.Minute); code != 0 {
			t.Fatalf("alice's up exited %d after Ctrl-C\n%s", code, a.up.stderr)
		}
		if !a.p.namespaceGone() {
			if ns, err := s.cs.CoreV1().Namespaces().Get(ctx, a.p.ns, metav1.GetOptions{}); err == nil && ns.DeletionTimestamp == nil {
				t.Errorf("alice's namespace %s still there after teardown", a.p.ns)
			}
		}
	})
}

// TestServerBuild runs `up` through the server on a project with a build: service: the context
// goes from this machine through the server to the cluster's builder, and the built image answers.
func TestServerBuild(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	s := setupServer(t, ctx)
	u := s.newUser(ctx, "e2e-build-"+rand.String(5))
	port := freePort(t)
	p := newUpProject(t, "e2e-srvb", `
services:
  web:
    build: ./web
    ports: ["${WEB_PORT}:8080"]
`, fmt.Sprintf("WEB_PORT=%d", port))
	needBuilder(t, p)
	p.asUser(u, p.name)
	writeFiles(t, p.dir, map[string]string{
		"web/Dockerfile": "FROM ergomake.test/testapp:latest\nCOPY index.html /srv/index.html\nENV SERVICE=built-through-server PORTS=8080\n",
		"web/index.html": "<h1>server</h1>\n",
	})
	up := p.start("up", "--wait-timeout", "4m")
	up.waitOutput("Environment ready. Remote services are now bound to localhost.", buildTimeout)
	if r := testapp.MustGet(t, fmt.Sprintf("http://localhost:%d/", port)); r.Service != "built-through-server" {
		t.Errorf("the built service answered %+v", r)
	}
	if d := builtDigests(p.envSpec()); d["web"] == "" {
		t.Errorf("web does not run its built image by digest")
	}
	up.signal(syscall.SIGINT)
	if code := up.wait(3 * time.Minute); code != 0 {
		t.Fatalf("up exited %d after Ctrl-C\n%s", code, up.stderr)
	}

	// --registry through the server: the builder pushes to the user's registry with the
	// credentials this machine's BuildKit session hands it (the server never holds them), and the
	// server stores the pull secret in the user's namespace. This registry serves plain HTTP off
	// loopback, which the node's runtime does not pull from (TestBuildUserRegistry runs such an
	// image through loopback): up fails on the pull, and --keep leaves what it applied to look at.
	reg := startUserRegistry(t, p.cs, "")
	ref := "http://" + reg.host + "/srv"
	p.setEnv("DOCKER_CONFIG=" + reg.dockerConfig(reg.host))
	stdout, stderr, code := p.run(buildTimeout, "build", "--registry", ref, "-o", "json")
	var results []struct{ Service, Image, Digest string }
	if err := json.Unmarshal([]byte(stdout), &results); code != 0 || err != nil || len(results) != 1 ||
		!strings.HasPrefix(results[0].Image, reg.host+"/srv/") {
		t.Fatalf("build --registry through the server exited %d (%v): %s\n%s", code, err, stdout, stderr)
	}
	repo, digest, _ := strings.Cut(strings.TrimPrefix(results[0].Image, reg.host+"/"), "@")
	if code, _, err := reg.get(ctx, "/v2/"+repo+"/manifests/"+digest, true); code != http.StatusOK {
		t.Fatalf("the user's registry has no %s@%s: %d %v", repo, digest, code, err)
	}
	_, stderr, code = p.run(buildTimeout, "up", "--registry", ref, "--keep", "--wait-timeout", "2m")
	if code != 1 || !strings.Contains(stderr, "cannot pull image \""+reg.host+"/srv/") {
		t.Fatalf("up --registry through the server exited %d, want 1 on the plain-HTTP pull\n%s", code, stderr)
	}
	secretName := "ergomake-pull-" + strings.NewReplacer(":", "-").Replace(reg.host)
	secret, err := p.cs.CoreV1().Secrets(p.ns).Get(ctx, secretName, metav1.GetOptions{})
	if err != nil || secret.Type != corev1.SecretTypeDockerConfigJson || !strings.Contains(string(secret.Data[corev1.DockerConfigJsonKey]), reg.host) {
		t.Fatalf("the pull secret %s in %s: %v %+v", secretName, p.ns, err, secret)
	}
	if env := p.envSpec(); len(env.Spec.ImagePullSecrets) != 1 || env.Spec.ImagePullSecrets[0] != secretName {
		t.Errorf("the environment's pull secrets: %v, want [%s]", env.Spec.ImagePullSecrets, secretName)
	}
	if _, stderr, code := p.run(3*time.Minute, "down"); code != 0 || !p.namespaceGone() {
		t.Errorf("down exited %d\n%s", code, stderr)
	}
}
