package namedns

import (
	"context"
	"net/netip"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ergomake/ergomake/internal/render"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// The RBAC markers of what the cache reads are in internal/operator (dns.go), whose ClusterRole
// the server runs under.

// PodIPField indexes environment pods by IP (a field index of the cache CacheTable reads).
const PodIPField = "ergomake.dev/pod-ip"

// PodIPs is the PodIPField index function: the IPs of a pod not on the host network.
func PodIPs(obj client.Object) []string {
	pod, ok := obj.(*corev1.Pod)
	if !ok || pod.Spec.HostNetwork {
		return nil
	}
	var out []string
	for _, ip := range pod.Status.PodIPs {
		if ip.IP != "" {
			out = append(out, ip.IP)
		}
	}
	if len(out) == 0 && pod.Status.PodIP != "" {
		out = append(out, pod.Status.PodIP)
	}
	return out
}

// CacheTable is the Table of the ErgomakeEnvs, Services and pods that Reader (a cache) holds:
// every name of an environment that cluster DNS does not answer (render.NonDNSNames) stands for
// the main Service of its compose service, when that Service exists and belongs to the
// environment. Pods are found by IP through the PodIPField index.
type CacheTable struct {
	Reader client.Reader
}

var _ Table = (*CacheTable)(nil)

// Lookup implements Table.
func (c *CacheTable) Lookup(ctx context.Context, namespace, name string) (Target, bool) {
	var envs v1alpha1.ErgomakeEnvList
	if err := c.Reader.List(ctx, &envs, client.InNamespace(namespace)); err != nil {
		return Target{}, false
	}
	sort.Slice(envs.Items, func(i, j int) bool { return envs.Items[i].Name < envs.Items[j].Name })
	for i := range envs.Items {
		env := &envs.Items[i]
		if !env.DeletionTimestamp.IsZero() {
			continue
		}
		for _, n := range render.NonDNSNames(env) {
			if !strings.EqualFold(n.Name, name) {
				continue
			}
			if t, ok := c.target(ctx, env, n.Service); ok {
				return t, true
			}
		}
	}
	return Target{}, false
}

func (c *CacheTable) target(ctx context.Context, env *v1alpha1.ErgomakeEnv, service string) (Target, bool) {
	var spec *v1alpha1.ServiceSpec
	for i := range env.Spec.Services {
		if env.Spec.Services[i].Name == service {
			spec = &env.Spec.Services[i]
		}
	}
	if spec == nil || spec.ServiceName == "" {
		return Target{}, false
	}
	var svc corev1.Service
	if err := c.Reader.Get(ctx, client.ObjectKey{Namespace: env.Namespace, Name: spec.ServiceName}, &svc); err != nil {
		return Target{}, false
	}
	want := render.SelectorLabels(env, service)
	for k, v := range want {
		if svc.Labels[k] != v {
			return Target{}, false // not this environment's Service
		}
	}
	t := Target{Namespace: svc.Namespace, Service: svc.Name}
	ips := svc.Spec.ClusterIPs
	if len(ips) == 0 && svc.Spec.ClusterIP != "" {
		ips = []string{svc.Spec.ClusterIP}
	}
	for _, s := range ips {
		if s == corev1.ClusterIPNone {
			return t, true // headless
		}
		if ip, err := netip.ParseAddr(s); err == nil {
			t.IPs = append(t.IPs, ip.Unmap())
		}
	}
	if len(t.IPs) == 0 {
		return Target{}, false // no address yet
	}
	return t, true
}

// PodNamespace implements Table.
func (c *CacheTable) PodNamespace(ctx context.Context, ip netip.Addr) (string, bool) {
	var pods corev1.PodList
	if err := c.Reader.List(ctx, &pods, client.MatchingFields{PodIPField: ip.String()}); err != nil {
		return "", false
	}
	ns := ""
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue // its IP may be someone else's by now
		}
		if ns != "" && ns != p.Namespace {
			return "", false
		}
		ns = p.Namespace
	}
	return ns, ns != ""
}
