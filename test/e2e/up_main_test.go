//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/ergomake/ergomake/internal/testutil/cluster"
	"github.com/ergomake/ergomake/internal/testutil/syncbuf"
	"github.com/ergomake/ergomake/internal/testutil/testapp"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// The `ergomake` binary the up_* tests drive, built once into upBinDir.
var (
	upBinOnce sync.Once
	upBinDir  string
	upBin     string
	upBinErr  error
)

func TestMain(m *testing.M) {
	// The controller-runtime clients log through its global logger, which, never set, prints a
	// warning with a goroutine stack into the test output; nothing here reads that log (the
	// operators these tests run log through their own).
	ctrllog.SetLogger(logr.Discard())
	code := m.Run()
	if upBinDir != "" {
		_ = os.RemoveAll(upBinDir)
	}
	os.Exit(code)
}

var (
	upOperatorOnce sync.Once
	upOperatorErr  error
)

// operatorReady checks that the operator runs in the cluster (make operator-install, which make
// test-e2e runs first), so that a missing operator fails fast instead of as a wait timeout.
func operatorReady(cs kubernetes.Interface) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for {
		d, err := cs.AppsV1().Deployments("ergomake-system").Get(ctx, "ergomake-operator", metav1.GetOptions{})
		if err == nil && d.Status.ReadyReplicas > 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the operator is not running in the cluster (deployment ergomake-system/ergomake-operator: %v): run make operator-install", err)
		case <-time.After(2 * time.Second):
		}
	}
}

// ergomakeBinary builds cmd/ergomake from the working tree (once per test run).
func ergomakeBinary(t *testing.T) string {
	t.Helper()
	upBinOnce.Do(func() {
		upBinDir, upBinErr = os.MkdirTemp("", "ergomake-e2e-bin-")
		if upBinErr != nil {
			return
		}
		upBin = filepath.Join(upBinDir, "ergomake")
		goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
		if _, err := os.Stat(goBin); err != nil {
			goBin = "go"
		}
		cmd := exec.Command(goBin, "build", "-o", upBin, "github.com/ergomake/ergomake/cmd/ergomake")
		if out, err := cmd.CombinedOutput(); err != nil {
			upBinErr = fmt.Errorf("go build ./cmd/ergomake: %v\n%s", err, out)
		}
	})
	if upBinErr != nil {
		t.Fatal(upBinErr)
	}
	return upBin
}

// upProject is a compose project in a temporary directory, run with the real binary against the
// local cluster.
type upProject struct {
	t       *testing.T
	dir     string
	name    string // compose project name (= ErgomakeEnv name)
	ns      string
	env     []string
	bin     string
	cs      kubernetes.Interface
	dyn     dynamic.Interface
	kubecfg string
}

// newUpProject writes compose (with the project's name set by COMPOSE_PROJECT_NAME) and makes
// sure, when the test ends, that nothing of it is left on the cluster (dumping the namespace
// first when the test failed).
func newUpProject(t *testing.T, prefix, compose string, env ...string) *upProject {
	t.Helper()
	kubecfg := cluster.KubeconfigPath(t)
	cfg := cluster.Config(t)
	p := &upProject{t: t, dir: t.TempDir(), name: prefix + "-" + rand.String(5), bin: ergomakeBinary(t),
		cs: cluster.Clientset(t, cfg), kubecfg: kubecfg}
	p.ns = "ergomake-" + p.name
	upOperatorOnce.Do(func() { upOperatorErr = operatorReady(p.cs) })
	if upOperatorErr != nil {
		t.Fatal(upOperatorErr)
	}
	var err error
	if p.dyn, err = dynamic.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p.dir, "compose.yaml"), []byte(compose), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "KUBECONFIG" || k == "NO_COLOR" || k == "XDG_CONFIG_HOME" || strings.HasPrefix(k, "COMPOSE_") || strings.HasPrefix(k, "ERGOMAKE_") {
			continue
		}
		p.env = append(p.env, kv)
	}
	p.env = append(p.env, "KUBECONFIG="+kubecfg, "COMPOSE_PROJECT_NAME="+p.name,
		"XDG_CONFIG_HOME="+filepath.Join(p.dir, "xdg"))
	p.env = append(p.env, env...)
	t.Cleanup(func() {
		if t.Failed() {
			cluster.DumpNamespace(t, p.cs, p.ns)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		_ = p.dyn.Resource(v1alpha1.GroupVersionResource).Namespace(p.ns).Delete(ctx, p.name, metav1.DeleteOptions{})
		_ = p.cs.CoreV1().Namespaces().Delete(ctx, p.ns, metav1.DeleteOptions{})
	})
	return p
}

// upProc is a running ergomake process.
type upProc struct {
	t      *testing.T
	args   []string
	cmd    *exec.Cmd
	stdout *lockedBuffer
	stderr *lockedBuffer
	done   chan struct{}
	code   int
}

// lockedBuffer is the captured output of a subprocess, written and read concurrently.
type lockedBuffer = syncbuf.Buffer

// start runs `ergomake args...` in the project's directory.
func (p *upProject) start(args ...string) *upProc {
	p.t.Helper()
	pr := &upProc{t: p.t, args: args, stdout: &lockedBuffer{}, stderr: &lockedBuffer{}, done: make(chan struct{})}
	pr.cmd = exec.Command(p.bin, args...)
	pr.cmd.Dir = p.dir
	pr.cmd.Env = p.env
	pr.cmd.Stdout, pr.cmd.Stderr = pr.stdout, pr.stderr
	if err := pr.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	go func() {
		err := pr.cmd.Wait()
		pr.code = 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			pr.code = ee.ExitCode() // -1 when killed by a signal
		} else if err != nil {
			pr.code = -2
		}
		close(pr.done)
	}()
	p.t.Cleanup(func() {
		select {
		case <-pr.done:
		default:
			_ = pr.cmd.Process.Kill()
			<-pr.done
		}
		if p.t.Failed() {
			p.t.Logf("ergomake %s\n--- stdout:\n%s--- stderr:\n%s", strings.Join(args, " "), pr.stdout, pr.stderr)
		}
	})
	return pr
}

// forwarding runs `ergomake forward` around check: check gets it once it bound the environment's
// ports (its table: fwd.localPorts()); then SIGINT ends it, and it must exit 0.
func (p *upProject) forwarding(check func(fwd *upProc)) {
	p.t.Helper()
	fwd := p.start("forward")
	fwd.waitOutput("are now bound to localhost", 2*time.Minute)
	check(fwd)
	fwd.signal(syscall.SIGINT)
	if code := fwd.wait(time.Minute); code != 0 {
		p.t.Fatalf("forward exited %d after SIGINT\n%s", code, fwd.stderr)
	}
}

// upDetached runs `ergomake up -d args...` and fails the test unless it exits 0 within timeout;
// it returns the command's output.
func (p *upProject) upDetached(timeout time.Duration, args ...string) (stdout, stderr string) {
	p.t.Helper()
	stdout, stderr, code := p.run(timeout, append([]string{"up", "-d"}, args...)...)
	if code != 0 {
		p.t.Fatalf("up -d %s exited %d\n%s\n%s", strings.Join(args, " "), code, stdout, stderr)
	}
	return stdout, stderr
}

// runJSON runs `ergomake args... -o json`, which must exit 0 within timeout, and decodes its output
// into v; it returns what the command wrote on stderr.
func (p *upProject) runJSON(timeout time.Duration, v any, args ...string) (stderr string) {
	p.t.Helper()
	args = append(args, "-o", "json")
	stdout, stderr, code := p.run(timeout, args...)
	if code != 0 {
		p.t.Fatalf("ergomake %s exited %d\n%s", strings.Join(args, " "), code, stderr)
	}
	if err := json.Unmarshal([]byte(stdout), v); err != nil {
		p.t.Fatalf("ergomake %s: %v\n%s", strings.Join(args, " "), err, stdout)
	}
	return stderr
}

// answering checks that each localhost port answers as the test app of the service it maps to.
func answering(t *testing.T, services map[int]string) {
	t.Helper()
	for port, want := range services {
		if r := testapp.MustGet(t, fmt.Sprintf("http://localhost:%d/", port)); r.Service != want {
			t.Errorf("localhost:%d answered %+v, want service %q", port, r, want)
		}
	}
}

// run runs `ergomake args...` to its end and returns its output and exit code.
func (p *upProject) run(timeout time.Duration, args ...string) (stdout, stderr string, code int) {
	p.t.Helper()
	pr := p.start(args...)
	code = pr.wait(timeout)
	return pr.stdout.String(), pr.stderr.String(), code
}

// wait waits for the process to exit and returns its exit code.
func (pr *upProc) wait(timeout time.Duration) int {
	pr.t.Helper()
	select {
	case <-pr.done:
		return pr.code
	case <-time.After(timeout):
		pr.t.Fatalf("ergomake %s still running after %s\n--- stdout:\n%s--- stderr:\n%s",
			strings.Join(pr.args, " "), timeout, pr.stdout, pr.stderr)
		return 0
	}
}

// waitOutput waits until stdout or stderr contains want; it fails the test when the process
// exits first or the timeout passes.
func (pr *upProc) waitOutput(want string, timeout time.Duration) {
	pr.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if strings.Contains(pr.stdout.String(), want) || strings.Contains(pr.stderr.String(), want) {
			return
		}
		select {
		case <-pr.done:
			pr.t.Fatalf("ergomake %s exited (code %d) before printing %q\n--- stdout:\n%s--- stderr:\n%s",
				strings.Join(pr.args, " "), pr.code, want, pr.stdout, pr.stderr)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			pr.t.Fatalf("ergomake %s: no %q after %s\n--- stdout:\n%s--- stderr:\n%s",
				strings.Join(pr.args, " "), want, timeout, pr.stdout, pr.stderr)
		}
	}
}

func (pr *upProc) signal(sig syscall.Signal) {
	pr.t.Helper()
	if err := pr.cmd.Process.Signal(sig); err != nil {
		pr.t.Fatalf("signal %s: %v", sig, err)
	}
}

var bindingLine = regexp.MustCompile(`(?m)^(\S+)\s+· (?:localhost|[0-9.]+|\[[0-9a-f:]+\]):(\d+) → (\d+)`)

// localPorts parses the forwarding table: service/remote port → local port.
func (pr *upProc) localPorts() map[string]int {
	out := map[string]int{}
	for _, m := range bindingLine.FindAllStringSubmatch(pr.stdout.String(), -1) {
		local, _ := strconv.Atoi(m[2])
		out[m[1]+"/"+m[3]] = local
	}
	return out
}

// freePort returns a TCP port free on 127.0.0.1 and ::1 right now.
func freePort(t *testing.T) int {
	t.Helper()
	for i := 0; i < 20; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l6, err := net.Listen("tcp", fmt.Sprintf("[::1]:%d", port))
		_ = l.Close()
		if err == nil {
			_ = l6.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

// namespaceGone tells whether the namespace no longer exists.
func (p *upProject) namespaceGone() bool {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := p.cs.CoreV1().Namespaces().Get(ctx, p.ns, metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		p.t.Fatal(err)
	}
	return apierrors.IsNotFound(err)
}

// envsOfProject lists the ErgomakeEnvs of the project in every namespace.
func (p *upProject) envsOfProject() []string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := p.dyn.Resource(v1alpha1.GroupVersionResource).List(ctx, metav1.ListOptions{})
	if err != nil {
		p.t.Fatal(err)
	}
	var out []string
	for _, u := range l.Items {
		if proj, _, _ := unstructuredString(u.Object, "spec", "project"); proj == p.name {
			out = append(out, u.GetNamespace()+"/"+u.GetName())
		}
	}
	return out
}

func unstructuredString(obj map[string]any, path ...string) (string, bool, error) {
	cur := any(obj)
	for _, k := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return "", false, nil
		}
		cur = m[k]
	}
	s, ok := cur.(string)
	return s, ok, nil
}
