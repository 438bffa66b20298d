package wait

import (
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

func env(gen, observed int64, phase v1alpha1.Phase, conds ...metav1.Condition) *v1alpha1.ErgomakeEnv {
	e := &v1alpha1.ErgomakeEnv{}
	e.Generation = gen
	e.Status.ObservedGeneration = observed
	e.Status.Phase = phase
	e.Status.Conditions = conds
	return e
}

func cond(typ string, status metav1.ConditionStatus, gen int64) metav1.Condition {
	return metav1.Condition{Type: typ, Status: status, ObservedGeneration: gen, Message: typ + " message"}
}

func TestEvaluate(t *testing.T) {
	deleting := env(1, 1, v1alpha1.PhaseReady, cond(v1alpha1.ConditionReady, metav1.ConditionTrue, 1))
	deleting.DeletionTimestamp = &metav1.Time{Time: time.Now()}
	tests := []struct {
		name string
		env  *v1alpha1.ErgomakeEnv
		want State
	}{
		{"nothing observed", env(1, 0, ""), Pending},
		{"ready", env(1, 1, v1alpha1.PhaseReady, cond(v1alpha1.ConditionReady, metav1.ConditionTrue, 1)), Ready},
		{"ready for an older generation", env(2, 1, v1alpha1.PhaseReady, cond(v1alpha1.ConditionReady, metav1.ConditionTrue, 1)), Pending},
		{"status current but condition stale", env(2, 2, v1alpha1.PhaseReady, cond(v1alpha1.ConditionReady, metav1.ConditionTrue, 1)), Ready},
		{"ready condition false", env(1, 1, v1alpha1.PhaseProgressing, cond(v1alpha1.ConditionReady, metav1.ConditionFalse, 1)), Pending},
		{"degraded", env(1, 1, v1alpha1.PhaseDegraded,
			cond(v1alpha1.ConditionReady, metav1.ConditionFalse, 1), cond(v1alpha1.ConditionDegraded, metav1.ConditionTrue, 1)), Degraded},
		{"degraded for an older generation", env(2, 1, v1alpha1.PhaseDegraded, cond(v1alpha1.ConditionDegraded, metav1.ConditionTrue, 1)), Pending},
		{"degraded false", env(1, 1, v1alpha1.PhaseProgressing, cond(v1alpha1.ConditionDegraded, metav1.ConditionFalse, 1)), Pending},
		{"phase only, ready", env(3, 3, v1alpha1.PhaseReady), Ready},
		{"phase only, degraded", env(3, 3, v1alpha1.PhaseDegraded), Degraded},
		{"phase only, progressing", env(3, 3, v1alpha1.PhaseProgressing), Pending},
		{"being deleted", deleting, Pending},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Evaluate(tt.env); got != tt.want {
				t.Errorf("Evaluate = %s, want %s", got, tt.want)
			}
		})
	}
}

func withServices(s ...v1alpha1.ServiceStatus) *v1alpha1.ErgomakeEnv {
	e := &v1alpha1.ErgomakeEnv{}
	e.Status.Services = s
	return e
}

func TestChanged(t *testing.T) {
	a := v1alpha1.ServiceStatus{Name: "a", State: v1alpha1.StateStarting, Desired: 1}
	b := v1alpha1.ServiceStatus{Name: "b", State: v1alpha1.StateWaiting, WaitingFor: []string{"a"}}
	prev := withServices(a, b)
	a2 := a
	a2.State, a2.Ready = v1alpha1.StateHealthy, 1
	b2 := b
	b2.Message = "waiting for a"
	a3 := a
	a3.LogTail = []string{"panic: boom"}
	tests := []struct {
		name      string
		prev, cur *v1alpha1.ErgomakeEnv
		want      []string
	}{
		{"first sight", nil, prev, []string{"a", "b"}},
		{"no change", prev, withServices(a, b), nil},
		{"one changed", prev, withServices(a2, b), []string{"a"}},
		{"message changed", prev, withServices(a, b2), []string{"b"}},
		{"log tail changed", prev, withServices(a3, b), []string{"a"}},
		{"new service", withServices(a), withServices(a, b), []string{"b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, s := range Changed(tt.prev, tt.cur) {
				got = append(got, s.Name)
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("Changed = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFailing(t *testing.T) {
	healthy := v1alpha1.ServiceStatus{Name: "db", State: v1alpha1.StateHealthy, Ready: 1, Desired: 1}
	running := v1alpha1.ServiceStatus{Name: "web", State: v1alpha1.StateRunning, Ready: 1, Desired: 1}
	starting := v1alpha1.ServiceStatus{Name: "api", State: v1alpha1.StateStarting, Desired: 1}
	failed := v1alpha1.ServiceStatus{Name: "worker", State: v1alpha1.StateFailed, Reason: "CrashLoopBackOff"}
	partly := v1alpha1.ServiceStatus{Name: "web", State: v1alpha1.StateRunning, Ready: 1, Desired: 2}
	tests := []struct {
		name string
		env  *v1alpha1.ErgomakeEnv
		want string
	}{
		{"nil", nil, ""},
		{"all fine", withServices(healthy, running), ""},
		{"failed wins over not ready", withServices(starting, failed), "worker"},
		{"first not ready", withServices(healthy, starting), "api"},
		{"not every replica running", withServices(healthy, partly), "web"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Failing(tt.env)
			name := ""
			if got != nil {
				name = got.Name
			}
			if name != tt.want {
				t.Errorf("Failing = %q, want %q", name, tt.want)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	svc := &v1alpha1.ServiceStatus{Name: "web", State: v1alpha1.StateFailed, Reason: "ImagePullBackOff",
		Message: "image \"nope:1\" not found"}
	var err error = &DegradedError{Service: svc}
	if got, want := err.Error(), `service "web" failed: image "nope:1" not found`; got != want {
		t.Errorf("DegradedError = %q, want %q", got, want)
	}
	e := env(1, 1, v1alpha1.PhaseDegraded, cond(v1alpha1.ConditionDegraded, metav1.ConditionTrue, 1))
	err = &DegradedError{Env: e}
	if got, want := err.Error(), "environment cannot become ready: Degraded message"; got != want {
		t.Errorf("DegradedError = %q, want %q", got, want)
	}
	err = &TimeoutError{After: 2 * time.Minute, Service: &v1alpha1.ServiceStatus{Name: "db", State: v1alpha1.StatePulling}}
	if got, want := err.Error(), `environment not ready after 2m0s: service "db" is pulling`; got != want {
		t.Errorf("TimeoutError = %q, want %q", got, want)
	}
	err = &DegradedError{Service: &v1alpha1.ServiceStatus{Name: "api", State: v1alpha1.StateFailed,
		Message: "crash loop: exited with code 1, restarted 1 time", LogTail: []string{"starting", "panic: boom"}}}
	if got, want := err.Error(), `service "api" failed: crash loop: exited with code 1, restarted 1 time`; got != want {
		t.Errorf("DegradedError = %q, want %q", got, want)
	}
	var de *DegradedError
	if !errors.As(err, &de) {
		t.Error("errors.As DegradedError failed")
	}
}

func TestStep(t *testing.T) {
	starting := v1alpha1.ServiceStatus{Name: "api", State: v1alpha1.StateStarting, Desired: 1}
	crashing := v1alpha1.ServiceStatus{Name: "worker", State: v1alpha1.StateFailed, Reason: "CrashLoopBackOff"}
	withStatus := func(e *v1alpha1.ErgomakeEnv, s ...v1alpha1.ServiceStatus) *v1alpha1.ErgomakeEnv {
		e.Status.Services = s
		return e
	}
	tests := []struct {
		name     string
		env      *v1alpha1.ErgomakeEnv
		over     bool
		degraded string // the error's text; "" for none
	}{
		{"pending", withStatus(env(1, 1, v1alpha1.PhasePending), starting), false, ""},
		{"ready", env(1, 1, v1alpha1.PhaseReady, cond(v1alpha1.ConditionReady, metav1.ConditionTrue, 1)), true, ""},
		{"degraded names the failed service, not the first one not ready",
			withStatus(env(1, 1, v1alpha1.PhaseDegraded), starting, crashing), true, `service "worker"`},
		{"degraded as a whole names none",
			withStatus(env(1, 1, v1alpha1.PhaseDegraded, cond(v1alpha1.ConditionDegraded, metav1.ConditionTrue, 1)), starting),
			true, "environment cannot become ready: Degraded message"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var seen *v1alpha1.ErgomakeEnv
			over, err := Step(Options{OnUpdate: func(e *v1alpha1.ErgomakeEnv) { seen = e }}, tt.env)
			if seen != tt.env {
				t.Errorf("OnUpdate got %v, want the environment", seen)
			}
			if over != tt.over {
				t.Errorf("over = %v, want %v", over, tt.over)
			}
			var de *DegradedError
			switch {
			case tt.degraded == "" && err != nil:
				t.Errorf("err = %v, want none", err)
			case tt.degraded != "" && (!errors.As(err, &de) || !strings.Contains(err.Error(), tt.degraded)):
				t.Errorf("err = %v, want a DegradedError saying %q", err, tt.degraded)
			}
		})
	}
}
