package kube

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestNodePlatforms(t *testing.T) {
	node := func(name string, labels map[string]string, os, arch string) *corev1.Node {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
		n.Status.NodeInfo.OperatingSystem, n.Status.NodeInfo.Architecture = os, arch
		return n
	}
	cs := fake.NewClientset(
		node("a", map[string]string{corev1.LabelOSStable: "linux", corev1.LabelArchStable: "amd64"}, "linux", "amd64"),
		node("b", nil, "linux", "arm64"),
		node("c", map[string]string{corev1.LabelOSStable: "linux", corev1.LabelArchStable: "amd64"}, "", ""),
		node("d", nil, "", ""),
	)
	if got := NodePlatforms(context.Background(), cs); strings.Join(got, ",") != "linux/amd64,linux/arm64" {
		t.Errorf("platforms %v", got)
	}
	if got := NodePlatforms(context.Background(), fake.NewClientset()); got != nil {
		t.Errorf("no nodes: %v", got)
	}
}
