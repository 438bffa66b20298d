//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ergomake/ergomake/internal/clustersettings"
	"github.com/ergomake/ergomake/internal/install"
	"github.com/ergomake/ergomake/internal/operator"
	"github.com/ergomake/ergomake/internal/testutil/cluster"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// clusterCeiling is the ceiling the CLI reads from the cluster's settings (baseline without them).
func clusterCeiling(t *testing.T, cs kubernetes.Interface) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := clustersettings.Read(ctx, cs, "")
	if err != nil && !errors.Is(err, clustersettings.ErrNotInstalled) {
		t.Fatalf("reading the cluster settings: %v", err)
	}
	return s.PodSecurity
}

const privilegedCompose = `services:
  web:
    image: ergomake.test/testapp:latest
    privileged: true
    cap_add:
      - CHOWN
      - SYS_ADMIN
`

// TestUpRefusesBeyondCeiling: under the baseline ceiling, `up` of a project asking for a privileged
// container and an added capability beyond the baseline set says so, one line each with file:line,
// service, key and what the admin can change, exits 1 and applies nothing.
func TestUpRefusesBeyondCeiling(t *testing.T) {
	t.Parallel()
	p := newUpProject(t, "e2e-ceiling", privilegedCompose)
	if c := clusterCeiling(t, p.cs); c != clustersettings.PodSecurityBaseline {
		t.Skipf("the cluster's ceiling is %s, this test needs baseline", c)
	}
	_, stderr, code := p.run(2*time.Minute, "up")
	if code != 1 {
		t.Fatalf("up exited %d, want 1\n%s", code, stderr)
	}
	file := filepath.Join(p.dir, "compose.yaml")
	for _, want := range []string{
		file + `:4: service "web": privileged: a privileged container exceeds the cluster's pod security ceiling "baseline"; a cluster admin can allow it with ` + "`ergomake install --pod-security privileged`",
		file + `:7: service "web": cap_add: capability SYS_ADMIN exceeds the cluster's pod security ceiling "baseline"; a cluster admin can allow it with ` + "`ergomake install --pod-security privileged`",
		`error: the project exceeds the cluster's pod security ceiling "baseline": 2 settings exceed it (above); nothing was applied`,
	} {
		if !strings.Contains(stderr, want+"\n") {
			t.Errorf("stderr lacks the line\n%s\n--- stderr:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, "CHOWN") {
		t.Errorf("CHOWN (in the baseline set) was reported:\n%s", stderr)
	}
	if !p.namespaceGone() {
		t.Errorf("namespace %s exists", p.ns)
	}
	if envs := p.envsOfProject(); len(envs) != 0 {
		t.Errorf("environments exist: %v", envs)
	}
}

// TestUpNamespacePodSecurityLabels: the namespace `up` creates carries the Pod Security Admission
// labels of the cluster's ceiling, and the API server enforces them: a privileged pod is refused
// there.
func TestUpNamespacePodSecurityLabels(t *testing.T) {
	t.Parallel()
	p := newUpProject(t, "e2e-psa", upWebCompose, fmt.Sprintf("WEB_PORT=%d", freePort(t)))
	level := clusterCeiling(t, p.cs)
	p.upDetached(4*time.Minute, "--wait-timeout", "3m")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ns, err := p.cs.CoreV1().Namespaces().Get(ctx, p.ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"enforce", "warn", "audit"} {
		l := "pod-security.kubernetes.io/" + mode
		if ns.Labels[l] != level || ns.Labels[l+"-version"] != "latest" {
			t.Errorf("namespace %s: %s=%q, %s-version=%q; want %q, latest", p.ns, l, ns.Labels[l], l, ns.Labels[l+"-version"], level)
		}
	}
	if level != clustersettings.PodSecurityPrivileged {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "privileged", Namespace: p.ns},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: cluster.TestImage,
				SecurityContext: &corev1.SecurityContext{Privileged: ptrTo(true)}}}},
		}
		_, err := p.cs.CoreV1().Pods(p.ns).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "violates PodSecurity") {
			t.Errorf("a privileged pod in %s: %v, want refused by PodSecurity", p.ns, err)
		}
	}
	if _, stderr, code := p.run(3*time.Minute, "down"); code != 0 {
		t.Errorf("down exited %d\n%s", code, stderr)
	}
}

func ptrTo[T any](v T) *T { return &v }

// TestOperatorRefusesBeyondCeiling: an ErgomakeEnv asking for a privileged container and the node's
// network, applied directly by a user who may only create ErgomakeEnvs (impersonated), is Degraded
// with a reason naming the service and the fields, and nothing is created for it.
func TestOperatorRefusesBeyondCeiling(t *testing.T) {
	t.Parallel()
	// The test's operator reads its ceiling from settings in the test's namespace.
	e := opSetupWith(t, "e2e-op-ceiling", clock.RealClock{}, func(o *operator.Options) { o.SettingsNamespace = o.Namespaces[0] })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	settings := clustersettings.Settings{Namespace: e.ns, PodSecurity: clustersettings.PodSecurityBaseline}.ConfigMap()
	if _, err := e.cs.CoreV1().ConfigMaps(e.ns).Create(ctx, settings, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// A user who may create and read ErgomakeEnvs in the namespace, and nothing else.
	user := "e2e-env-author-" + e.ns
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "env-author", Namespace: e.ns},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{v1alpha1.GroupVersion.Group}, Resources: []string{"ergomakeenvs"},
			Verbs: []string{"create", "get", "list", "watch"}}},
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "env-author", Namespace: e.ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
	}
	if _, err := e.cs.RbacV1().Roles(e.ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.cs.RbacV1().RoleBindings(e.ns).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	as := rest.CopyConfig(e.cfg)
	as.Impersonate = rest.ImpersonationConfig{UserName: user}
	userClient := envClient(t, as)
	// The user cannot make a pod directly.
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "direct", Namespace: e.ns},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: cluster.TestImage}}}}
	if err := userClient.Create(ctx, pod, client.DryRunAll); !apierrors.IsForbidden(err) {
		t.Fatalf("the impersonated user creating a pod: %v, want forbidden", err)
	}

	web := testService("web")
	web.HostNetwork = true
	web.Security = &v1alpha1.SecuritySpec{Privileged: true}
	env := e.newEnv("escalate", testService("db"), web)
	cluster.Eventually(t, 30*time.Second, 250*time.Millisecond, "the user's ErgomakeEnv created", func(ctx context.Context) (bool, string, error) {
		// The RoleBinding may take a moment to be honoured.
		err := userClient.Create(ctx, env.DeepCopy())
		return err == nil, fmt.Sprint(err), nil
	})

	got := e.waitEnv("escalate", time.Minute, "escalate Degraded", func(env *v1alpha1.ErgomakeEnv) bool {
		return env.Status.Phase == v1alpha1.PhaseDegraded && env.Status.ObservedGeneration == env.Generation
	})
	for _, ct := range []string{v1alpha1.ConditionDegraded, v1alpha1.ConditionReady} {
		var cond *metav1.Condition
		for i := range got.Status.Conditions {
			if got.Status.Conditions[i].Type == ct {
				cond = &got.Status.Conditions[i]
			}
		}
		want := metav1.ConditionTrue
		if ct == v1alpha1.ConditionReady {
			want = metav1.ConditionFalse
		}
		if cond == nil || cond.Status != want || cond.Reason != operator.CondReasonExceedsCeiling {
			t.Errorf("condition %s: %+v", ct, cond)
		}
	}
	for _, want := range []string{`service "web"`, "spec.services[web].security.privileged", "spec.services[web].hostNetwork", `ceiling "baseline"`} {
		if !strings.Contains(got.Status.Message, want) {
			t.Errorf("status message %q lacks %q", got.Status.Message, want)
		}
	}
	if s := serviceStatus(got, "web"); s.Reason != operator.CondReasonExceedsCeiling || !strings.Contains(s.Message, "security.privileged") {
		t.Errorf("web: %+v", s)
	}

	// Nothing was created: no workload, no pod, no Service (a later pass would not either).
	time.Sleep(2 * time.Second)
	sel := metav1.ListOptions{LabelSelector: v1alpha1.LabelEnv}
	deps, err := e.cs.AppsV1().Deployments(e.ns).List(ctx, sel)
	if err != nil {
		t.Fatal(err)
	}
	pods, err := e.cs.CoreV1().Pods(e.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svcs, err := e.cs.CoreV1().Services(e.ns).List(ctx, sel)
	if err != nil {
		t.Fatal(err)
	}
	if len(deps.Items)+len(pods.Items)+len(svcs.Items) != 0 {
		t.Errorf("created for an environment beyond the ceiling: %d deployments, %d pods, %d services", len(deps.Items), len(pods.Items), len(svcs.Items))
	}
}

// TestOperatorMetricsOnLoopback: the installed operator serves its metrics on loopback only, so
// its pod's address does not answer them (kubectl port-forward, which the API server
// authorizes, reaches them); an operator asked to serve them on every interface refuses to start.
func TestOperatorMetricsOnLoopback(t *testing.T) {
	t.Parallel()
	cfg := cluster.Config(t)
	cs := cluster.Clientset(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := operator.NewManager(operator.Options{Config: cfg, MetricsAddr: ":8080"}); err == nil || !strings.Contains(err.Error(), "not on loopback") {
		t.Errorf("an operator with metrics on every interface: %v", err)
	}
	pods, err := cs.CoreV1().Pods(install.DefaultNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=" + install.Name})
	if err != nil || len(pods.Items) == 0 {
		t.Skipf("no installed operator (make operator-install): %v", err)
	}
	var pod *corev1.Pod
	for i := range pods.Items {
		if pods.Items[i].DeletionTimestamp == nil && podIsReady(&pods.Items[i]) {
			pod = &pods.Items[i]
		}
	}
	if pod == nil {
		t.Skip("no running operator pod")
	}
	args := strings.Join(pod.Spec.Containers[0].Args, " ")
	if !strings.Contains(args, "--metrics-bind-address=127.0.0.1:") {
		t.Errorf("the installed operator's metrics address is not on loopback: %s", args)
	}
	// Through the API server's proxy to the pod's IP: nothing listens there.
	raw, err := cs.CoreV1().Pods(install.DefaultNamespace).ProxyGet("http", pod.Name, "8080", "/metrics", nil).DoRaw(ctx)
	if err == nil {
		t.Errorf("the operator's metrics answer on the pod's IP:\n%.200s", raw)
	}
	// The health endpoint does (the proxy itself works).
	if _, err := cs.CoreV1().Pods(install.DefaultNamespace).ProxyGet("http", pod.Name, "8081", "/healthz", nil).DoRaw(ctx); err != nil {
		t.Errorf("the operator's health endpoint through the proxy: %v", err)
	}
	// Through a port-forward (which the API server authorizes: pods/portforward), they answer.
	u := cs.CoreV1().RESTClient().Post().Resource("pods").Namespace(install.DefaultNamespace).Name(pod.Name).SubResource("portforward").URL()
	dialer, err := cluster.Dialer(cfg, u)
	if err != nil {
		t.Fatal(err)
	}
	stop, ready := make(chan struct{}), make(chan struct{})
	fw, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{"0:8080"}, stop, ready, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- fw.ForwardPorts() }()
	defer func() { close(stop); <-done }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("port-forward: %v", err)
	case <-ctx.Done():
		t.Fatal("port-forward not ready")
	}
	fps, err := fw.GetPorts()
	if err != nil || len(fps) != 1 {
		t.Fatalf("port-forward ports: %v, %v", fps, err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/metrics", fps[0].Local), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("metrics through the port-forward: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "controller_runtime_") {
		t.Errorf("metrics through the port-forward: %s\n%.300s", resp.Status, body)
	}
}

func podIsReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
