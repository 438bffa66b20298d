package render

import (
	"net"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// DefaultClusterDomain is the cluster DNS domain assumed when Options.ClusterDomain is empty.
const DefaultClusterDomain = "cluster.local"

// envDNSNdots is the ndots option of pods that use the environment DNS: the kubelet's value, so
// that a name with fewer dots is tried with the search list first.
const envDNSNdots = "5"

// NonDNSNames lists, in service order (each service's names sorted), the compose service names
// and aliases of env that cluster DNS does not answer: they are not valid DNS-1035 labels and no
// Service of the environment has them as name (case-insensitively). Some of them hostAliases can
// carry (e.g. "files.minio"); the others are UnresolvableNames. The operator's environment DNS
// (internal/namedns) answers all of them.
func NonDNSNames(env *v1alpha1.ErgomakeEnv) []UnresolvableName {
	serviceNames := allServiceNames(env)
	var out []UnresolvableName
	for i := range env.Spec.Services {
		s := &env.Spec.Services[i]
		for _, n := range extraNames(s, serviceNames) {
			out = append(out, UnresolvableName{Service: s.Name, Name: n})
		}
	}
	return out
}

// usesEnvDNS reports whether the pods of env resolve through the environment DNS at opts.DNSServer:
// there is one, and env has names only it can answer.
func usesEnvDNS(env *v1alpha1.ErgomakeEnv, opts Options) bool {
	return opts.DNSServer != "" && len(UnresolvableNames(env)) > 0
}

// validateOptions checks what the caller (the operator) passes in.
func validateOptions(opts Options, e *errs) {
	if opts.DNSServer != "" && net.ParseIP(opts.DNSServer) == nil {
		e.add("", "options.dnsServer", "%q is not an IP address", opts.DNSServer)
	}
	if d := opts.ClusterDomain; d != "" && strings.Trim(d, ".") == "" {
		e.add("", "options.clusterDomain", "%q is not a domain", d)
	}
}

// setEnvDNS makes pod resolve through the environment DNS: dnsPolicy None, the environment DNS as
// first nameserver, and the search list and ndots the kubelet gives ClusterFirst pods, so that
// "db" still means db.<namespace>.svc.<domain> (the environment DNS passes such queries to cluster
// DNS). The service's own dns settings (compose dns, dns_search, dns_opt) are merged in as the
// kubelet merges them for ClusterFirst: nameservers and searches after the cluster's, options by
// name. Pods on the host network keep the node's resolver, as compose's do.
func setEnvDNS(pod *corev1.PodSpec, namespace string, opts Options) {
	if pod.HostNetwork {
		return
	}
	domain := strings.Trim(opts.ClusterDomain, ".")
	if domain == "" {
		domain = DefaultClusterDomain
	}
	cfg := &corev1.PodDNSConfig{
		Nameservers: []string{opts.DNSServer},
		Searches:    []string{namespace + ".svc." + domain, "svc." + domain, domain},
		Options:     []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr.To(envDNSNdots)}},
	}
	if own := pod.DNSConfig; own != nil {
		for _, ns := range own.Nameservers {
			if len(cfg.Nameservers) < maxDNSNameservers && !contains(cfg.Nameservers, ns) {
				cfg.Nameservers = append(cfg.Nameservers, ns)
			}
		}
		for _, s := range own.Searches {
			if contains(cfg.Searches, s) || len(cfg.Searches) >= maxDNSSearches ||
				len(strings.Join(append(cfg.Searches, s), " ")) > maxDNSSearchChars {
				continue
			}
			cfg.Searches = append(cfg.Searches, s)
		}
		for _, o := range own.Options {
			o := *o.DeepCopy()
			replaced := false
			for i := range cfg.Options {
				if cfg.Options[i].Name == o.Name {
					cfg.Options[i], replaced = o, true
				}
			}
			if !replaced {
				cfg.Options = append(cfg.Options, o)
			}
		}
	}
	pod.DNSPolicy = corev1.DNSNone
	pod.DNSConfig = cfg
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
