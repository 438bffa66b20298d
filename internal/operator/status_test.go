package operator

import (
	"errors"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

func testEnv() *v1alpha1.ErgomakeEnv {
	return &v1alpha1.ErgomakeEnv{
		ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: "ergomake-shop", Generation: 3, CreationTimestamp: at(0)},
		Spec: v1alpha1.EnvSpec{Project: "shop", Services: []v1alpha1.ServiceSpec{
			{Name: "db"},
			{Name: "migrate", Lifecycle: v1alpha1.OneShot, DependsOn: []v1alpha1.Dependency{{Service: "db", Condition: v1alpha1.ServiceHealthy, Required: true}}},
			{Name: "web", DependsOn: []v1alpha1.Dependency{{Service: "migrate", Condition: v1alpha1.ServiceCompletedSuccessfully, Required: true}}},
		}},
	}
}

func TestBuildStatus(t *testing.T) {
	now := t0.Add(time.Minute)
	healthy := assessment{State: v1alpha1.StateHealthy, Ready: 1, Desired: 1, Healthy: true, Started: true, CreatedAt: t0, ReadyAt: t0.Add(10 * time.Second)}
	completed := assessment{State: v1alpha1.StateCompleted, Ready: 1, Desired: 1, Completed: true, Healthy: true, Started: true,
		CreatedAt: t0.Add(11 * time.Second), ReadyAt: t0.Add(20 * time.Second)}

	t.Run("progressing", func(t *testing.T) {
		env := testEnv()
		states := map[string]assessment{"db": {State: v1alpha1.StatePulling, Desired: 1, Reason: ReasonPulling, CreatedAt: t0}}
		gates := map[string]gate{
			"db":      {Open: true},
			"migrate": {WaitingFor: []string{"db (service_healthy)"}},
			"web":     {WaitingFor: []string{"migrate (service_completed_successfully)"}},
		}
		st := buildStatus(env, states, gates, now, nil)
		if st.Phase != v1alpha1.PhaseProgressing || st.Summary != "0/3" || st.ObservedGeneration != 3 {
			t.Errorf("phase %s summary %s gen %d", st.Phase, st.Summary, st.ObservedGeneration)
		}
		if st.Message != "not ready: db (pulling), migrate (waiting), web (waiting)" {
			t.Errorf("message %q", st.Message)
		}
		if got := st.Services[1]; got.State != v1alpha1.StateWaiting || got.Reason != ReasonWaitingForDependencies ||
			len(got.WaitingFor) != 1 || got.WaitingFor[0] != "db" || got.CreatedAt != nil {
			t.Errorf("migrate %+v", got)
		}
		if c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionProgressing); c == nil || c.Status != metav1.ConditionTrue || c.ObservedGeneration != 3 {
			t.Errorf("progressing %+v", c)
		}
		if !meta.IsStatusConditionFalse(st.Conditions, v1alpha1.ConditionReady) || !meta.IsStatusConditionFalse(st.Conditions, v1alpha1.ConditionDegraded) {
			t.Errorf("conditions %+v", st.Conditions)
		}
	})

	t.Run("ready keeps the first readyAt", func(t *testing.T) {
		env := testEnv()
		env.Status.Services = []v1alpha1.ServiceStatus{{Name: "db", CreatedAt: ptrTime(t0), ReadyAt: ptrTime(t0.Add(3 * time.Second))}}
		web := healthy
		web.CreatedAt, web.ReadyAt = t0.Add(21*time.Second), t0.Add(25*time.Second)
		st := buildStatus(env, map[string]assessment{"db": healthy, "migrate": completed, "web": web}, nil, now, nil)
		if st.Phase != v1alpha1.PhaseReady || st.Summary != "3/3" || st.Message != "all 3 services ready" {
			t.Errorf("phase %s summary %s message %q", st.Phase, st.Summary, st.Message)
		}
		if !st.Services[0].ReadyAt.Time.Equal(t0.Add(3 * time.Second)) {
			t.Errorf("db readyAt %v", st.Services[0].ReadyAt)
		}
		if !st.Services[1].ReadyAt.Time.Equal(t0.Add(20*time.Second)) || !st.Services[2].CreatedAt.Time.Equal(t0.Add(21*time.Second)) {
			t.Errorf("services %+v", st.Services)
		}
		if !meta.IsStatusConditionTrue(st.Conditions, v1alpha1.ConditionReady) {
			t.Errorf("conditions %+v", st.Conditions)
		}
		// No healthcheck: ready, yet shown as running.
		if web := st.Services[2]; web.State != v1alpha1.StateRunning || web.Ready != 1 || web.Message != "1/1 running (no healthcheck)" {
			t.Errorf("web %+v", web)
		}
	})

	t.Run("a failed service degrades the environment", func(t *testing.T) {
		env := testEnv()
		failed := assessment{State: v1alpha1.StateFailed, Desired: 1, Failed: true, Reason: ReasonJobFailed, CreatedAt: t0,
			Message: "the job failed; exited with code 3", LogTail: []string{"migrating", "boom"}}
		gates := map[string]gate{"web": {WaitingFor: []string{"migrate (service_completed_successfully)"}, Failed: []string{"migrate: JobFailed"}}}
		st := buildStatus(env, map[string]assessment{"db": healthy, "migrate": failed}, gates, now, nil)
		if st.Phase != v1alpha1.PhaseDegraded || st.Message != "migrate: the job failed; exited with code 3" {
			t.Errorf("phase %s message %q", st.Phase, st.Message)
		}
		if m := st.Services[1]; m.Message != "the job failed; exited with code 3" || strings.Join(m.LogTail, "|") != "migrating|boom" || !m.Failed() {
			t.Errorf("migrate %+v", m)
		}
		if st.Services[0].LogTail != nil {
			t.Errorf("db has a log tail: %+v", st.Services[0])
		}
		if st.Services[2].Reason != ReasonDependencyFailed {
			t.Errorf("web %+v", st.Services[2])
		}
		if !meta.IsStatusConditionTrue(st.Conditions, v1alpha1.ConditionDegraded) {
			t.Errorf("conditions %+v", st.Conditions)
		}
	})

	t.Run("readyAt goes when the service stops being ready, and comes back anew", func(t *testing.T) {
		env := testEnv()
		env.Spec.Services = env.Spec.Services[:1]
		env.Status.Services = []v1alpha1.ServiceStatus{{Name: "db", CreatedAt: ptrTime(t0), ReadyAt: ptrTime(t0.Add(time.Second))}}
		restarting := assessment{State: v1alpha1.StateStarting, Desired: 1, Reason: ReasonRestarting, CreatedAt: t0, Started: true,
			Message: "exited with code 1, restarting"}
		st := buildStatus(env, map[string]assessment{"db": restarting}, nil, now, nil)
		if db := st.Services[0]; db.ReadyAt != nil || db.IsReady() || st.Phase != v1alpha1.PhaseProgressing {
			t.Errorf("phase %s db %+v", st.Phase, db)
		}
		env.Status = st
		again := healthy
		again.ReadyAt = t0.Add(40 * time.Second)
		st = buildStatus(env, map[string]assessment{"db": again}, nil, now, nil)
		if db := st.Services[0]; db.ReadyAt == nil || !db.ReadyAt.Time.Equal(t0.Add(40*time.Second)) || !db.IsReady() {
			t.Errorf("db %+v", db)
		}
	})

	t.Run("a multi-line message becomes one line", func(t *testing.T) {
		env := testEnv()
		probing := assessment{State: v1alpha1.StateRunning, Desired: 1, Reason: ReasonProbeFailing, CreatedAt: t0, Started: true,
			Message: "Readiness probe failed: connecting\r\n\n  refused  \n"}
		st := buildStatus(env, map[string]assessment{"db": probing}, nil, now, nil)
		if got := st.Services[0].Message; got != "Readiness probe failed: connecting; refused" {
			t.Errorf("message %q", got)
		}
	})

	t.Run("a service not every replica of which is ready does not count", func(t *testing.T) {
		env := testEnv()
		env.Spec.Services = env.Spec.Services[:1]
		partly := assessment{State: v1alpha1.StateRunning, Ready: 1, Desired: 2, Reason: ReasonProbeFailing, CreatedAt: t0, Started: true}
		st := buildStatus(env, map[string]assessment{"db": partly}, nil, now, nil)
		if st.Phase != v1alpha1.PhaseProgressing || st.Summary != "0/1" || st.Services[0].IsReady() {
			t.Errorf("phase %s summary %s %+v", st.Phase, st.Summary, st.Services[0])
		}
	})

	t.Run("render failure", func(t *testing.T) {
		env := testEnv()
		st := buildStatus(env, nil, nil, now, errors.New(`service "web": dependsOn: unknown service "cache"`))
		if st.Phase != v1alpha1.PhaseDegraded || !strings.Contains(st.Message, `unknown service "cache"`) {
			t.Errorf("phase %s message %q", st.Phase, st.Message)
		}
		c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionDegraded)
		if c == nil || c.Status != metav1.ConditionTrue || c.Reason != CondReasonRenderFailed {
			t.Errorf("degraded %+v", c)
		}
		for _, s := range st.Services {
			if s.State != v1alpha1.StateWaiting || s.CreatedAt != nil {
				t.Errorf("service %+v", s)
			}
		}
	})

	t.Run("joined conflicts make one line", func(t *testing.T) {
		env := testEnv()
		err := errors.Join(errors.New(`Service "db" exists and is not owned by this environment`),
			errors.New(`Service "web" exists and is not owned by this environment`))
		st := buildStatus(env, nil, nil, now, err)
		want := `cannot build the environment: Service "db" exists and is not owned by this environment; ` +
			`Service "web" exists and is not owned by this environment`
		if st.Phase != v1alpha1.PhaseDegraded || st.Message != want {
			t.Errorf("phase %s message %q", st.Phase, st.Message)
		}
	})

	t.Run("transition time only moves on change", func(t *testing.T) {
		env := testEnv()
		first := buildStatus(env, nil, nil, now, nil)
		env.Status = first
		second := buildStatus(env, nil, nil, now.Add(time.Minute), nil)
		a := meta.FindStatusCondition(first.Conditions, v1alpha1.ConditionProgressing)
		b := meta.FindStatusCondition(second.Conditions, v1alpha1.ConditionProgressing)
		if !a.LastTransitionTime.Equal(&b.LastTransitionTime) {
			t.Errorf("transition time moved: %v -> %v", a.LastTransitionTime, b.LastTransitionTime)
		}
	})
}

func TestNextLook(t *testing.T) {
	tests := []struct {
		phase  v1alpha1.Phase
		hasTTL bool
		expiry time.Duration // from now
		want   time.Duration
	}{
		{v1alpha1.PhaseReady, false, 0, 0},
		{v1alpha1.PhaseProgressing, false, 0, progressRequeue},
		{v1alpha1.PhaseDegraded, false, 0, degradedRequeue},
		{v1alpha1.PhaseReady, true, time.Hour, time.Hour},
		{v1alpha1.PhaseProgressing, true, time.Hour, progressRequeue},
		{v1alpha1.PhaseProgressing, true, 2 * time.Second, 2 * time.Second},
		{v1alpha1.PhaseDegraded, true, 10 * time.Second, 10 * time.Second},
		{v1alpha1.PhaseReady, true, -time.Second, time.Millisecond},
	}
	for _, tt := range tests {
		if got := nextLook(tt.phase, tt.hasTTL, t0.Add(tt.expiry), t0); got != tt.want {
			t.Errorf("nextLook(%s, ttl=%v, expiry in %s) = %s, want %s", tt.phase, tt.hasTTL, tt.expiry, got, tt.want)
		}
	}
}

func TestLookSooner(t *testing.T) {
	// The pass's cluster time is t0 + 1h: a fake reconciler clock does not enter into it.
	cluster := t0.Add(time.Hour)
	tests := []struct {
		name   string
		after  time.Duration
		lookAt time.Duration // from cluster; 0: none
		want   time.Duration
	}{
		{"nothing changes by itself", progressRequeue, 0, progressRequeue},
		{"nothing changes by itself, ready", 0, 0, 0},
		{"a restarted container counts as running in 2s", progressRequeue, 2 * time.Second, 2*time.Second + 100*time.Millisecond},
		{"ready, yet something changes in 3s", 0, 3 * time.Second, 3*time.Second + 100*time.Millisecond},
		{"later than the requeue anyway", degradedRequeue, time.Minute, degradedRequeue},
		{"already past", progressRequeue, -time.Second, 100 * time.Millisecond},
	}
	for _, tt := range tests {
		p := &pass{now: t0, cluster: cluster}
		if tt.lookAt != 0 {
			p.lookAt = cluster.Add(tt.lookAt)
		}
		if got := lookSooner(tt.after, p); got != tt.want {
			t.Errorf("%s: lookSooner(%s) = %s, want %s", tt.name, tt.after, got, tt.want)
		}
	}
}
