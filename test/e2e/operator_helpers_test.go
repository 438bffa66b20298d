//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ergomake/ergomake/internal/install"
	"github.com/ergomake/ergomake/internal/operator"
	"github.com/ergomake/ergomake/internal/testutil/cluster"
	"github.com/ergomake/ergomake/internal/testutil/syncbuf"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// opEnv is one operator test: its namespace, clients, and an operator run in this process that
// handles only the environments of that namespace labelled with its instance (the namespace name),
// so an installed operator leaves them alone.
type opEnv struct {
	t   *testing.T
	cfg *rest.Config
	cs  kubernetes.Interface
	c   client.Client
	ns  string

	// tweak adjusts the operator's options before each start (nil: none).
	tweak func(*operator.Options)

	mu   sync.Mutex
	stop context.CancelFunc
	done chan struct{}
	logs *syncbuf.Buffer // the operator's log, written to the test log when the test fails
}

var crdOnce sync.Once

// opSetup makes the namespace, makes sure the CRD is installed and starts an operator with clk.
func opSetup(t *testing.T, prefix string, clk clock.Clock) *opEnv {
	t.Helper()
	return opSetupWith(t, prefix, clk, nil)
}

// opSetupWith is opSetup with the operator's options adjusted by tweak.
func opSetupWith(t *testing.T, prefix string, clk clock.Clock, tweak func(*operator.Options)) *opEnv {
	t.Helper()
	cfg := cluster.Config(t)
	cs := cluster.Clientset(t, cfg)
	c := envClient(t, cfg)
	var crdErr error
	crdOnce.Do(func() { crdErr = applyCRD(cfg) })
	if crdErr != nil {
		t.Fatalf("installing the CRD: %v", crdErr)
	}
	e := &opEnv{t: t, cfg: cfg, cs: cs, c: c, logs: &syncbuf.Buffer{}, tweak: tweak}
	e.ns = cluster.Namespace(t, cs, prefix)
	t.Cleanup(func() {
		e.stopOperator()
		if t.Failed() {
			t.Logf("operator log:\n%s", e.logs.String())
		}
	})
	e.startOperator(clk)
	return e
}

// envClient is a controller-runtime client of cfg that knows the ErgomakeEnv type (the operator's
// scheme).
func envClient(t *testing.T, cfg *rest.Config) client.Client {
	t.Helper()
	scheme, err := operator.NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func applyCRD(cfg *rest.Config) error {
	objs, err := install.Objects(install.Options{})
	if err != nil {
		return err
	}
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	crd := objs[0]
	if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(crd), client.FieldOwner(install.FieldManager), client.ForceOwnership); err != nil {
		return err
	}
	return cluster.Poll(ctx, 200*time.Millisecond, func(ctx context.Context) (bool, string, error) {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(crd.GroupVersionKind())
		if err := c.Get(ctx, client.ObjectKeyFromObject(crd), u); err != nil {
			return false, err.Error(), nil
		}
		conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		for _, x := range conds {
			m, _ := x.(map[string]any)
			if m["type"] == "Established" && m["status"] == "True" {
				return true, "", nil
			}
		}
		return false, "not established", nil
	})
}

// startOperator runs the operator in this process until stopOperator.
func (e *opEnv) startOperator(clk clock.Clock) {
	e.t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	logger := operator.TextLogger(e.logs)
	opts := operator.Options{
		Config:     e.cfg,
		Instance:   e.ns,
		Namespaces: []string{e.ns},
		Clock:      clk,
		Log:        &logger,
	}
	if e.tweak != nil {
		e.tweak(&opts)
	}
	mgr, err := operator.NewManager(opts)
	if err != nil {
		e.t.Fatalf("operator: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			fmt.Fprintf(e.logs, "operator stopped: %v\n", err)
		}
	}()
	e.stop, e.done = cancel, done
}

// stopOperator stops the in-process operator and waits until it has.
func (e *opEnv) stopOperator() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stop == nil {
		return
	}
	e.stop()
	<-e.done
	e.stop = nil
}

// newEnv is an ErgomakeEnv of the test's namespace, handed to the test's operator.
func (e *opEnv) newEnv(name string, services ...v1alpha1.ServiceSpec) *v1alpha1.ErgomakeEnv {
	return &v1alpha1.ErgomakeEnv{
		TypeMeta: metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: v1alpha1.Kind},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.ns,
			Labels: map[string]string{operator.LabelInstance: e.ns}},
		Spec: v1alpha1.EnvSpec{Project: name, Services: services},
	}
}

func (e *opEnv) create(env *v1alpha1.ErgomakeEnv) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.c.Create(ctx, env); err != nil {
		e.t.Fatalf("creating ErgomakeEnv %s: %v", env.Name, err)
	}
}

func (e *opEnv) get(name string) *v1alpha1.ErgomakeEnv {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	env := &v1alpha1.ErgomakeEnv{}
	if err := e.c.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: name}, env); err != nil {
		e.t.Fatalf("getting ErgomakeEnv %s: %v", name, err)
	}
	return env
}

// waitEnv waits until cond holds for the environment's status, describing it meanwhile.
func (e *opEnv) waitEnv(name string, timeout time.Duration, what string, cond func(*v1alpha1.ErgomakeEnv) bool) *v1alpha1.ErgomakeEnv {
	e.t.Helper()
	var last *v1alpha1.ErgomakeEnv
	cluster.Eventually(e.t, timeout, 250*time.Millisecond, what, func(ctx context.Context) (bool, string, error) {
		env := &v1alpha1.ErgomakeEnv{}
		if err := e.c.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: name}, env); err != nil {
			return false, err.Error(), nil
		}
		last = env
		return cond(env), describeStatus(env), nil
	})
	return last
}

func (e *opEnv) waitReady(name string, timeout time.Duration) *v1alpha1.ErgomakeEnv {
	e.t.Helper()
	return e.waitEnv(name, timeout, name+" Ready", func(env *v1alpha1.ErgomakeEnv) bool {
		return env.Status.Phase == v1alpha1.PhaseReady && env.Status.ObservedGeneration == env.Generation
	})
}

func describeStatus(env *v1alpha1.ErgomakeEnv) string {
	var b strings.Builder
	fmt.Fprintf(&b, "phase=%s summary=%s message=%q", env.Status.Phase, env.Status.Summary, env.Status.Message)
	for _, s := range env.Status.Services {
		fmt.Fprintf(&b, "; %s: %s %d/%d %s %q", s.Name, s.State, s.Ready, s.Desired, s.Reason, s.Message)
		if len(s.LogTail) > 0 {
			fmt.Fprintf(&b, " log %q", s.LogTail)
		}
	}
	return b.String()
}

func serviceStatus(env *v1alpha1.ErgomakeEnv, name string) v1alpha1.ServiceStatus {
	for _, s := range env.Status.Services {
		if s.Name == name {
			return s
		}
	}
	return v1alpha1.ServiceStatus{}
}

// testService is a long-running service of the test image serving HTTP on 8080.
func testService(name string, env ...v1alpha1.EnvVar) v1alpha1.ServiceSpec {
	return v1alpha1.ServiceSpec{
		Name:            name,
		ServiceName:     strings.ReplaceAll(strings.ToLower(name), "_", "-"),
		Image:           cluster.TestImage,
		ImagePullPolicy: "IfNotPresent",
		Lifecycle:       v1alpha1.LongRunning,
		Environment:     append([]v1alpha1.EnvVar{{Name: "SERVICE", Value: name}}, env...),
		Ports:           []v1alpha1.PortSpec{{Name: "http", Target: 8080, Protocol: "TCP"}},
	}
}

func dependsOn(s v1alpha1.ServiceSpec, dep string, cond v1alpha1.DependencyCondition) v1alpha1.ServiceSpec {
	s.DependsOn = append(s.DependsOn, v1alpha1.Dependency{Service: dep, Condition: cond, Required: true})
	return s
}

// objectsLeft lists what of the environment is still in the namespace.
func (e *opEnv) objectsLeft(ctx context.Context, envName string) ([]string, error) {
	sel := metav1.ListOptions{LabelSelector: v1alpha1.LabelEnv + "=" + envName}
	var left []string
	svcs, err := e.cs.CoreV1().Services(e.ns).List(ctx, sel)
	if err != nil {
		return nil, err
	}
	for _, x := range svcs.Items {
		left = append(left, "Service/"+x.Name)
	}
	deps, err := e.cs.AppsV1().Deployments(e.ns).List(ctx, sel)
	if err != nil {
		return nil, err
	}
	for _, x := range deps.Items {
		left = append(left, "Deployment/"+x.Name)
	}
	rss, err := e.cs.AppsV1().ReplicaSets(e.ns).List(ctx, sel)
	if err != nil {
		return nil, err
	}
	for _, x := range rss.Items {
		left = append(left, "ReplicaSet/"+x.Name)
	}
	jobs, err := e.cs.BatchV1().Jobs(e.ns).List(ctx, sel)
	if err != nil {
		return nil, err
	}
	for _, x := range jobs.Items {
		left = append(left, "Job/"+x.Name)
	}
	pods, err := e.cs.CoreV1().Pods(e.ns).List(ctx, sel)
	if err != nil {
		return nil, err
	}
	for _, x := range pods.Items {
		left = append(left, "Pod/"+x.Name)
	}
	pvcs, err := e.cs.CoreV1().PersistentVolumeClaims(e.ns).List(ctx, sel)
	if err != nil {
		return nil, err
	}
	for _, x := range pvcs.Items {
		left = append(left, "PersistentVolumeClaim/"+x.Name)
	}
	return left, nil
}

// waitGone waits until the environment and everything it owned are gone.
func (e *opEnv) waitGone(envName string, timeout time.Duration) {
	e.t.Helper()
	cluster.Eventually(e.t, timeout, 500*time.Millisecond, envName+" and its objects gone", func(ctx context.Context) (bool, string, error) {
		err := e.c.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: envName}, &v1alpha1.ErgomakeEnv{})
		if err == nil {
			return false, "the ErgomakeEnv still exists", nil
		}
		if !apierrors.IsNotFound(err) {
			return false, err.Error(), nil
		}
		left, err := e.objectsLeft(ctx, envName)
		if err != nil {
			return false, err.Error(), nil
		}
		return len(left) == 0, "left: " + strings.Join(left, ", "), nil
	})
}

// fetchFrom asks a pod of the test image to GET url (its /fetch endpoint), through the API
// server's pod proxy, and returns the status code the pod got and the body.
func (e *opEnv) fetchFrom(ctx context.Context, pod, url string) (int, string, error) {
	return dnsFetch(ctx, e.cs, e.ns, pod, url)
}

func readyPodOf(ctx context.Context, cs kubernetes.Interface, ns, envName, service string) (*corev1.Pod, error) {
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{
		LabelSelector: v1alpha1.LabelEnv + "=" + envName + "," + v1alpha1.LabelService + "=" + service})
	if err != nil {
		return nil, err
	}
	for i := range pods.Items {
		if cluster.PodReady(&pods.Items[i]) && pods.Items[i].DeletionTimestamp == nil {
			return &pods.Items[i], nil
		}
	}
	return nil, fmt.Errorf("no ready pod of %s", service)
}
