package install

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestObjects(t *testing.T) {
	objs, err := Objects(Options{Image: "ergomake.test/ergomake-operator:dev", Namespace: "ops", Revision: "abc123"})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, o := range objs {
		kinds = append(kinds, o.GetKind()+"/"+o.GetName())
	}
	want := "CustomResourceDefinition/ergomakeenvs.ergomake.dev,ClusterRole/ergomake-operator,Namespace/ops,Role/ergomake-operator," +
		"ServiceAccount/ergomake-operator,ClusterRoleBinding/ergomake-operator,RoleBinding/ergomake-operator,Service/ergomake-dns,Deployment/ergomake-operator," +
		"ConfigMap/ergomake-registry,PersistentVolumeClaim/ergomake-registry,Service/ergomake-registry,Deployment/ergomake-registry," +
		"DaemonSet/ergomake-registry-relay," +
		"ConfigMap/ergomake-builder,PersistentVolumeClaim/ergomake-builder,Deployment/ergomake-builder," +
		"ConfigMap/ergomake-settings,Role/ergomake-settings-reader,RoleBinding/ergomake-settings-reader"
	if got := strings.Join(kinds, ","); got != want {
		t.Fatalf("objects %s\nwant    %s", got, want)
	}
	for _, o := range objs {
		switch o.GetKind() {
		case "ServiceAccount", "Service", "Deployment", "ConfigMap", "PersistentVolumeClaim", "DaemonSet", "Role":
			if o.GetNamespace() != "ops" {
				t.Errorf("%s namespace %q", o.GetKind(), o.GetNamespace())
			}
		case "ClusterRoleBinding", "RoleBinding":
			if o.GetKind() == "RoleBinding" && o.GetNamespace() != "ops" {
				t.Errorf("RoleBinding namespace %q", o.GetNamespace())
			}
			subjects, _, _ := unstructured.NestedSlice(o.Object, "subjects")
			s := subjects[0].(map[string]any)
			if ns := s["namespace"]; (s["kind"] == "ServiceAccount") != (ns == "ops") {
				t.Errorf("%s %s subject %v", o.GetKind(), o.GetName(), s) // a ServiceAccount's namespace, none for a group
			}
		}
		if o.GetKind() == "Deployment" && o.GetName() == Name {
			containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
			c := containers[0].(map[string]any)
			if c["image"] != "ergomake.test/ergomake-operator:dev" || c["imagePullPolicy"] != "IfNotPresent" {
				t.Errorf("container %v", c)
			}
			rev, _, _ := unstructured.NestedString(o.Object, "spec", "template", "metadata", "annotations", AnnotationRevision)
			if rev != "abc123" {
				t.Errorf("revision %q", rev)
			}
		}
	}
}

func TestObjectsDefaults(t *testing.T) {
	objs, err := Objects(Options{})
	if err != nil {
		t.Fatal(err)
	}
	d := find(t, objs, "Deployment", Name)
	containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	if img := containers[0].(map[string]any)["image"]; !strings.HasPrefix(img.(string), ImageRepository+":") {
		t.Errorf("default image %v", img)
	}
	if d.GetNamespace() != DefaultNamespace {
		t.Errorf("namespace %q", d.GetNamespace())
	}
	if _, err := Objects(Options{Namespace: "Not_A_Name"}); err == nil || !strings.Contains(err.Error(), "Not_A_Name") {
		t.Errorf("bad namespace: %v", err)
	}
}

func TestOptionsPodSecurity(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"", "baseline", ""},
		{"restricted", "restricted", ""},
		{"privileged", "privileged", ""},
		{"root", "", `pod security "root": want baseline, restricted or privileged`},
	} {
		o := Options{PodSecurity: tc.in}
		err := o.defaults()
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%q: error %v, want %s", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || o.PodSecurity != tc.want {
			t.Errorf("%q: %q, %v; want %q", tc.in, o.PodSecurity, err, tc.want)
		}
	}
}
