package render

import (
	"crypto/sha256"
	"encoding/hex"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// LabelVolume names the compose volume a PersistentVolumeClaim was rendered from. Claims belong to
// a volume, not to a service, so they carry this label instead of ergomake.dev/service.
const LabelVolume = "ergomake.dev/volume"

// LabelValue returns s when it is a valid Kubernetes label value, and otherwise a valid label value
// derived from it: invalid characters replaced by '-', trimmed to alphanumeric ends, shortened,
// with a short hash of s appended so that two different inputs do not collide.
func LabelValue(s string) string {
	if len(validation.IsValidLabelValue(s)) == 0 {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	suffix := hex.EncodeToString(sum[:])[:8]
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	base := strings.TrimFunc(b.String(), func(r rune) bool { return !isAlnum(r) })
	const max = validation.LabelValueMaxLength - 9 // room for "-" + 8 hex digits
	if len(base) > max {
		base = strings.TrimRightFunc(base[:max], func(r rune) bool { return !isAlnum(r) })
	}
	if base == "" {
		return "x-" + suffix
	}
	return base + "-" + suffix
}

func isAlnum(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
}

// SelectorLabels are the labels that select the pods of one service of env: ergomake.dev/env and
// ergomake.dev/service (both as label values, see LabelValue). The operator can list a service's
// pods with them.
func SelectorLabels(env *v1alpha1.ErgomakeEnv, service string) map[string]string {
	return map[string]string{
		v1alpha1.LabelEnv:     LabelValue(env.Name),
		v1alpha1.LabelService: LabelValue(service),
	}
}

// EnvLabels are the labels every object of env carries (without the per-service label).
func EnvLabels(env *v1alpha1.ErgomakeEnv) map[string]string {
	l := map[string]string{
		v1alpha1.LabelEnv:       LabelValue(env.Name),
		v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue,
	}
	if env.Spec.Project != "" {
		l[v1alpha1.LabelPartOf] = LabelValue(env.Spec.Project)
	}
	return l
}

func objectLabels(env *v1alpha1.ErgomakeEnv, service string) map[string]string {
	l := EnvLabels(env)
	l[v1alpha1.LabelService] = LabelValue(service)
	return l
}

// isDNS1035 reports whether name can be a Kubernetes Service name and, unchanged, a DNS name that
// cluster DNS answers.
func isDNS1035(name string) bool {
	return len(validation.IsDNS1035Label(name)) == 0
}

// hostAliasName is the form of a compose name that a pod's /etc/hosts can carry: the API server
// accepts only DNS-1123 subdomains (lowercase) in hostAliases, and /etc/hosts lookups are
// case-insensitive in glibc. ok is false when the name cannot be written there (e.g. "web_app").
func hostAliasName(name string) (string, bool) {
	lower := strings.ToLower(name)
	if len(validation.IsDNS1123Subdomain(lower)) != 0 {
		return "", false
	}
	return lower, true
}

// extraNames are the names of svc that its Services do not answer on cluster DNS: its compose name
// and aliases that are not valid DNS-1035 labels, and are not answered case-insensitively by a
// Service of the environment. Sorted, without duplicates.
func extraNames(svc *v1alpha1.ServiceSpec, serviceNames map[string]bool) []string {
	seen := map[string]bool{}
	var out []string
	for _, n := range append([]string{svc.Name}, svc.Aliases...) {
		if n == "" || isDNS1035(n) || serviceNames[strings.ToLower(n)] || seen[n] {
			continue
		}
		seen[n] = true
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// allServiceNames returns the names of every Kubernetes Service env renders (main and alias
// Services). It assumes a valid env; Render checks clashes.
func allServiceNames(env *v1alpha1.ErgomakeEnv) map[string]bool {
	names := map[string]bool{}
	for i := range env.Spec.Services {
		s := &env.Spec.Services[i]
		names[s.ServiceName] = true
		for _, a := range aliasServiceNames(s) {
			names[a] = true
		}
	}
	return names
}

// aliasServiceNames are the extra Service names of svc: its aliases and compose name that are
// valid DNS-1035 labels and differ from its ServiceName, sorted, without duplicates.
func aliasServiceNames(svc *v1alpha1.ServiceSpec) []string {
	seen := map[string]bool{svc.ServiceName: true}
	var out []string
	for _, n := range append([]string{svc.Name}, svc.Aliases...) {
		if !isDNS1035(n) || seen[n] {
			continue
		}
		seen[n] = true
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// UnresolvableName is a compose service name or alias of a service (see UnresolvableNames and
// NonDNSNames).
type UnresolvableName struct {
	// Service is the compose service name.
	Service string
	// Name is the name that will not resolve.
	Name string
}

// UnresolvableNames lists, in service order, the names of env that neither cluster DNS nor
// hostAliases can make resolvable: not a valid DNS name for a Service, and /etc/hosts entries
// (hostAliases) must be DNS-1123 subdomains, so a name like "web_app" has no way in. Only the
// operator's environment DNS answers them (see Options.DNSServer); without it, callers should warn.
func UnresolvableNames(env *v1alpha1.ErgomakeEnv) []UnresolvableName {
	serviceNames := allServiceNames(env)
	var out []UnresolvableName
	for i := range env.Spec.Services {
		s := &env.Spec.Services[i]
		for _, n := range extraNames(s, serviceNames) {
			if _, ok := hostAliasName(n); !ok {
				out = append(out, UnresolvableName{Service: s.Name, Name: n})
			}
		}
	}
	return out
}

// HostAliases returns the /etc/hosts entries that make the compose names and aliases of env that
// are not valid DNS-1035 labels (e.g. "files.minio", "Web.App") resolve to the ClusterIP of their
// service's Service. clusterIPs maps Service names to ClusterIPs; services whose IP is absent,
// empty or "None" (headless) are skipped, and so are names hostAliases cannot carry (see
// UnresolvableNames). The result is sorted by IP, each entry's hostnames sorted.
func HostAliases(env *v1alpha1.ErgomakeEnv, clusterIPs map[string]string) []corev1.HostAlias {
	if len(clusterIPs) == 0 {
		return nil
	}
	serviceNames := allServiceNames(env)
	byIP := map[string][]string{}
	for i := range env.Spec.Services {
		s := &env.Spec.Services[i]
		ip := clusterIPs[s.ServiceName]
		if ip == "" || ip == corev1.ClusterIPNone || net.ParseIP(ip) == nil {
			continue
		}
		for _, n := range extraNames(s, serviceNames) {
			if h, ok := hostAliasName(n); ok {
				byIP[ip] = append(byIP[ip], h)
			}
		}
	}
	return mergeHostAliases(byIP)
}

// mergeHostAliases turns ip -> hostnames into sorted HostAlias entries, hostnames deduplicated.
func mergeHostAliases(byIP map[string][]string) []corev1.HostAlias {
	if len(byIP) == 0 {
		return nil
	}
	ips := make([]string, 0, len(byIP))
	for ip := range byIP {
		ips = append(ips, ip)
	}
	sort.Strings(ips)
	out := make([]corev1.HostAlias, 0, len(ips))
	for _, ip := range ips {
		names := append([]string(nil), byIP[ip]...)
		sort.Strings(names)
		names = slices.Compact(names)
		out = append(out, corev1.HostAlias{IP: ip, Hostnames: names})
	}
	return out
}

// nameAllocator hands out unique DNS-1123 label names (pod volume names) derived from hints.
type nameAllocator map[string]bool

func (a nameAllocator) name(hint string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(hint) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	base := strings.Trim(b.String(), "-")
	for strings.Contains(base, "--") {
		base = strings.ReplaceAll(base, "--", "-")
	}
	if len(base) > 50 {
		base = strings.TrimRight(base[:50], "-")
	}
	if base == "" {
		base = "vol"
	}
	n := base
	for i := 2; a[n]; i++ {
		n = base + "-" + strconv.Itoa(i)
	}
	a[n] = true
	return n
}
