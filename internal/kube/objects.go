package kube

import (
	"context"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// OwnerRef is the owner reference objects the CLI creates for an environment carry, so the garbage
// collector removes them with it.
func OwnerRef(env *v1alpha1.ErgomakeEnv) metav1.OwnerReference {
	return metav1.OwnerReference{
		APIVersion: v1alpha1.GroupVersion.String(),
		Kind:       v1alpha1.Kind,
		Name:       env.Name,
		UID:        env.UID,
	}
}

// ApplyData server-side applies the Secrets and ConfigMaps an environment references, each with an
// owner reference to owner when it is not nil (owner must be the applied environment, with its
// UID), and deletes the ones of a previous apply that the environment no longer references.
func (c *Client) ApplyData(ctx context.Context, namespace, envName string, owner *v1alpha1.ErgomakeEnv,
	secrets []*corev1.Secret, configMaps []*corev1.ConfigMap) error {
	keepS := map[string]bool{}
	for _, s := range secrets {
		obj := s.DeepCopy()
		obj.APIVersion, obj.Kind = "v1", "Secret"
		prepare(&obj.ObjectMeta, namespace, envName, owner)
		data, err := json.Marshal(obj)
		if err != nil {
			return err
		}
		if _, err := c.Kube.CoreV1().Secrets(namespace).Patch(ctx, obj.Name, types.ApplyPatchType, data,
			metav1.PatchOptions{FieldManager: FieldManager, Force: ptr(true)}); err != nil {
			return fmt.Errorf("applying Secret %s/%s: %w", namespace, obj.Name, c.Explain(err))
		}
		keepS[obj.Name] = true
	}
	keepC := map[string]bool{}
	for _, cm := range configMaps {
		obj := cm.DeepCopy()
		obj.APIVersion, obj.Kind = "v1", "ConfigMap"
		prepare(&obj.ObjectMeta, namespace, envName, owner)
		data, err := json.Marshal(obj)
		if err != nil {
			return err
		}
		if _, err := c.Kube.CoreV1().ConfigMaps(namespace).Patch(ctx, obj.Name, types.ApplyPatchType, data,
			metav1.PatchOptions{FieldManager: FieldManager, Force: ptr(true)}); err != nil {
			return fmt.Errorf("applying ConfigMap %s/%s: %w", namespace, obj.Name, c.Explain(err))
		}
		keepC[obj.Name] = true
	}

	sel := metav1.ListOptions{LabelSelector: v1alpha1.LabelEnv + "=" + envName}
	sl, err := c.Kube.CoreV1().Secrets(namespace).List(ctx, sel)
	if err != nil {
		return fmt.Errorf("listing Secrets of %s/%s: %w", namespace, envName, c.Explain(err))
	}
	for _, s := range sl.Items {
		if !keepS[s.Name] && managedByUs(s.ManagedFields) {
			if err := c.Kube.CoreV1().Secrets(namespace).Delete(ctx, s.Name, metav1.DeleteOptions{}); err != nil {
				return fmt.Errorf("deleting stale Secret %s/%s: %w", namespace, s.Name, c.Explain(err))
			}
		}
	}
	cl, err := c.Kube.CoreV1().ConfigMaps(namespace).List(ctx, sel)
	if err != nil {
		return fmt.Errorf("listing ConfigMaps of %s/%s: %w", namespace, envName, c.Explain(err))
	}
	for _, cm := range cl.Items {
		if !keepC[cm.Name] && managedByUs(cm.ManagedFields) {
			if err := c.Kube.CoreV1().ConfigMaps(namespace).Delete(ctx, cm.Name, metav1.DeleteOptions{}); err != nil {
				return fmt.Errorf("deleting stale ConfigMap %s/%s: %w", namespace, cm.Name, c.Explain(err))
			}
		}
	}
	return nil
}

func prepare(m *metav1.ObjectMeta, namespace, envName string, owner *v1alpha1.ErgomakeEnv) {
	m.Namespace = namespace
	m.ResourceVersion = ""
	m.UID = ""
	m.ManagedFields = nil
	if m.Labels == nil {
		m.Labels = map[string]string{}
	}
	m.Labels[v1alpha1.LabelEnv] = envName
	m.Labels[v1alpha1.LabelManagedBy] = v1alpha1.ManagedByValue
	if owner != nil && owner.UID != "" {
		m.OwnerReferences = []metav1.OwnerReference{OwnerRef(owner)}
	}
}

// managedByUs: only objects the CLI applied are pruned, never ones someone else made with our label.
func managedByUs(mf []metav1.ManagedFieldsEntry) bool {
	for _, f := range mf {
		if f.Manager == FieldManager {
			return true
		}
	}
	return false
}
