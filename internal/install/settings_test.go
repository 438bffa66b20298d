package install

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/ergomake/ergomake/internal/build"
	"github.com/ergomake/ergomake/internal/clustersettings"
)

func TestSettingsObjects(t *testing.T) {
	objs, err := Objects(Options{Namespace: "ops", RelayPort: 5200, BuilderMode: BuilderRootless, PodSecurity: "restricted"})
	if err != nil {
		t.Fatal(err)
	}
	var cm corev1.ConfigMap
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(find(t, objs, "ConfigMap", clustersettings.Name).Object, &cm); err != nil {
		t.Fatal(err)
	}
	got, err := clustersettings.FromConfigMap(&cm)
	if err != nil {
		t.Fatal(err)
	}
	want := clustersettings.Settings{Namespace: "ops", RegistryPush: "ergomake-registry.ops.svc:5000", RegistryPull: "127.0.0.1:5200",
		BuilderSelector: "app.kubernetes.io/name=ergomake-builder", BuilderPort: 1234, BuilderMode: "rootless",
		PodSecurity: "restricted", OperatorVersion: build.Get().Version}
	if got != want {
		t.Errorf("settings %+v\nwant     %+v", got, want)
	}

	role := find(t, objs, "Role", SettingsReaderName)
	if role.GetNamespace() != "ops" {
		t.Errorf("role namespace %q", role.GetNamespace())
	}
	if rules := fmt.Sprint(role.Object["rules"]); rules != "[map[apiGroups:[] resourceNames:[ergomake-settings] resources:[configmaps] verbs:[get]]]" {
		t.Errorf("rules %s", rules)
	}
	b := find(t, objs, "RoleBinding", SettingsReaderName)
	if s := fmt.Sprint(b.Object["subjects"], b.Object["roleRef"]); s != "[map[apiGroup:rbac.authorization.k8s.io kind:Group name:system:authenticated]] map[apiGroup:rbac.authorization.k8s.io kind:Role name:ergomake-settings-reader]" {
		t.Errorf("binding %s", s)
	}
	if b.GetNamespace() != "ops" {
		t.Errorf("binding namespace %q", b.GetNamespace())
	}
}

func TestSettingsDefaultsAndNoBuilder(t *testing.T) {
	s, err := Settings(Options{BuilderMode: BuilderNone})
	if err != nil {
		t.Fatal(err)
	}
	if s.Namespace != DefaultNamespace || s.PodSecurity != "baseline" || s.BuilderMode != "none" || s.BuilderSelector != "" || s.BuilderPort != 0 ||
		s.RegistryPush != "ergomake-registry.ergomake-system.svc:5000" || s.RegistryPull != "127.0.0.1:5100" {
		t.Errorf("settings %+v", s)
	}
	s, err = Settings(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s.BuilderMode != "privileged" || s.BuilderSelector != BuilderSelector || s.BuilderPort != BuilderPort {
		t.Errorf("default settings %+v", s)
	}
}
