//go:build e2e

package session

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/rand"

	"github.com/ergomake/ergomake/internal/compose"
	"github.com/ergomake/ergomake/internal/kube"
	"github.com/ergomake/ergomake/internal/testutil/cluster"
	"github.com/ergomake/ergomake/internal/testutil/freeport"
	"github.com/ergomake/ergomake/internal/translate"
)

// e2eProject translates compose (project <prefix>-<random>) for the local cluster and returns it
// with a client; whatever is left of it is removed when the test ends.
func e2eProject(t *testing.T, prefix, composeYAML string) (*translate.Result, *kube.Client) {
	t.Helper()
	kubeconfig := cluster.KubeconfigPath(t)
	cs := cluster.Clientset(t, cluster.Config(t))
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(composeYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	name := prefix + "-" + rand.String(5)
	project, err := compose.Load(context.Background(), compose.Options{ProjectName: name, WorkingDir: dir, Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := translate.Translate(project, translate.Options{TTL: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	client, err := kube.New(kube.Options{Kubeconfig: kubeconfig})
	if err != nil {
		t.Fatal(err)
	}
	ns := res.Env.Namespace
	t.Cleanup(func() {
		if t.Failed() {
			cluster.DumpNamespace(t, cs, ns)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := client.DeleteEnv(ctx, ns, res.Env.Name, kube.DeleteOptions{Namespace: true}); err != nil {
			t.Logf("cleaning up %s: %v", ns, err)
		}
	})
	return res, client
}

// waitFor polls the recorder until it holds line (a prefix of one of its lines).
func (r *recorder) waitFor(t *testing.T, line string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if r.has(line) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %q after %s:\n%s", line, timeout, r)
}

func (r *recorder) has(line string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, l := range r.lines {
		if strings.HasPrefix(l, line) {
			return true
		}
	}
	return false
}

// webCompose is a project of one service, web, published on port and ready (healthy) readyAfter
// seconds after it starts.
func webCompose(port, readyAfter int) string {
	return fmt.Sprintf(`
services:
  web:
    image: %s
    environment:
      SERVICE: web
      PORTS: "8080"
      READY_AFTER: "%d"
    ports:
      - "%d:8080"
    healthcheck:
      test: ["CMD", "/testapp", "probe", "http://127.0.0.1:8080/healthz"]
      interval: 1s
      timeout: 1s
      retries: 30
`, cluster.TestImage, readyAfter, port)
}

// startUp runs Up in the background with a recorder and signals the test sends; end waits for
// it to return.
func startUp(t *testing.T, client *kube.Client, res *translate.Result, waitTimeout time.Duration, down string) (rec *recorder, sigs chan os.Signal, end func(timeout time.Duration) error) {
	rec, sigs = &recorder{}, make(chan os.Signal, 2)
	done := make(chan error, 1)
	go func() {
		done <- Up(context.Background(), Options{Client: client, Reporter: rec, Signals: sigs, WaitTimeout: waitTimeout,
			Owner: "test@session", DownCommand: down}, res)
	}()
	return rec, sigs, func(timeout time.Duration) error {
		t.Helper()
		select {
		case err := <-done:
			return err
		case <-time.After(timeout):
			t.Fatalf("Up did not end within %s:\n%s", timeout, rec)
			return nil
		}
	}
}

// TestUpSession drives Up against the cluster: the published port is bound as soon as the
// environment is applied, so a request made while the service is still becoming ready is answered
// once it is; "Environment ready" comes after the wait; Ctrl-C tears everything down.
func TestUpSession(t *testing.T) {
	port := freeport.Port(t)
	res, client := e2eProject(t, "sess-up", webCompose(port, 6))
	ns, name := res.Env.Namespace, res.Env.Name
	rec, sigs, end := startUp(t, client, res, 3*time.Minute, "ergomake down -p "+name)

	rec.waitFor(t, "wait Waiting for services", 2*time.Minute)
	// The service is not ready yet (READY_AFTER), but its port is already bound: a request made
	// now waits for the ready pod and is answered.
	if rec.has("waitend") {
		t.Fatalf("the wait ended before the service could be ready:\n%s", rec)
	}
	hc := &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := hc.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
	if err != nil {
		t.Fatalf("GET during the wait: %v\n%s", err, rec)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"web"`) {
		t.Errorf("GET during the wait: %s %s", resp.Status, body)
	}
	rec.waitFor(t, "print Environment ready.", 2*time.Minute)
	out := rec.String()
	if i, j := strings.Index(out, "waitend true"), strings.Index(out, "bound 1"); i < 0 || j < i {
		t.Errorf("the bindings are not told after the wait:\n%s", out)
	}

	sigs <- syscall.SIGINT
	if err := end(3 * time.Minute); err != nil {
		t.Fatalf("Up after Ctrl-C = %v\n%s", err, rec)
	}
	if !rec.has("notice Environment " + name + " and namespace " + ns + " removed.") {
		t.Errorf("no removal line:\n%s", rec)
	}
	if _, err := client.GetEnv(context.Background(), ns, name); !apierrors.IsNotFound(err) {
		t.Errorf("environment after the teardown: %v", err)
	}
	if _, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
		t.Errorf("port %d still bound after the session", port)
	}
}

// TestUpSessionFailureInterrupted: a service that is never ready fails the wait; the teardown
// that follows is abandoned by the first Ctrl-C, with ErrCancel (exit 130) and the command that
// finishes the job.
func TestUpSessionFailureInterrupted(t *testing.T) {
	port := freeport.Port(t)
	res, client := e2eProject(t, "sess-fail", webCompose(port, 3600))
	down := "ergomake down -p " + res.Env.Name
	rec, sigs, end := startUp(t, client, res, 10*time.Second, down)
	rec.waitFor(t, "start Deleting environment", 3*time.Minute)
	sigs <- syscall.SIGINT
	if err := end(30 * time.Second); err != ErrCancel {
		t.Fatalf("Up = %v, want ErrCancel\n%s", err, rec)
	}
	out := rec.String()
	if !strings.Contains(out, "waitend false") || !strings.Contains(out, "To finish the job, run:\n  "+down) {
		t.Errorf("output:\n%s", out)
	}
	if strings.Contains(out, "SilentError") || strings.Contains(out, "warn ") {
		t.Errorf("a warning after the interrupted teardown:\n%s", out)
	}
	// The listeners were closed before the teardown.
	if _, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
		t.Errorf("port %d still bound after the failure", port)
	}
}
