package operator

import (
	"reflect"
	"strings"
	"testing"

	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

func TestDecideGate(t *testing.T) {
	specs := map[string]*v1alpha1.ServiceSpec{
		"db":      {Name: "db", Lifecycle: v1alpha1.LongRunning},
		"cache":   {Name: "cache", Lifecycle: v1alpha1.LongRunning},
		"migrate": {Name: "migrate", Lifecycle: v1alpha1.OneShot},
	}
	dep := func(name string, cond v1alpha1.DependencyCondition) v1alpha1.Dependency {
		return v1alpha1.Dependency{Service: name, Condition: cond, Required: true}
	}
	var (
		notCreated = assessment{State: v1alpha1.StateWaiting}
		pulling    = assessment{State: v1alpha1.StatePulling}
		running    = assessment{State: v1alpha1.StateRunning, Started: true}
		healthy    = assessment{State: v1alpha1.StateHealthy, Started: true, Healthy: true}
		completed  = assessment{State: v1alpha1.StateCompleted, Started: true, Healthy: true, Completed: true}
		jobRunning = assessment{State: v1alpha1.StateRunning, Started: true}
		jobFailed  = assessment{State: v1alpha1.StateFailed, Started: true, Failed: true, Reason: ReasonJobFailed}
		crashLoop  = assessment{State: v1alpha1.StateFailed, Started: true, Failed: true, Reason: "CrashLoopBackOff"}
		heldBack   = assessment{State: v1alpha1.StateWaiting, Reason: ReasonDependencyFailed, Message: "held back: dependency failed (x: JobFailed)"}
	)
	tests := []struct {
		name       string
		deps       []v1alpha1.Dependency
		states     map[string]assessment
		wantOpen   bool
		wantWait   []string
		wantFailed []string
	}{
		{name: "no dependencies", wantOpen: true},
		{name: "started: not created yet", deps: []v1alpha1.Dependency{dep("db", v1alpha1.ServiceStarted)},
			states: map[string]assessment{"db": notCreated}, wantWait: []string{"db (service_started)"}},
		{name: "started: pulling", deps: []v1alpha1.Dependency{dep("db", v1alpha1.ServiceStarted)},
			states: map[string]assessment{"db": pulling}, wantWait: []string{"db (service_started)"}},
		{name: "started: running", deps: []v1alpha1.Dependency{dep("db", v1alpha1.ServiceStarted)},
			states: map[string]assessment{"db": running}, wantOpen: true},
		{name: "empty condition means started", deps: []v1alpha1.Dependency{dep("db", "")},
			states: map[string]assessment{"db": running}, wantOpen: true},
		{name: "started: crash loop holds back", deps: []v1alpha1.Dependency{dep("db", v1alpha1.ServiceStarted)},
			states: map[string]assessment{"db": crashLoop}, wantWait: []string{"db (service_started)"}, wantFailed: []string{"db: CrashLoopBackOff"}},
		{name: "started: a completed job counts", deps: []v1alpha1.Dependency{dep("migrate", v1alpha1.ServiceStarted)},
			states: map[string]assessment{"migrate": completed}, wantOpen: true},
		{name: "healthy: running is not enough", deps: []v1alpha1.Dependency{dep("db", v1alpha1.ServiceHealthy)},
			states: map[string]assessment{"db": running}, wantWait: []string{"db (service_healthy)"}},
		{name: "healthy: healthy", deps: []v1alpha1.Dependency{dep("db", v1alpha1.ServiceHealthy)},
			states: map[string]assessment{"db": healthy}, wantOpen: true},
		{name: "completed: job running", deps: []v1alpha1.Dependency{dep("migrate", v1alpha1.ServiceCompletedSuccessfully)},
			states: map[string]assessment{"migrate": jobRunning}, wantWait: []string{"migrate (service_completed_successfully)"}},
		{name: "completed: job succeeded", deps: []v1alpha1.Dependency{dep("migrate", v1alpha1.ServiceCompletedSuccessfully)},
			states: map[string]assessment{"migrate": completed}, wantOpen: true},
		{name: "completed: job failed", deps: []v1alpha1.Dependency{dep("migrate", v1alpha1.ServiceCompletedSuccessfully)},
			states: map[string]assessment{"migrate": jobFailed}, wantWait: []string{"migrate (service_completed_successfully)"},
			wantFailed: []string{"migrate: JobFailed"}},
		{name: "completed: a long-running service never completes", deps: []v1alpha1.Dependency{dep("db", v1alpha1.ServiceCompletedSuccessfully)},
			states: map[string]assessment{"db": healthy}, wantWait: []string{"db (service_completed_successfully)"},
			wantFailed: []string{"db: runs until stopped, it never completes"}},
		{name: "a dependency held back by a failure passes it on", deps: []v1alpha1.Dependency{dep("db", v1alpha1.ServiceStarted)},
			states: map[string]assessment{"db": heldBack}, wantWait: []string{"db (service_started)"},
			wantFailed: []string{"db: held back: dependency failed (x: JobFailed)"}},
		{name: "optional dependency absent is skipped",
			deps: []v1alpha1.Dependency{{Service: "search", Condition: v1alpha1.ServiceHealthy, Required: false}}, wantOpen: true},
		{name: "optional dependency present is waited for",
			deps:   []v1alpha1.Dependency{{Service: "db", Condition: v1alpha1.ServiceHealthy, Required: false}},
			states: map[string]assessment{"db": running}, wantWait: []string{"db (service_healthy)"}},
		{name: "required dependency absent never opens",
			deps: []v1alpha1.Dependency{dep("search", v1alpha1.ServiceStarted)}, wantWait: []string{"search (not in the environment)"}},
		{name: "all must hold", deps: []v1alpha1.Dependency{
			dep("db", v1alpha1.ServiceHealthy), dep("cache", v1alpha1.ServiceStarted), dep("migrate", v1alpha1.ServiceCompletedSuccessfully)},
			states:   map[string]assessment{"db": healthy, "cache": pulling, "migrate": completed},
			wantWait: []string{"cache (service_started)"}},
		{name: "all hold", deps: []v1alpha1.Dependency{
			dep("db", v1alpha1.ServiceHealthy), dep("cache", v1alpha1.ServiceStarted), dep("migrate", v1alpha1.ServiceCompletedSuccessfully)},
			states: map[string]assessment{"db": healthy, "cache": running, "migrate": completed}, wantOpen: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := decideGate(v1alpha1.ServiceSpec{Name: "web", DependsOn: tt.deps}, specs, tt.states)
			if g.Open != tt.wantOpen {
				t.Errorf("open = %v, want %v", g.Open, tt.wantOpen)
			}
			if !reflect.DeepEqual(g.WaitingFor, tt.wantWait) {
				t.Errorf("waiting for %q, want %q", g.WaitingFor, tt.wantWait)
			}
			if !reflect.DeepEqual(g.Failed, tt.wantFailed) {
				t.Errorf("failed %q, want %q", g.Failed, tt.wantFailed)
			}
		})
	}
}

func TestWaitingAssessment(t *testing.T) {
	svc := v1alpha1.ServiceSpec{Name: "web", Replicas: ptr32(2)}
	a := waitingAssessment(svc, gate{WaitingFor: []string{"db (service_healthy)", "migrate (service_completed_successfully)"}})
	if a.State != v1alpha1.StateWaiting || a.Reason != ReasonWaitingForDependencies || a.Desired != 2 ||
		a.Message != "waiting for db (service_healthy), migrate (service_completed_successfully)" {
		t.Errorf("got %+v", a)
	}
	a = waitingAssessment(svc, gate{WaitingFor: []string{"migrate (service_completed_successfully)"}, Failed: []string{"migrate: JobFailed"}})
	if a.Reason != ReasonDependencyFailed || a.Message != "held back: dependency failed (migrate: JobFailed)" {
		t.Errorf("got %+v", a)
	}
	if got := dependencyNames(gate{WaitingFor: []string{"db (service_healthy)", "a (x)"}}); !reflect.DeepEqual(got, []string{"db", "a"}) {
		t.Errorf("dependencyNames = %q", got)
	}
}

func ptr32(v int32) *int32 { return &v }

func TestDecideGatesChain(t *testing.T) {
	env := &v1alpha1.ErgomakeEnv{Spec: v1alpha1.EnvSpec{Services: []v1alpha1.ServiceSpec{
		// Spec order is by name, not by dependency: the chain runs backwards.
		{Name: "a", DependsOn: []v1alpha1.Dependency{{Service: "b", Condition: v1alpha1.ServiceStarted, Required: true}}},
		{Name: "b", DependsOn: []v1alpha1.Dependency{{Service: "c", Condition: v1alpha1.ServiceCompletedSuccessfully, Required: true}}},
		{Name: "c", Lifecycle: v1alpha1.OneShot},
		{Name: "d"},
	}}}
	specs := map[string]*v1alpha1.ServiceSpec{}
	for i := range env.Spec.Services {
		specs[env.Spec.Services[i].Name] = &env.Spec.Services[i]
	}
	failed := map[string]assessment{"c": {State: v1alpha1.StateFailed, Failed: true, Reason: ReasonJobFailed}, "d": {State: v1alpha1.StateHealthy, Healthy: true}}
	gates := decideGates(env, specs, failed)
	if g := gates["b"]; g.Open || len(g.Failed) != 1 || g.Failed[0] != "c: JobFailed" {
		t.Errorf("b: %+v", g)
	}
	if g := gates["a"]; g.Open || len(g.Failed) != 1 || !strings.Contains(g.Failed[0], "c: JobFailed") {
		t.Errorf("a: %+v (the failure of c must reach a through b)", g)
	}
	if g := gates["d"]; !g.Open {
		t.Errorf("d: %+v", g)
	}

	running := map[string]assessment{"c": {State: v1alpha1.StateRunning, Started: true}}
	gates = decideGates(env, specs, running)
	if g := gates["a"]; g.Open || len(g.Failed) != 0 || g.WaitingFor[0] != "b (service_started)" {
		t.Errorf("a: %+v", g)
	}
	if g := gates["c"]; !g.Open {
		t.Errorf("c: %+v", g)
	}
}
