// Package clustersettings is what `ergomake install` decided for a cluster and every CLI needs to
// know: where built images go, where the builder listens, and the security ceiling. Install writes
// it as one ConfigMap in the operator's namespace, readable by every authenticated user (a Role
// and RoleBinding granting `get` on that ConfigMap alone); the CLI and the operator read it.
package clustersettings

import (
	"context"
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Name of the ConfigMap (in the operator's namespace, default ergomake-system).
const Name = "ergomake-settings"

// DefaultNamespace is where install puts the operator, and so the settings.
const DefaultNamespace = "ergomake-system"

// The ConfigMap's keys.
const (
	KeyRegistryPush    = "registry.push"
	KeyRegistryPull    = "registry.pull"
	KeyBuilderSel      = "builder.selector"
	KeyBuilderPort     = "builder.port"
	KeyBuilderMode     = "builder.mode"
	KeyPodSecurity     = "podSecurity"
	KeyOperatorVersion = "operator.version"
)

// PodSecurity levels (Kubernetes Pod Security Standards).
const (
	PodSecurityPrivileged = "privileged"
	PodSecurityBaseline   = "baseline"
	PodSecurityRestricted = "restricted"
)

// Settings are the install-time choices.
type Settings struct {
	// Namespace the settings (and the operator, builder and registry) live in.
	Namespace string
	// RegistryPush is the registry host[:port][/prefix] the builder pushes to, as the builder's pod
	// reaches it (e.g. "ergomake-registry.ergomake-system.svc:5000"). Empty: no in-cluster registry.
	RegistryPush string
	// RegistryPull is the same registry as nodes' container runtimes name it (e.g. "127.0.0.1:5100").
	RegistryPull string
	// BuilderSelector is the label selector of the builder's pods in Namespace (empty: no builder).
	BuilderSelector string
	// BuilderPort is the TCP port buildkitd listens on inside its pod, on loopback.
	BuilderPort int
	// BuilderMode is "privileged" or "rootless".
	BuilderMode string
	// PodSecurity is the ceiling for environments: privileged, baseline or restricted.
	PodSecurity string
	// OperatorVersion is the version of the ergomake that installed the operator.
	OperatorVersion string
}

// Defaults are what a cluster without the ConfigMap (installed by an older ergomake) behaves as.
func Defaults() Settings {
	return Settings{Namespace: DefaultNamespace, PodSecurity: PodSecurityBaseline}
}

// ConfigMap is s as install writes it.
func (s Settings) ConfigMap() *corev1.ConfigMap {
	ns := s.Namespace
	if ns == "" {
		ns = DefaultNamespace
	}
	data := map[string]string{
		KeyRegistryPush:    s.RegistryPush,
		KeyRegistryPull:    s.RegistryPull,
		KeyBuilderSel:      s.BuilderSelector,
		KeyBuilderMode:     s.BuilderMode,
		KeyPodSecurity:     s.PodSecurity,
		KeyOperatorVersion: s.OperatorVersion,
	}
	if s.BuilderPort != 0 {
		data[KeyBuilderPort] = strconv.Itoa(s.BuilderPort)
	}
	for k, v := range data {
		if v == "" {
			delete(data, k)
		}
	}
	return &corev1.ConfigMap{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{
			Name: Name, Namespace: ns,
			Labels: map[string]string{"app.kubernetes.io/managed-by": "ergomake", "app.kubernetes.io/name": Name},
		},
		Data: data,
	}
}

// FromConfigMap reads s back; missing keys keep Defaults().
func FromConfigMap(cm *corev1.ConfigMap) (Settings, error) {
	s := Defaults()
	s.Namespace = cm.Namespace
	d := cm.Data
	s.RegistryPush = d[KeyRegistryPush]
	s.RegistryPull = d[KeyRegistryPull]
	s.BuilderSelector = d[KeyBuilderSel]
	s.BuilderMode = d[KeyBuilderMode]
	s.OperatorVersion = d[KeyOperatorVersion]
	if v := d[KeyPodSecurity]; v != "" {
		switch v {
		case PodSecurityPrivileged, PodSecurityBaseline, PodSecurityRestricted:
			s.PodSecurity = v
		default:
			return s, fmt.Errorf("ConfigMap %s/%s: %s is %q, want privileged, baseline or restricted", cm.Namespace, cm.Name, KeyPodSecurity, v)
		}
	}
	if v := d[KeyBuilderPort]; v != "" {
		p, err := strconv.Atoi(v)
		if err != nil || p < 1 || p > 65535 {
			return s, fmt.Errorf("ConfigMap %s/%s: %s is %q, not a TCP port", cm.Namespace, cm.Name, KeyBuilderPort, v)
		}
		s.BuilderPort = p
	}
	return s, nil
}

// ErrNotInstalled is returned by Read when the cluster has no settings: ergomake is not installed
// there (or by a version that did not write them).
var ErrNotInstalled = fmt.Errorf("ergomake is not installed on this cluster (no ConfigMap %s): run `ergomake install`", Name)

// Read fetches the settings from namespace (empty: DefaultNamespace). A missing ConfigMap is
// ErrNotInstalled (wrapped); callers that can live without it use Defaults().
func Read(ctx context.Context, cs kubernetes.Interface, namespace string) (Settings, error) {
	if namespace == "" {
		namespace = DefaultNamespace
	}
	cm, err := cs.CoreV1().ConfigMaps(namespace).Get(ctx, Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return Defaults(), fmt.Errorf("%w", ErrNotInstalled)
	}
	if err != nil {
		return Defaults(), fmt.Errorf("reading ergomake's settings (ConfigMap %s/%s): %w", namespace, Name, err)
	}
	return FromConfigMap(cm)
}
