package install

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/ergomake/ergomake/internal/server"
)

func TestServerObjects(t *testing.T) {
	objs, err := ServerObjects(Options{Image: "op:dev", Namespace: "ops", Revision: "r1"},
		ServerOptions{Expose: ExposeNodePort, TLSSecret: "my-cert"})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, o := range objs {
		kinds = append(kinds, o.GetKind()+"/"+o.GetName())
		if o.GetKind() != "ClusterRole" && o.GetKind() != "ClusterRoleBinding" && o.GetNamespace() != "ops" {
			t.Errorf("%s %s in namespace %q", o.GetKind(), o.GetName(), o.GetNamespace())
		}
	}
	want := "ServiceAccount/ergomake-server,ClusterRole/ergomake-server,ClusterRole/ergomake-server-env,ClusterRoleBinding/ergomake-server," +
		"Role/ergomake-server,RoleBinding/ergomake-server,Service/ergomake-server,Deployment/ergomake-server"
	if got := strings.Join(kinds, ","); got != want {
		t.Fatalf("objects %s\nwant    %s", got, want)
	}
	for _, kind := range []string{"ClusterRoleBinding", "RoleBinding"} {
		b := find(t, objs, kind, server.ServiceName)
		subjects, _, _ := unstructured.NestedSlice(b.Object, "subjects")
		if ns := subjects[0].(map[string]any)["namespace"]; ns != "ops" {
			t.Errorf("%s subject namespace %v", kind, ns)
		}
	}
	if typ, _, _ := unstructured.NestedString(find(t, objs, "Service", server.ServiceName).Object, "spec", "type"); typ != "NodePort" {
		t.Errorf("Service type %q", typ)
	}
	d := find(t, objs, "Deployment", server.ServiceName)
	containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	c := containers[0].(map[string]any)
	if c["image"] != "op:dev" || c["args"].([]any)[0] != server.Command {
		t.Errorf("container %v", c)
	}
	if n, _, _ := unstructured.NestedFieldNoCopy(d.Object, "spec", "replicas"); fmt.Sprint(n) != "2" {
		t.Errorf("replicas %v, want 2", n)
	}
	volumes, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "volumes")
	if s := volumes[0].(map[string]any)["secret"].(map[string]any)["secretName"]; s != "my-cert" {
		t.Errorf("TLS volume from Secret %v, want my-cert", s)
	}
	if rev, _, _ := unstructured.NestedString(d.Object, "spec", "template", "metadata", "annotations", AnnotationRevision); rev != "r1" {
		t.Errorf("revision %q", rev)
	}
}

func TestServerObjectsDefaultsAndErrors(t *testing.T) {
	objs, err := ServerObjects(Options{Image: "op:dev"}, ServerOptions{Image: "srv:1"})
	if err != nil {
		t.Fatal(err)
	}
	if typ, _, _ := unstructured.NestedString(find(t, objs, "Service", server.ServiceName).Object, "spec", "type"); typ != "ClusterIP" {
		t.Errorf("default Service type %q", typ)
	}
	d := find(t, objs, "Deployment", server.ServiceName)
	containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	if img := containers[0].(map[string]any)["image"]; img != "srv:1" {
		t.Errorf("image %v", img)
	}
	volumes, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "volumes")
	if s := volumes[0].(map[string]any)["secret"].(map[string]any)["secretName"]; s != server.TLSSecretName {
		t.Errorf("TLS volume from Secret %v", s)
	}
	if _, err := ServerObjects(Options{}, ServerOptions{Expose: "ingress"}); err == nil || !strings.Contains(err.Error(), "nodeport") {
		t.Errorf("bad exposure: %v", err)
	}
}

func TestNodePortURLs(t *testing.T) {
	node := func(addrs ...corev1.NodeAddress) corev1.Node {
		return corev1.Node{Status: corev1.NodeStatus{Addresses: addrs}}
	}
	got := NodePortURLs([]corev1.Node{
		node(corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "10.0.0.1"}),
		node(corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "10.0.0.2"}, corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: "203.0.113.9"}),
		node(corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "fd00::3"}),
		node(corev1.NodeAddress{Type: corev1.NodeHostName, Address: "n4"}),
	}, 30443)
	want := "https://10.0.0.1:30443 https://203.0.113.9:30443 https://[fd00::3]:30443"
	if strings.Join(got, " ") != want {
		t.Errorf("NodePortURLs = %v, want %s", got, want)
	}
}
