package kube

import (
	"context"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/ergomake/ergomake/internal/render"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

func TestReservedNamespace(t *testing.T) {
	for _, ns := range []string{"ergomake-system", "kube-system", "kube-public", "kube-node-lease", "default", "kube-anything", "ops"} {
		if ReservedNamespace(ns, "ops") == "" {
			t.Errorf("%s is not reserved", ns)
		}
	}
	for _, ns := range []string{"ergomake-shop", "team", "kubernetes-dashboard-test", "systems"} {
		if why := ReservedNamespace(ns, "ergomake-system"); why != "" {
			t.Errorf("%s is reserved: %s", ns, why)
		}
	}
}

// fakeNamespaceClient is a Client over fake clientsets: the decisions of which namespace may be
// removed are ours, what the API server stores is not in question here.
func fakeNamespaceClient(t *testing.T, objs []runtime.Object, envs ...*v1alpha1.ErgomakeEnv) *Client {
	t.Helper()
	var dyn []runtime.Object
	for _, e := range envs {
		e.TypeMeta = metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: v1alpha1.Kind}
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(e)
		if err != nil {
			t.Fatal(err)
		}
		dyn = append(dyn, &unstructured.Unstructured{Object: u})
	}
	return &Client{ClusterName: "local", Kube: fake.NewClientset(objs...),
		Dynamic: dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
			map[schema.GroupVersionResource]string{v1alpha1.GroupVersionResource: "ErgomakeEnvList"}, dyn...)}
}

func ourNamespace(name, uid string) *corev1.Namespace {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
		v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue}}}
	if uid != "" {
		ns.Labels[v1alpha1.LabelNamespaceEnvUID] = uid
	}
	return ns
}

// TestNamespaceRemovable: ergomake removes a namespace only when it created it for this very
// environment and the namespace holds nothing else of note.
func TestNamespaceRemovable(t *testing.T) {
	meta := func(ns, name string, labels map[string]string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels}
	}
	// The environment's own objects carry its label value (a long name is shortened).
	envName := strings.Repeat("e", 63)
	ours := map[string]string{v1alpha1.LabelEnv: render.LabelValue(envName)}
	defaults := []runtime.Object{
		&corev1.ConfigMap{ObjectMeta: meta("n", "kube-root-ca.crt", nil)},
		&corev1.Secret{ObjectMeta: meta("n", "default-token", nil), Type: corev1.SecretTypeServiceAccountToken},
		&corev1.Pod{ObjectMeta: meta("n", "web-1", ours)},
		&corev1.Secret{ObjectMeta: meta("n", "web-env", ours)},
	}
	tests := []struct {
		name        string
		ns          *corev1.Namespace
		uid         string
		createdHere bool
		extra       []runtime.Object
		otherEnv    bool
		want        string // "" removable, else a substring of why it is kept
	}{
		{name: "marked for this environment", ns: ourNamespace("n", "u1"), uid: "u1"},
		{name: "marked for another environment", ns: ourNamespace("n", "u0"), uid: "u1", want: "not created by ergomake for this environment"},
		{name: "marked, environment never created, created here", ns: ourNamespace("n", ""), createdHere: true},
		{name: "marked for another, created here", ns: ourNamespace("n", "u0"), createdHere: true, want: "not created by ergomake"},
		{name: "unmarked, not created here", ns: ourNamespace("n", ""), uid: "u1", want: "not created by ergomake"},
		{name: "not ergomake's", ns: &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "n",
			Labels: map[string]string{v1alpha1.LabelNamespaceEnvUID: "u1"}}}, uid: "u1", createdHere: true, want: "not created by ergomake"},
		{name: "holds a foreign deployment", ns: ourNamespace("n", "u1"), uid: "u1",
			extra: []runtime.Object{&appsv1.Deployment{ObjectMeta: meta("n", "db", nil)}}, want: "holds more than the environment (Deployment/db)"},
		{name: "holds a foreign secret and configmap", ns: ourNamespace("n", "u1"), uid: "u1",
			extra: []runtime.Object{&corev1.Secret{ObjectMeta: meta("n", "token", nil)}, &corev1.ConfigMap{ObjectMeta: meta("n", "cfg", nil)},
				&corev1.Service{ObjectMeta: meta("n", "a", nil)}, &corev1.PersistentVolumeClaim{ObjectMeta: meta("n", "b", nil)}},
			want: "(ConfigMap/cfg, PersistentVolumeClaim/b, Secret/token and 1 more)"},
		{name: "holds another environment", ns: ourNamespace("n", "u1"), uid: "u1", otherEnv: true, want: "ErgomakeEnv/other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs := append([]runtime.Object{tt.ns}, defaults...)
			objs = append(objs, tt.extra...)
			envs := []*v1alpha1.ErgomakeEnv{{ObjectMeta: metav1.ObjectMeta{Namespace: "n", Name: envName}}}
			if tt.otherEnv {
				envs = append(envs, &v1alpha1.ErgomakeEnv{ObjectMeta: metav1.ObjectMeta{Namespace: "n", Name: "other"}})
			}
			c := fakeNamespaceClient(t, objs, envs...)
			why, err := c.namespaceRemovable(context.Background(), "n", envName, typesUID(tt.uid), tt.createdHere)
			if err != nil {
				t.Fatal(err)
			}
			if (tt.want == "") != (why == "") || !strings.Contains(why, tt.want) {
				t.Errorf("namespaceRemovable = %q, want %q", why, tt.want)
			}
		})
	}
}

func typesUID(s string) types.UID { return types.UID(s) }

// TestServicePodsLabelValue: a compose name that is no label value (`worker_`, over 63
// characters) selects the pods the operator labelled with render.LabelValue of it; the label
// value itself selects the same pods.
func TestServicePodsLabelValue(t *testing.T) {
	long := strings.Repeat("w", 70)
	pod := func(name, service string) runtime.Object {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "n", Name: name, Labels: map[string]string{
			v1alpha1.LabelEnv: "shop", v1alpha1.LabelService: render.LabelValue(service)}}}
	}
	c := fakeNamespaceClient(t, []runtime.Object{pod("a", "worker_"), pod("b", long), pod("c", "worker")})
	for _, tt := range []struct{ service, want string }{
		{"worker_", "a"}, {render.LabelValue("worker_"), "a"}, {long, "b"}, {"worker", "c"},
	} {
		pods, err := c.ServicePods(context.Background(), "n", "shop", tt.service)
		if err != nil {
			t.Fatal(err)
		}
		if len(pods) != 1 || pods[0].Name != tt.want {
			t.Errorf("ServicePods(%q) = %d pods, want only %s", tt.service, len(pods), tt.want)
		}
	}
}
