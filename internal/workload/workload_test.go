package workload

import (
	"reflect"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

func TestRestartable(t *testing.T) {
	env := &v1alpha1.ErgomakeEnv{
		Spec: v1alpha1.EnvSpec{Project: "shop", Services: []v1alpha1.ServiceSpec{
			{Name: "api"}, {Name: "db"}, {Name: "migrate", Lifecycle: v1alpha1.OneShot}, {Name: "web"},
		}},
		Status: v1alpha1.EnvStatus{Services: []v1alpha1.ServiceStatus{
			{Name: "api", State: v1alpha1.StateWaiting, Reason: "WaitingForDependencies", WaitingFor: []string{"migrate"}},
		}},
	}
	deployments := map[string]*appsv1.Deployment{"db": {}, "web": {}}
	tests := []struct {
		name    string
		names   []string
		want    []string
		wantErr string
		log     string
	}{
		{name: "all: the started long-running ones", want: []string{"db", "web"},
			log: "api: not started yet, not restarted\nmigrate: one-shot service, not restarted\n"},
		{name: "named, in order, once", names: []string{"web", "db", "web"}, want: []string{"web", "db"}},
		{name: "one-shot", names: []string{"web", "migrate"},
			wantErr: "service migrate is a one-shot service (it runs once to completion, as a Kubernetes Job): it cannot be restarted"},
		{name: "not started", names: []string{"api"},
			wantErr: "service api has not been started yet (waiting, WaitingForDependencies, waiting for migrate)"},
		{name: "unknown", names: []string{"nope"}, wantErr: "no such service: nope (the services of project shop: api, db, migrate, web)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, skipped, err := Restartable(env, tt.names, deployments)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Restartable = %q, want %q", got, tt.want)
			}
			log := ""
			for _, s := range skipped {
				log += s.Service + ": " + s.Why + "\n"
			}
			if log != tt.log {
				t.Errorf("skipped:\n%s\nwant:\n%s", log, tt.log)
			}
		})
	}
}

func TestServiceSpec(t *testing.T) {
	env := &v1alpha1.ErgomakeEnv{Spec: v1alpha1.EnvSpec{Project: "shop",
		Services: []v1alpha1.ServiceSpec{{Name: "db"}, {Name: "web"}}}}
	if s, err := ServiceSpec(env, "web"); err != nil || s.Name != "web" {
		t.Errorf("ServiceSpec(web) = %v, %v", s, err)
	}
	_, err := ServiceSpec(env, "api")
	if err == nil || err.Error() != "no such service: api (the services of project shop: db, web)" {
		t.Errorf("ServiceSpec(api) error = %v", err)
	}
}

// testPod is a pod created at minute min, with its main container in the given state.
func testPod(name string, min int, state corev1.ContainerState, mods ...func(*corev1.Pod)) corev1.Pod {
	p := corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(time.Date(2026, 1, 1, 0, min, 0, 0, time.UTC))},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main"}, {Name: "sidecar"}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{
			{Name: "sidecar", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}},
			{Name: "main", State: state},
		}},
	}
	for _, m := range mods {
		m(&p)
	}
	return p
}

func TestPickReplica(t *testing.T) {
	running := corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	crashing := corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}
	exited := corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 3}}
	terminating := func(p *corev1.Pod) { p.DeletionTimestamp = &metav1.Time{Time: time.Now()} }
	succeeded := func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }
	pending := func(p *corev1.Pod) { p.Status.Phase = corev1.PodPending; p.Status.ContainerStatuses = nil }
	unschedulable := func(p *corev1.Pod) {
		pending(p)
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
			Reason: "Unschedulable", Message: "0/1 nodes are available"}}
	}

	env := &v1alpha1.ErgomakeEnv{Status: v1alpha1.EnvStatus{Services: []v1alpha1.ServiceStatus{
		{Name: "web", State: v1alpha1.StateFailed, Reason: "CrashLoopBackOff"},
		{Name: "api", State: v1alpha1.StateWaiting, Reason: "WaitingForDependencies", WaitingFor: []string{"db"}},
	}}}
	// ServicePods' order: oldest first.
	pods := []corev1.Pod{
		testPod("old", 0, running, terminating),
		testPod("a", 1, crashing),
		testPod("b", 2, running),
		testPod("done", 3, exited, succeeded),
		testPod("c", 4, exited),
		testPod("d", 5, running, pending),
	}
	tests := []struct {
		name    string
		service string
		pods    []corev1.Pod
		index   int
		want    string
		wantErr string
	}{
		{name: "first running", service: "web", pods: pods, want: "b"},
		{name: "index counts replicas only", service: "web", pods: pods, index: 2, want: "b"},
		{name: "index of a crashing replica", service: "web", pods: pods, index: 1,
			wantErr: "replica 1 of service web (pod a) is not running: CrashLoopBackOff"},
		{name: "index of an exited container", service: "web", pods: pods, index: 3,
			wantErr: "replica 3 of service web (pod c) is not running: exited with code 3"},
		{name: "index of a pending pod", service: "web", pods: pods, index: 4,
			wantErr: "replica 4 of service web (pod d) is not running: pending"},
		{name: "index too large", service: "web", pods: pods, index: 5,
			wantErr: "service web has 4 replicas: --index must be between 1 and 4"},
		{name: "one replica", service: "web", pods: pods[2:3], index: 2,
			wantErr: "service web has 1 replica: --index must be between 1 and 1"},
		{name: "index of an unschedulable pod", service: "web", pods: []corev1.Pod{testPod("e", 0, running, unschedulable)}, index: 1,
			wantErr: "replica 1 of service web (pod e) is not running: Unschedulable: 0/1 nodes are available"},
		{name: "none running: the operator's view", service: "web", pods: pods[1:2],
			wantErr: "service web is not running (failed, CrashLoopBackOff): see `ergomake ps` and `ergomake logs web`"},
		{name: "no pods yet", service: "api", index: 1,
			wantErr: "service api is not running (waiting, WaitingForDependencies, waiting for db)"},
		{name: "not in the status yet", service: "new",
			wantErr: "service new is not running: see"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := PickReplica(env, tt.service, tt.pods, tt.index)
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Name != tt.want {
				t.Errorf("picked %s, want %s", got.Name, tt.want)
			}
		})
	}
}
