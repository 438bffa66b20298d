//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/ergomake/ergomake/internal/kube"
	"github.com/ergomake/ergomake/internal/render"
	"github.com/ergomake/ergomake/internal/testutil/cluster"
	"github.com/ergomake/ergomake/internal/testutil/testapp"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// Ownership (issue 11, ARCHITECTURE.md decision 14), with the real binary on the local cluster.

// env returns the project's environment (nil when there is none).
func (p *upProject) getEnv() *v1alpha1.ErgomakeEnv {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u, err := p.dyn.Resource(v1alpha1.GroupVersionResource).Namespace(p.ns).Get(ctx, p.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		p.t.Fatal(err)
	}
	env, err := kube.EnvFromUnstructured(u)
	if err != nil {
		p.t.Fatal(err)
	}
	return env
}

// waitNothingLeft waits until neither the environment nor its namespace exists.
func (p *upProject) waitNothingLeft(timeout time.Duration) {
	p.t.Helper()
	cluster.Eventually(p.t, timeout, time.Second, "environment and namespace "+p.ns+" gone", func(ctx context.Context) (bool, string, error) {
		if env := p.getEnv(); env != nil {
			return false, "the environment is still there", nil
		}
		if !p.namespaceGone() {
			return false, "the namespace is still there", nil
		}
		return true, "", nil
	})
}

// TestOwnershipSecondUpRefused: while `up` is attached, a second `up` of the same project is
// refused (exit 3) saying who, from where and since when, and changes nothing; `forward` attaches
// without owning the teardown: its Ctrl-C deletes nothing; the first `up`'s Ctrl-C removes all.
func TestOwnershipSecondUpRefused(t *testing.T) {
	t.Parallel()
	p := newUpProject(t, "e2e-own-second", upWebCompose, fmt.Sprintf("WEB_PORT=%d", freePort(t)))
	first := p.start("up", "--wait-timeout", "3m")
	first.waitOutput("Environment ready.", 4*time.Minute)
	before := p.getEnv()
	sess, err := v1alpha1.EnvSession(before)
	if err != nil || sess == nil || sess.PID != first.cmd.Process.Pid {
		t.Fatalf("session recorded = %+v, %v; want the first up's (pid %d)", sess, err, first.cmd.Process.Pid)
	}
	creator, err := v1alpha1.EnvCreator(before)
	if err != nil || creator == nil || creator.Username != clusterUser(t) {
		t.Errorf("creator recorded = %+v, %v; want %s", creator, err, clusterUser(t))
	}

	stdout, stderr, code := p.run(2*time.Minute, "up")
	if code != 3 {
		t.Fatalf("second up exited %d, want 3\n%s\n%s", code, stdout, stderr)
	}
	host, _ := os.Hostname()
	for _, want := range []string{"is in use", creator.Username, "on host " + host, fmt.Sprintf("pid %d", sess.PID),
		"since " + sess.StartedAt.UTC().Format("2006-01-02 15:04:05 UTC"), "ergomake forward", "ergomake up -p "} {
		if !strings.Contains(stderr, want) {
			t.Errorf("second up's message lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, "Applying") {
		t.Errorf("second up applied:\n%s", stderr)
	}
	after := p.getEnv()
	if after == nil || after.Annotations[v1alpha1.AnnotationSession] != before.Annotations[v1alpha1.AnnotationSession] || after.Generation != before.Generation {
		t.Fatalf("the refused up changed the environment:\nbefore %v\nafter %v", before.Annotations, after)
	}

	// forward attaches (the published port is taken by the first up: another local port).
	p.forwarding(func(fwd *upProc) {
		ports := fwd.localPorts()
		if len(ports) != 1 {
			t.Fatalf("forward bound %v", ports)
		}
		for _, port := range ports {
			if _, err := testapp.Get(context.Background(), fmt.Sprintf("http://localhost:%d/", port)); err != nil {
				t.Errorf("through forward: %v", err)
			}
		}
	})
	time.Sleep(3 * time.Second) // room for a wrong deletion
	if env := p.getEnv(); env == nil || env.DeletionTimestamp != nil {
		t.Fatalf("forward's Ctrl-C deleted the environment")
	}

	first.signal(syscall.SIGINT)
	if code := first.wait(3 * time.Minute); code != 0 {
		t.Fatalf("first up exited %d after SIGINT\n%s", code, first.stderr)
	}
	p.waitNothingLeft(time.Minute)
}

// TestOwnershipReattachDetaches: `up` of an environment left running (`up -d`) attaches to it,
// and its Ctrl-C detaches without deleting (this session did not create it); `down` removes it.
func TestOwnershipReattachDetaches(t *testing.T) {
	t.Parallel()
	p := newUpProject(t, "e2e-own-reattach", upWebCompose, fmt.Sprintf("WEB_PORT=%d", freePort(t)))
	p.upDetached(4 * time.Minute)
	// up -d ended its session: the next up need not wait for its heartbeat to go stale.
	if env := p.getEnv(); env == nil || env.Annotations[v1alpha1.AnnotationSession] != "" {
		t.Fatalf("after up -d: %v", env)
	}
	up := p.start("up")
	up.waitOutput("Environment ready.", 4*time.Minute)
	up.signal(syscall.SIGINT)
	if code := up.wait(time.Minute); code != 0 {
		t.Fatalf("up exited %d after SIGINT\n%s", code, up.stderr)
	}
	if !strings.Contains(up.stderr.String(), "Detached. This session did not create the environment") {
		t.Errorf("up did not say it detached:\n%s", up.stderr)
	}
	env := p.getEnv()
	if env == nil || env.DeletionTimestamp != nil {
		t.Fatal("the re-attached up's Ctrl-C deleted the environment")
	}
	if env.Spec.TTL == nil || env.Spec.TTL.Duration != 24*time.Hour || env.Annotations[v1alpha1.AnnotationSession] != "" {
		t.Errorf("after detaching: TTL %v, session %q; want 24h and none", env.Spec.TTL, env.Annotations[v1alpha1.AnnotationSession])
	}
	if _, stderr, code := p.run(3*time.Minute, "down"); code != 0 {
		t.Fatalf("down exited %d: %s", code, stderr)
	}
	p.waitNothingLeft(time.Minute)
}

// clusterUser is who the test's credentials are.
func clusterUser(t *testing.T) string {
	t.Helper()
	cs := cluster.Clientset(t, cluster.Config(t))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authnv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return r.Status.UserInfo.Username
}

// impersonating writes a kubeconfig that acts as user (impersonated by the test's credentials),
// and gives user the rights of cluster-admin until the test ends.
func impersonating(t *testing.T, user string) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(cluster.KubeconfigPath(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range cfg.AuthInfos {
		a.Impersonate = user
	}
	path := filepath.Join(t.TempDir(), "kubeconfig-"+user)
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	cs := cluster.Clientset(t, cluster.Config(t))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "e2e-" + user},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
	}
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.RbacV1().ClusterRoleBindings().Delete(context.Background(), crb.Name, metav1.DeleteOptions{})
	})
	return path
}

// TestOwnershipDownOtherIdentity: `down` of an environment another identity created is refused
// without --force (exit 3), naming both, and removes nothing; with --force it removes it all.
func TestOwnershipDownOtherIdentity(t *testing.T) {
	t.Parallel()
	p := newUpProject(t, "e2e-own-down", upWebCompose, fmt.Sprintf("WEB_PORT=%d", freePort(t)))
	p.upDetached(4 * time.Minute)
	other := "e2e-other-" + rand.String(5)
	kubeconfig := impersonating(t, other)
	me := clusterUser(t)

	stdout, stderr, code := p.run(time.Minute, "down", "--kubeconfig", kubeconfig)
	if code != 3 {
		t.Fatalf("down as %s exited %d, want 3\n%s\n%s", other, code, stdout, stderr)
	}
	want := fmt.Sprintf("environment %s/%s was created by %s, not by you (%s): --force removes it anyway", p.ns, p.name, me, other)
	if !strings.Contains(stderr, want) {
		t.Errorf("down's message lacks %q:\n%s", want, stderr)
	}
	if env := p.getEnv(); env == nil || env.DeletionTimestamp != nil {
		t.Fatal("the refused down deleted the environment")
	}

	if stdout, stderr, code := p.run(3*time.Minute, "down", "--force", "--kubeconfig", kubeconfig); code != 0 {
		t.Fatalf("down --force as %s exited %d\n%s\n%s", other, code, stdout, stderr)
	}
	p.waitNothingLeft(time.Minute)
}

// TestOwnershipReservedNamespace: `up -n ergomake-system` (or kube-system) is refused with a clear
// message, and nothing is applied there.
func TestOwnershipReservedNamespace(t *testing.T) {
	t.Parallel()
	p := newUpProject(t, "e2e-own-reserved", upWebCompose, fmt.Sprintf("WEB_PORT=%d", freePort(t)))
	for _, ns := range []string{"ergomake-system", "kube-system"} {
		stdout, stderr, code := p.run(time.Minute, "up", "-n", ns)
		if code != 1 || !strings.Contains(stderr, "namespace "+ns+" is ") || !strings.Contains(stderr, "choose another namespace with -n") {
			t.Errorf("up -n %s exited %d\n%s\n%s", ns, code, stdout, stderr)
		}
		if strings.Contains(stderr, "Applying") {
			t.Errorf("up -n %s applied:\n%s", ns, stderr)
		}
	}
	if envs := p.envsOfProject(); len(envs) != 0 {
		t.Errorf("environments: %v", envs)
	}
}

// TestServiceNamesNotLabelValues: services whose names are no label values (`worker_`, a name
// over 63 characters) work everywhere: forward reaches them, logs and ps show them under their
// names, exec runs in them.
func TestServiceNamesNotLabelValues(t *testing.T) {
	t.Parallel()
	long := "a-service-whose-name-is-longer-than-any-label-value-may-be-at-sixty-four"
	if render.LabelValue(long) == long || render.LabelValue("worker_") == "worker_" {
		t.Fatal("the names are label values: the test proves nothing")
	}
	p := newUpProject(t, "e2e-labelvalues", fmt.Sprintf(`
services:
  worker_:
    image: ergomake.test/testapp:latest
    environment:
      SERVICE: worker_
      PORTS: "8080"
    ports:
      - "${WORKER_PORT}:8080"
  %s:
    image: ergomake.test/testapp:latest
    environment:
      SERVICE: long
      PORTS: "8081"
    ports:
      - "${LONG_PORT}:8081"
`, long), fmt.Sprintf("WORKER_PORT=%d", freePort(t)), fmt.Sprintf("LONG_PORT=%d", freePort(t)))
	up := p.start("up", "--wait-timeout", "3m")
	up.waitOutput("Environment ready.", 4*time.Minute)
	ports := up.localPorts()
	for svc, want := range map[string]string{"worker_/8080": "worker_", long + "/8081": "long"} {
		port, ok := ports[svc]
		if !ok {
			t.Fatalf("no binding of %s in %v\n%s", svc, ports, up.stdout)
		}
		r, err := testapp.Get(context.Background(), fmt.Sprintf("http://localhost:%d/", port))
		if err != nil || r.Service != want {
			t.Errorf("%s through forward: %+v, %v", svc, r, err)
		}
	}
	stdout, stderr, code := p.run(time.Minute, "logs", "worker_")
	if code != 0 || !strings.Contains(stdout, "worker_-1 | ") {
		t.Errorf("logs worker_: exit %d\n%s\n%s", code, stdout, stderr)
	}
	stdout, stderr, code = p.run(time.Minute, "ps", long)
	if code != 0 || !strings.Contains(stdout, long) || !strings.Contains(stdout, "1/1") {
		t.Errorf("ps %s: exit %d\n%s\n%s", long, code, stdout, stderr)
	}
	stdout, stderr, code = p.execRun(nil, time.Minute, "exec", "-T", "worker_", "/testapp", "probe", "http://127.0.0.1:8080/healthz")
	if code != 0 {
		t.Errorf("exec worker_: exit %d\n%s\n%s", code, stdout, stderr)
	}
	up.signal(syscall.SIGINT)
	if code := up.wait(3 * time.Minute); code != 0 {
		t.Fatalf("up exited %d after SIGINT\n%s", code, up.stderr)
	}
	p.waitNothingLeft(time.Minute)
}
