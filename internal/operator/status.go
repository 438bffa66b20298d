package operator

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/ergomake/ergomake/internal/render"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// Condition reasons.
const (
	CondReasonAllReady      = "AllServicesReady"
	CondReasonNotReady      = "ServicesNotReady"
	CondReasonStarting      = "ServicesStarting"
	CondReasonServiceFailed = "ServiceFailed"
	CondReasonRenderFailed  = "RenderFailed"
	CondReasonAsExpected    = "AsExpected"
	CondReasonDone          = "Done"
)

// status assesses every service and builds the status that describes them. buildErr, when set, is
// why the environment cannot be built (its services then show what an earlier spec left running).
func (r *Reconciler) status(ctx context.Context, env *v1alpha1.ErgomakeEnv, o *owned, workloads map[string]client.Object,
	gates map[string]gate, p *pass, buildErr error) (*v1alpha1.EnvStatus, error) {
	if workloads == nil {
		workloads = workloadsByLabel(env, o)
	}
	events, err := r.events(ctx, env, o)
	if err != nil {
		return nil, err
	}
	states := map[string]assessment{}
	for _, svc := range env.Spec.Services {
		w := workloads[svc.Name]
		if w == nil {
			continue
		}
		rs := render.Service{Name: svc.Name}
		a := assessService(observe(o, &rs, w), events, p.cluster)
		a.CreatedAt = w.GetCreationTimestamp().Time
		if !a.LookAt.IsZero() && (p.lookAt.IsZero() || a.LookAt.Before(p.lookAt)) {
			p.lookAt = a.LookAt
		}
		if a.Log != nil {
			a.LogTail = r.lastLog(ctx, env.Namespace, a.Log)
		}
		states[svc.Name] = a
	}
	st := buildStatus(env, states, gates, p.now, buildErr)
	return &st, nil
}

// workloadsByLabel finds each service's Deployment or Job by its labels, for when the spec cannot
// be rendered.
func workloadsByLabel(env *v1alpha1.ErgomakeEnv, o *owned) map[string]client.Object {
	bySvcLabel := map[string]client.Object{}
	for _, d := range o.deployments {
		bySvcLabel[d.Labels[v1alpha1.LabelService]] = d
	}
	for _, j := range o.jobs {
		bySvcLabel[j.Labels[v1alpha1.LabelService]] = j
	}
	out := map[string]client.Object{}
	for _, svc := range env.Spec.Services {
		if w := bySvcLabel[render.LabelValue(svc.Name)]; w != nil {
			out[svc.Name] = w
		}
	}
	return out
}

// buildStatus is the environment's status from where each service stands (states: the services
// whose workload exists) and the dependency gates of the others.
func buildStatus(env *v1alpha1.ErgomakeEnv, states map[string]assessment, gates map[string]gate, now time.Time, buildErr error) v1alpha1.EnvStatus {
	prev := map[string]v1alpha1.ServiceStatus{}
	for _, s := range env.Status.Services {
		prev[s.Name] = s
	}
	var ceiling *ceilingError
	errors.As(buildErr, &ceiling)
	st := v1alpha1.EnvStatus{
		ObservedGeneration: env.Generation,
		Conditions:         append([]metav1.Condition(nil), env.Status.Conditions...),
	}
	var (
		ready    int
		failed   []string
		notReady []string
	)
	for _, svc := range env.Spec.Services {
		ss := v1alpha1.ServiceStatus{Name: svc.Name}
		a, created := states[svc.Name]
		g, gated := gates[svc.Name]
		switch {
		case created:
			ss.State, ss.Ready, ss.Desired, ss.Reason, ss.Message = a.State, a.Ready, a.Desired, a.Reason, oneLine(a.Message)
			ss.LogTail = a.LogTail
			if ss.State == v1alpha1.StateHealthy && svc.Healthcheck == nil && a.Reason != ReasonScaledToZero {
				// Without a healthcheck, ready only means running (it still counts as ready).
				ss.State, ss.Reason, ss.Message = v1alpha1.StateRunning, ReasonRunning, fmt.Sprintf("%d/%d running (no healthcheck)", a.Ready, a.Desired)
			}
			if !a.CreatedAt.IsZero() {
				ss.CreatedAt = ptrTime(a.CreatedAt)
			}
			if a.Healthy || a.Completed {
				p, ok := prev[svc.Name]
				if ok && p.ReadyAt != nil && p.CreatedAt != nil && ss.CreatedAt != nil && p.CreatedAt.Equal(ss.CreatedAt) {
					ss.ReadyAt = p.ReadyAt
				} else if !a.ReadyAt.IsZero() {
					ss.ReadyAt = ptrTime(a.ReadyAt)
				} else {
					ss.ReadyAt = ptrTime(now)
				}
			}
		case buildErr != nil:
			ss.State, ss.Desired, ss.Reason = v1alpha1.StateWaiting, desiredReplicas(svc), CondReasonRenderFailed
			ss.Message = "not created: the environment cannot be built"
			if m := ceiling.byService(svc.Name); m != "" {
				ss.State, ss.Reason, ss.Message = v1alpha1.StateFailed, CondReasonExceedsCeiling, m
			}
		case gated && !g.Open:
			w := waitingAssessment(svc, g)
			ss.State, ss.Desired, ss.Reason, ss.Message = w.State, w.Desired, w.Reason, w.Message
			ss.WaitingFor = dependencyNames(g)
		default:
			ss.State, ss.Desired, ss.Reason, ss.Message = v1alpha1.StateStarting, desiredReplicas(svc), ReasonCreating, "creating its workload"
		}
		switch {
		case created && ss.IsReady():
			ready++
		case created && a.Failed:
			failed = append(failed, fmt.Sprintf("%s: %s", svc.Name, ss.Message))
		default:
			notReady = append(notReady, fmt.Sprintf("%s (%s)", svc.Name, ss.State))
		}
		st.Services = append(st.Services, ss)
	}
	total := len(env.Spec.Services)
	st.Summary = fmt.Sprintf("%d/%d", ready, total)

	set := func(t string, s metav1.ConditionStatus, reason, msg string) {
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{
			Type: t, Status: s, Reason: reason, Message: msg,
			ObservedGeneration: env.Generation, LastTransitionTime: metav1.NewTime(now.Truncate(time.Second)),
		})
	}
	switch {
	case buildErr != nil:
		st.Phase = v1alpha1.PhaseDegraded
		// Joined errors (errors.Join) are one per line: one line, as every message.
		st.Message = "cannot build the environment: " + oneLine(buildErr.Error())
		reason := CondReasonRenderFailed
		if ceiling != nil {
			reason = CondReasonExceedsCeiling
		}
		set(v1alpha1.ConditionDegraded, metav1.ConditionTrue, reason, st.Message)
		set(v1alpha1.ConditionProgressing, metav1.ConditionFalse, reason, "nothing is created until the spec is fixed")
		set(v1alpha1.ConditionReady, metav1.ConditionFalse, reason, st.Message)
	case len(failed) > 0:
		st.Phase = v1alpha1.PhaseDegraded
		st.Message = strings.Join(failed, "; ")
		set(v1alpha1.ConditionDegraded, metav1.ConditionTrue, CondReasonServiceFailed, st.Message)
		if len(notReady) > 0 {
			set(v1alpha1.ConditionProgressing, metav1.ConditionTrue, CondReasonStarting, "not ready: "+strings.Join(notReady, ", "))
		} else {
			set(v1alpha1.ConditionProgressing, metav1.ConditionFalse, CondReasonServiceFailed, "nothing else is starting")
		}
		set(v1alpha1.ConditionReady, metav1.ConditionFalse, CondReasonServiceFailed, st.Message)
	case ready == total:
		st.Phase = v1alpha1.PhaseReady
		st.Message = fmt.Sprintf("all %d services ready", total)
		set(v1alpha1.ConditionReady, metav1.ConditionTrue, CondReasonAllReady, st.Message)
		set(v1alpha1.ConditionProgressing, metav1.ConditionFalse, CondReasonDone, st.Message)
		set(v1alpha1.ConditionDegraded, metav1.ConditionFalse, CondReasonAsExpected, "no service failed")
	default:
		st.Phase = v1alpha1.PhaseProgressing
		st.Message = "not ready: " + strings.Join(notReady, ", ")
		set(v1alpha1.ConditionProgressing, metav1.ConditionTrue, CondReasonStarting, st.Message)
		set(v1alpha1.ConditionReady, metav1.ConditionFalse, CondReasonNotReady, fmt.Sprintf("%d/%d services ready", ready, total))
		set(v1alpha1.ConditionDegraded, metav1.ConditionFalse, CondReasonAsExpected, "no service failed")
	}
	return st
}

// writeStatus writes st through the status subresource when it differs from what is stored.
func (r *Reconciler) writeStatus(ctx context.Context, env *v1alpha1.ErgomakeEnv, st *v1alpha1.EnvStatus) error {
	if equality.Semantic.DeepEqual(env.Status, *st) {
		return nil
	}
	if env.Status.Phase != st.Phase {
		log.FromContext(ctx).Info("phase changed", "phase", st.Phase, "summary", st.Summary, "message", st.Message)
	}
	env = env.DeepCopy()
	env.Status = *st
	return r.Client.Status().Update(ctx, env)
}

func ptrTime(t time.Time) *metav1.Time {
	mt := metav1.NewTime(t.Truncate(time.Second))
	return &mt
}

// oneLine makes a message one line: the lines of a multi-line one (a probe's output, a runtime's
// error) joined with "; ".
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	var parts []string
	for _, l := range strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' }) {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, "; ")
}
