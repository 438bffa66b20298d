// Package install puts the ergomake operator on a cluster (the ErgomakeEnv CRD, the operator's
// RBAC, ServiceAccount and Deployment, the in-cluster registry and its node relay, all embedded in
// the binary) and takes it off again.
package install

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ergomake/ergomake/config"
	"github.com/ergomake/ergomake/internal/build"
	"github.com/ergomake/ergomake/internal/clustersettings"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// FieldManager is the server-side apply field manager of what install applies.
const FieldManager = "ergomake"

// DefaultNamespace is where the operator runs unless told otherwise.
const DefaultNamespace = "ergomake-system"

// ImageRepository is where released operator images are published.
const ImageRepository = "ghcr.io/ergomake/ergomake-operator"

// AnnotationRevision on the operator's pod template: a new value restarts the operator, for an
// image rebuilt under the same tag.
const AnnotationRevision = "ergomake.dev/revision"

// Name of the operator's Deployment, ServiceAccount, ClusterRole and ClusterRoleBinding.
const Name = "ergomake-operator"

// Options say what to install where.
type Options struct {
	// Image of the operator (default: DefaultImage()).
	Image string
	// Namespace the operator runs in (default ergomake-system).
	Namespace string
	// Revision, when set, is recorded on the pods that run Image, the operator's and the relay's
	// (AnnotationRevision).
	Revision string
	// Timeout bounds each wait: for the CRD, and for the operator, the registry and the relay to
	// become available (default 3 minutes).
	Timeout time.Duration
	// Out receives progress lines (nil: discarded).
	Out io.Writer
	// DryRun sends every change as a server-side dry run: the API server validates it (and checks
	// permissions) and changes nothing; nothing is waited for.
	DryRun bool
	// RegistryImage is the image of the in-cluster registry (default: DefaultRegistryImage()).
	RegistryImage string
	// RegistryRevision, when set, is recorded on the registry's pod (AnnotationRevision).
	RegistryRevision string
	// RelayPort is the port of the node relay on each node's 127.0.0.1 (default DefaultRelayPort).
	RelayPort int
	// RegistryStorage is where the registry keeps images (default StorageAuto).
	RegistryStorage Storage
	// BuilderMode is how the builder runs (default BuilderPrivileged; BuilderNone: no builder).
	BuilderMode BuilderMode
	// BuilderImage is the builder's image (default: DefaultBuilderImageFor(BuilderMode)).
	BuilderImage string
	// BuilderRevision, when set, is recorded on the builder's pod (AnnotationRevision).
	BuilderRevision string
	// BuilderMirrors are registry hosts (docker.io, ergomake.test) whose images the builder looks
	// for in the in-cluster registry before their own registry (MirrorFor).
	BuilderMirrors []string
	// BuilderStorage is where the builder keeps its cache (default StorageAuto).
	BuilderStorage Storage
	// PodSecurity is the Pod Security Admission level of the namespaces ergomake creates, recorded
	// in the cluster's settings (default baseline).
	PodSecurity string
}

func (o *Options) verb(done string) string {
	if o.DryRun {
		return done + " (dry run)"
	}
	return done
}

// DefaultImage is the operator image matching this binary's version.
func DefaultImage() string {
	return ImageRepository + ":" + imageTag()
}

// imageTag is the tag of the released images matching this binary's version.
func imageTag() string {
	v := build.Get().Version
	if v == "" || v == "dev" || strings.Contains(v, "dirty") {
		v = "latest"
	}
	return v
}

func (o *Options) defaults() error {
	if o.Image == "" {
		o.Image = DefaultImage()
	}
	if o.RegistryImage == "" {
		o.RegistryImage = DefaultRegistryImage()
	}
	if o.RelayPort == 0 {
		o.RelayPort = DefaultRelayPort
	}
	if o.RelayPort < 1 || o.RelayPort > 65535 {
		return fmt.Errorf("relay port %d is not a TCP port", o.RelayPort)
	}
	for what, st := range map[string]Storage{"registry": o.RegistryStorage, "builder": o.BuilderStorage} {
		switch st {
		case StorageAuto, StoragePVC, StorageEmptyDir:
		default:
			return fmt.Errorf("%s storage %q: want %q or %q", what, st, StoragePVC, StorageEmptyDir)
		}
	}
	switch o.BuilderMode {
	case "":
		o.BuilderMode = BuilderPrivileged
	case BuilderPrivileged, BuilderRootless, BuilderNone:
	default:
		return fmt.Errorf("builder mode %q: want %q, %q or %q", o.BuilderMode, BuilderPrivileged, BuilderRootless, BuilderNone)
	}
	if o.BuilderImage == "" {
		o.BuilderImage = DefaultBuilderImageFor(o.BuilderMode)
	}
	for _, h := range o.BuilderMirrors {
		if err := ValidMirrorHost(h); err != nil {
			return err
		}
	}
	switch o.PodSecurity {
	case "":
		o.PodSecurity = clustersettings.PodSecurityBaseline
	case clustersettings.PodSecurityPrivileged, clustersettings.PodSecurityBaseline, clustersettings.PodSecurityRestricted:
	default:
		return fmt.Errorf("pod security %q: want %q, %q or %q", o.PodSecurity,
			clustersettings.PodSecurityPrivileged, clustersettings.PodSecurityBaseline, clustersettings.PodSecurityRestricted)
	}
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if errs := validation.IsDNS1123Label(o.Namespace); len(errs) > 0 {
		return fmt.Errorf("namespace %q: %s", o.Namespace, strings.Join(errs, "; "))
	}
	if o.Timeout <= 0 {
		o.Timeout = 3 * time.Minute
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	return nil
}

// Objects are the objects Install applies, in order: the CRD, the ClusterRole, the namespace, the
// Role in it, the ServiceAccount, the ClusterRoleBinding and RoleBinding, the ergomake-dns Service
// and the operator's Deployment; the environment DNS's ServiceAccount, ClusterRole,
// ClusterRoleBinding, Deployment and PodDisruptionBudget (dns.go);
// then the registry's ConfigMap, PersistentVolumeClaim (not with StorageEmptyDir), Service and
// Deployment, and the relay's DaemonSet; the builder's ConfigMap, PersistentVolumeClaim (not with
// StorageEmptyDir) and Deployment (none with BuilderNone); and the settings ConfigMap with the Role
// and RoleBinding that let every authenticated user read it.
func Objects(opts Options) ([]*unstructured.Unstructured, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	var out []*unstructured.Unstructured
	crd, err := decode(config.CRD)
	if err != nil {
		return nil, fmt.Errorf("embedded CRD: %w", err)
	}
	out = append(out, crd...)
	role, err := decode(config.RBAC)
	if err != nil {
		return nil, fmt.Errorf("embedded RBAC: %w", err)
	}
	// The ClusterRole before the namespace, the Role (the operator's own namespace) in it.
	var nsRoles []*unstructured.Unstructured
	for _, r := range role {
		if r.GetNamespace() != "" {
			nsRoles = append(nsRoles, r)
		} else {
			out = append(out, r)
		}
	}

	ns := &unstructured.Unstructured{}
	ns.SetAPIVersion("v1")
	ns.SetKind("Namespace")
	ns.SetName(opts.Namespace)
	ns.SetLabels(map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue})
	out = append(out, ns)
	out = append(out, nsRoles...)

	objs, err := decodeFiles(config.Operator, "operator/serviceaccount.yaml", "operator/clusterrolebinding.yaml", "operator/rolebinding.yaml", "operator/service.yaml", "operator/deployment.yaml")
	if err != nil {
		return nil, err
	}
	out = append(out, objs...)
	for _, u := range out {
		if u.GetKind() == "Deployment" && u.GetName() == Name {
			if err := setOperatorDeployment(u, opts); err != nil {
				return nil, err
			}
		}
	}
	dns, err := dnsObjects(opts)
	if err != nil {
		return nil, err
	}
	out = append(out, dns...)
	reg, err := registryObjects(opts)
	if err != nil {
		return nil, err
	}
	out = append(out, reg...)
	bld, err := builderObjects(opts)
	if err != nil {
		return nil, err
	}
	out = append(out, bld...)
	set, err := settingsObjects(opts)
	if err != nil {
		return nil, err
	}
	out = append(out, set...)
	for _, u := range out {
		if err := placeIn(u, opts.Namespace); err != nil {
			return nil, err
		}
		switch u.GetKind() {
		case "ClusterRole", "Role":
			labels := u.GetLabels()
			if labels == nil {
				labels = map[string]string{}
			}
			labels[v1alpha1.LabelManagedBy] = v1alpha1.ManagedByValue
			if labels["app.kubernetes.io/name"] == "" {
				labels["app.kubernetes.io/name"] = Name
			}
			u.SetLabels(labels)
		}
	}
	return out, nil
}

// placeIn puts u, an object of the manifests, in namespace ns, the one installed to: u itself when
// it is namespaced, and the ServiceAccount subjects of a binding (ClusterRoleBinding or
// RoleBinding).
func placeIn(u *unstructured.Unstructured, ns string) error {
	if u.GetNamespace() != "" {
		u.SetNamespace(ns)
	}
	if k := u.GetKind(); k != "ClusterRoleBinding" && k != "RoleBinding" {
		return nil
	}
	subjects, _, _ := unstructured.NestedSlice(u.Object, "subjects")
	for _, s := range subjects {
		if m, ok := s.(map[string]any); ok && m["kind"] == "ServiceAccount" {
			m["namespace"] = ns
		}
	}
	return unstructured.SetNestedSlice(u.Object, subjects, "subjects")
}

// setOperatorDeployment sets the operator's image and revision.
func setOperatorDeployment(u *unstructured.Unstructured, opts Options) error {
	containers, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
	for _, c := range containers {
		if m, ok := c.(map[string]any); ok {
			m["image"] = opts.Image
		}
	}
	if err := unstructured.SetNestedSlice(u.Object, containers, "spec", "template", "spec", "containers"); err != nil {
		return err
	}
	return setRevision(u, opts.Revision)
}

// setRevision records revision on u's pod template (nothing when it is empty).
func setRevision(u *unstructured.Unstructured, revision string) error {
	if revision == "" {
		return nil
	}
	return unstructured.SetNestedField(u.Object, revision, "spec", "template", "metadata", "annotations", AnnotationRevision)
}

// decode splits a multi-document YAML file into objects.
// decodeFiles decodes the objects of the named files of an embedded folder, in order.
func decodeFiles(fsys fs.FS, files ...string) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	for _, file := range files {
		b, err := fs.ReadFile(fsys, file)
		if err != nil {
			return nil, err
		}
		objs, err := decode(b)
		if err != nil {
			return nil, fmt.Errorf("embedded %s: %w", file, err)
		}
		out = append(out, objs...)
	}
	return out, nil
}

func decode(b []byte) ([]*unstructured.Unstructured, error) {
	d := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	var out []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := d.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, err
		}
		if len(m) == 0 {
			continue
		}
		out = append(out, &unstructured.Unstructured{Object: m})
	}
}

// newScheme holds every typed object install and uninstall read or write (the rest they apply
// as unstructured).
func newScheme() (*runtime.Scheme, error) {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, storagev1.AddToScheme,
		rbacv1.AddToScheme, apiextensionsv1.AddToScheme} {
		if err := add(scheme); err != nil {
			return nil, err
		}
	}
	return scheme, nil
}

func newClient(cfg *rest.Config) (client.Client, error) {
	scheme, err := newScheme()
	if err != nil {
		return nil, err
	}
	return client.New(cfg, client.Options{Scheme: scheme})
}

// prepare is what Install and Uninstall start with: opts with its defaults filled in, a client of
// cfg, and the objects of opts (after resolve, when given, has settled what depends on the cluster).
func prepare(ctx context.Context, cfg *rest.Config, opts *Options, resolve func(context.Context, client.Client, *Options) error) ([]*unstructured.Unstructured, client.Client, error) {
	if err := opts.defaults(); err != nil {
		return nil, nil, err
	}
	c, err := newClient(cfg)
	if err != nil {
		return nil, nil, err
	}
	if resolve != nil {
		if err := resolve(ctx, c, opts); err != nil {
			return nil, nil, err
		}
	}
	objs, err := Objects(*opts)
	if err != nil {
		return nil, nil, err
	}
	return objs, c, nil
}

// applyObject applies u and says so. An object of that name still being deleted (an uninstall
// moments before: a Deployment deleted in the foreground waits for its pods) is waited for first:
// applied to, it would vanish anyway, and a Deployment being deleted never rolls out.
func applyObject(ctx context.Context, c client.Client, opts Options, u *unstructured.Unstructured, applyOpts []client.ApplyOption) error {
	if !opts.DryRun {
		if err := awaitDeleted(ctx, c, opts, u); err != nil {
			return err
		}
	}
	if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), applyOpts...); err != nil {
		return fmt.Errorf("applying %s %s: %w", u.GetKind(), u.GetName(), err)
	}
	fmt.Fprintf(opts.Out, "%s %s %s\n", opts.verb("applied"), u.GetKind(), qualifiedName(u))
	return nil
}

// awaitDeleted waits (within opts.Timeout) until the object of u's kind and name is gone when it
// is being deleted; it returns at once when it is not there or not being deleted.
func awaitDeleted(ctx context.Context, c client.Client, opts Options, u *unstructured.Unstructured) error {
	cur := &unstructured.Unstructured{}
	cur.SetGroupVersionKind(u.GroupVersionKind())
	key := client.ObjectKeyFromObject(u)
	gone := func(ctx context.Context) (bool, error) {
		err := c.Get(ctx, key, cur)
		if apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		return cur.GetDeletionTimestamp() == nil, nil
	}
	if done, err := gone(ctx); done || err != nil {
		if err != nil {
			return fmt.Errorf("reading %s %s: %w", u.GetKind(), qualifiedName(u), err)
		}
		return nil
	}
	fmt.Fprintf(opts.Out, "waiting for the previous %s %s to finish deleting\n", u.GetKind(), qualifiedName(u))
	wctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	if err := wait.PollUntilContextCancel(wctx, 500*time.Millisecond, false, gone); err != nil {
		return fmt.Errorf("%s %s is still being deleted after %s: %w", u.GetKind(), qualifiedName(u), opts.Timeout, err)
	}
	return nil
}

// Install applies the CRD, the RBAC, the ServiceAccount and the operator Deployment, the registry
// and its node relay, and waits until the operator, the registry and the relay are available.
func Install(ctx context.Context, cfg *rest.Config, opts Options) error {
	objs, c, err := prepare(ctx, cfg, &opts, resolveStorage)
	if err != nil {
		return err
	}
	applyOpts := []client.ApplyOption{client.FieldOwner(FieldManager), client.ForceOwnership}
	if opts.DryRun {
		applyOpts = append(applyOpts, client.DryRunAll)
	}
	for _, u := range objs {
		if err := applyObject(ctx, c, opts, u, applyOpts); err != nil {
			return err
		}
		if opts.DryRun {
			continue
		}
		if u.GetKind() == "CustomResourceDefinition" {
			if err := waitCRD(ctx, c, u.GetName(), opts); err != nil {
				return err
			}
		}
	}
	if opts.DryRun {
		return nil
	}
	if opts.BuilderMode == BuilderNone {
		if err := removeBuilder(ctx, c, opts); err != nil {
			return err
		}
	}
	workloads := []workload{
		{what: "operator", kind: "Deployment", name: Name},
		{what: "environment DNS", kind: "Deployment", name: DNSName},
		{what: "registry", kind: "Deployment", name: RegistryName},
		{what: "registry relay", kind: "DaemonSet", name: RelayName},
	}
	if opts.BuilderMode != BuilderNone {
		workloads = append(workloads, workload{what: "builder", kind: "Deployment", name: BuilderName, hint: builderRefusedHint(opts.Namespace, opts.BuilderMode)})
	}
	for _, w := range workloads {
		if err := waitAvailable(ctx, c, opts, w); err != nil {
			return err
		}
	}
	return nil
}

// removeBuilder deletes the builder a previous install left, for an install with BuilderNone.
func removeBuilder(ctx context.Context, c client.Client, opts Options) error {
	o := opts
	o.BuilderMode, o.BuilderStorage = BuilderPrivileged, StoragePVC
	objs, err := builderObjects(o)
	if err != nil {
		return err
	}
	for i := len(objs) - 1; i >= 0; i-- {
		u := objs[i]
		u.SetNamespace(opts.Namespace)
		err := c.Delete(ctx, u, client.PropagationPolicy(metav1.DeletePropagationForeground))
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("removing the builder (--builder-mode none): deleting %s %s: %w", u.GetKind(), u.GetName(), err)
		}
		fmt.Fprintf(opts.Out, "deleted %s %s (--builder-mode none)\n", u.GetKind(), qualifiedName(u))
	}
	return nil
}

// workload is a Deployment or DaemonSet Install waits for; what names it in messages; hint, when
// set, says what to do when the cluster refuses to create its pods, given why.
type workload struct {
	what, kind, name string
	hint             func(why string) string
}

func qualifiedName(u *unstructured.Unstructured) string {
	if u.GetNamespace() != "" {
		return u.GetNamespace() + "/" + u.GetName()
	}
	return u.GetName()
}

func waitCRD(ctx context.Context, c client.Client, name string, opts Options) error {
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	err := wait.PollUntilContextCancel(ctx, 500*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		var crd apiextensionsv1.CustomResourceDefinition
		if err := c.Get(ctx, client.ObjectKey{Name: name}, &crd); err != nil {
			return false, client.IgnoreNotFound(err)
		}
		for _, cond := range crd.Status.Conditions {
			if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("CustomResourceDefinition %s is not established: %w", name, err)
	}
	fmt.Fprintf(opts.Out, "CustomResourceDefinition %s established\n", name)
	return nil
}

// waitAvailable waits until the workload has rolled out, printing a line each time what it waits
// for changes.
func waitAvailable(ctx context.Context, c client.Client, opts Options, w workload) error {
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	key := client.ObjectKey{Namespace: opts.Namespace, Name: w.name}
	last := ""
	var why string
	var refused error
	err := wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
		var done bool
		var msg string
		if w.kind == "DaemonSet" {
			var ds appsv1.DaemonSet
			if err := c.Get(ctx, key, &ds); err != nil {
				return false, client.IgnoreNotFound(err)
			}
			done, msg = daemonSetRolledOut(&ds)
		} else {
			var d appsv1.Deployment
			if err := c.Get(ctx, key, &d); err != nil {
				return false, client.IgnoreNotFound(err)
			}
			done, msg = rolledOut(&d)
			if r := podsRefused(&d); r != "" {
				refused = refusedError(w, r)
				return false, refused
			}
		}
		if !done {
			if reason := podTrouble(ctx, c, opts.Namespace, w.name); reason != "" {
				msg += ": " + reason
			}
		}
		why = msg
		if msg != last {
			fmt.Fprintf(opts.Out, "%s %s: %s\n", w.what, key, msg)
			last = msg
		}
		return done, nil
	})
	if refused != nil {
		return refused
	}
	if err != nil {
		if ctx.Err() != nil && why != "" {
			return fmt.Errorf("the %s did not become available within %s (%s)", w.what, opts.Timeout, why)
		}
		return fmt.Errorf("waiting for the %s: %w", w.what, err)
	}
	return nil
}

// daemonSetRolledOut is kubectl rollout status's test for a DaemonSet: every node runs an
// available pod of the newest template.
func daemonSetRolledOut(ds *appsv1.DaemonSet) (bool, string) {
	st := ds.Status
	switch {
	case st.ObservedGeneration < ds.Generation:
		return false, "waiting for the rollout to start"
	case st.UpdatedNumberScheduled < st.DesiredNumberScheduled:
		return false, fmt.Sprintf("%d of %d nodes updated", st.UpdatedNumberScheduled, st.DesiredNumberScheduled)
	case st.NumberAvailable < st.DesiredNumberScheduled:
		return false, fmt.Sprintf("%d of %d nodes available", st.NumberAvailable, st.DesiredNumberScheduled)
	}
	return true, "available"
}

// podsRefused is why the cluster refuses to create the Deployment's pods (Pod Security Admission,
// an admission webhook, a quota), from its ReplicaFailure condition; "" when it does not.
func podsRefused(d *appsv1.Deployment) string {
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentReplicaFailure && c.Status == corev1.ConditionTrue {
			if c.Message != "" {
				return c.Message
			}
			return c.Reason
		}
	}
	return ""
}

// refusedError is the one line that says the cluster refuses the workload's pods, and what to do.
func refusedError(w workload, why string) error {
	msg := fmt.Sprintf("the cluster refuses to create the %s's pods: %s", w.what, why)
	if w.hint != nil {
		msg += ": " + w.hint(why)
	}
	return errors.New(msg)
}

// rolledOut is kubectl rollout status's test: the newest template is rolled out and available.
func rolledOut(d *appsv1.Deployment) (bool, string) {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	st := d.Status
	switch {
	case st.ObservedGeneration < d.Generation:
		return false, "waiting for the rollout to start"
	case st.UpdatedReplicas < want:
		return false, fmt.Sprintf("%d of %d updated replicas", st.UpdatedReplicas, want)
	case st.Replicas > st.UpdatedReplicas:
		return false, fmt.Sprintf("%d old replicas pending termination", st.Replicas-st.UpdatedReplicas)
	case st.AvailableReplicas < st.UpdatedReplicas:
		return false, fmt.Sprintf("%d of %d updated replicas available", st.AvailableReplicas, st.UpdatedReplicas)
	}
	return true, "available"
}

// podTrouble names what keeps a pod labelled app.kubernetes.io/name=name from starting (image
// pull, crash loop), if anything.
func podTrouble(ctx context.Context, c client.Client, namespace, name string) string {
	var pods corev1.PodList
	if err := c.List(ctx, &pods, client.InNamespace(namespace), client.MatchingLabels{"app.kubernetes.io/name": name}); err != nil {
		return ""
	}
	var out []string
	for _, p := range pods.Items {
		for _, cs := range p.Status.ContainerStatuses {
			if w := cs.State.Waiting; w != nil && w.Reason != "" && w.Reason != "ContainerCreating" {
				s := w.Reason
				if w.Message != "" {
					s += ": " + w.Message
				}
				out = append(out, s)
			}
		}
		for _, cond := range p.Status.Conditions {
			if cond.Type == corev1.PodScheduled && cond.Status == corev1.ConditionFalse && cond.Message != "" {
				out = append(out, "unschedulable: "+cond.Message)
			}
		}
	}
	sort.Strings(out)
	return strings.Join(out, "; ")
}

// Uninstall removes what Install applied: the CRD (and with it every ErgomakeEnv, whose objects
// the garbage collector then removes), the operator and its RBAC, the registry (and the images it
// holds) and its relay, and the namespace when ergomake created it. Objects already gone are
// skipped.
func Uninstall(ctx context.Context, cfg *rest.Config, opts Options) error {
	// whichever storage and builder Install chose, the PVCs and the builder go if they are there
	opts.RegistryStorage, opts.BuilderStorage = StoragePVC, StoragePVC
	opts.BuilderMode = BuilderPrivileged
	objs, c, err := prepare(ctx, cfg, &opts, nil)
	if err != nil {
		return err
	}
	// Reverse order, but the CRD first: its environments are deleted while the operator that
	// reports on them still runs.
	order := []*unstructured.Unstructured{objs[0]}
	for i := len(objs) - 1; i > 0; i-- {
		order = append(order, objs[i])
	}
	for _, u := range order {
		if u.GetKind() == "Namespace" {
			var ns corev1.Namespace
			if err := c.Get(ctx, client.ObjectKey{Name: u.GetName()}, &ns); err != nil {
				if apierrors.IsNotFound(err) {
					continue
				}
				return err
			}
			if ns.Labels[v1alpha1.LabelManagedBy] != v1alpha1.ManagedByValue {
				fmt.Fprintf(opts.Out, "kept Namespace %s (not created by ergomake)\n", u.GetName())
				continue
			}
		}
		delOpts := []client.DeleteOption{client.PropagationPolicy(metav1.DeletePropagationForeground)}
		if opts.DryRun {
			delOpts = append(delOpts, client.DryRunAll)
		}
		err := c.Delete(ctx, u, delOpts...)
		switch {
		case apierrors.IsNotFound(err) || meta.IsNoMatchError(err):
			fmt.Fprintf(opts.Out, "%s %s already gone\n", u.GetKind(), qualifiedName(u))
			continue
		case err != nil:
			return fmt.Errorf("deleting %s %s: %w", u.GetKind(), u.GetName(), err)
		}
		if !opts.DryRun {
			if err := waitGone(ctx, c, u, opts.Timeout); err != nil {
				return err
			}
		}
		fmt.Fprintf(opts.Out, "%s %s %s\n", opts.verb("deleted"), u.GetKind(), qualifiedName(u))
	}
	return nil
}

func waitGone(ctx context.Context, c client.Client, u *unstructured.Unstructured, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := wait.PollUntilContextCancel(ctx, 500*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		probe := &unstructured.Unstructured{}
		probe.SetGroupVersionKind(u.GroupVersionKind())
		err := c.Get(ctx, client.ObjectKeyFromObject(u), probe)
		if apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
			return true, nil
		}
		return false, err
	})
	if err != nil {
		return fmt.Errorf("%s %s is not gone: %w", u.GetKind(), qualifiedName(u), err)
	}
	return nil
}
