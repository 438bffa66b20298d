package install

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/ergomake/ergomake/internal/build"
	"github.com/ergomake/ergomake/internal/clustersettings"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// SettingsReaderName names the Role and RoleBinding that let every authenticated user get the
// settings ConfigMap (and nothing else), so the CLI of a user without rights in the install
// namespace still learns where to build and push.
const SettingsReaderName = "ergomake-settings-reader"

// Settings are the install-time choices Install records in the cluster (clustersettings).
func Settings(opts Options) (clustersettings.Settings, error) {
	if err := opts.defaults(); err != nil {
		return clustersettings.Settings{}, err
	}
	s := clustersettings.Settings{
		Namespace:       opts.Namespace,
		RegistryPush:    registryUpstream(opts.Namespace),
		RegistryPull:    RelayAddress(opts.RelayPort),
		BuilderMode:     string(opts.BuilderMode),
		PodSecurity:     opts.PodSecurity,
		OperatorVersion: build.Get().Version,
	}
	if opts.BuilderMode != BuilderNone {
		s.BuilderSelector = BuilderSelector
		s.BuilderPort = BuilderPort
	}
	return s, nil
}

// settingsObjects are the settings ConfigMap and the Role and RoleBinding granting group
// system:authenticated get on it.
func settingsObjects(opts Options) ([]*unstructured.Unstructured, error) {
	s, err := Settings(opts)
	if err != nil {
		return nil, err
	}
	cm, err := runtime.DefaultUnstructuredConverter.ToUnstructured(s.ConfigMap())
	if err != nil {
		return nil, err
	}
	delete(cm["metadata"].(map[string]any), "creationTimestamp")
	labels := map[string]any{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue, "app.kubernetes.io/name": clustersettings.Name}
	meta := map[string]any{"name": SettingsReaderName, "namespace": opts.Namespace, "labels": labels}
	role := map[string]any{
		"apiVersion": "rbac.authorization.k8s.io/v1",
		"kind":       "Role",
		"metadata":   meta,
		"rules": []any{map[string]any{
			"apiGroups":     []any{""},
			"resources":     []any{"configmaps"},
			"resourceNames": []any{clustersettings.Name},
			"verbs":         []any{"get"},
		}},
	}
	binding := map[string]any{
		"apiVersion": "rbac.authorization.k8s.io/v1",
		"kind":       "RoleBinding",
		"metadata":   runtime.DeepCopyJSONValue(meta),
		"roleRef":    map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": SettingsReaderName},
		"subjects": []any{map[string]any{
			"apiGroup": "rbac.authorization.k8s.io",
			"kind":     "Group",
			"name":     "system:authenticated",
		}},
	}
	return []*unstructured.Unstructured{{Object: cm}, {Object: role}, {Object: binding}}, nil
}
