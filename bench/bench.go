package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"github.com/ergomake/ergomake/internal/forward"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

const (
	testImage = "ergomake.test/testapp:latest"
	httpPort  = 8080
	echoPort  = 9000
)

// bench holds the transport environment: one pod of the test image (HTTP on 8080, echo on
// 9000) reached three ways.
type bench struct {
	c   config
	log io.Writer
	cfg *rest.Config
	cs  kubernetes.Interface
	tmp string

	ns       string
	sel      map[string]string
	pod      *corev1.Pod
	fwd      *forward.Forwarder
	fwdStop  context.CancelFunc
	fwdDone  chan struct{}
	ergoAddr map[int]string
	kube     *kubeFwd

	relay     []int // pids of kube-apiserver, kubelet, containerd
	kubeEnded int   // recovery runs after which kubectl's port-forward process had exited

	cleanups []func()
}

func newBench(ctx context.Context, c config, log io.Writer) (*bench, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", c.kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", c.kubeconfig, err)
	}
	cfg.QPS, cfg.Burst = 50, 100
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := cs.Discovery().ServerVersion(); err != nil || cctx.Err() != nil {
		return nil, fmt.Errorf("cluster of %s not reachable: %v (make cluster-up)", c.kubeconfig, err)
	}
	tmp, err := os.MkdirTemp("", "ergomake-bench-")
	if err != nil {
		return nil, err
	}
	b := &bench{c: c, log: log, cfg: cfg, cs: cs, tmp: tmp}
	b.cleanups = append(b.cleanups, func() { _ = os.RemoveAll(tmp) })
	return b, nil
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "%s %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func (b *bench) cleanup() {
	for i := len(b.cleanups) - 1; i >= 0; i-- {
		b.cleanups[i]()
	}
}

func randSuffix() string {
	const letters = "abcdefghijklmnopqrstuvwxyz0123456789"
	s := make([]byte, 5)
	for i := range s {
		s[i] = letters[rand.IntN(len(letters))]
	}
	return string(s)
}

// all runs every measure group the flags ask for and returns the results.
func (b *bench) all(ctx context.Context) (*results, error) {
	res := &results{}
	if b.c.want("transport") || b.c.want("recovery") {
		if err := b.setupTransport(ctx); err != nil {
			return nil, err
		}
		if err := b.transport(ctx, res); err != nil {
			return nil, err
		}
	}
	if b.c.want("ttr") || b.c.want("scale") || b.c.want("build") || b.c.want("server") {
		if err := b.ensureErgomake(ctx); err != nil {
			return nil, err
		}
	}
	if b.c.want("server") {
		if err := b.serverPath(ctx, res); err != nil {
			return nil, err
		}
	}
	if b.c.want("ttr") {
		if err := b.timeToReady(ctx, res); err != nil {
			return nil, err
		}
	}
	if b.c.want("scale") {
		if err := b.scale(ctx, res); err != nil {
			return nil, err
		}
	}
	if b.c.want("build") {
		if err := b.builds(ctx, res); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// setupTransport creates the namespace and the test pod's Deployment, starts the in-process
// forwarder and kubectl port-forward.
func (b *bench) setupTransport(ctx context.Context) error {
	b.ns = "ergomake-bench-" + randSuffix()
	b.sel = map[string]string{v1alpha1.LabelEnv: "bench", v1alpha1.LabelService: "app"}
	b.logf("setting up namespace %s: one pod of %s", b.ns, testImage)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: b.ns, Labels: map[string]string{"ergomake.dev/bench": "true"}}}
	if _, err := b.cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating namespace %s: %w", b.ns, err)
	}
	b.cleanups = append(b.cleanups, func() {
		dctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		_ = deleteNamespaceWait(dctx, b.cs, b.ns)
	})
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: b.ns, Labels: b.sel},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(int32(1)),
			Selector: &metav1.LabelSelector{MatchLabels: b.sel},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: b.sel},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: ptr.To(int64(5)),
					EnableServiceLinks:            ptr.To(false),
					Containers: []corev1.Container{{
						Name:            "app",
						Image:           testImage,
						ImagePullPolicy: corev1.PullIfNotPresent,
						Env: []corev1.EnvVar{{Name: "SERVICE", Value: "app"}, {Name: "PORTS", Value: strconv.Itoa(httpPort)},
							{Name: "ECHO_PORTS", Value: strconv.Itoa(echoPort)}},
						Ports: []corev1.ContainerPort{{ContainerPort: httpPort}, {ContainerPort: echoPort}},
						ReadinessProbe: &corev1.Probe{
							ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(httpPort)}},
							PeriodSeconds: 1,
						},
					}},
				},
			},
		},
	}
	if _, err := b.cs.AppsV1().Deployments(b.ns).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating the test Deployment: %w", err)
	}
	pod, err := b.readyPod(ctx, "")
	if err != nil {
		return err
	}
	b.pod = pod
	b.relay = relayPids()

	fwd, err := forward.New(b.cfg, b.ns, forward.Options{Logf: func(format string, args ...any) {
		if b.c.verbose {
			b.logf(format, args...)
		}
	}})
	if err != nil {
		return err
	}
	bs, err := fwd.Bind([]forward.Port{
		{Service: "app", Selector: b.sel, RemotePort: httpPort},
		{Service: "app", Selector: b.sel, RemotePort: echoPort},
	})
	if err != nil {
		return err
	}
	b.ergoAddr = map[int]string{httpPort: bs[0].Addrs[0], echoPort: bs[1].Addrs[0]}
	fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	b.fwd, b.fwdStop, b.fwdDone = fwd, cancel, make(chan struct{})
	go func() {
		_ = fwd.Serve(fctx)
		close(b.fwdDone)
	}()
	b.cleanups = append(b.cleanups, func() {
		b.fwdStop()
		<-b.fwdDone
	})
	b.cleanups = append(b.cleanups, func() { b.kube.stop() })
	if err := b.ensureKube(ctx); err != nil {
		return err
	}
	// Both forwards answer before anything is measured (and ergomake's pre-dialled tunnels are up).
	for _, p := range []int{pErgo, pKube, pDirect} {
		if err := waitHTTP(ctx, b.addr(p, httpPort), 60*time.Second); err != nil {
			return fmt.Errorf("%s path to %s: %w", pathNames[p], b.pod.Name, err)
		}
	}
	return nil
}

// ensureKube (re)starts kubectl port-forward to the current pod when it is not running.
func (b *bench) ensureKube(ctx context.Context) error {
	if b.kube != nil && b.kube.alive() && b.kube.target == b.pod.Name {
		return nil
	}
	b.kube.stop()
	k, err := startKubeFwd(ctx, b.c.kubectl, b.c.kubeconfig, b.ns, "pod/"+b.pod.Name, []int{httpPort, echoPort})
	if err != nil {
		return err
	}
	k.target = b.pod.Name
	b.kube = k
	return nil
}

// restartKube starts a fresh kubectl port-forward (after a measure that may have wedged it).
func (b *bench) restartKube(ctx context.Context) error {
	b.kube.stop()
	b.kube = nil
	return b.ensureKube(ctx)
}

func (b *bench) addr(p, port int) string {
	switch p {
	case pErgo:
		return b.ergoAddr[port]
	case pKube:
		return b.kube.addr(port)
	default:
		return net.JoinHostPort(b.pod.Status.PodIP, strconv.Itoa(port))
	}
}

func podReady(p *corev1.Pod) bool {
	if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning || p.Status.PodIP == "" {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// readyPod waits (up to 3 minutes) for a ready pod of the test Deployment other than exclude.
func (b *bench) readyPod(ctx context.Context, exclude string) (*corev1.Pod, error) {
	deadline := time.Now().Add(3 * time.Minute)
	sel := labels.SelectorFromSet(b.sel).String()
	for time.Now().Before(deadline) {
		pods, err := b.cs.CoreV1().Pods(b.ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err == nil {
			for i := range pods.Items {
				if p := &pods.Items[i]; p.Name != exclude && podReady(p) {
					return p, nil
				}
			}
		}
		if !sleepCtx(ctx, 200*time.Millisecond) {
			return nil, ctx.Err()
		}
	}
	return nil, errors.New("no ready pod of the test Deployment after 3m")
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// deleteNamespaceWait deletes ns and waits until it is gone (or ctx ends).
func deleteNamespaceWait(ctx context.Context, cs kubernetes.Interface, ns string) error {
	err := cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	for {
		_, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if !sleepCtx(ctx, 500*time.Millisecond) {
			return fmt.Errorf("namespace %s still there: %w", ns, ctx.Err())
		}
	}
}
