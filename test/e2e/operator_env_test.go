//go:build e2e

package e2e

import (
	"context"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ergomake/ergomake/internal/operator"
	"github.com/ergomake/ergomake/internal/testutil/cluster"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// shopServices: db with a healthcheck that passes after 3s, a one-shot migration that needs db
// healthy and takes 2s, and web that needs the migration completed.
func shopServices() []v1alpha1.ServiceSpec {
	db := testService("db", v1alpha1.EnvVar{Name: "READY_AFTER", Value: "3"})
	db.Healthcheck = &v1alpha1.Healthcheck{
		Exec:     []string{"/bin/sh", "-c", "/testapp probe http://127.0.0.1:8080/healthz"},
		Interval: metav1.Duration{Duration: time.Second}, Timeout: metav1.Duration{Duration: 2 * time.Second}, Retries: 3,
	}
	migrate := v1alpha1.ServiceSpec{
		Name: "migrate", ServiceName: "migrate", Image: cluster.TestImage, ImagePullPolicy: "IfNotPresent",
		Lifecycle: v1alpha1.OneShot, Command: []string{"exit", "0"},
		Environment: []v1alpha1.EnvVar{{Name: "SLEEP", Value: "2"}},
	}
	migrate = dependsOn(migrate, "db", v1alpha1.ServiceHealthy)
	web := dependsOn(testService("web"), "migrate", v1alpha1.ServiceCompletedSuccessfully)
	return []v1alpha1.ServiceSpec{db, migrate, web}
}

// TestOperatorDependencyOrder: db → migration (db healthy) → web (migration completed) become
// ready in that order, as the status timestamps show; every object carries the controller owner
// reference; deleting the ErgomakeEnv leaves nothing behind.
func TestOperatorDependencyOrder(t *testing.T) {
	t.Parallel()
	e := opSetup(t, "e2e-op-order", clock.RealClock{})
	e.create(e.newEnv("shop", shopServices()...))

	// While db is not healthy, the others wait and say for what.
	e.waitEnv("shop", time.Minute, "migrate waiting for db", func(env *v1alpha1.ErgomakeEnv) bool {
		m := serviceStatus(env, "migrate")
		return m.State == v1alpha1.StateWaiting && m.Reason == operator.ReasonWaitingForDependencies &&
			len(m.WaitingFor) == 1 && m.WaitingFor[0] == "db"
	})
	env := e.waitReady("shop", 3*time.Minute)
	t.Logf("ready: %s", describeStatus(env))

	db, migrate, web := serviceStatus(env, "db"), serviceStatus(env, "migrate"), serviceStatus(env, "web")
	for _, s := range []v1alpha1.ServiceStatus{db, migrate, web} {
		if s.CreatedAt == nil || s.ReadyAt == nil {
			t.Fatalf("%s: createdAt %v readyAt %v", s.Name, s.CreatedAt, s.ReadyAt)
		}
	}
	// web has no healthcheck: ready, shown as running.
	if migrate.State != v1alpha1.StateCompleted || db.State != v1alpha1.StateHealthy || web.State != v1alpha1.StateRunning || web.Ready != 1 {
		t.Errorf("states: %s", describeStatus(env))
	}
	// Second resolution: "not before" is what can be asserted exactly.
	order := []struct {
		what        string
		first, then *metav1.Time
	}{
		{"db ready before migrate created", db.ReadyAt, migrate.CreatedAt},
		{"migrate completed before web created", migrate.ReadyAt, web.CreatedAt},
		{"web created before web ready", web.CreatedAt, web.ReadyAt},
	}
	for _, o := range order {
		if o.then.Before(o.first) {
			t.Errorf("%s: %s then %s", o.what, o.first.Format(time.RFC3339), o.then.Format(time.RFC3339))
		}
	}
	// db is healthy only 3s after it starts, and the migration takes 2s: the gates really waited.
	if d := migrate.CreatedAt.Sub(db.CreatedAt.Time); d < 3*time.Second {
		t.Errorf("migrate created %s after db: it did not wait for db to be healthy", d)
	}
	if d := web.CreatedAt.Sub(migrate.CreatedAt.Time); d < 2*time.Second {
		t.Errorf("web created %s after migrate: it did not wait for the migration to complete", d)
	}
	if env.Status.Summary != "3/3" || !condTrue(env, v1alpha1.ConditionReady) || condTrue(env, v1alpha1.ConditionDegraded) {
		t.Errorf("status %s, conditions %+v", describeStatus(env), env.Status.Conditions)
	}

	// Every child is controlled by the environment.
	ctx := context.Background()
	sel := metav1.ListOptions{LabelSelector: v1alpha1.LabelEnv + "=shop"}
	svcs, _ := e.cs.CoreV1().Services(e.ns).List(ctx, sel)
	deps, _ := e.cs.AppsV1().Deployments(e.ns).List(ctx, sel)
	jobs, _ := e.cs.BatchV1().Jobs(e.ns).List(ctx, sel)
	var children []metav1.Object
	for i := range svcs.Items {
		children = append(children, &svcs.Items[i])
	}
	for i := range deps.Items {
		children = append(children, &deps.Items[i])
	}
	for i := range jobs.Items {
		children = append(children, &jobs.Items[i])
	}
	if len(svcs.Items) != 3 || len(deps.Items) != 2 || len(jobs.Items) != 1 {
		t.Errorf("%d Services, %d Deployments, %d Jobs; want 3, 2, 1", len(svcs.Items), len(deps.Items), len(jobs.Items))
	}
	for _, c := range children {
		ref := metav1.GetControllerOf(c)
		if ref == nil || ref.UID != env.UID || ref.Kind != v1alpha1.Kind {
			t.Errorf("%s: controller %+v", c.GetName(), ref)
		}
		if c.GetLabels()[v1alpha1.LabelService] == "" {
			t.Errorf("%s lacks the %s label", c.GetName(), v1alpha1.LabelService)
		}
	}

	// Deleting the environment removes everything it owned.
	if err := e.c.Delete(ctx, env); err != nil {
		t.Fatal(err)
	}
	e.waitGone("shop", 2*time.Minute)
}

func condTrue(env *v1alpha1.ErgomakeEnv, typ string) bool {
	for _, c := range env.Status.Conditions {
		if c.Type == typ {
			return c.Status == metav1.ConditionTrue && c.ObservedGeneration == env.Generation
		}
	}
	return false
}

// TestOperatorMissingImage: an image that cannot be pulled is reported with its name and the pull
// error; the environment is Degraded and the service depending on it is held back.
func TestOperatorMissingImage(t *testing.T) {
	t.Parallel()
	e := opSetup(t, "e2e-op-image", clock.RealClock{})
	api := testService("api")
	// A registry on a closed loopback port: the pull fails without any traffic leaving the machine.
	api.Image = "127.0.0.1:1/ergomake-test/no-such-image:1.0"
	web := dependsOn(testService("web"), "api", v1alpha1.ServiceStarted)
	e.create(e.newEnv("broken", api, web))

	env := e.waitEnv("broken", 2*time.Minute, "api failing to pull", func(env *v1alpha1.ErgomakeEnv) bool {
		s := serviceStatus(env, "api")
		return s.State == v1alpha1.StateFailed && env.Status.Phase == v1alpha1.PhaseDegraded
	})
	s := serviceStatus(env, "api")
	t.Logf("api: %s: %s", s.Reason, s.Message)
	if s.Reason != "ErrImagePull" && s.Reason != "ImagePullBackOff" {
		t.Errorf("reason %q, want ErrImagePull or ImagePullBackOff", s.Reason)
	}
	if !strings.Contains(s.Message, "127.0.0.1:1/ergomake-test/no-such-image:1.0") {
		t.Errorf("message %q does not name the image", s.Message)
	}
	// The pull error itself, not just "cannot pull".
	if !strings.Contains(s.Message, "connection refused") {
		t.Errorf("message %q lacks the pull error", s.Message)
	}
	if !strings.Contains(env.Status.Message, "api:") || !condTrue(env, v1alpha1.ConditionDegraded) {
		t.Errorf("environment %s", describeStatus(env))
	}
	w := serviceStatus(env, "web")
	if w.State != v1alpha1.StateWaiting || w.Reason != operator.ReasonDependencyFailed || w.CreatedAt != nil {
		t.Errorf("web %+v, want waiting, held back by api", w)
	}
	deps, err := e.cs.AppsV1().Deployments(e.ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range deps.Items {
		if d.Name == "web" {
			t.Errorf("web's Deployment was created although api failed")
		}
	}
}

// TestOperatorCrashLoop: a crash-looping service is reported with its exit code and the last
// lines of its log.
func TestOperatorCrashLoop(t *testing.T) {
	t.Parallel()
	e := opSetup(t, "e2e-op-crash", clock.RealClock{})
	svc := testService("worker")
	svc.Command = []string{"crash"}
	e.create(e.newEnv("crashy", svc))

	env := e.waitEnv("crashy", 2*time.Minute, "worker in a crash loop with its log lines", func(env *v1alpha1.ErgomakeEnv) bool {
		s := serviceStatus(env, "worker")
		return s.Reason == "CrashLoopBackOff" && len(s.LogTail) > 0
	})
	s := serviceStatus(env, "worker")
	t.Logf("worker: %s: %s; log %q", s.Reason, s.Message, s.LogTail)
	if !strings.Contains(s.Message, "exited with code 1") || strings.Contains(s.Message, "\n") {
		t.Errorf("message %q is not one line saying the exit code", s.Message)
	}
	if !slices.Contains(s.LogTail, "testapp: crash requested, exiting with 1") {
		t.Errorf("log tail %q lacks the crash's line", s.LogTail)
	}
	if s.State != v1alpha1.StateFailed || !s.Failed() || s.IsReady() || env.Status.Phase != v1alpha1.PhaseDegraded {
		t.Errorf("status %s", describeStatus(env))
	}
}

// TestOperatorProbeFailing: a service whose healthcheck keeps failing is running, not ready, and
// says so with the probe's output.
func TestOperatorProbeFailing(t *testing.T) {
	t.Parallel()
	e := opSetup(t, "e2e-op-probe", clock.RealClock{})
	db := testService("db", v1alpha1.EnvVar{Name: "READY_AFTER", Value: "100000"})
	db.Healthcheck = &v1alpha1.Healthcheck{
		Exec:     []string{"/bin/sh", "-c", "echo checking db; /testapp probe http://127.0.0.1:8080/healthz"},
		Interval: metav1.Duration{Duration: time.Second}, Timeout: metav1.Duration{Duration: 2 * time.Second}, Retries: 1,
	}
	e.create(e.newEnv("slow", db))
	env := e.waitEnv("slow", 2*time.Minute, "db probe failing", func(env *v1alpha1.ErgomakeEnv) bool {
		return serviceStatus(env, "db").Reason == operator.ReasonProbeFailing
	})
	s := serviceStatus(env, "db")
	t.Logf("db: %s: %s", s.Reason, s.Message)
	if s.State != v1alpha1.StateRunning || !strings.Contains(s.Message, "checking db") || env.Status.Phase != v1alpha1.PhaseProgressing {
		t.Errorf("status %s", describeStatus(env))
	}
}

// TestOperatorUnschedulable: a service asking for more than the node has is reported with the
// scheduler's reason.
func TestOperatorUnschedulable(t *testing.T) {
	t.Parallel()
	e := opSetup(t, "e2e-op-sched", clock.RealClock{})
	big := testService("big")
	big.Resources = &v1alpha1.Resources{Requests: map[string]resource.Quantity{"cpu": resource.MustParse("64")}}
	e.create(e.newEnv("huge", big))
	env := e.waitEnv("huge", time.Minute, "big unschedulable", func(env *v1alpha1.ErgomakeEnv) bool {
		return serviceStatus(env, "big").Reason == operator.ReasonUnschedulable
	})
	s := serviceStatus(env, "big")
	t.Logf("big: %s: %s", s.Reason, s.Message)
	if !strings.Contains(s.Message, "Insufficient cpu") {
		t.Errorf("message %q lacks the scheduler's reason", s.Message)
	}
}

// TestOperatorJobFailed: a one-shot service that exits non-zero reports the exit code and its
// log, and holds back what depends on its completion.
func TestOperatorJobFailed(t *testing.T) {
	t.Parallel()
	e := opSetup(t, "e2e-op-job", clock.RealClock{})
	migrate := v1alpha1.ServiceSpec{
		Name: "migrate", ServiceName: "migrate", Image: cluster.TestImage, ImagePullPolicy: "IfNotPresent",
		Lifecycle: v1alpha1.OneShot, Command: []string{"exit", "3"}, MaxRetries: ptrInt32(0),
	}
	web := dependsOn(testService("web"), "migrate", v1alpha1.ServiceCompletedSuccessfully)
	e.create(e.newEnv("jobfail", migrate, web))
	env := e.waitEnv("jobfail", 2*time.Minute, "migrate failed with its log lines", func(env *v1alpha1.ErgomakeEnv) bool {
		m := serviceStatus(env, "migrate")
		return m.State == v1alpha1.StateFailed && len(m.LogTail) > 0
	})
	m := serviceStatus(env, "migrate")
	t.Logf("migrate: %s: %s; log %q", m.Reason, m.Message, m.LogTail)
	if !strings.Contains(m.Message, "exited with code 3") {
		t.Errorf("message %q lacks the exit code", m.Message)
	}
	if !slices.Contains(m.LogTail, "exiting with 3 after 0s") {
		t.Errorf("log tail %q lacks the job's line", m.LogTail)
	}
	if w := serviceStatus(env, "web"); w.Reason != operator.ReasonDependencyFailed {
		t.Errorf("web %+v", w)
	}
}

func ptrInt32(v int32) *int32 { return &v }

// TestOperatorNonDNSName: a service named web_app (not a valid Service name) is reached by that
// name from another pod of the environment, through the environment DNS (ergomake-dns, served by
// the installed operator).
func TestOperatorNonDNSName(t *testing.T) {
	t.Parallel()
	e := opSetup(t, "e2e-op-names", clock.RealClock{})
	checkNonDNSName(t, e)
}

// TestOperatorNonDNSNameHostsFallback: the same without an environment DNS to use (the operator
// looks for ergomake-dns where there is none): the operator writes the pods' /etc/hosts.
func TestOperatorNonDNSNameHostsFallback(t *testing.T) {
	t.Parallel()
	// The test's own namespace has no ergomake-dns Service.
	e := opSetupWith(t, "e2e-op-hosts", clock.RealClock{}, func(o *operator.Options) { o.DNSNamespace = o.Namespaces[0] })
	checkNonDNSName(t, e)
	cm, err := e.cs.CoreV1().ConfigMaps(e.ns).Get(context.Background(), operator.HostsConfigMapName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("no hosts ConfigMap: %v", err)
	}
	if !strings.Contains(cm.Data["client"], "\tweb_app\n") {
		t.Errorf("client's hosts file:\n%s", cm.Data["client"])
	}
}

func checkNonDNSName(t *testing.T, e *opEnv) {
	t.Helper()
	e.create(e.newEnv("names", testService("web_app"), testService("client")))
	e.waitReady("names", 2*time.Minute)
	ctx := context.Background()
	cluster.Eventually(t, time.Minute, time.Second, "client reaching web_app by name", func(ctx context.Context) (bool, string, error) {
		pod, err := readyPodOf(ctx, e.cs, e.ns, "names", "client")
		if err != nil {
			return false, err.Error(), nil
		}
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		code, body, err := e.fetchFrom(ctx, pod.Name, "http://web_app:8080/")
		if err != nil {
			t.Logf("fetch: %v (%s)", err, body)
			return false, err.Error(), nil
		}
		return code == 200 && strings.Contains(body, `"web_app"`), body, nil
	})
	_ = ctx
}

// TestOperatorTTL: an environment whose heartbeat is older than its TTL is deleted, with
// everything it owns; a fresh heartbeat keeps it. The operator's clock is a fake one.
func TestOperatorTTL(t *testing.T) {
	t.Parallel()
	clk := clocktesting.NewFakeClock(time.Now())
	e := opSetup(t, "e2e-op-ttl", clk)
	env := e.newEnv("idle", testService("web"))
	env.Spec.TTL = &metav1.Duration{Duration: time.Hour}
	env.Annotations = map[string]string{v1alpha1.AnnotationHeartbeat: clk.Now().UTC().Format(time.RFC3339)}
	e.create(env)
	e.waitReady("idle", 2*time.Minute)

	// 59 minutes later, a renewed heartbeat: kept.
	clk.Step(59 * time.Minute)
	e.annotate("idle", v1alpha1.AnnotationHeartbeat, clk.Now().UTC().Format(time.RFC3339))
	// 61 minutes after the first heartbeat, one minute after the second: kept.
	clk.Step(2 * time.Minute)
	e.annotate("idle", "ergomake.dev/test-poke", "1")
	e.waitEnv("idle", 30*time.Second, "the poke seen", func(env *v1alpha1.ErgomakeEnv) bool { return env.Status.Phase == v1alpha1.PhaseReady })
	time.Sleep(2 * time.Second) // give a wrong deletion the chance to happen
	if got := e.get("idle"); got.DeletionTimestamp != nil {
		t.Fatalf("deleted although the heartbeat is fresh")
	}

	// Past the TTL of the renewed heartbeat: reclaimed.
	clk.Step(time.Hour)
	e.annotate("idle", "ergomake.dev/test-poke", "2")
	e.waitGone("idle", 2*time.Minute)
}

func (e *opEnv) annotate(name, key, value string) {
	e.t.Helper()
	patch := []byte(`{"metadata":{"annotations":{"` + key + `":"` + value + `"}}}`)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	env := &v1alpha1.ErgomakeEnv{}
	env.Namespace, env.Name = e.ns, name
	if err := e.c.Patch(ctx, env, client.RawPatch(types.MergePatchType, patch)); err != nil {
		e.t.Fatalf("annotating %s: %v", name, err)
	}
}

// TestOperatorRenderFailure: a spec the API accepts but render rejects is Degraded with a clear
// message, and nothing is created.
func TestOperatorRenderFailure(t *testing.T) {
	t.Parallel()
	e := opSetup(t, "e2e-op-render", clock.RealClock{})
	web := dependsOn(testService("web"), "cache", v1alpha1.ServiceStarted) // no service "cache"
	e.create(e.newEnv("bad", testService("db"), web))
	env := e.waitEnv("bad", time.Minute, "Degraded", func(env *v1alpha1.ErgomakeEnv) bool {
		return env.Status.Phase == v1alpha1.PhaseDegraded
	})
	t.Logf("message: %s", env.Status.Message)
	if !strings.Contains(env.Status.Message, "cache") || !strings.Contains(env.Status.Message, "web") {
		t.Errorf("message %q does not name the service and the unknown dependency", env.Status.Message)
	}
	left, err := e.objectsLeft(context.Background(), "bad")
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("objects created for a spec that cannot be built: %v", left)
	}
}

// TestOperatorUpdate: changing one service rolls only that one; a service removed from the spec
// is removed from the cluster.
func TestOperatorUpdate(t *testing.T) {
	t.Parallel()
	e := opSetup(t, "e2e-op-update", clock.RealClock{})
	e.create(e.newEnv("app", testService("db"), testService("web"), testService("extra")))
	e.waitReady("app", 2*time.Minute)
	ctx := context.Background()
	podsBefore := podNames(t, e, "app")

	env := e.get("app")
	env.Spec.Services = []v1alpha1.ServiceSpec{testService("db"), testService("web", v1alpha1.EnvVar{Name: "VERSION", Value: "2"})}
	if err := e.c.Update(ctx, env); err != nil {
		t.Fatal(err)
	}
	cluster.Eventually(t, 2*time.Minute, 500*time.Millisecond, "web rolled, extra gone", func(ctx context.Context) (bool, string, error) {
		got := e.get("app")
		left, err := e.objectsLeft(ctx, "app")
		if err != nil {
			return false, err.Error(), nil
		}
		extra := 0
		for _, l := range left {
			if strings.Contains(l, "extra") {
				extra++
			}
		}
		d, err := e.cs.AppsV1().Deployments(e.ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err.Error(), nil
		}
		hasVersion := false
		for _, v := range d.Spec.Template.Spec.Containers[0].Env {
			hasVersion = hasVersion || v.Name == "VERSION"
		}
		ready := got.Status.Phase == v1alpha1.PhaseReady && got.Status.ObservedGeneration == got.Generation && got.Status.Summary == "2/2"
		return ready && extra == 0 && hasVersion && len(podNames(t, e, "app")) == 2,
			describeStatus(got) + "; left: " + strings.Join(left, ","), nil
	})
	after := podNames(t, e, "app")
	if after["db"] != podsBefore["db"] {
		t.Errorf("db's pod changed (%s -> %s) although db's spec did not", podsBefore["db"], after["db"])
	}
	if after["web"] == podsBefore["web"] {
		t.Errorf("web's pod did not change although its spec did")
	}
}

// podNames maps service to the name of its one running pod.
func podNames(t *testing.T, e *opEnv, envName string) map[string]string {
	pods, err := e.cs.CoreV1().Pods(e.ns).List(context.Background(), metav1.ListOptions{LabelSelector: v1alpha1.LabelEnv + "=" + envName})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
			out[p.Labels[v1alpha1.LabelService]] = p.Name
		}
	}
	return out
}

// TestOperatorRestartConverges: the operator stopped while the environment is half built, then
// started again, converges to the same result with no duplicate objects.
func TestOperatorRestartConverges(t *testing.T) {
	t.Parallel()
	e := opSetup(t, "e2e-op-restart", clock.RealClock{})
	e.create(e.newEnv("shop", shopServices()...))
	ctx := context.Background()

	// Stop it as soon as db's Deployment exists and web's does not.
	cluster.Eventually(t, time.Minute, 50*time.Millisecond, "db created", func(ctx context.Context) (bool, string, error) {
		_, err := e.cs.AppsV1().Deployments(e.ns).Get(ctx, "db", metav1.GetOptions{})
		return err == nil, "", nil
	})
	e.stopOperator()
	if _, err := e.cs.AppsV1().Deployments(e.ns).Get(ctx, "web", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("web exists already (err %v): the operator was not stopped half way", err)
	}
	dbBefore, err := e.cs.AppsV1().Deployments(e.ns).Get(ctx, "db", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// Then a few runs cut short at arbitrary points, in the middle of whatever they were doing.
	for _, d := range []time.Duration{1500 * time.Millisecond, 2300 * time.Millisecond, 1100 * time.Millisecond, 3700 * time.Millisecond} {
		e.startOperator(clock.RealClock{})
		time.Sleep(d)
		e.stopOperator()
	}

	e.startOperator(clock.RealClock{})
	env := e.waitReady("shop", 3*time.Minute)
	t.Logf("ready: %s", describeStatus(env))

	dbAfter, err := e.cs.AppsV1().Deployments(e.ns).Get(ctx, "db", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if dbAfter.UID != dbBefore.UID || dbAfter.Generation != dbBefore.Generation {
		t.Errorf("db's Deployment was replaced or changed by the restart (generation %d -> %d)", dbBefore.Generation, dbAfter.Generation)
	}
	left, err := e.objectsLeft(ctx, "shop")
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, l := range left {
		kind, _, _ := strings.Cut(l, "/")
		counts[kind]++
	}
	sort.Strings(left)
	if counts["Service"] != 3 || counts["Deployment"] != 2 || counts["Job"] != 1 || counts["ReplicaSet"] != 2 || counts["Pod"] != 3 {
		t.Errorf("objects after restart: %v", left)
	}
}
