package server

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ergomake/ergomake/internal/kube"
	"github.com/ergomake/ergomake/internal/render"
	"github.com/ergomake/ergomake/internal/workload"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// deployment creates the Deployment of service in the environment of project, controlled by it;
// done: its rollout is complete as the controller reports it (the fake cluster runs none).
func (f *fixture) deployment(t *testing.T, ns, project, service string, done bool) {
	t.Helper()
	env := &v1alpha1.ErgomakeEnv{ObjectMeta: metav1.ObjectMeta{Name: kube.EnvName(project)}}
	yes := true
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: service, Namespace: ns, Generation: 1,
			Labels:          map[string]string{v1alpha1.LabelEnv: render.LabelValue(env.Name), v1alpha1.LabelService: render.LabelValue(service)},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: v1alpha1.GroupVersion.String(), Kind: v1alpha1.Kind, Name: env.Name, Controller: &yes}}},
		Status: appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 1},
	}
	if done {
		d.Status.UpdatedReplicas, d.Status.AvailableReplicas = 1, 1
	}
	if _, err := f.kube.AppsV1().Deployments(ns).Create(context.Background(), d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestRestartThroughServer: the server restarts the caller's services as `ergomake restart` does
// with a kubeconfig (the pod template's restart annotation), streaming the plan, the start, each
// service ready and the end; it refuses what cannot be restarted (409, saying why), another
// user's environment (404), and says when time ran out.
func TestRestartThroughServer(t *testing.T) {
	old := workload.RestartPoll
	workload.RestartPoll = 50 * time.Millisecond
	t.Cleanup(func() { workload.RestartPoll = old })
	f := newFixture(t, HandlerOptions{})
	ns := f.userEnv(t, "alice", "shop", 8080)
	f.deployment(t, ns, "shop", "web", true)
	ctx := context.Background()
	alice := f.client(t, f.token(t, "alice"))

	var kinds []string
	var ready []string
	err := alice.Restart(ctx, "shop", RestartRequest{}, func(ev RestartEvent) error {
		kinds = append(kinds, ev.Kind)
		switch ev.Kind {
		case RestartPlan:
			if strings.Join(ev.Services, ",") != "web" || len(ev.Skipped) != 1 || ev.Skipped[0] != (workload.Skip{Service: "db", Why: "not started yet, not restarted"}) {
				t.Errorf("plan %+v", ev)
			}
		case RestartReady:
			ready = append(ready, ev.Service+" "+string(ev.State))
		}
		return nil
	})
	if err != nil || strings.Join(kinds, ",") != "plan,started,ready,done" || strings.Join(ready, ",") != "web running" {
		t.Fatalf("restart = %v; events %v, ready %v", err, kinds, ready)
	}
	d, err := f.kube.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil || d.Spec.Template.Annotations[kube.AnnotationRestartedAt] == "" {
		t.Errorf("web's pod template after restart: %v %v", d.Spec.Template.Annotations, err)
	}

	for _, r := range []struct {
		services []string
		msg      string
	}{
		{[]string{"api"}, "no such service: api (the services of project shop: web, db)"},
		{[]string{"db"}, "service db has not been started yet"},
	} {
		err := alice.Restart(ctx, "shop", RestartRequest{Services: r.services}, func(RestartEvent) error { return nil })
		if apiStatus(err) != http.StatusConflict || !strings.Contains(err.Error(), r.msg) {
			t.Errorf("restart %v: %v (status %d), want 409 %q", r.services, err, apiStatus(err), r.msg)
		}
	}
	bob := f.client(t, f.token(t, "bob"))
	if err := bob.Restart(ctx, "shop", RestartRequest{}, func(RestartEvent) error { return nil }); apiStatus(err) != http.StatusNotFound {
		t.Errorf("bob restarts alice's: %v", err)
	}
	if err := alice.Restart(ctx, "shop", RestartRequest{Timeout: "soon"}, func(RestartEvent) error { return nil }); apiStatus(err) != http.StatusBadRequest {
		t.Errorf("a bad timeout: %v", err)
	}
	// No body at all: every service.
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/v1/envs/shop/restart", nil)
	req.Header.Set("Authorization", "Bearer "+f.token(t, "alice"))
	resp, err := alice.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasSuffix(string(body), `{"kind":"done"}`+"\n") {
		t.Errorf("restart without a body: %s %s", resp.Status, body)
	}

	// A rollout that does not finish: the restart says what it waited for.
	f.deployment(t, ns, "shop", "db", false)
	err = alice.Restart(ctx, "shop", RestartRequest{Services: []string{"db"}, Timeout: "300ms"}, func(RestartEvent) error { return nil })
	if err == nil || err.Error() != "timed out after 300ms waiting for db (no pod)" {
		t.Errorf("restart that times out = %v", err)
	}
	audit := f.audit.String()
	if !strings.Contains(audit, "user=alice action=envs.restart env=shop status=200") || !strings.Contains(audit, "user=bob action=envs.restart env=shop status=404") {
		t.Errorf("audit:\n%s", audit)
	}
}
