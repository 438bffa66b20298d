//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ergomake/ergomake/internal/install"
	"github.com/ergomake/ergomake/internal/testutil/cluster"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// TestDNSSurvivesOperatorRestart: the environment DNS runs in its own Deployment (make
// operator-install), so a pod of an environment with a name cluster DNS cannot carry (web_app)
// keeps resolving it, without a single failure, while the operator's pod is deleted and replaced,
// and then while one of the two DNS replicas is deleted (the other answers; the leaving one
// answers through its drain).
func TestDNSSurvivesOperatorRestart(t *testing.T) {
	cfg := cluster.Config(t)
	cs := cluster.Clientset(t, cfg)
	ctx := context.Background()
	sys := install.DefaultNamespace

	dep, err := cs.AppsV1().Deployments(sys).Get(ctx, install.DNSName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the %s Deployment: %v (run make operator-install)", install.DNSName, err)
	}
	if dep.Spec.Replicas == nil || *dep.Spec.Replicas < 2 {
		t.Fatalf("%s runs %v replicas, want 2", install.DNSName, dep.Spec.Replicas)
	}
	if _, err := cs.PolicyV1().PodDisruptionBudgets(sys).Get(ctx, install.DNSName, metav1.GetOptions{}); err != nil {
		t.Fatalf("the %s PodDisruptionBudget: %v", install.DNSName, err)
	}
	waitDeploymentReady(t, cs, sys, install.DNSName)

	c := envClient(t, cfg)
	ns := cluster.Namespace(t, cs, "e2e-dns-restart")
	web := testService("web_app")
	env := &v1alpha1.ErgomakeEnv{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: v1alpha1.Kind},
		ObjectMeta: metav1.ObjectMeta{Name: "names", Namespace: ns},
		Spec:       v1alpha1.EnvSpec{Project: "names", Services: []v1alpha1.ServiceSpec{web, testService("client")}},
	}
	if err := c.Create(ctx, env); err != nil {
		t.Fatalf("creating the ErgomakeEnv: %v", err)
	}
	var clientPod *corev1.Pod
	cluster.Eventually(t, 3*time.Minute, time.Second, "environment ready", func(ctx context.Context) (bool, string, error) {
		got := &v1alpha1.ErgomakeEnv{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(env), got); err != nil {
			return false, err.Error(), nil
		}
		if got.Status.Phase != v1alpha1.PhaseReady {
			return false, describeStatus(got), nil
		}
		clientPod, err = readyPodOf(ctx, cs, ns, "names", "client")
		if err != nil {
			return false, err.Error(), nil
		}
		return true, "", nil
	})
	webIP := serviceIP(t, cs, ns, "web-app")
	name := "web_app." + ns + ".svc.cluster.local"

	// Resolving in a loop, from the client pod, in rounds of 10 s.
	loop := fmt.Sprintf(`end=$(( $(date +%%s) + 10 )); ok=0; fail=0
while [ $(date +%%s) -lt $end ]; do
  if nslookup %s 2>/dev/null | grep -q "Address: %s"; then ok=$((ok+1)); else fail=$((fail+1)); fi
  sleep 0.1
done
echo "ok=$ok fail=$fail"`, name, webIP)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var ok, fail int
	var troubles []string
	wg.Add(1)
	go func() {
		defer wg.Done()
		re := regexp.MustCompile(`ok=(\d+) fail=(\d+)`)
		for {
			select {
			case <-stop:
				return
			default:
			}
			out, err := execIn(ctx, cfg, cs, ns, clientPod.Name, "sh", "-c", loop)
			m := re.FindStringSubmatch(out)
			mu.Lock()
			if err != nil || m == nil {
				troubles = append(troubles, fmt.Sprintf("%v: %s", err, out))
			} else {
				o, _ := strconv.Atoi(m[1])
				f, _ := strconv.Atoi(m[2])
				ok, fail = ok+o, fail+f
			}
			mu.Unlock()
		}
	}()

	time.Sleep(3 * time.Second)
	replacePods(t, cs, sys, "app.kubernetes.io/name=ergomake-operator", 1)
	waitDeploymentReady(t, cs, sys, install.Name)
	t.Log("the operator's pod was replaced")
	replacePods(t, cs, sys, "app.kubernetes.io/name="+install.DNSName, 1)
	waitDeploymentReady(t, cs, sys, install.DNSName)
	t.Log("a DNS replica was replaced")
	time.Sleep(3 * time.Second)
	close(stop)
	wg.Wait()

	t.Logf("%s resolved %d times, %d failures", name, ok, fail)
	if len(troubles) > 0 {
		t.Errorf("resolving rounds that did not run: %v", troubles)
	}
	if fail > 0 || ok < 20 {
		t.Errorf("%d failed resolutions of %s (%d good) across an operator restart and a DNS replica's", fail, name, ok)
	}
}

// replacePods deletes n pods matching selector in ns and waits until they are gone.
func replacePods(t *testing.T, cs kubernetes.Interface, ns, selector string, n int) {
	t.Helper()
	ctx := context.Background()
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		t.Fatal(err)
	}
	var deleted []string
	for _, p := range pods.Items {
		if len(deleted) == n || p.DeletionTimestamp != nil {
			continue
		}
		if err := cs.CoreV1().Pods(ns).Delete(ctx, p.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		deleted = append(deleted, p.Name)
	}
	if len(deleted) != n {
		t.Fatalf("%d pods %s to delete, want %d", len(deleted), selector, n)
	}
	cluster.Eventually(t, time.Minute, 500*time.Millisecond, "deleted pods gone", func(ctx context.Context) (bool, string, error) {
		for _, name := range deleted {
			if _, err := cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{}); err == nil {
				return false, name + " still there", nil
			}
		}
		return true, "", nil
	})
}

// waitDeploymentReady waits until every replica of the Deployment is updated and ready.
func waitDeploymentReady(t *testing.T, cs kubernetes.Interface, ns, name string) {
	t.Helper()
	cluster.Eventually(t, 2*time.Minute, 500*time.Millisecond, name+" ready", func(ctx context.Context) (bool, string, error) {
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error(), nil
		}
		want := int32(1)
		if d.Spec.Replicas != nil {
			want = *d.Spec.Replicas
		}
		st := d.Status
		return st.ObservedGeneration >= d.Generation && st.UpdatedReplicas == want && st.ReadyReplicas == want && st.Replicas == want,
			fmt.Sprintf("%d/%d ready, %d updated, %d in all", st.ReadyReplicas, want, st.UpdatedReplicas, st.Replicas), nil
	})
}
