//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ergomake/ergomake/internal/testutil/cluster"
	"github.com/ergomake/ergomake/internal/testutil/testapp"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// The seed's shape: an "elasticsearch" stand-in and a "kibana" stand-in that calls it by name.
// elasticsearch also publishes 9300, where nothing listens inside the pod.
const upSeedCompose = `
services:
  elasticsearch:
    image: ergomake.test/testapp:latest
    environment:
      SERVICE: elasticsearch
      PORTS: "9200"
    ports:
      - "${ES_PORT}:9200"
      - "${DEAD_PORT}:9300"
  kibana:
    image: ergomake.test/testapp:latest
    environment:
      SERVICE: kibana
      PORTS: "5601"
      ELASTICSEARCH_HOSTS: http://elasticsearch:9200
    ports:
      - "${KB_PORT}:5601"
    depends_on:
      - elasticsearch
`

// TestUpSeedProject runs `ergomake up` on the seed's two-service shape and checks, through the
// localhost ports it binds: both services answer with their own content and kibana reaches
// elasticsearch by name; a connection to a port where nothing listens in the pod fails alone; a
// stalled reader does not hold up a small request; a deleted pod is replaced and new connections
// reach the replacement. Then SIGINT: exit 0, and the namespace is gone.
func TestUpSeedProject(t *testing.T) {
	t.Parallel()
	esPort, deadPort, kbPort := freePort(t), freePort(t), freePort(t)
	p := newUpProject(t, "e2e-seed", upSeedCompose,
		fmt.Sprintf("ES_PORT=%d", esPort), fmt.Sprintf("DEAD_PORT=%d", deadPort), fmt.Sprintf("KB_PORT=%d", kbPort))
	up := p.start("up", "--wait-timeout", "3m")
	up.waitOutput("Environment ready. Remote services are now bound to localhost.", 4*time.Minute)
	if !strings.Contains(up.stderr.String(), "Found no existing remote environments") {
		t.Errorf("up did not say it found no existing environment:\n%s", up.stderr)
	}

	ports := up.localPorts()
	for key, want := range map[string]int{"elasticsearch/9200": esPort, "elasticsearch/9300": deadPort, "kibana/5601": kbPort} {
		if ports[key] != want {
			t.Fatalf("%s forwarded to localhost:%d, want %d (table: %v)\n%s", key, ports[key], want, ports, up.stdout)
		}
	}
	es := fmt.Sprintf("http://localhost:%d", esPort)
	kb := fmt.Sprintf("http://localhost:%d", kbPort)

	checkBoth := func(t *testing.T) {
		t.Helper()
		if r := testapp.MustGet(t, es+"/"); r.Service != "elasticsearch" || r.Port != 9200 {
			t.Errorf("elasticsearch answered %+v", r)
		}
		if r := testapp.MustGet(t, kb+"/"); r.Service != "kibana" || r.Port != 5601 {
			t.Errorf("kibana answered %+v", r)
		}
	}

	t.Run("both ports answer, kibana reaches elasticsearch by name", func(t *testing.T) {
		checkBoth(t)
		r := testapp.MustGet(t, kb+"/fetch?url=http://elasticsearch:9200/")
		if r.Status != 200 || !strings.Contains(r.Body, `"service":"elasticsearch"`) {
			t.Errorf("kibana's fetch of http://elasticsearch:9200/ = %+v", r)
		}
		// Both loopback addresses are bound.
		if r := testapp.MustGet(t, fmt.Sprintf("http://[::1]:%d/", esPort)); r.Service != "elasticsearch" {
			t.Errorf("[::1]: %+v", r)
		}
	})

	t.Run("nothing listening in the pod fails alone", func(t *testing.T) {
		for i := 0; i < 3; i++ {
			c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", deadPort), 5*time.Second)
			if err != nil {
				continue // refused locally is acceptable too
			}
			_ = c.SetDeadline(time.Now().Add(30 * time.Second))
			_, _ = c.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
			n, err := c.Read(make([]byte, 1))
			_ = c.Close()
			if err == nil || n > 0 {
				t.Fatalf("a connection to port 9300 (nothing listening) got %d bytes", n)
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("a connection to port 9300 (nothing listening) hung instead of ending")
			}
		}
		checkBoth(t)
	})

	t.Run("a stalled reader does not hold up a small request", func(t *testing.T) {
		stalled, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", esPort))
		if err != nil {
			t.Fatal(err)
		}
		defer stalled.Close()
		// Ask for 1 GB and never read it: every buffer on the way fills up.
		if _, err := stalled.Write([]byte("GET /bytes?n=1000000000 HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Second)
		for i := 0; i < 5; i++ {
			start := time.Now()
			checkBoth(t)
			t.Logf("small requests beside a stalled reader: %s", time.Since(start))
		}
	})

	t.Run("a deleted pod is replaced and new connections reach it", func(t *testing.T) {
		old := testapp.MustGet(t, es+"/").Hostname
		ctx := context.Background()
		if err := p.cs.CoreV1().Pods(p.ns).Delete(ctx, old, metav1.DeleteOptions{}); err != nil {
			t.Fatalf("deleting pod %s: %v", old, err)
		}
		var last string
		cluster.Eventually(t, 2*time.Minute, 500*time.Millisecond, "a new elasticsearch pod answering on localhost",
			func(ctx context.Context) (bool, string, error) {
				r, err := testapp.Get(ctx, es+"/")
				if err != nil {
					return false, err.Error(), nil
				}
				last = r.Hostname
				return r.Hostname != old && r.Service == "elasticsearch", "answered by " + r.Hostname, nil
			})
		t.Logf("pod %s replaced by %s", old, last)
		checkBoth(t)
		// Inside the cluster, the Service follows the replacement once kube-proxy has caught up.
		cluster.Eventually(t, time.Minute, time.Second, "kibana reaching the new elasticsearch pod",
			func(ctx context.Context) (bool, string, error) {
				r, err := testapp.Get(ctx, kb+"/fetch?url=http://elasticsearch:9200/")
				if err != nil {
					return false, err.Error(), nil
				}
				return r.Status == 200 && strings.Contains(r.Body, last), fmt.Sprintf("%+v", r), nil
			})
	})

	up.signal(syscall.SIGINT)
	if code := up.wait(3 * time.Minute); code != 0 {
		t.Fatalf("up exited %d after SIGINT, want 0\n%s", code, up.stderr)
	}
	if !p.namespaceGone() {
		t.Errorf("namespace %s still exists after up ended", p.ns)
	}
	if envs := p.envsOfProject(); len(envs) != 0 {
		t.Errorf("environments left after up ended: %v", envs)
	}
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", esPort), time.Second); err == nil {
		c.Close()
		t.Errorf("localhost:%d still accepts connections after up ended", esPort)
	}
}

// TestUpBrokenCompose: an invalid compose file fails before anything reaches the cluster.
func TestUpBrokenCompose(t *testing.T) {
	t.Parallel()
	p := newUpProject(t, "e2e-broken", `
services:
  web:
    image: ergomake.test/testapp:latest
    ports:
      - "not-a-port:80"
`)
	_, stderr, code := p.run(time.Minute, "up")
	if code == 0 {
		t.Fatalf("up on a broken compose file exited 0\n%s", stderr)
	}
	if !strings.Contains(stderr, "compose.yaml") {
		t.Errorf("the error does not name the file:\n%s", stderr)
	}
	if strings.Count(strings.TrimSpace(stderr), "\n") > 2 {
		t.Errorf("more than a short error:\n%s", stderr)
	}
	if !p.namespaceGone() {
		t.Errorf("namespace %s exists after a broken compose file", p.ns)
	}
	if envs := p.envsOfProject(); len(envs) != 0 {
		t.Errorf("environments exist after a broken compose file: %v", envs)
	}
}

const upWebCompose = `
services:
  web:
    image: ergomake.test/testapp:latest
    environment:
      SERVICE: web
      PORTS: "8080"
    ports:
      - "${WEB_PORT}:8080"
`

// TestUpDetachThenDown: `up -d` returns once ready and leaves the environment running; ps, ls and
// logs see it; `forward` binds its port and leaves it running on SIGINT; `down` removes it and its
// namespace.
func TestUpDetachThenDown(t *testing.T) {
	t.Parallel()
	webPort := freePort(t)
	p := newUpProject(t, "e2e-detach", upWebCompose, fmt.Sprintf("WEB_PORT=%d", webPort))
	stdout, _ := p.upDetached(4*time.Minute, "--wait-timeout", "3m")
	if !strings.Contains(stdout, "Environment ready") {
		t.Errorf("up -d did not say the environment is ready:\n%s", stdout)
	}
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", webPort), time.Second); err == nil {
		c.Close()
		t.Errorf("up -d left localhost:%d bound", webPort)
	}

	var ps []struct {
		Service string `json:"service"`
		State   string `json:"state"`
		Ready   int    `json:"ready"`
	}
	p.runJSON(time.Minute, &ps, "ps")
	if len(ps) != 1 || ps[0].Service != "web" || ps[0].Ready != 1 {
		t.Errorf("ps -o json = %+v", ps)
	}

	var ls []struct {
		Project   string `json:"project"`
		Namespace string `json:"namespace"`
		Ready     int    `json:"ready"`
		Total     int    `json:"total"`
		Owner     string `json:"owner"`
	}
	p.runJSON(time.Minute, &ls, "ls")
	found := false
	for _, e := range ls {
		if e.Project == p.name {
			found = true
			if e.Namespace != p.ns || e.Ready != 1 || e.Total != 1 || !strings.Contains(e.Owner, "@") {
				t.Errorf("ls entry = %+v", e)
			}
		}
	}
	if !found {
		t.Errorf("ls does not list project %s: %+v", p.name, ls)
	}

	stdout, stderr, code := p.run(time.Minute, "logs", "--tail", "5")
	if code != 0 || !strings.Contains(stdout, "web-1 | ") || !strings.Contains(stdout, "serving HTTP on :8080") {
		t.Errorf("logs exited %d:\n%s\n%s", code, stdout, stderr)
	}

	p.forwarding(func(*upProc) { answering(t, map[int]string{webPort: "web"}) })
	if envs := p.envsOfProject(); len(envs) != 1 {
		t.Errorf("after forward ended, environments = %v, want the one left running", envs)
	}

	stdout, stderr, code = p.run(3*time.Minute, "down")
	if code != 0 {
		t.Fatalf("down exited %d\n%s\n%s", code, stdout, stderr)
	}
	if !p.namespaceGone() {
		t.Errorf("namespace %s still exists after down", p.ns)
	}
	if envs := p.envsOfProject(); len(envs) != 0 {
		t.Errorf("environments left after down: %v", envs)
	}
	// down again: nothing to do, not an error.
	if _, stderr, code := p.run(time.Minute, "down"); code != 0 {
		t.Errorf("second down exited %d: %s", code, stderr)
	}
}

// TestUpFailureTearsDown: an image that is not there makes up print the reason, remove what it
// created, and exit non-zero.
func TestUpFailureTearsDown(t *testing.T) {
	t.Parallel()
	p := newUpProject(t, "e2e-fail", `
services:
  db:
    image: ergomake.test/testapp:latest
    environment:
      PORTS: "5432"
  web:
    image: ergomake.test/not-there:1
    pull_policy: never
    depends_on: [db]
`)
	stdout, stderr, code := p.run(4*time.Minute, "up", "--wait-timeout", "2m")
	if code == 0 {
		t.Fatalf("up with a missing image exited 0\n%s\n%s", stdout, stderr)
	}
	if !strings.Contains(stderr, "web") || !strings.Contains(stderr, "not-there") {
		t.Errorf("up's error does not name the service and image:\n%s", stderr)
	}
	t.Logf("up's output:\n%s", stderr)
	if !p.namespaceGone() {
		t.Errorf("namespace %s still exists after a failed up", p.ns)
	}
	if envs := p.envsOfProject(); len(envs) != 0 {
		t.Errorf("environments left after a failed up: %v", envs)
	}
}

// TestUpSecondInterrupt: a second Ctrl-C during the teardown exits at once with code 130 and
// prints the `ergomake down` command that finishes the job, which does.
func TestUpSecondInterrupt(t *testing.T) {
	t.Parallel()
	webPort := freePort(t)
	p := newUpProject(t, "e2e-twice", upWebCompose, fmt.Sprintf("WEB_PORT=%d", webPort))
	up := p.start("up")
	up.waitOutput("Environment ready.", 4*time.Minute)
	up.signal(syscall.SIGINT)
	up.waitOutput("Deleting environment", time.Minute)
	up.signal(syscall.SIGINT)
	if code := up.wait(10 * time.Second); code != 130 {
		t.Fatalf("up exited %d after a second SIGINT, want 130\n%s", code, up.stderr)
	}
	want := "ergomake down -p " + p.name + " -n " + p.ns
	if !strings.Contains(up.stderr.String(), want) {
		t.Fatalf("up did not print %q:\n%s", want, up.stderr)
	}
	if _, stderr, code := p.run(3*time.Minute, "down", "-p", p.name, "-n", p.ns); code != 0 {
		t.Fatalf("%s exited %d: %s", want, code, stderr)
	}
	if !p.namespaceGone() {
		t.Errorf("namespace %s still exists after down", p.ns)
	}
}

// unhealthyCompose is a project of one service, slow, that becomes healthy only after an hour: its
// healthcheck fails every 2s, and retries times in a row make it unhealthy.
func unhealthyCompose(retries int) string {
	return fmt.Sprintf(`
services:
  slow:
    image: ergomake.test/testapp:latest
    environment:
      PORTS: "8080"
      READY_AFTER: "3600"
    healthcheck:
      test: ["CMD", "/testapp", "probe", "http://127.0.0.1:8080/healthz"]
      interval: 2s
      timeout: 1s
      retries: %d
`, retries)
}

// TestUpInterruptedTeardownAfterFailure: after a failure (the wait times out), up tears down; the
// first Ctrl-C abandons that teardown at once: exit 130, the `ergomake down` command that
// finishes the job, and no other error (no "SilentError").
func TestUpInterruptedTeardownAfterFailure(t *testing.T) {
	t.Parallel()
	p := newUpProject(t, "e2e-failint", unhealthyCompose(30))
	up := p.start("up", "--wait-timeout", "8s")
	up.waitOutput("Deleting environment", 3*time.Minute)
	up.signal(syscall.SIGINT)
	if code := up.wait(20 * time.Second); code != 130 {
		t.Fatalf("up exited %d after Ctrl-C during the teardown after a failure, want 130\n%s", code, up.stderr)
	}
	stderr := up.stderr.String()
	if want := "ergomake down -p " + p.name + " -n " + p.ns; !strings.Contains(stderr, want) {
		t.Errorf("up did not print %q:\n%s", want, stderr)
	}
	if strings.Contains(stderr, "SilentError") || strings.Contains(stderr, "error:") {
		t.Errorf("up printed an error after the interrupted teardown:\n%s", stderr)
	}
}

// TestUpWaitTimeout: a service that never becomes healthy within --wait-timeout makes up say which
// service and why, remove what it created, and exit non-zero; with --keep the environment stays.
func TestUpWaitTimeout(t *testing.T) {
	t.Parallel()
	p := newUpProject(t, "e2e-timeout", unhealthyCompose(3))
	stdout, stderr, code := p.run(3*time.Minute, "up", "--wait-timeout", "15s")
	if code != 1 {
		t.Fatalf("up exited %d, want 1\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "not ready after 15s") || !strings.Contains(stderr, `service "slow"`) {
		t.Errorf("up does not say which service was not ready in time:\n%s", stderr)
	}
	t.Logf("up's output:\n%s", stderr)
	if !p.namespaceGone() {
		t.Errorf("namespace %s still exists after the timeout", p.ns)
	}

	_, stderr, code = p.run(3*time.Minute, "up", "--wait-timeout", "10s", "--keep")
	if code != 1 {
		t.Fatalf("up --keep exited %d, want 1\n%s", code, stderr)
	}
	if envs := p.envsOfProject(); len(envs) != 1 {
		t.Errorf("up --keep left %v, want the environment", envs)
	}
	if !strings.Contains(stderr, "ergomake down -p "+p.name) {
		t.Errorf("up --keep does not say how to remove the environment:\n%s", stderr)
	}
}

// TestUpInUserNamespace: with -n naming a namespace ergomake did not create, up -d uses it and
// down removes the environment but leaves the namespace.
func TestUpInUserNamespace(t *testing.T) {
	t.Parallel()
	p := newUpProject(t, "e2e-userns", upWebCompose, fmt.Sprintf("WEB_PORT=%d", freePort(t)))
	p.ns = cluster.Namespace(t, p.cs, "e2e-userns")
	p.upDetached(4*time.Minute, "-n", p.ns)
	if envs := p.envsOfProject(); len(envs) != 1 || envs[0] != p.ns+"/"+p.name {
		t.Fatalf("environments = %v, want %s/%s", envs, p.ns, p.name)
	}
	// Another project may not move into the same namespace.
	other := newUpProject(t, "e2e-userns-other", upWebCompose, fmt.Sprintf("WEB_PORT=%d", freePort(t)))
	if _, stderr, code := other.run(time.Minute, "up", "-d", "-n", p.ns); code == 0 || !strings.Contains(stderr, "already holds environment "+p.name) {
		t.Errorf("a second project in %s: exit %d\n%s", p.ns, code, stderr)
	}
	if _, stderr, code := p.run(3*time.Minute, "down", "-n", p.ns); code != 0 {
		t.Fatalf("down exited %d: %s", code, stderr)
	}
	if envs := p.envsOfProject(); len(envs) != 0 {
		t.Errorf("environments left after down: %v", envs)
	}
	if p.namespaceGone() {
		t.Errorf("down removed namespace %s, which ergomake did not create", p.ns)
	}
}

// TestUpReattach: up on a project whose environment is already running (up -d) says so, applies
// the changed compose file, forwards, renews the heartbeat while attached, and on SIGINT detaches
// without deleting (this session did not create the environment: decision 14); down removes it.
func TestUpReattach(t *testing.T) {
	t.Parallel()
	webPort := freePort(t)
	p := newUpProject(t, "e2e-reattach", upWebCompose, fmt.Sprintf("WEB_PORT=%d", webPort))
	p.upDetached(4 * time.Minute)
	changed := strings.Replace(upWebCompose, "SERVICE: web", "SERVICE: web-v2", 1)
	if err := os.WriteFile(filepath.Join(p.dir, "compose.yaml"), []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	up := p.start("up")
	up.waitOutput("Environment ready.", 4*time.Minute)
	if !strings.Contains(up.stderr.String(), "Found existing environment "+p.name) {
		t.Errorf("up did not say it attached to the existing environment:\n%s", up.stderr)
	}
	// The change is applied: the replacement pod answers with the new SERVICE.
	u := fmt.Sprintf("http://localhost:%d/", webPort)
	cluster.Eventually(t, 2*time.Minute, time.Second, "the changed service answering", func(ctx context.Context) (bool, string, error) {
		r, err := testapp.Get(ctx, u)
		if err != nil {
			return false, err.Error(), nil
		}
		return r.Service == "web-v2", r.Service, nil
	})

	heartbeat := func() string {
		env, err := p.dyn.Resource(v1alpha1.GroupVersionResource).Namespace(p.ns).Get(context.Background(), p.name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return env.GetAnnotations()[v1alpha1.AnnotationHeartbeat]
	}
	first := heartbeat()
	cluster.Eventually(t, time.Minute, 2*time.Second, "the heartbeat renewed", func(ctx context.Context) (bool, string, error) {
		hb := heartbeat()
		return hb != first, hb, nil
	})

	up.signal(syscall.SIGINT)
	if code := up.wait(3 * time.Minute); code != 0 {
		t.Fatalf("up exited %d after SIGINT\n%s", code, up.stderr)
	}
	if envs := p.envsOfProject(); len(envs) != 1 {
		t.Fatalf("after the re-attached up's SIGINT: environments %v, want it left running", envs)
	}
	if _, stderr, code := p.run(3*time.Minute, "down"); code != 0 {
		t.Fatalf("down exited %d: %s", code, stderr)
	}
	if !p.namespaceGone() {
		t.Errorf("namespace %s still exists", p.ns)
	}
}

// TestUpCrashLoop: a service that crashes makes up print its last log lines, tear down and exit 1.
func TestUpCrashLoop(t *testing.T) {
	t.Parallel()
	p := newUpProject(t, "e2e-crash", `
services:
  api:
    image: ergomake.test/testapp:latest
    command: ["crash"]
    healthcheck:
      test: ["CMD", "/testapp", "probe", "http://127.0.0.1:8080/healthz"]
      interval: 2s
      retries: 3
`)
	stdout, stderr, code := p.run(4*time.Minute, "up", "--wait-timeout", "3m")
	if code != 1 {
		t.Fatalf("up exited %d, want 1\n%s\n%s", code, stdout, stderr)
	}
	t.Logf("up's output:\n%s", stderr)
	for _, want := range []string{`service "api" failed: crash loop`, "testapp: crash requested"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("up's output lacks %q", want)
		}
	}
	if !p.namespaceGone() {
		t.Errorf("namespace %s still exists", p.ns)
	}
}
