package install

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/ergomake/ergomake/internal/server"
	"github.com/ergomake/ergomake/internal/testutil/freeport"
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
	// outside the default namespace, the cluster-scoped objects carry the namespace in their name
	want := "ServiceAccount/ergomake-server,ClusterRole/ergomake-server-ops,ClusterRole/ergomake-server-env-ops,ClusterRoleBinding/ergomake-server-ops," +
		"Role/ergomake-server,RoleBinding/ergomake-server,Service/ergomake-server,Deployment/ergomake-server"
	if got := strings.Join(kinds, ","); got != want {
		t.Fatalf("objects %s\nwant    %s", got, want)
	}
	if ref, _, _ := unstructured.NestedString(find(t, objs, "ClusterRoleBinding", "ergomake-server-ops").Object, "roleRef", "name"); ref != "ergomake-server-ops" {
		t.Errorf("ClusterRoleBinding binds %q, want ergomake-server-ops", ref)
	}
	if got := bindable(t, find(t, objs, "ClusterRole", "ergomake-server-ops")); got != "ergomake-server-env-ops" {
		t.Errorf("the server may bind %q, want ergomake-server-env-ops", got)
	}
	for kind, name := range map[string]string{"ClusterRoleBinding": "ergomake-server-ops", "RoleBinding": server.ServiceName} {
		b := find(t, objs, kind, name)
		subjects, _, _ := unstructured.NestedSlice(b.Object, "subjects")
		if ns := subjects[0].(map[string]any)["namespace"]; ns != "ops" {
			t.Errorf("%s subject namespace %v", kind, ns)
		}
	}
	if typ, _, _ := unstructured.NestedString(find(t, objs, "Service", server.ServiceName).Object, "spec", "type"); typ != "NodePort" {
		t.Errorf("Service type %q", typ)
	}
	if aff, _, _ := unstructured.NestedString(find(t, objs, "Service", server.ServiceName).Object, "spec", "sessionAffinity"); aff != "ClientIP" {
		t.Errorf("Service sessionAffinity %q, want ClientIP (a client's TLS sessions resume on one replica)", aff)
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

// bindable is the ClusterRole that role lets its holder bind (its rule with verb bind).
func bindable(t *testing.T, role *unstructured.Unstructured) string {
	t.Helper()
	rules, _, _ := unstructured.NestedSlice(role.Object, "rules")
	for _, r := range rules {
		m := r.(map[string]any)
		if fmt.Sprint(m["verbs"]) == "[bind]" {
			return fmt.Sprint(m["resourceNames"].([]any)...)
		}
	}
	t.Fatalf("no bind rule in %s", role.GetName())
	return ""
}

// TestServerObjectsDefaultNamespace: in the default namespace the cluster-scoped objects keep
// the names of config/server/rbac.yaml, which the server's Tenancy binds by default.
func TestServerObjectsDefaultNamespace(t *testing.T) {
	objs, err := ServerObjects(Options{Image: "op:dev"}, ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	find(t, objs, "ClusterRole", server.ServiceName)
	find(t, objs, "ClusterRole", server.EnvRoleName)
	crb := find(t, objs, "ClusterRoleBinding", server.ServiceName)
	if ref, _, _ := unstructured.NestedString(crb.Object, "roleRef", "name"); ref != server.ServiceName {
		t.Errorf("ClusterRoleBinding binds %q", ref)
	}
	if got := bindable(t, find(t, objs, "ClusterRole", server.ServiceName)); got != server.EnvRoleName {
		t.Errorf("the server may bind %q, want %s", got, server.EnvRoleName)
	}
}

// TestServedBy: uninstalling the server of one namespace deletes only its own users' namespaces
// (their RoleBinding binds its ServiceAccount), not those of a server installed in another.
func TestServedBy(t *testing.T) {
	scheme, err := newScheme() // install's own: a type it reads must be in it
	if err != nil {
		t.Fatal(err)
	}
	rb := func(ns, serverNS string) *rbacv1.RoleBinding {
		return &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: server.ServiceName, Namespace: ns},
			RoleRef:  rbacv1.RoleRef{Kind: "ClusterRole", Name: server.ClusterScopedName(server.EnvRoleName, serverNS)},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: server.ServiceName, Namespace: serverNS}}}
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(rb("u-default", DefaultNamespace), rb("u-bench", "bench-srv")).Build()
	for _, tc := range []struct {
		ns, serverNS string
		want         bool
	}{
		{"u-default", DefaultNamespace, true},
		{"u-default", "bench-srv", false},
		{"u-bench", "bench-srv", true},
		{"u-bench", DefaultNamespace, false},
		{"u-none", DefaultNamespace, true},
		{"u-none", "bench-srv", false},
	} {
		got, err := servedBy(context.Background(), c, tc.ns, tc.serverNS)
		if err != nil || got != tc.want {
			t.Errorf("servedBy(%s, %s) = %v, %v; want %v", tc.ns, tc.serverNS, got, err, tc.want)
		}
	}
}

func TestAwaitReachable(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	var out bytes.Buffer
	awaitReachable(context.Background(), Options{Out: &out}, []string{srv.URL}, 10*time.Second)
	if out.Len() != 0 {
		t.Errorf("a server that answers: said %q", out.String())
	}

	closed := fmt.Sprintf("https://127.0.0.1:%d", freeport.Port(t))
	out.Reset()
	start := time.Now()
	awaitReachable(context.Background(), Options{Out: &out}, []string{closed}, 2*time.Second)
	if got := out.String(); !strings.Contains(got, "server: waiting for "+closed) || !strings.Contains(got, "warning: the server did not answer at "+closed) {
		t.Errorf("nothing answers: said %q", got)
	}
	if time.Since(start) > time.Minute {
		t.Errorf("waited %s past its 2s limit", time.Since(start))
	}
}
