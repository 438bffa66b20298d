package kube

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/ergomake/ergomake/internal/clustersettings"
)

// TestEnsureNamespacePodSecurity: the namespace ergomake creates carries the Pod Security
// Admission labels of the ceiling in the cluster's settings (baseline without settings); one that
// exists is left as it is.
func TestEnsureNamespacePodSecurity(t *testing.T) {
	ctx := context.Background()
	restricted := clustersettings.Settings{Namespace: clustersettings.DefaultNamespace, PodSecurity: "restricted"}.ConfigMap()
	for _, tc := range []struct {
		name     string
		objects  []*corev1.ConfigMap
		want     string
		wantRead bool
	}{
		{name: "no settings", want: "baseline"},
		{name: "restricted", objects: []*corev1.ConfigMap{restricted}, want: "restricted", wantRead: true},
	} {
		cs := fake.NewClientset()
		for _, cm := range tc.objects {
			if _, err := cs.CoreV1().ConfigMaps(cm.Namespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		c := &Client{Kube: cs}
		level, err := c.PodSecurity(ctx)
		if level != tc.want || (err == nil) != tc.wantRead {
			t.Errorf("%s: PodSecurity = %q, %v", tc.name, level, err)
		}
		owned, err := c.EnsureNamespace(ctx, "ergomake-p", "p")
		if err != nil || !owned {
			t.Fatalf("%s: EnsureNamespace = %v, %v", tc.name, owned, err)
		}
		ns, err := cs.CoreV1().Namespaces().Get(ctx, "ergomake-p", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, mode := range []string{"enforce", "warn", "audit"} {
			l := "pod-security.kubernetes.io/" + mode
			if ns.Labels[l] != tc.want || ns.Labels[l+"-version"] != "latest" {
				t.Errorf("%s: %s=%q %s-version=%q, want %q latest", tc.name, l, ns.Labels[l], l, ns.Labels[l+"-version"], tc.want)
			}
		}
		if !IsOurNamespace(ns) || ns.Labels["app.kubernetes.io/part-of"] != "p" {
			t.Errorf("%s: labels %v", tc.name, ns.Labels)
		}
	}

	// A namespace that exists already keeps its labels.
	cs := fake.NewClientset(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team", Labels: map[string]string{"a": "b"}}})
	c := &Client{Kube: cs}
	if owned, err := c.EnsureNamespace(ctx, "team", "p"); err != nil || owned {
		t.Fatalf("EnsureNamespace(team) = %v, %v", owned, err)
	}
	ns, _ := cs.CoreV1().Namespaces().Get(ctx, "team", metav1.GetOptions{})
	if len(ns.Labels) != 1 {
		t.Errorf("existing namespace relabelled: %v", ns.Labels)
	}
}
