package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ergomake/ergomake/internal/render"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// Which namespaces ergomake may remove (ARCHITECTURE.md decisions 1 and 14): only one it created
// for the environment being removed, marked with that environment's UID, and holding nothing else
// of note. An environment never goes into a namespace the cluster or ergomake itself runs in.

// reservedNamespaces never hold an environment.
var reservedNamespaces = map[string]string{
	"default":         "the cluster's default namespace",
	"kube-system":     "the cluster's own namespace",
	"kube-public":     "the cluster's own namespace",
	"kube-node-lease": "the cluster's own namespace",
	"ergomake-system": "the namespace the ergomake operator runs in",
}

// ReservedNamespace says why ns may not hold an environment ("" when it may): the cluster's own
// namespaces (default, kube-*) and ergomake's (operatorNamespace too, when it is not the default
// one).
func ReservedNamespace(ns, operatorNamespace string) string {
	if why, ok := reservedNamespaces[ns]; ok {
		return why
	}
	if operatorNamespace != "" && ns == operatorNamespace {
		return "the namespace the ergomake operator runs in"
	}
	if strings.HasPrefix(ns, "kube-") {
		return "a namespace of the cluster's own (kube-*)"
	}
	return ""
}

// NamespaceMarkedFor says whether ergomake created ns for the environment of that UID.
func NamespaceMarkedFor(ns *corev1.Namespace, uid types.UID) bool {
	return uid != "" && IsOurNamespace(ns) && ns.Labels[v1alpha1.LabelNamespaceEnvUID] == string(uid)
}

// MarkNamespace labels the namespace ergomake created with the UID of the environment it holds.
func (c *Client) MarkNamespace(ctx context.Context, name string, uid types.UID) error {
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"labels": map[string]string{v1alpha1.LabelNamespaceEnvUID: string(uid)}},
	})
	if err != nil {
		return err
	}
	_, err = c.Kube.CoreV1().Namespaces().Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager})
	if err != nil {
		return fmt.Errorf("marking namespace %s as the environment's: %w", name, c.Explain(err))
	}
	return nil
}

// NamespaceOwnedBy returns whether the namespace is marked for the environment of that UID (false
// when it does not exist).
func (c *Client) NamespaceOwnedBy(ctx context.Context, name string, uid types.UID) (bool, error) {
	ns, err := c.Kube.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("namespace %s: %w", name, c.Explain(err))
	}
	return NamespaceMarkedFor(ns, uid), nil
}

// Foreign lists what the namespace holds besides the environment envName's own objects
// (workloads, pods, Services, claims, Secrets, ConfigMaps, other environments), as "Kind/name",
// sorted; what Kubernetes puts in every namespace (the kube-root-ca.crt ConfigMap, service
// account tokens) and objects being deleted do not count. Empty: ergomake may remove it.
func (c *Client) Foreign(ctx context.Context, namespace, envName string) ([]string, error) {
	mine := render.LabelValue(envName)
	var out []string
	add := func(kind string, m metav1.Object) {
		if m.GetDeletionTimestamp() != nil || m.GetLabels()[v1alpha1.LabelEnv] == mine {
			return
		}
		out = append(out, kind+"/"+m.GetName())
	}
	opts := metav1.ListOptions{}
	core := c.Kube.CoreV1()
	apps := c.Kube.AppsV1()
	lists := []func() error{
		func() error {
			l, err := core.Pods(namespace).List(ctx, opts)
			for i := range l.Items {
				add("Pod", &l.Items[i])
			}
			return err
		},
		func() error {
			l, err := core.Services(namespace).List(ctx, opts)
			for i := range l.Items {
				add("Service", &l.Items[i])
			}
			return err
		},
		func() error {
			l, err := core.PersistentVolumeClaims(namespace).List(ctx, opts)
			for i := range l.Items {
				add("PersistentVolumeClaim", &l.Items[i])
			}
			return err
		},
		func() error {
			l, err := core.Secrets(namespace).List(ctx, opts)
			for i := range l.Items {
				if l.Items[i].Type != corev1.SecretTypeServiceAccountToken {
					add("Secret", &l.Items[i])
				}
			}
			return err
		},
		func() error {
			l, err := core.ConfigMaps(namespace).List(ctx, opts)
			for i := range l.Items {
				if l.Items[i].Name != "kube-root-ca.crt" {
					add("ConfigMap", &l.Items[i])
				}
			}
			return err
		},
		func() error {
			l, err := apps.Deployments(namespace).List(ctx, opts)
			for i := range l.Items {
				add("Deployment", &l.Items[i])
			}
			return err
		},
		func() error {
			l, err := apps.StatefulSets(namespace).List(ctx, opts)
			for i := range l.Items {
				add("StatefulSet", &l.Items[i])
			}
			return err
		},
		func() error {
			l, err := c.Kube.BatchV1().Jobs(namespace).List(ctx, opts)
			for i := range l.Items {
				add("Job", &l.Items[i])
			}
			return err
		},
		func() error {
			envs, err := c.ListEnvs(ctx, namespace)
			for i := range envs {
				if envs[i].Name != envName && envs[i].DeletionTimestamp == nil {
					out = append(out, v1alpha1.Kind+"/"+envs[i].Name)
				}
			}
			return err
		},
	}
	for _, list := range lists {
		if err := list(); err != nil {
			if apierrors.IsForbidden(err) {
				// What we may not even list, we cannot vouch for: keep the namespace.
				return []string{fmt.Sprintf("objects you may not list (%s)", statusMessage(err))}, nil
			}
			return nil, fmt.Errorf("listing namespace %s: %w", namespace, c.Explain(err))
		}
	}
	sort.Strings(out)
	return out, nil
}

// DescribeForeign is what Foreign found, for a message: the first few, and how many more.
func DescribeForeign(foreign []string) string {
	const show = 3
	if len(foreign) <= show {
		return strings.Join(foreign, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(foreign[:show], ", "), len(foreign)-show)
}
