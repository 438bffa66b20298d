package kube

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// The cluster side of `up`: the environment's data, the environment, the namespace's mark. Both
// the CLI with a kubeconfig (internal/session) and the ergomake server apply through
// ApplyEnvironment, so the two cannot drift.

// EnvApply is one apply of a translated environment.
type EnvApply struct {
	// Env, Secrets and ConfigMaps are what translate made (Env gets its annotations and the
	// services their EnvSecretVersion here).
	Env        *v1alpha1.ErgomakeEnv
	Secrets    []*corev1.Secret
	ConfigMaps []*corev1.ConfigMap
	// Existing is the environment in the cluster (nil: a new one).
	Existing *v1alpha1.ErgomakeEnv
	// OwnNamespace: the namespace is ergomake's (EnsureNamespace said so).
	OwnNamespace bool
	// Annotations are set on Env besides the heartbeat and the created-namespace mark: the
	// owner, the creator and the session.
	Annotations map[string]string
	// Now is the heartbeat's time.
	Now time.Time
}

// EnvApplied is how far ApplyEnvironment got.
type EnvApplied struct {
	// Env is the environment as the API server stored it; nil when the apply did not reach it.
	Env *v1alpha1.ErgomakeEnv
	// MarkChecked: the namespace's mark was looked at; NamespaceMarked then says whether the
	// namespace is this environment's to remove.
	MarkChecked     bool
	NamespaceMarked bool
}

// ApplyEnvironment applies a translated environment into its namespace (which must exist): the
// version of each service's environment Secret (VersionEnvSecrets), the annotations, the Secrets
// and ConfigMaps (pruning those of a previous apply), the ErgomakeEnv, the namespace's mark with
// the environment's UID (MarkEnvNamespace), and, for a new environment, its data again now owned
// by it.
func (c *Client) ApplyEnvironment(ctx context.Context, a EnvApply) (EnvApplied, error) {
	var out EnvApplied
	env, ns := a.Env, a.Env.Namespace
	if err := c.VersionEnvSecrets(ctx, ns, env, a.Secrets); err != nil {
		return out, err
	}
	if env.Annotations == nil {
		env.Annotations = map[string]string{}
	}
	for k, v := range a.Annotations {
		env.Annotations[k] = v
	}
	env.Annotations[v1alpha1.AnnotationHeartbeat] = HeartbeatValue(a.Now)
	if a.OwnNamespace && (a.Existing == nil || a.Existing.Annotations[v1alpha1.AnnotationCreatedNamespace] == "true") {
		env.Annotations[v1alpha1.AnnotationCreatedNamespace] = "true"
	}
	if err := c.ApplyData(ctx, ns, env.Name, a.Existing, a.Secrets, a.ConfigMaps); err != nil {
		return out, err
	}
	applied, err := c.ApplyEnv(ctx, env)
	if err != nil {
		return out, err
	}
	out.Env = applied
	marked, err := c.MarkEnvNamespace(ctx, a.OwnNamespace, a.Existing, applied)
	if err != nil {
		return out, err
	}
	out.MarkChecked, out.NamespaceMarked = true, marked
	if a.Existing == nil && (len(a.Secrets) > 0 || len(a.ConfigMaps) > 0) {
		// The data of a new environment is owned by it, now that it has a UID.
		if err := c.ApplyData(ctx, ns, env.Name, applied, a.Secrets, a.ConfigMaps); err != nil {
			return out, err
		}
	}
	return out, nil
}

// MarkEnvNamespace marks the namespace ergomake made (own) with the environment's UID once it has
// one (a new environment; one from before the mark in a namespace ergomake made), and says
// whether the namespace is this environment's to remove.
func (c *Client) MarkEnvNamespace(ctx context.Context, own bool, existing, applied *v1alpha1.ErgomakeEnv) (bool, error) {
	if !own {
		return false, nil
	}
	ns, err := c.Kube.CoreV1().Namespaces().Get(ctx, applied.Namespace, metav1.GetOptions{})
	if err != nil {
		return false, fmt.Errorf("namespace %s: %w", applied.Namespace, c.Explain(err))
	}
	if NamespaceMarkedFor(ns, applied.UID) {
		return true, nil
	}
	if existing != nil && (existing.Annotations[v1alpha1.AnnotationCreatedNamespace] != "true" || ns.Labels[v1alpha1.LabelNamespaceEnvUID] != "") {
		// An ergomake namespace this environment was not created with, or one marked for
		// another: leave it be.
		return false, nil
	}
	if err := c.MarkNamespace(ctx, applied.Namespace, applied.UID); err != nil {
		return false, err
	}
	return true, nil
}

// Annotations of a service's environment Secret (env-<service>), read back by the next apply.
const (
	// AnnotationContentHash is a hash of the Secret's data. It is only on the Secret, which
	// holds the values anyway; never in the ErgomakeEnv, whose readers must learn nothing of
	// them.
	AnnotationContentHash = "ergomake.dev/content-hash"
)

// VersionEnvSecrets gives each service of env with an environment Secret its EnvSecretVersion:
// the version the Secret already has in the cluster when its values are unchanged, a new random
// token when they changed (or it is new). The version is a pod template annotation, so changed
// values restart the service's pods, as compose recreates a container whose environment changed,
// and unchanged ones restart nothing; being random, it tells a reader of the ErgomakeEnv nothing
// of the values (a hash of them would let a short value be guessed).
func (c *Client) VersionEnvSecrets(ctx context.Context, namespace string, env *v1alpha1.ErgomakeEnv, secrets []*corev1.Secret) error {
	get := func(name string) (*corev1.Secret, error) {
		sec, err := c.Kube.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return nil, nil
		case err != nil:
			return nil, fmt.Errorf("reading Secret %s/%s: %w", namespace, name, c.Explain(err))
		}
		return sec, nil
	}
	return SetEnvSecretVersions(env, secrets, get, newToken)
}

// SetEnvSecretVersions is VersionEnvSecrets with the cluster's Secrets read by get (nil, nil:
// there is none) and new tokens made by token.
func SetEnvSecretVersions(env *v1alpha1.ErgomakeEnv, secrets []*corev1.Secret, get func(name string) (*corev1.Secret, error), token func() string) error {
	byName := map[string]*corev1.Secret{}
	for _, sec := range secrets {
		byName[sec.Name] = sec
	}
	for i := range env.Spec.Services {
		svc := &env.Spec.Services[i]
		sec := byName[svc.EnvSecret]
		if sec == nil {
			continue
		}
		sum := contentHash(sec.Data)
		old, err := get(sec.Name)
		if err != nil {
			return err
		}
		version := ""
		if old != nil && old.Annotations[AnnotationContentHash] == sum {
			version = old.Annotations[v1alpha1.AnnotationEnvSecretVersion]
		}
		if version == "" {
			version = token()
		}
		if sec.Annotations == nil {
			sec.Annotations = map[string]string{}
		}
		sec.Annotations[AnnotationContentHash] = sum
		sec.Annotations[v1alpha1.AnnotationEnvSecretVersion] = version
		svc.EnvSecretVersion = version
	}
	return nil
}

// contentHash is a hash of every key and value of data.
func contentHash(data map[string][]byte) string {
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%d:%s%d:", len(k), k, len(data[k]))
		h.Write(data[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}

func newToken() string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return hex.EncodeToString(b)
}
