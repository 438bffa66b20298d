package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/ergomake/ergomake/internal/kube"
	"github.com/ergomake/ergomake/internal/render"
	"github.com/ergomake/ergomake/internal/server"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// execServer serves the API over TLS on a fake cluster holding alice's environment "shop" (a
// running pod and a rolled-out Deployment of web), running commands with exec; f is logged in to
// it as alice.
func execServer(t *testing.T, f *Factory, exec func(ctx context.Context, o kube.ExecOptions) (int, error)) {
	t.Helper()
	ctx := context.Background()
	cs := fake.NewClientset()
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{v1alpha1.GroupVersionResource: "ErgomakeEnvList"})
	ns := server.Namespace("alice", "shop")
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns,
		Labels:      map[string]string{server.LabelUser: server.UserHash("alice")},
		Annotations: map[string]string{server.AnnotationUser: "alice", server.AnnotationProject: "shop"}}}, metav1.CreateOptions{}))
	env := &v1alpha1.ErgomakeEnv{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: v1alpha1.Kind},
		ObjectMeta: metav1.ObjectMeta{Name: kube.EnvName("shop"), Namespace: ns},
		Spec:       v1alpha1.EnvSpec{Project: "shop", Services: []v1alpha1.ServiceSpec{{Name: "web", ServiceName: "web", Image: "web"}}},
	}
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(env)
	if err != nil {
		t.Fatal(err)
	}
	must(dyn.Resource(v1alpha1.GroupVersionResource).Namespace(ns).Create(ctx, &unstructured.Unstructured{Object: obj}, metav1.CreateOptions{}))
	must(cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: ns, Labels: render.SelectorLabels(env, "web")},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main"}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning,
			ContainerStatuses: []corev1.ContainerStatus{{Name: "main", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}},
	}, metav1.CreateOptions{}))
	yes := true
	must(cs.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns, Generation: 1,
			Labels:          map[string]string{v1alpha1.LabelEnv: render.LabelValue(env.Name), v1alpha1.LabelService: "web"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: v1alpha1.GroupVersion.String(), Kind: v1alpha1.Kind, Name: env.Name, Controller: &yes}}},
		Status: appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 1, UpdatedReplicas: 1, AvailableReplicas: 1},
	}, metav1.CreateOptions{}))

	store := &server.TokenStore{Client: cs, Namespace: "ergomake-system"}
	token, _, err := store.Create(ctx, "alice", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := server.NewCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	chain, key, err := ca.Issue(server.ServingHosts("ergomake-system"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(chain, key)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(server.NewHandler(server.HandlerOptions{Auth: store,
		Tenancy: &server.Tenancy{Kube: cs, Dynamic: dyn, Namespace: "ergomake-system"}, Exec: exec}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	path, err := credentialsPath(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := server.SaveCredentials(path, &server.Credentials{URL: srv.URL, Token: token, User: "alice", CA: string(ca.CertPEM)}); err != nil {
		t.Fatal(err)
	}
}

// TestExecRestartViaServer: logged in, `ergomake exec` runs through the server with the same
// output and exit codes as with a kubeconfig (the command's code; 126 and the runtime's reason,
// naming the pod, for one that could not start), its stdin streamed and -e applied by the CLI;
// `ergomake restart` shows the same progress.
func TestExecRestartViaServer(t *testing.T) {
	f, stdout, stderr := testFactory(t)
	var ran kube.ExecOptions
	execServer(t, f, func(ctx context.Context, o kube.ExecOptions) (int, error) {
		ran = o
		if o.Command[0] == "nope" {
			return 0, &kube.ExecStartError{Reason: `exec: "nope": executable file not found in $PATH`}
		}
		in, _ := io.ReadAll(o.Stdin)
		fmt.Fprintf(o.Stdout, "read %q", in)
		fmt.Fprint(o.Stderr, "warn")
		return 3, nil
	})
	f.IOStreams.In = strings.NewReader("input")

	err := run(t, f, "exec", "-p", "shop", "-T", "-e", "A=1", "web", "--", "cat")
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != 3 || ee.Err != nil {
		t.Fatalf("exec = %v, want exit code 3 and nothing more to say", err)
	}
	if stdout.String() != `read "input"` || stderr.String() != "warn" {
		t.Errorf("stdout %q, stderr %q", stdout, stderr)
	}
	if ran.Pod.Name != "web-1" || ran.TTY || len(ran.Command) < 3 || ran.Command[0] != "/bin/sh" || ran.Command[len(ran.Command)-1] != "cat" {
		t.Errorf("ran %q in %s (tty %v)", ran.Command, ran.Pod.Name, ran.TTY)
	}

	err = run(t, f, "exec", "-p", "shop", "-T", "web", "nope")
	if !errors.As(err, &ee) || ee.Code != 126 || !strings.Contains(err.Error(), "cannot run nope in service web (pod web-1): exec: \"nope\": executable file not found") {
		t.Errorf("exec of a command that cannot start = %v", err)
	}
	if err := run(t, f, "exec", "-p", "shop", "api", "true"); err == nil || !strings.Contains(err.Error(), "no such service: api (the services of project shop: web)") {
		t.Errorf("exec in an unknown service = %v", err)
	}

	stderr.Reset()
	if err := run(t, f, "restart", "-p", "shop"); err != nil {
		t.Fatalf("restart = %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr.String(), "web: running") || !strings.Contains(stderr.String(), "Restarting web") {
		t.Errorf("restart's progress:\n%s", stderr)
	}
}
