package install

import (
	"fmt"
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
		"ServiceAccount/ergomake-dns,ClusterRole/ergomake-dns,ClusterRoleBinding/ergomake-dns,Deployment/ergomake-dns,PodDisruptionBudget/ergomake-dns," +
		"ConfigMap/ergomake-registry,PersistentVolumeClaim/ergomake-registry,Service/ergomake-registry,Deployment/ergomake-registry," +
		"DaemonSet/ergomake-registry-relay," +
		"ConfigMap/ergomake-builder,PersistentVolumeClaim/ergomake-builder,Deployment/ergomake-builder," +
		"ConfigMap/ergomake-settings,Role/ergomake-settings-reader,RoleBinding/ergomake-settings-reader"
	if got := strings.Join(kinds, ","); got != want {
		t.Fatalf("objects %s\nwant    %s", got, want)
	}
	for _, o := range objs {
		switch o.GetKind() {
		case "ServiceAccount", "Service", "Deployment", "ConfigMap", "PersistentVolumeClaim", "DaemonSet", "Role", "PodDisruptionBudget":
			if o.GetNamespace() != "ops" {
				t.Errorf("%s namespace %q", o.GetKind(), o.GetNamespace())
			}
		case "ClusterRoleBinding", "RoleBinding":
			if o.GetKind() == "RoleBinding" && o.GetNamespace() != "ops" {
				t.Errorf("RoleBinding namespace %q", o.GetNamespace())
			}
			subjects, _, _ := unstructured.NestedSlice(o.Object, "subjects")
			if s := subjects[0].(map[string]any); s["kind"] == "ServiceAccount" && s["namespace"] != "ops" {
				ns := s["namespace"]
				t.Errorf("binding subject namespace %v", ns)
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
		{"root", "", `pod security "root": want "privileged", "baseline" or "restricted"`},
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

// The environment DNS is a Deployment of its own (the operator's image, `dns` subcommand, two
// replicas, a readiness probe) under a PodDisruptionBudget; the ergomake-dns Service sends queries
// to it, and the operator no longer serves DNS.
func TestObjectsDNS(t *testing.T) {
	objs, err := Objects(Options{Image: "ergomake.test/ergomake-operator:dev", Namespace: "ops", Revision: "abc123"})
	if err != nil {
		t.Fatal(err)
	}
	d := find(t, objs, "Deployment", DNSName)
	if n, _, _ := unstructured.NestedFieldNoCopy(d.Object, "spec", "replicas"); fmt.Sprint(n) != "2" {
		t.Errorf("replicas %v, want 2", n)
	}
	containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	c := containers[0].(map[string]any)
	args, _ := c["args"].([]any)
	if c["image"] != "ergomake.test/ergomake-operator:dev" || len(args) == 0 || args[0] != "dns" {
		t.Errorf("container image %v args %v", c["image"], args)
	}
	if _, ok := c["readinessProbe"]; !ok {
		t.Error("no readiness probe")
	}
	if lim, _, _ := unstructured.NestedString(c, "resources", "limits", "memory"); lim == "" {
		t.Error("no memory limit")
	}
	if rev, _, _ := unstructured.NestedString(d.Object, "spec", "template", "metadata", "annotations", AnnotationRevision); rev != "abc123" {
		t.Errorf("revision %q", rev)
	}
	if sa, _, _ := unstructured.NestedString(d.Object, "spec", "template", "spec", "serviceAccountName"); sa != DNSName {
		t.Errorf("service account %q", sa)
	}
	pdb := find(t, objs, "PodDisruptionBudget", DNSName)
	if m, _, _ := unstructured.NestedFieldNoCopy(pdb.Object, "spec", "minAvailable"); fmt.Sprint(m) != "1" {
		t.Errorf("PDB minAvailable %v", m)
	}
	podLabels, _, _ := unstructured.NestedStringMap(d.Object, "spec", "template", "metadata", "labels")
	for _, sel := range []*unstructured.Unstructured{find(t, objs, "Service", "ergomake-dns"), pdb} {
		m, _, _ := unstructured.NestedStringMap(sel.Object, "spec", "selector")
		if len(m) == 0 {
			m, _, _ = unstructured.NestedStringMap(sel.Object, "spec", "selector", "matchLabels")
		}
		for k, v := range m {
			if podLabels[k] != v || len(m) == 0 {
				t.Errorf("%s selector %v does not select the DNS pods %v", sel.GetKind(), m, podLabels)
			}
		}
	}
	if find(t, objs, "ClusterRole", DNSName).GetLabels()["app.kubernetes.io/name"] != DNSName {
		t.Error("the DNS ClusterRole is labelled as the operator's")
	}
	op := find(t, objs, "Deployment", Name)
	containers, _, _ = unstructured.NestedSlice(op.Object, "spec", "template", "spec", "containers")
	args, _ = containers[0].(map[string]any)["args"].([]any)
	off := false
	for _, a := range args {
		off = off || a == "--dns-addr="
	}
	if !off {
		t.Errorf("the operator still serves DNS: args %v", args)
	}
}
