package kube

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/ergomake/ergomake/internal/clustersettings"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// DefaultNamespace is the namespace of an environment when -n does not name one:
// ergomake-<environment name>.
func DefaultNamespace(envName string) string {
	return strings.TrimRight(truncate("ergomake-"+envName, 63), "-.")
}

var (
	reNotLabel = regexp.MustCompile(`[^a-z0-9-]+`)
	reDashes   = regexp.MustCompile(`-{2,}`)
)

// EnvName is the name of a project's ErgomakeEnv: the project name when it is a DNS-1123 label,
// else a sanitized form (the rule internal/translate names environments by).
func EnvName(project string) string {
	if len(validation.IsDNS1123Label(project)) == 0 {
		return project
	}
	out := reNotLabel.ReplaceAllString(strings.ToLower(project), "-")
	out = strings.Trim(reDashes.ReplaceAllString(out, "-"), "-")
	if out == "" {
		out = "project"
	}
	return strings.TrimRight(truncate(out, 63), "-.")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// EnvNamespace resolves the namespace of a project's environment: -n when given, else
// ergomake-<environment name>. (The kubeconfig context's namespace is not used: decision 1, one
// namespace per environment.)
func (c *Client) EnvNamespace(project string) string {
	if c.NamespaceExplicit && c.Namespace != "" {
		return c.Namespace
	}
	return DefaultNamespace(EnvName(project))
}

// IsOurNamespace says whether ergomake created the namespace (label app.kubernetes.io/managed-by).
func IsOurNamespace(ns *corev1.Namespace) bool {
	return ns.Labels[v1alpha1.LabelManagedBy] == v1alpha1.ManagedByValue
}

// Pod Security Admission's namespace labels (Kubernetes Pod Security Standards).
const (
	LabelPodSecurityEnforce = "pod-security.kubernetes.io/enforce"
	LabelPodSecurityWarn    = "pod-security.kubernetes.io/warn"
	LabelPodSecurityAudit   = "pod-security.kubernetes.io/audit"
)

// PodSecurityLabels are the labels that make the API server enforce, warn about and audit level
// (privileged, baseline or restricted) in a namespace, at the latest version of the standards.
func PodSecurityLabels(level string) map[string]string {
	out := map[string]string{}
	for _, l := range []string{LabelPodSecurityEnforce, LabelPodSecurityWarn, LabelPodSecurityAudit} {
		out[l] = level
		out[l+"-version"] = "latest"
	}
	return out
}

// PodSecurity is the cluster's security ceiling, from ergomake's settings (the ConfigMap `ergomake
// install` writes, see internal/clustersettings): privileged, baseline or restricted. A cluster
// whose settings cannot be read (none written, no right to read them) has the default, baseline;
// err says why, for a warning.
func (c *Client) PodSecurity(ctx context.Context) (string, error) {
	s, err := clustersettings.Read(ctx, c.Kube, "")
	if err != nil {
		return clustersettings.PodSecurityBaseline, err
	}
	return s.PodSecurity, nil
}

// EnsureNamespace makes sure the namespace exists, creating it labelled as ergomake's when it does
// not, with the Pod Security Admission labels of the cluster's ceiling (PodSecurity). It returns whether ergomake owns it (created it now or earlier). A namespace that is still
// terminating (a previous `down`) is waited for and created anew.
func (c *Client) EnsureNamespace(ctx context.Context, name, project string) (owned bool, err error) {
	for {
		ns, err := c.Kube.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			level, _ := c.PodSecurity(ctx)
			labels := PodSecurityLabels(level)
			labels[v1alpha1.LabelManagedBy] = v1alpha1.ManagedByValue
			labels[v1alpha1.LabelPartOf] = project
			ns = &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
			_, err = c.Kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{FieldManager: FieldManager})
			if apierrors.IsAlreadyExists(err) {
				continue
			}
			if err != nil {
				return false, fmt.Errorf("creating namespace %s: %w", name, c.Explain(err))
			}
			return true, nil
		case err != nil:
			return false, fmt.Errorf("namespace %s: %w", name, c.Explain(err))
		case ns.DeletionTimestamp != nil:
			if err := c.WaitNamespaceGone(ctx, name, nil); err != nil {
				return false, err
			}
			continue
		default:
			return IsOurNamespace(ns), nil
		}
	}
}

// DeleteNamespace deletes the namespace and waits until it is gone. progress, when not nil, is
// told what is still being removed.
func (c *Client) DeleteNamespace(ctx context.Context, name string, progress func(string)) error {
	err := c.Kube.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting namespace %s: %w", name, c.Explain(err))
	}
	return c.WaitNamespaceGone(ctx, name, progress)
}

// WaitNamespaceGone watches the namespace until it no longer exists.
func (c *Client) WaitNamespaceGone(ctx context.Context, name string, progress func(string)) error {
	sel := fields.OneTermEqualSelector("metadata.name", name).String()
	for {
		l, err := c.Kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{FieldSelector: sel})
		if err != nil {
			return fmt.Errorf("namespace %s: %w", name, c.Explain(err))
		}
		if len(l.Items) == 0 {
			return nil
		}
		if progress != nil {
			progress(fmt.Sprintf("namespace %s terminating", name))
		}
		w, err := c.Kube.CoreV1().Namespaces().Watch(ctx, metav1.ListOptions{
			FieldSelector: sel, ResourceVersion: l.ResourceVersion,
		})
		if err != nil {
			return fmt.Errorf("namespace %s: %w", name, c.Explain(err))
		}
		gone := drainUntilDeleted(ctx, w)
		w.Stop()
		if gone {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		// The watch ended (timeout, reconnect): list again.
	}
}

// drainUntilDeleted reads the watch until a Deleted event (true) or the watch ends (false).
func drainUntilDeleted(ctx context.Context, w watch.Interface) bool {
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-timer.C:
			return false
		case ev, ok := <-w.ResultChan():
			if !ok {
				return false
			}
			if ev.Type == watch.Deleted {
				return true
			}
		}
	}
}
