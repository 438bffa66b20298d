package cli

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"

	"github.com/ergomake/ergomake/internal/kube"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// TestFindEnv checks which environment down/ps/logs/forward pick (a decision of ours, so a fake
// dynamic client stands in for the cluster).
func TestFindEnv(t *testing.T) {
	env := func(ns, name, project string) runtime.Object {
		e := &v1alpha1.ErgomakeEnv{
			TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: v1alpha1.Kind},
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec:       v1alpha1.EnvSpec{Project: project},
		}
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(e)
		if err != nil {
			t.Fatal(err)
		}
		return &unstructured.Unstructured{Object: u}
	}
	objects := []runtime.Object{
		env("ergomake-shop", "shop", "shop"),
		env("team", "shop", "shop"),
		env("a", "blog", "blog"),
		env("b", "blog", "blog"),
		env("ergomake-wiki", "wiki", "wiki"),
	}
	scheme := runtime.NewScheme()
	client := &kube.Client{ClusterName: "local", Dynamic: dynamicfake.NewSimpleDynamicClientWithCustomListKinds(scheme,
		map[schema.GroupVersionResource]string{v1alpha1.GroupVersionResource: "ErgomakeEnvList"}, objects...)}

	tests := []struct {
		project, ns string
		want        string // namespace/name, or an error substring
	}{
		{"wiki", "", "ergomake-wiki/wiki"},
		{"shop", "", "ergomake-shop/shop"}, // the default namespace wins
		{"shop", "team", "team/shop"},
		{"blog", "", "several namespaces (a, b): choose one with -n"},
		{"blog", "a", "a/blog"},
		{"nope", "", `no environment of project "nope" on cluster "local"`},
		{"wiki", "team", `no environment of project "wiki" in namespace team`},
	}
	for _, tt := range tests {
		client.Namespace, client.NamespaceExplicit = tt.ns, tt.ns != ""
		got, err := findEnv(context.Background(), client, tt.project)
		var s string
		if err != nil {
			s = err.Error()
		} else {
			s = got.Namespace + "/" + got.Name
		}
		if !strings.Contains(s, tt.want) {
			t.Errorf("findEnv(%q, -n %q) = %s, want %s", tt.project, tt.ns, s, tt.want)
		}
	}
}
