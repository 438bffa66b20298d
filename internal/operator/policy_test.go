package operator

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/ergomake/ergomake/internal/clustersettings"
	"github.com/ergomake/ergomake/internal/policy"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

func TestCeilingLookup(t *testing.T) {
	ctx := context.Background()
	var none *CeilingLookup
	if l := none.Level(ctx); l != policy.Baseline {
		t.Errorf("nil lookup: %q", l)
	}
	scheme, err := NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	c := fake.NewClientBuilder().WithScheme(scheme).Build()
	clk := clocktesting.NewFakeClock(time.Now())
	l := &CeilingLookup{Reader: c, Key: types.NamespacedName{Namespace: "ergomake-system", Name: clustersettings.Name}, Clock: clk}
	if got := l.Level(ctx); got != policy.Baseline {
		t.Errorf("no settings: %q", got)
	}
	cm := clustersettings.Settings{PodSecurity: "privileged"}.ConfigMap()
	if err := c.Create(ctx, cm); err != nil {
		t.Fatal(err)
	}
	if got := l.Level(ctx); got != policy.Baseline {
		t.Errorf("remembered answer: %q", got)
	}
	clk.Step(ceilingRefresh)
	if got := l.Level(ctx); got != policy.Privileged {
		t.Errorf("after refresh: %q", got)
	}
	cm.Data[clustersettings.KeyPodSecurity] = "anything"
	if err := c.Update(ctx, cm); err != nil {
		t.Fatal(err)
	}
	clk.Step(ceilingRefresh)
	if got := l.Level(ctx); got != policy.Baseline {
		t.Errorf("unreadable value: %q, want the default", got)
	}
	if k := settingsKey(Options{SettingsNamespace: "ops"}); k.Namespace != "ops" || k.Name != clustersettings.Name {
		t.Errorf("settingsKey = %v", k)
	}
}

func privilegedEnv() *v1alpha1.ErgomakeEnv {
	return &v1alpha1.ErgomakeEnv{
		ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: "ergomake-shop", Generation: 1},
		Spec: v1alpha1.EnvSpec{Project: "shop", Services: []v1alpha1.ServiceSpec{
			{Name: "db", ServiceName: "db", Image: "postgres"},
			{Name: "web", ServiceName: "web", Image: "nginx", HostNetwork: true, Security: &v1alpha1.SecuritySpec{Privileged: true}},
		}},
	}
}

// TestCheckSpecCeiling: an environment that exceeds the ceiling stops the pass before anything is
// applied, and its status is Degraded naming the service and the field.
func TestCheckSpecCeiling(t *testing.T) {
	ctx := context.Background()
	r := &Reconciler{}
	c := &convergence{env: privilegedEnv(), p: &pass{}, ceiling: policy.Baseline}
	res, err := r.checkSpec(ctx, c)
	if err != nil || res != phaseStop || c.buildErr() == nil {
		t.Fatalf("checkSpec = %v, %v; build error %v", res, err, c.buildErr())
	}
	st := buildStatus(c.env, nil, nil, t0, c.buildErr())
	wantMsg := `cannot build the environment: service "web": spec.services[web].hostNetwork: host (the node's network) exceeds the pod security ceiling "baseline" (needs "privileged"); ` +
		`service "web": spec.services[web].security.privileged: a privileged container exceeds the pod security ceiling "baseline" (needs "privileged")`
	if st.Phase != v1alpha1.PhaseDegraded || st.Message != wantMsg {
		t.Errorf("phase %s message\n%s\nwant\n%s", st.Phase, st.Message, wantMsg)
	}
	for _, ct := range []string{v1alpha1.ConditionDegraded, v1alpha1.ConditionReady} {
		cond := meta.FindStatusCondition(st.Conditions, ct)
		want := metav1.ConditionTrue
		if ct == v1alpha1.ConditionReady {
			want = metav1.ConditionFalse
		}
		if cond == nil || cond.Status != want || cond.Reason != CondReasonExceedsCeiling || cond.Message != wantMsg {
			t.Errorf("%s: %+v", ct, cond)
		}
	}
	if s := st.Services[0]; s.Name != "db" || s.Reason != CondReasonRenderFailed || s.State != v1alpha1.StateWaiting {
		t.Errorf("db: %+v", s)
	}
	wantWeb := `not created: hostNetwork: host (the node's network); security.privileged: a privileged container (beyond the cluster's pod security ceiling "baseline")`
	if s := st.Services[1]; s.Name != "web" || s.Reason != CondReasonExceedsCeiling || s.State != v1alpha1.StateFailed || s.Message != wantWeb {
		t.Errorf("web: %+v", s)
	}

	// Under privileged it goes on.
	c = &convergence{env: privilegedEnv(), p: &pass{}, ceiling: policy.Privileged}
	if res, err := r.checkSpec(ctx, c); err != nil || res != phaseNext || c.buildErr() != nil {
		t.Errorf("privileged: %v, %v, %v", res, err, c.buildErr())
	}
}

// TestRenderHardensUnderRestricted: the workloads the operator applies under the restricted
// ceiling run with the runtime's seccomp profile, as non-root, without privilege escalation.
func TestRenderHardensUnderRestricted(t *testing.T) {
	env := privilegedEnv()
	env.Spec.Services = env.Spec.Services[:1]
	for _, level := range []policy.Level{policy.Baseline, policy.Restricted} {
		c := &convergence{env: env, p: &pass{}, ceiling: level}
		if _, err := (&Reconciler{}).renderWithClusterIPs(context.Background(), c); err != nil || c.renderErr != nil {
			t.Fatal(err, c.renderErr)
		}
		psc := c.objs.Services[0].Deployment.Spec.Template.Spec.SecurityContext
		hardened := psc != nil && psc.SeccompProfile != nil && psc.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault
		if hardened != (level == policy.Restricted) {
			t.Errorf("%s: pod security context %+v", level, psc)
		}
	}
}
