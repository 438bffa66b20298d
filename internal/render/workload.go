package render

import (
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/ergomake/ergomake/internal/compose/defaults"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// defaultJobBackoffLimit is how often a one-shot service whose restart policy retries it is
// retried when the compose file gives no maximum (Kubernetes' default).
const defaultJobBackoffLimit = 6

// renderWorkload wraps the pod template in a Deployment or a Job.
func renderWorkload(env *v1alpha1.ErgomakeEnv, svc *v1alpha1.ServiceSpec, tmpl *corev1.PodTemplateSpec, r *Service, e *errs) {
	name := svc.Name
	if !defaults.KnownRestart(svc.Restart) {
		e.add(name, "restart", "unknown restart policy %q (want no, always, on-failure or unless-stopped)", svc.Restart)
		return
	}
	if svc.MaxRetries != nil && *svc.MaxRetries < 0 {
		e.add(name, "maxRetries", "must not be negative, not %d", *svc.MaxRetries)
		return
	}
	if svc.Replicas != nil && *svc.Replicas < 0 {
		e.add(name, "replicas", "must not be negative, not %d", *svc.Replicas)
		return
	}
	meta := objectMeta(env, svc.ServiceName, svc.Name)
	switch lifecycle(svc) {
	case v1alpha1.LongRunning:
		replicas := int32(1)
		if svc.Replicas != nil {
			replicas = *svc.Replicas
		}
		strategy := appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType}
		if svc.HostNetwork || mountsClaim(svc, env) {
			// A read-write-once claim (a database's data directory) or the node's ports cannot be
			// shared by the old and the new pod.
			strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
		}
		tmpl.Spec.RestartPolicy = corev1.RestartPolicyAlways
		r.Deployment = &appsv1.Deployment{
			TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
			ObjectMeta: meta,
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To(replicas),
				Selector: &metav1.LabelSelector{MatchLabels: SelectorLabels(env, svc.Name)},
				Template: *tmpl,
				Strategy: strategy,
			},
		}
	case v1alpha1.OneShot:
		// compose's restart "no" (the default) runs the container once; any other policy retries it.
		policy, backoff := corev1.RestartPolicyNever, int32(0)
		if svc.Restart != "" && svc.Restart != defaults.RestartNo {
			policy, backoff = corev1.RestartPolicyOnFailure, defaultJobBackoffLimit
		}
		if svc.MaxRetries != nil {
			backoff = *svc.MaxRetries
		}
		tmpl.Spec.RestartPolicy = policy
		job := &batchv1.Job{
			TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
			ObjectMeta: meta,
			Spec: batchv1.JobSpec{
				BackoffLimit: ptr.To(backoff),
				Template:     *tmpl,
			},
		}
		if svc.Replicas != nil {
			job.Spec.Completions = ptr.To(*svc.Replicas)
			job.Spec.Parallelism = ptr.To(*svc.Replicas)
		}
		r.Job = job
	default:
		e.add(name, "lifecycle", "unknown lifecycle %q (want %s or %s)", svc.Lifecycle, v1alpha1.LongRunning, v1alpha1.OneShot)
	}
}

func mountsClaim(svc *v1alpha1.ServiceSpec, env *v1alpha1.ErgomakeEnv) bool {
	for _, m := range svc.Volumes {
		if m.Type != v1alpha1.MountVolume || m.ReadOnly {
			continue
		}
		for i := range env.Spec.Volumes {
			if v := &env.Spec.Volumes[i]; v.Name == m.Source && !v.EmptyDir {
				return true
			}
		}
	}
	return false
}
