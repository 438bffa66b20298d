package operator

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/ergomake/ergomake/internal/render"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// Reclaiming abandoned environments (ARCHITECTURE.md, decisions 7 and 14). The operator judges a
// heartbeat on its own clock: an environment expires its TTL after the operator saw its heartbeat
// annotation change last, whatever time the annotation says (the CLI's clock may be skewed). What
// the operator saw is kept in memory: an operator that restarts (or a new leader) counts afresh
// from when it first sees each environment, so it never reclaims right after its own restart.
// status.heartbeat shows the same for users. A reclaimed environment's namespace goes with it
// when ergomake created it for that environment and it holds nothing else.

// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;delete

// heartbeats is what the operator saw of each environment's heartbeat.
type heartbeats struct {
	mu   sync.Mutex
	seen map[types.NamespacedName]seenBeat
}

// seenBeat: the environment (its UID), its heartbeat value, and when the operator first saw that
// value (its clock).
type seenBeat struct {
	uid   types.UID
	value string
	at    time.Time
}

// observe returns when the operator first saw env's current heartbeat value (now when it is new
// to this operator, or changed).
func (h *heartbeats) observe(env *v1alpha1.ErgomakeEnv, now time.Time) time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.seen == nil {
		h.seen = map[types.NamespacedName]seenBeat{}
	}
	key := types.NamespacedName{Namespace: env.Namespace, Name: env.Name}
	value := env.Annotations[v1alpha1.AnnotationHeartbeat]
	b, ok := h.seen[key]
	if !ok || b.uid != env.UID || b.value != value {
		b = seenBeat{uid: env.UID, value: value, at: now}
		h.seen[key] = b
	}
	return b.at
}

// forget drops an environment that is gone.
func (h *heartbeats) forget(key types.NamespacedName) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.seen, key)
}

// expiry is when env is reclaimed: its TTL after the operator saw its heartbeat change last. ok
// is false when it has no TTL.
func (r *Reconciler) expiry(env *v1alpha1.ErgomakeEnv, now time.Time) (at, seen time.Time, ok bool) {
	seen = r.beats.observe(env, now)
	if env.Spec.TTL == nil || env.Spec.TTL.Duration <= 0 {
		return time.Time{}, seen, false
	}
	return seen.Add(env.Spec.TTL.Duration), seen, true
}

// heartbeatStatus is status.heartbeat: when the operator saw the heartbeat change, and when it
// reclaims the environment (none without a TTL).
func heartbeatStatus(seen, expiry time.Time, hasTTL bool) *v1alpha1.HeartbeatStatus {
	st := &v1alpha1.HeartbeatStatus{SeenAt: *ptrTime(seen)}
	if hasTTL {
		st.ExpiresAt = ptrTime(expiry)
	}
	return st
}

// reclaim deletes an environment whose heartbeat expired, then its namespace when ergomake
// created it for this environment (marked with its UID) and it holds nothing else.
func (r *Reconciler) reclaim(ctx context.Context, env *v1alpha1.ErgomakeEnv) error {
	logger := log.FromContext(ctx)
	err := r.Client.Delete(ctx, env, client.Preconditions{UID: &env.UID}, client.PropagationPolicy(metav1.DeletePropagationBackground))
	if apierrors.IsConflict(err) {
		return nil // another environment of that name now: not ours to reclaim
	}
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	r.beats.forget(types.NamespacedName{Namespace: env.Namespace, Name: env.Name})
	ns := &corev1.Namespace{}
	if err := r.APIReader.Get(ctx, client.ObjectKey{Name: env.Namespace}, ns); err != nil {
		return client.IgnoreNotFound(err)
	}
	if !namespaceMarkedFor(ns, env.UID) || !ns.DeletionTimestamp.IsZero() {
		return nil
	}
	foreign, err := r.foreign(ctx, env)
	if err != nil {
		return err
	}
	if len(foreign) > 0 {
		logger.Info("keeping the namespace of the reclaimed environment: it holds more", "namespace", ns.Name, "objects", strings.Join(foreign, ", "))
		return nil
	}
	uid := ns.UID
	if err := r.Client.Delete(ctx, ns, client.Preconditions{UID: &uid}); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("deleting namespace %s: %w", ns.Name, err)
	}
	logger.Info("deleted the namespace of the reclaimed environment", "namespace", ns.Name)
	return nil
}

// reservedNamespaces are never deleted, whatever marks them.
var reservedNamespaces = map[string]bool{"default": true, "kube-system": true, "kube-public": true, "kube-node-lease": true, "ergomake-system": true}

// namespaceMarkedFor: ergomake created ns for the environment of that UID (and ns is none of the
// cluster's or ergomake's own).
func namespaceMarkedFor(ns *corev1.Namespace, uid types.UID) bool {
	return uid != "" && !reservedNamespaces[ns.Name] && !strings.HasPrefix(ns.Name, "kube-") &&
		ns.Labels[v1alpha1.LabelManagedBy] == v1alpha1.ManagedByValue && ns.Labels[v1alpha1.LabelNamespaceEnvUID] == string(uid)
}

// foreign lists what env's namespace holds besides env's own objects, among what the operator
// may list: other environments, workloads, pods, Services and claims (not being deleted).
func (r *Reconciler) foreign(ctx context.Context, env *v1alpha1.ErgomakeEnv) ([]string, error) {
	mine := render.LabelValue(env.Name)
	var out []string
	add := func(kind string, o metav1.Object) {
		if o.GetDeletionTimestamp() == nil && o.GetLabels()[v1alpha1.LabelEnv] != mine {
			out = append(out, kind+"/"+o.GetName())
		}
	}
	in := client.InNamespace(env.Namespace)
	var envs v1alpha1.ErgomakeEnvList
	if err := r.APIReader.List(ctx, &envs, in); err != nil {
		return nil, err
	}
	for i := range envs.Items {
		if envs.Items[i].UID != env.UID && envs.Items[i].DeletionTimestamp.IsZero() {
			out = append(out, v1alpha1.Kind+"/"+envs.Items[i].Name)
		}
	}
	lists := []struct {
		kind string
		list client.ObjectList
		each func(client.ObjectList, func(string, metav1.Object))
	}{
		{"Pod", &corev1.PodList{}, func(l client.ObjectList, f func(string, metav1.Object)) {
			for i := range l.(*corev1.PodList).Items {
				f("Pod", &l.(*corev1.PodList).Items[i])
			}
		}},
		{"Service", &corev1.ServiceList{}, func(l client.ObjectList, f func(string, metav1.Object)) {
			for i := range l.(*corev1.ServiceList).Items {
				f("Service", &l.(*corev1.ServiceList).Items[i])
			}
		}},
		{"PersistentVolumeClaim", &corev1.PersistentVolumeClaimList{}, func(l client.ObjectList, f func(string, metav1.Object)) {
			for i := range l.(*corev1.PersistentVolumeClaimList).Items {
				f("PersistentVolumeClaim", &l.(*corev1.PersistentVolumeClaimList).Items[i])
			}
		}},
		{"Deployment", &appsv1.DeploymentList{}, func(l client.ObjectList, f func(string, metav1.Object)) {
			for i := range l.(*appsv1.DeploymentList).Items {
				f("Deployment", &l.(*appsv1.DeploymentList).Items[i])
			}
		}},
		{"Job", &batchv1.JobList{}, func(l client.ObjectList, f func(string, metav1.Object)) {
			for i := range l.(*batchv1.JobList).Items {
				f("Job", &l.(*batchv1.JobList).Items[i])
			}
		}},
	}
	for _, l := range lists {
		if err := r.APIReader.List(ctx, l.list, in); err != nil {
			return nil, fmt.Errorf("listing %ss of namespace %s: %w", l.kind, env.Namespace, err)
		}
		l.each(l.list, add)
	}
	sort.Strings(out)
	return out, nil
}
