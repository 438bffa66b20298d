package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/ergomake/ergomake/internal/clustersettings"
	"github.com/ergomake/ergomake/internal/kube"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// ConfigName is the ConfigMap (in the server's namespace) holding the server's configuration.
const ConfigName = "ergomake-server"

// Annotations on a server user's namespace: who it belongs to and which project it holds. The
// server acts on a namespace only when AnnotationUser is exactly the caller.
const (
	AnnotationUser    = "ergomake.dev/server-user"
	AnnotationProject = "ergomake.dev/server-project"
	// QuotaName and LimitRangeName name the ResourceQuota and LimitRange of each user namespace.
	QuotaName      = "ergomake-quota"
	LimitRangeName = "ergomake-limits"
)

// Keys of the server's ConfigMap.
const (
	KeyEnvironmentsPerUser = "environmentsPerUser"
	KeyQuotaCPU            = "quota.cpu"
	KeyQuotaMemory         = "quota.memory"
	KeyQuotaStorage        = "quota.storage"
	KeyQuotaPods           = "quota.pods"
	KeyDefaultCPU          = "limits.defaultCPURequest"
	KeyDefaultMemory       = "limits.defaultMemoryRequest"
	KeyDefaultMemoryLimit  = "limits.defaultMemoryLimit"
)

// Config is the server's configuration: how much each user may take. Each environment's namespace
// gets a ResourceQuota of Quota (requests.cpu, requests.memory and limits.memory, requests.storage,
// pods) and a LimitRange giving containers that declare nothing the default requests and memory
// limit (a quota on requests refuses pods without them).
type Config struct {
	EnvironmentsPerUser int
	QuotaCPU            resource.Quantity
	QuotaMemory         resource.Quantity
	QuotaStorage        resource.Quantity
	QuotaPods           int
	DefaultCPU          resource.Quantity
	DefaultMemory       resource.Quantity
	DefaultMemoryLimit  resource.Quantity
}

// DefaultConfig is what the server applies when its ConfigMap does not say otherwise.
func DefaultConfig() Config {
	return Config{
		EnvironmentsPerUser: 5,
		QuotaCPU:            resource.MustParse("4"),
		QuotaMemory:         resource.MustParse("8Gi"),
		QuotaStorage:        resource.MustParse("20Gi"),
		QuotaPods:           50,
		DefaultCPU:          resource.MustParse("50m"),
		DefaultMemory:       resource.MustParse("64Mi"),
		DefaultMemoryLimit:  resource.MustParse("1Gi"),
	}
}

// Data is c as ConfigMap data.
func (c Config) Data() map[string]string {
	return map[string]string{
		KeyEnvironmentsPerUser: strconv.Itoa(c.EnvironmentsPerUser),
		KeyQuotaCPU:            c.QuotaCPU.String(),
		KeyQuotaMemory:         c.QuotaMemory.String(),
		KeyQuotaStorage:        c.QuotaStorage.String(),
		KeyQuotaPods:           strconv.Itoa(c.QuotaPods),
		KeyDefaultCPU:          c.DefaultCPU.String(),
		KeyDefaultMemory:       c.DefaultMemory.String(),
		KeyDefaultMemoryLimit:  c.DefaultMemoryLimit.String(),
	}
}

// ParseConfig reads ConfigMap data; missing keys keep DefaultConfig.
func ParseConfig(data map[string]string) (Config, error) {
	c := DefaultConfig()
	ints := map[string]*int{KeyEnvironmentsPerUser: &c.EnvironmentsPerUser, KeyQuotaPods: &c.QuotaPods}
	qs := map[string]*resource.Quantity{
		KeyQuotaCPU: &c.QuotaCPU, KeyQuotaMemory: &c.QuotaMemory, KeyQuotaStorage: &c.QuotaStorage,
		KeyDefaultCPU: &c.DefaultCPU, KeyDefaultMemory: &c.DefaultMemory, KeyDefaultMemoryLimit: &c.DefaultMemoryLimit,
	}
	for k, v := range data {
		if p, ok := ints[k]; ok {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return c, fmt.Errorf("server configuration: %s is %q, want a whole number ≥ 0", k, v)
			}
			*p = n
			continue
		}
		if p, ok := qs[k]; ok {
			q, err := resource.ParseQuantity(v)
			if err != nil || q.Sign() < 0 {
				return c, fmt.Errorf("server configuration: %s is %q, want a quantity such as 4, 500m, 8Gi", k, v)
			}
			*p = q
			continue
		}
		return c, fmt.Errorf("server configuration: unknown key %q", k)
	}
	return c, nil
}

// Tenancy manages server users' namespaces.
type Tenancy struct {
	Kube    kubernetes.Interface
	Dynamic dynamic.Interface
	// Rest is the server's REST configuration, for pods/exec (GET /v1/envs/{name}/exec).
	Rest *rest.Config
	// Namespace is the server's own (its ConfigMap, the cluster settings).
	Namespace string
	Now       func() time.Time
	// EnvRole is the ClusterRole bound to the server in each user namespace (EnvRoleName when
	// empty).
	EnvRole string
}

// ErrNotFound: the caller has no environment of that name (another user's is not found either).
var ErrNotFound = errors.New("no such environment")

// QuotaError says which of the server's limits a request would exceed.
type QuotaError struct{ Limit, Detail string }

func (e *QuotaError) Error() string { return "over the limit " + e.Limit + ": " + e.Detail }

// Config reads the server's configuration from its ConfigMap (DefaultConfig when there is none).
func (t *Tenancy) Config(ctx context.Context) (Config, error) {
	cm, err := t.Kube.CoreV1().ConfigMaps(t.Namespace).Get(ctx, ConfigName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return DefaultConfig(), nil
	}
	if err != nil {
		return Config{}, fmt.Errorf("reading the server configuration (ConfigMap %s/%s): %w", t.Namespace, ConfigName, err)
	}
	return ParseConfig(cm.Data)
}

// podSecurity is the Pod Security level of server users' namespaces: the install's ceiling, but
// never above baseline.
func (t *Tenancy) podSecurity(ctx context.Context) string {
	s, _ := clustersettings.Read(ctx, t.Kube, t.Namespace) // missing: Defaults (baseline)
	if s.PodSecurity == clustersettings.PodSecurityRestricted {
		return clustersettings.PodSecurityRestricted
	}
	return clustersettings.PodSecurityBaseline
}

func ownedBy(ns *corev1.Namespace, user string) bool {
	return ns.Labels[LabelUser] == UserHash(user) && ns.Annotations[AnnotationUser] == user
}

// EnsureNamespace returns the namespace of user's environment of project, creating it (with the
// ResourceQuota and LimitRange of the configuration, and Pod Security labels at the ceiling) when
// it does not exist and the user is under the environments-per-user limit. It is the first step of
// `up` through the server.
func (t *Tenancy) EnsureNamespace(ctx context.Context, user, project string) (string, error) {
	if err := ValidateUser(user); err != nil {
		return "", err
	}
	if project == "" {
		return "", errors.New("empty project name")
	}
	cfg, err := t.Config(ctx)
	if err != nil {
		return "", err
	}
	name := Namespace(user, project)
	namespaces := t.Kube.CoreV1().Namespaces()
	ns, err := namespaces.Get(ctx, name, metav1.GetOptions{})
	switch {
	case err == nil:
		if !ownedBy(ns, user) {
			return "", fmt.Errorf("namespace %s exists and does not belong to you: ask the cluster admin", name)
		}
		if ns.DeletionTimestamp != nil {
			return "", fmt.Errorf("environment %s is still being deleted: try again in a moment", project)
		}
	case apierrors.IsNotFound(err):
		mine, err := t.userNamespaces(ctx, user)
		if err != nil {
			return "", err
		}
		if len(mine) >= cfg.EnvironmentsPerUser {
			return "", &QuotaError{Limit: KeyEnvironmentsPerUser, Detail: fmt.Sprintf("you have %d environments, the limit is %d: delete one first", len(mine), cfg.EnvironmentsPerUser)}
		}
		level := t.podSecurity(ctx)
		labels := kube.PodSecurityLabels(level)
		labels[v1alpha1.LabelManagedBy] = v1alpha1.ManagedByValue
		labels[v1alpha1.LabelPartOf] = kube.EnvName(project)
		labels[LabelUser] = UserHash(user)
		ns = &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Labels:      labels,
			Annotations: map[string]string{AnnotationUser: user, AnnotationProject: project},
		}}
		if _, err := namespaces.Create(ctx, ns, metav1.CreateOptions{FieldManager: "ergomake-server"}); err != nil {
			return "", fmt.Errorf("creating namespace %s: %w", name, err)
		}
	default:
		return "", fmt.Errorf("reading namespace %s: %w", name, err)
	}
	if err := t.applyLimits(ctx, name, cfg); err != nil {
		return "", err
	}
	if err := t.bindEnvRole(ctx, name); err != nil {
		return "", err
	}
	return name, nil
}

// EnvRoleName is the ClusterRole (config/server/rbac.yaml) that lets the server apply an
// environment, its Secrets and its ConfigMaps; the server binds it in each of its users'
// namespaces, never cluster-wide.
const EnvRoleName = "ergomake-server-env"

// ClusterScopedName is the name of one of the server's cluster-scoped objects (its ClusterRoles
// and ClusterRoleBinding, base in config/server/rbac.yaml) for a server installed in namespace
// ns: base itself in the default namespace, base-NS in any other, so that servers installed in
// two namespaces neither overwrite nor delete each other's.
func ClusterScopedName(base, ns string) string {
	if ns == "" || ns == clustersettings.DefaultNamespace {
		return base
	}
	return base + "-" + ns
}

// bindEnvRole binds EnvRoleName to the server's ServiceAccount in the namespace ns.
func (t *Tenancy) bindEnvRole(ctx context.Context, ns string) error {
	rbs := t.Kube.RbacV1().RoleBindings(ns)
	if _, err := rbs.Get(ctx, ServiceName, metav1.GetOptions{}); err == nil {
		return nil
	} else if !apierrors.IsNotFound(err) {
		return fmt.Errorf("reading RoleBinding %s/%s: %w", ns, ServiceName, err)
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: ServiceName, Namespace: ns, Labels: map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue}},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: cmp.Or(t.EnvRole, EnvRoleName)},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: ServiceName, Namespace: t.Namespace}},
	}
	if _, err := rbs.Create(ctx, rb, metav1.CreateOptions{FieldManager: "ergomake-server"}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating RoleBinding %s/%s: %w", ns, ServiceName, err)
	}
	return nil
}

// applyLimits creates or updates the namespace's ResourceQuota and LimitRange.
func (t *Tenancy) applyLimits(ctx context.Context, ns string, cfg Config) error {
	labels := map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue}
	quota := &corev1.ResourceQuota{
		ObjectMeta: metav1.ObjectMeta{Name: QuotaName, Namespace: ns, Labels: labels},
		Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{
			corev1.ResourceRequestsCPU:     cfg.QuotaCPU,
			corev1.ResourceRequestsMemory:  cfg.QuotaMemory,
			corev1.ResourceLimitsMemory:    cfg.QuotaMemory,
			corev1.ResourceRequestsStorage: cfg.QuotaStorage,
			corev1.ResourcePods:            *resource.NewQuantity(int64(cfg.QuotaPods), resource.DecimalSI),
		}},
	}
	quotas := t.Kube.CoreV1().ResourceQuotas(ns)
	if old, err := quotas.Get(ctx, QuotaName, metav1.GetOptions{}); err == nil {
		old.Spec = quota.Spec
		_, err = quotas.Update(ctx, old, metav1.UpdateOptions{FieldManager: "ergomake-server"})
		if err != nil {
			return fmt.Errorf("updating ResourceQuota %s/%s: %w", ns, QuotaName, err)
		}
	} else if _, err := quotas.Create(ctx, quota, metav1.CreateOptions{FieldManager: "ergomake-server"}); err != nil {
		return fmt.Errorf("creating ResourceQuota %s/%s: %w", ns, QuotaName, err)
	}
	lr := &corev1.LimitRange{
		ObjectMeta: metav1.ObjectMeta{Name: LimitRangeName, Namespace: ns, Labels: labels},
		Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{
			Type:           corev1.LimitTypeContainer,
			DefaultRequest: corev1.ResourceList{corev1.ResourceCPU: cfg.DefaultCPU, corev1.ResourceMemory: cfg.DefaultMemory},
			Default:        corev1.ResourceList{corev1.ResourceMemory: cfg.DefaultMemoryLimit},
		}}},
	}
	lrs := t.Kube.CoreV1().LimitRanges(ns)
	if old, err := lrs.Get(ctx, LimitRangeName, metav1.GetOptions{}); err == nil {
		old.Spec = lr.Spec
		if _, err := lrs.Update(ctx, old, metav1.UpdateOptions{FieldManager: "ergomake-server"}); err != nil {
			return fmt.Errorf("updating LimitRange %s/%s: %w", ns, LimitRangeName, err)
		}
	} else if _, err := lrs.Create(ctx, lr, metav1.CreateOptions{FieldManager: "ergomake-server"}); err != nil {
		return fmt.Errorf("creating LimitRange %s/%s: %w", ns, LimitRangeName, err)
	}
	return nil
}

// userNamespaces are the namespaces that belong to user (label and annotation both match).
func (t *Tenancy) userNamespaces(ctx context.Context, user string) ([]corev1.Namespace, error) {
	list, err := t.Kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: LabelUser + "=" + UserHash(user)})
	if err != nil {
		return nil, fmt.Errorf("listing namespaces: %w", err)
	}
	var out []corev1.Namespace
	for _, ns := range list.Items {
		if ownedBy(&ns, user) {
			out = append(out, ns)
		}
	}
	return out, nil
}

// Env is one environment as the API lists it.
type Env struct {
	// Name is the compose project name (what DELETE /v1/envs/{name} takes).
	Name      string    `json:"name"`
	Namespace string    `json:"namespace"`
	Phase     string    `json:"phase"`
	Summary   string    `json:"summary,omitempty"`
	Message   string    `json:"message,omitempty"`
	Created   time.Time `json:"created"`
}

// ListEnvs lists user's environments, and only theirs, by name.
func (t *Tenancy) ListEnvs(ctx context.Context, user string) ([]Env, error) {
	nss, err := t.userNamespaces(ctx, user)
	if err != nil {
		return nil, err
	}
	out := make([]Env, 0, len(nss))
	for _, ns := range nss {
		e := Env{Name: ns.Annotations[AnnotationProject], Namespace: ns.Name, Phase: "Empty", Created: ns.CreationTimestamp.UTC()}
		list, err := t.Dynamic.Resource(v1alpha1.GroupVersionResource).Namespace(ns.Name).List(ctx, metav1.ListOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("listing environments in %s: %w", ns.Name, err)
		}
		if list != nil && len(list.Items) > 0 {
			env, err := kube.EnvFromUnstructured(&list.Items[0])
			if err != nil {
				return nil, err
			}
			e.Phase, e.Summary, e.Message = string(env.Status.Phase), env.Status.Summary, env.Status.Message
			if e.Phase == "" {
				e.Phase = string(v1alpha1.PhasePending)
			}
		}
		if ns.DeletionTimestamp != nil {
			e.Phase = "Deleting"
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// DeleteEnv deletes user's environment name: its ErgomakeEnvs (the operator's objects go with
// them) and its namespace. It does not wait. ErrNotFound when user has no such environment,
// whether or not another user has one of that name.
func (t *Tenancy) DeleteEnv(ctx context.Context, user, name string) (string, error) {
	nsName := Namespace(user, name)
	ns, err := t.Kube.CoreV1().Namespaces().Get(ctx, nsName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) || (err == nil && !ownedBy(ns, user)) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("reading namespace %s: %w", nsName, err)
	}
	envs := t.Dynamic.Resource(v1alpha1.GroupVersionResource).Namespace(nsName)
	if err := envs.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return "", fmt.Errorf("deleting the environments in %s: %w", nsName, err)
	}
	policy := metav1.DeletePropagationBackground
	err = t.Kube.CoreV1().Namespaces().Delete(ctx, nsName, metav1.DeleteOptions{
		PropagationPolicy: &policy,
		Preconditions:     &metav1.Preconditions{UID: &ns.UID},
	})
	if err != nil && !apierrors.IsNotFound(err) {
		return "", fmt.Errorf("deleting namespace %s: %w", nsName, err)
	}
	return nsName, nil
}
