package kube

import (
	"context"
	"sort"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// NodePlatforms are the platforms (os/arch) of the cluster's nodes, sorted, which built images
// are built for; nil when the nodes cannot be listed (builds are then for the builder's own
// platform).
func NodePlatforms(ctx context.Context, cs kubernetes.Interface) []string {
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	for _, n := range nodes.Items {
		goos, arch := n.Labels[corev1.LabelOSStable], n.Labels[corev1.LabelArchStable]
		if goos == "" || arch == "" {
			goos, arch = n.Status.NodeInfo.OperatingSystem, n.Status.NodeInfo.Architecture
		}
		if p := goos + "/" + arch; goos != "" && arch != "" && !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}
