// Package operator reconciles each ErgomakeEnv into the Kubernetes objects internal/render builds
// for it, enforces depends_on, reports a truthful status and reclaims environments whose heartbeat
// has expired.
package operator

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/ergomake/ergomake/internal/render"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// FieldManager is the server-side apply field manager of everything the operator applies.
const FieldManager = "ergomake-operator"

// progressRequeue is how often an environment that is not ready yet is looked at again even when
// nothing it owns changed: probe failures and pull progress show up only in events.
const progressRequeue = 5 * time.Second

// degradedRequeue is the same for an environment that cannot become ready without a change.
const degradedRequeue = 15 * time.Second

// Reconciler turns ErgomakeEnvs into running environments.
type Reconciler struct {
	// Client reads through the manager's cache and writes to the API server.
	Client client.Client
	// APIReader reads from the API server directly (objects the cache does not hold).
	APIReader client.Reader
	// Kube fetches container logs and events.
	Kube kubernetes.Interface
	// Scheme knows every type the operator handles.
	Scheme *runtime.Scheme
	// Clock decides TTL expiry and status timestamps.
	Clock clock.Clock
	// ClusterClock is what the times the cluster reports (a container's start and exit, a pod's
	// conditions) are compared with to tell how long a container has been up (nil: the real
	// clock). It is not Clock: a test's fake clock says nothing of how long a real container ran.
	ClusterClock clock.PassiveClock
	// DNS finds the environment DNS that pods of environments with names cluster DNS cannot
	// answer resolve through (nil: none); ClusterDomain is the cluster's DNS domain.
	DNS           *DNSServerLookup
	ClusterDomain string
	// Ceiling finds the cluster's security ceiling (nil: baseline).
	Ceiling *CeilingLookup
}

// +kubebuilder:rbac:groups=ergomake.dev,resources=ergomakeenvs,verbs=get;list;watch;delete
// +kubebuilder:rbac:groups=ergomake.dev,resources=ergomakeenvs/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=ergomake.dev,resources=ergomakeenvs/finalizers,verbs=update
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=services;persistentvolumeclaims,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=create
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;update;patch;delete,resourceNames=ergomake-hosts;ergomake-settings
// +kubebuilder:rbac:groups="",resources=pods/log,verbs=get
// +kubebuilder:rbac:groups="",resources=events,verbs=get;list;watch

// In the operator's own namespace only (install moves the Role there): the leader election Lease
// and the events that announce a new leader.
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=create,namespace=ergomake-system
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;update,resourceNames=ergomake-operator.ergomake.dev,namespace=ergomake-system
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch,namespace=ergomake-system

// Reconcile brings one ErgomakeEnv's objects and status in line with its spec.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	logger := log.FromContext(ctx)
	env := &v1alpha1.ErgomakeEnv{}
	if err := r.Client.Get(ctx, req.NamespacedName, env); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !env.DeletionTimestamp.IsZero() {
		// The garbage collector removes what the environment owns.
		return ctrl.Result{}, nil
	}

	now := r.Clock.Now()
	expiry, hasTTL, hbErr := Expiry(env)
	if hbErr != nil {
		logger.Info("ignoring unreadable heartbeat, using the creation time", "error", hbErr.Error())
	}
	if hasTTL && !now.Before(expiry) {
		logger.Info("heartbeat expired: deleting the environment", "expiredAt", expiry.Format(time.RFC3339))
		err := r.Client.Delete(ctx, env, client.Preconditions{UID: &env.UID}, client.PropagationPolicy(metav1.DeletePropagationBackground))
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return ctrl.Result{}, err
		}
		return ctrl.Result{}, nil
	}

	clusterClock := r.ClusterClock
	if clusterClock == nil {
		clusterClock = clock.RealClock{}
	}
	p := &pass{now: now, cluster: clusterClock.Now()}
	status, err := r.converge(ctx, env, p)
	if err != nil {
		return ctrl.Result{}, err
	}
	if err := r.writeStatus(ctx, env, status); err != nil {
		if apierrors.IsConflict(err) {
			// Someone changed the environment meanwhile: look again at the new version.
			return ctrl.Result{RequeueAfter: time.Second}, nil
		}
		if apierrors.IsNotFound(err) {
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}

	return ctrl.Result{RequeueAfter: lookSooner(nextLook(status.Phase, hasTTL, expiry, now), p)}, nil
}

// pass is one reconcile pass's view of time.
type pass struct {
	// now is the reconciler's Clock: TTL expiry, status timestamps.
	now time.Time
	// cluster is the ClusterClock's time, compared with the times the cluster reports.
	cluster time.Time
	// lookAt, when set, is when a service's state changes although nothing in the cluster does
	// (a container counts as running once it has been up long enough; see assessPod).
	lookAt time.Time
}

// lookSooner shortens after so that the environment is looked at again when p says a state
// changes by itself.
func lookSooner(after time.Duration, p *pass) time.Duration {
	if p.lookAt.IsZero() {
		return after
	}
	// A little late rather than early: the state changes once the time has passed.
	until := p.lookAt.Sub(p.cluster) + 100*time.Millisecond
	if until < 100*time.Millisecond {
		until = 100 * time.Millisecond
	}
	if after == 0 || until < after {
		return until
	}
	return after
}

// nextLook is how long until an environment is reconciled again when nothing it owns changes: soon
// while it starts (probe failures and pulls show only in events), now and then while Degraded,
// and in any case when its TTL expires. Zero: only when something changes.
func nextLook(phase v1alpha1.Phase, hasTTL bool, expiry, now time.Time) time.Duration {
	var after time.Duration
	switch phase {
	case v1alpha1.PhaseReady:
	case v1alpha1.PhaseDegraded:
		// Waiting for a change, mostly; still look now and then, a pull may succeed after all.
		after = degradedRequeue
	default:
		after = progressRequeue
	}
	if hasTTL {
		until := expiry.Sub(now)
		if until <= 0 {
			until = time.Millisecond
		}
		if after == 0 || until < after {
			after = until
		}
	}
	return after
}

// Expiry is when env is reclaimed: its heartbeat (or creation time) plus its TTL. ok is false when
// it has no TTL. err reports a heartbeat annotation that is not RFC 3339 (the creation time is
// used instead).
func Expiry(env *v1alpha1.ErgomakeEnv) (at time.Time, ok bool, err error) {
	if env.Spec.TTL == nil || env.Spec.TTL.Duration <= 0 {
		return time.Time{}, false, nil
	}
	last := env.CreationTimestamp.Time
	if hb, found := env.Annotations[v1alpha1.AnnotationHeartbeat]; found {
		t, perr := time.Parse(time.RFC3339, hb)
		if perr != nil {
			err = fmt.Errorf("annotation %s: %q is not an RFC 3339 time", v1alpha1.AnnotationHeartbeat, hb)
		} else if t.After(last) {
			last = t
		}
	}
	return last.Add(env.Spec.TTL.Duration), true, err
}

// owned are the objects of one environment that it controls, by kind and name.
type owned struct {
	services    map[string]*corev1.Service
	deployments map[string]*appsv1.Deployment
	jobs        map[string]*batchv1.Job
	claims      map[string]*corev1.PersistentVolumeClaim
	pods        []*corev1.Pod

	// events of the pods, once listed (see Reconciler.events).
	events       map[string]podEvents
	eventsListed bool
}

func (r *Reconciler) listOwned(ctx context.Context, env *v1alpha1.ErgomakeEnv) (*owned, error) {
	opts := []client.ListOption{
		client.InNamespace(env.Namespace),
		client.MatchingLabels{v1alpha1.LabelEnv: render.LabelValue(env.Name)},
	}
	o := &owned{
		services:    map[string]*corev1.Service{},
		deployments: map[string]*appsv1.Deployment{},
		jobs:        map[string]*batchv1.Job{},
		claims:      map[string]*corev1.PersistentVolumeClaim{},
	}
	var svcs corev1.ServiceList
	if err := r.Client.List(ctx, &svcs, opts...); err != nil {
		return nil, err
	}
	for i := range svcs.Items {
		if metav1.IsControlledBy(&svcs.Items[i], env) {
			o.services[svcs.Items[i].Name] = &svcs.Items[i]
		}
	}
	var deps appsv1.DeploymentList
	if err := r.Client.List(ctx, &deps, opts...); err != nil {
		return nil, err
	}
	for i := range deps.Items {
		if metav1.IsControlledBy(&deps.Items[i], env) {
			o.deployments[deps.Items[i].Name] = &deps.Items[i]
		}
	}
	var jobs batchv1.JobList
	if err := r.Client.List(ctx, &jobs, opts...); err != nil {
		return nil, err
	}
	for i := range jobs.Items {
		if metav1.IsControlledBy(&jobs.Items[i], env) {
			o.jobs[jobs.Items[i].Name] = &jobs.Items[i]
		}
	}
	var claims corev1.PersistentVolumeClaimList
	if err := r.Client.List(ctx, &claims, opts...); err != nil {
		return nil, err
	}
	for i := range claims.Items {
		if metav1.IsControlledBy(&claims.Items[i], env) {
			o.claims[claims.Items[i].Name] = &claims.Items[i]
		}
	}
	var pods corev1.PodList
	if err := r.Client.List(ctx, &pods, opts...); err != nil {
		return nil, err
	}
	for i := range pods.Items {
		if pods.Items[i].DeletionTimestamp.IsZero() {
			o.pods = append(o.pods, &pods.Items[i])
		}
	}
	return o, nil
}

// currentWorkload is the service's Deployment or Job as the cache shows it.
func currentWorkload(o *owned, rs *render.Service) client.Object {
	if rs.Deployment != nil {
		if d := o.deployments[rs.Deployment.Name]; d != nil {
			return d
		}
		return nil
	}
	if j := o.jobs[rs.Job.Name]; j != nil {
		return j
	}
	return nil
}

// observe gathers the workload and the current pods of one service.
func observe(o *owned, rs *render.Service, w client.Object) observed {
	var obs observed
	label := render.LabelValue(rs.Name)
	switch w := w.(type) {
	case *appsv1.Deployment:
		obs.Deployment = w
		hash := w.Spec.Template.Annotations[v1alpha1.AnnotationSpecHash]
		for _, p := range o.pods {
			if p.Labels[v1alpha1.LabelService] != label {
				continue
			}
			if hash != "" && p.Annotations[v1alpha1.AnnotationSpecHash] != hash {
				continue // a pod of an older template, going away
			}
			obs.Pods = append(obs.Pods, p)
		}
	case *batchv1.Job:
		obs.Job = w
		for _, p := range o.pods {
			if p.Labels[v1alpha1.LabelService] == label && metav1.IsControlledBy(p, w) {
				obs.Pods = append(obs.Pods, p)
			}
		}
	}
	return obs
}

var errNotOwned = errors.New("exists and is not owned by this environment")

// permanent tells errors that retrying cannot fix (an object someone else owns, one the API server
// rejects) from transient ones: the former are reported in the status, the latter retried.
func permanent(err error) bool {
	return errors.Is(err, errNotOwned) || apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) ||
		apierrors.IsForbidden(err) || apierrors.IsRequestEntityTooLargeError(err)
}

// applyOwned server-side applies obj with env as its controller. When the object is not among
// env's owned objects, it is looked up first: one that exists and belongs to someone else is
// left alone (errNotOwned).
func (r *Reconciler) applyOwned(ctx context.Context, env *v1alpha1.ErgomakeEnv, obj client.Object, knownOwned bool) error {
	if !knownOwned {
		existing := &unstructured.Unstructured{}
		existing.SetGroupVersionKind(obj.GetObjectKind().GroupVersionKind())
		err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(obj), existing)
		switch {
		case err == nil:
			if !metav1.IsControlledBy(existing, env) {
				return fmt.Errorf("%s %q %w", obj.GetObjectKind().GroupVersionKind().Kind, obj.GetName(), errNotOwned)
			}
		case !apierrors.IsNotFound(err):
			return err
		}
	}
	if err := controllerutil.SetControllerReference(env, obj, r.Scheme); err != nil {
		return err
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return err
	}
	u := &unstructured.Unstructured{Object: m}
	unstructured.RemoveNestedField(u.Object, "status")
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(u.Object, "spec", "template", "metadata", "creationTimestamp")
	if err := r.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
		return fmt.Errorf("applying %s %s: %w", u.GetKind(), u.GetName(), err)
	}
	// Hand back what the API server answered (ClusterIP, creationTimestamp, status).
	return runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, obj)
}

// serviceUpToDate is true when an owned Service already has everything the rendered one asks
// for, so that applying it would change nothing.
func serviceUpToDate(existing, rendered *corev1.Service) bool {
	want := rendered.Spec
	got := existing.Spec
	if want.ClusterIP == corev1.ClusterIPNone && got.ClusterIP != corev1.ClusterIPNone {
		return false
	}
	if !equality.Semantic.DeepEqual(want.Selector, got.Selector) || len(want.Ports) != len(got.Ports) {
		return false
	}
	for i := range want.Ports {
		w, g := want.Ports[i], got.Ports[i]
		if w.Name != g.Name || w.Port != g.Port || w.TargetPort != g.TargetPort || w.Protocol != g.Protocol ||
			!equality.Semantic.DeepEqual(w.AppProtocol, g.AppProtocol) {
			return false
		}
	}
	for k, v := range rendered.Labels {
		if existing.Labels[k] != v {
			return false
		}
	}
	return true
}

// applyWorkload creates or updates the service's Deployment or Job. A Job whose spec changed is
// deleted (its pod template is immutable) and created again on a later pass, once it is gone; nil
// is returned meanwhile.
func (r *Reconciler) applyWorkload(ctx context.Context, env *v1alpha1.ErgomakeEnv, o *owned, rs *render.Service) (client.Object, error) {
	if rs.Job != nil {
		if existing := o.jobs[rs.Job.Name]; existing != nil {
			if existing.Annotations[v1alpha1.AnnotationSpecHash] == rs.SpecHash {
				return existing, nil
			}
			if existing.DeletionTimestamp.IsZero() {
				err := r.Client.Delete(ctx, existing, client.PropagationPolicy(metav1.DeletePropagationForeground),
					client.Preconditions{UID: &existing.UID})
				if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
					return nil, err
				}
			}
			return nil, nil
		}
		if err := r.applyOwned(ctx, env, rs.Job, false); err != nil {
			return nil, err
		}
		log.FromContext(ctx).Info("created the job of a one-shot service", "service", rs.Name)
		return rs.Job, nil
	}
	existing := o.deployments[rs.Deployment.Name]
	if existing != nil && deploymentUpToDate(existing, rs) {
		return existing, nil
	}
	if err := r.applyOwned(ctx, env, rs.Deployment, existing != nil); err != nil {
		return nil, err
	}
	if existing == nil {
		log.FromContext(ctx).Info("created the deployment of a service", "service", rs.Name)
	} else {
		log.FromContext(ctx).Info("updated the deployment of a service", "service", rs.Name)
	}
	return rs.Deployment, nil
}

// deploymentUpToDate: same spec hash, same hostAliases. Applying an identical object is a no-op
// anyway; skipping it spares a request per service per pass.
func deploymentUpToDate(existing *appsv1.Deployment, rs *render.Service) bool {
	if existing.Annotations[v1alpha1.AnnotationSpecHash] != rs.SpecHash ||
		existing.Spec.Template.Annotations[v1alpha1.AnnotationSpecHash] != rs.SpecHash ||
		existing.Spec.Template.Annotations[AnnotationHostsHash] != rs.Deployment.Spec.Template.Annotations[AnnotationHostsHash] {
		return false
	}
	if !equality.Semantic.DeepEqual(existing.Spec.Template.Spec.HostAliases, rs.Deployment.Spec.Template.Spec.HostAliases) ||
		!dnsUpToDate(&existing.Spec.Template.Spec, &rs.Deployment.Spec.Template.Spec) {
		return false
	}
	for _, ref := range existing.OwnerReferences {
		if ref.Controller != nil && *ref.Controller {
			return true
		}
	}
	return false
}

// dropHosts deletes the hosts ConfigMap of an environment that no longer needs it.
func (r *Reconciler) dropHosts(ctx context.Context, env *v1alpha1.ErgomakeEnv, o *owned) error {
	used := false
	for _, d := range o.deployments {
		used = used || d.Annotations[AnnotationHostsHash] != ""
	}
	for _, j := range o.jobs {
		used = used || j.Annotations[AnnotationHostsHash] != ""
	}
	if !used {
		return nil
	}
	cm := &corev1.ConfigMap{}
	err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: env.Namespace, Name: HostsConfigMapName}, cm)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil || !metav1.IsControlledBy(cm, env) {
		return err
	}
	// The workloads drop their mount in this same pass; pods still using the file keep their copy.
	if err := r.Client.Delete(ctx, cm, client.Preconditions{UID: &cm.UID}); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return nil
}

// prune deletes owned objects the rendered environment no longer has, each whatever happens to
// the others; the errors are joined.
func (r *Reconciler) prune(ctx context.Context, c *convergence) (phaseResult, error) {
	o := c.o
	keep := map[string]bool{}
	for _, obj := range c.objs.List() {
		keep[obj.GetObjectKind().GroupVersionKind().Kind+"/"+obj.GetName()] = true
	}
	var stale []client.Object
	for name, x := range o.services {
		if !keep["Service/"+name] {
			stale = append(stale, x)
		}
	}
	for name, x := range o.deployments {
		if !keep["Deployment/"+name] {
			stale = append(stale, x)
		}
	}
	for name, x := range o.jobs {
		if !keep["Job/"+name] {
			stale = append(stale, x)
		}
	}
	for name, x := range o.claims {
		if !keep["PersistentVolumeClaim/"+name] {
			stale = append(stale, x)
		}
	}
	var errs []error
	for _, x := range stale {
		if !x.GetDeletionTimestamp().IsZero() {
			continue
		}
		uid := x.GetUID()
		err := r.Client.Delete(ctx, x, client.PropagationPolicy(metav1.DeletePropagationBackground), client.Preconditions{UID: &uid})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			errs = append(errs, fmt.Errorf("deleting %s: %w", x.GetName(), err))
			continue
		}
		log.FromContext(ctx).Info("deleted an object the spec no longer has", "name", x.GetName())
	}
	if err := errors.Join(errs...); err != nil {
		return phaseStop, err
	}
	return phaseNext, nil
}

// events lists the environment's pod events, when some service may need them to explain itself.
func (r *Reconciler) events(ctx context.Context, env *v1alpha1.ErgomakeEnv, o *owned) (map[string]podEvents, error) {
	if o.eventsListed {
		return o.events, nil
	}
	o.eventsListed = true
	needed := false
	for _, p := range o.pods {
		if !podReady(p) && p.Status.Phase != corev1.PodSucceeded {
			needed = true
			break
		}
	}
	if !needed || r.Kube == nil {
		return nil, nil
	}
	list, err := r.Kube.CoreV1().Events(env.Namespace).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.kind=Pod"})
	if err != nil {
		// Events only refine messages: go on without them.
		log.FromContext(ctx).Info("cannot list events", "error", err.Error())
		return nil, nil
	}
	o.events = eventsByPod(list.Items)
	return o.events, nil
}

// lastLog returns the last lines of a container's log, or nil when they cannot be read.
func (r *Reconciler) lastLog(ctx context.Context, namespace string, ref *logRef) []string {
	if r.Kube == nil || ref == nil {
		return nil
	}
	get := func(previous bool) string {
		b, err := r.Kube.CoreV1().Pods(namespace).GetLogs(ref.Pod, &corev1.PodLogOptions{
			Container:  ref.Container,
			Previous:   previous,
			TailLines:  ptr.To(int64(logLines)),
			LimitBytes: ptr.To(int64(4096)),
		}).DoRaw(ctx)
		if err != nil {
			return ""
		}
		lines := strings.TrimRight(string(b), "\n")
		if strings.TrimSpace(lines) == "" || strings.HasPrefix(lines, logsGone) {
			return ""
		}
		return lines
	}
	lines := get(ref.Previous)
	switch {
	case lines != "":
	case ref.Previous:
		// The previous instance's log is gone (the runtime removed that container): the
		// current one may have logged the same.
		lines = get(false)
	case ref.OrPrevious:
		lines = get(true)
	}
	if lines == "" {
		return nil
	}
	return strings.Split(lines, "\n")
}

// logsGone starts what the kubelet answers instead of the log of a container the runtime has
// removed.
const logsGone = "unable to retrieve container logs for "
