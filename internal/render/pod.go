package render

import (
	"fmt"
	"math"
	"net"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"

	"github.com/ergomake/ergomake/internal/compose/defaults"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

const (
	maxDNSNameservers       = 3
	maxDNSSearches          = 32
	maxDNSSearchChars       = 2048
	labelOS                 = "kubernetes.io/os"
	labelArch               = "kubernetes.io/arch"
	maxTerminationGraceSecs = math.MaxInt32
)

// renderPod builds the pod template of svc (without hostAliases from ClusterIPs, added later).
// It returns nil when svc has errors.
func renderPod(env *v1alpha1.ErgomakeEnv, svc *v1alpha1.ServiceSpec, volumes map[string]*v1alpha1.VolumeSpec, e *errs) *corev1.PodTemplateSpec {
	before := len(*e)
	name := svc.Name
	c := renderContainer(svc, e)

	pod := corev1.PodSpec{
		RestartPolicy:                 corev1.RestartPolicyAlways,
		TerminationGracePeriodSeconds: ptr.To(int64(defaults.StopGracePeriod / time.Second)),
		DNSPolicy:                     corev1.DNSClusterFirst,
		EnableServiceLinks:            ptr.To(false),
		AutomountServiceAccountToken:  ptr.To(false),
		Hostname:                      svc.Hostname,
		Subdomain:                     svc.Subdomain,
		HostNetwork:                   svc.HostNetwork,
	}
	if svc.HostNetwork {
		pod.DNSPolicy = corev1.DNSClusterFirstWithHostNet
	}
	for _, f := range [...]struct{ field, v string }{{"hostname", svc.Hostname}, {"subdomain", svc.Subdomain}} {
		if f.v == "" {
			continue
		}
		if msgs := validation.IsDNS1123Label(f.v); len(msgs) > 0 {
			e.add(name, f.field, "%q is not a valid host name label: %s", f.v, strings.Join(msgs, "; "))
		}
	}
	if d := svc.StopGracePeriod; d != nil {
		if d.Duration < 0 {
			e.add(name, "stopGracePeriod", "must not be negative, not %s", d.Duration)
		} else {
			pod.TerminationGracePeriodSeconds = ptr.To(ceilSeconds(d.Duration, maxTerminationGraceSecs))
		}
	}
	if svc.DNS != nil {
		pod.DNSConfig = dnsConfig(name, svc.DNS, e)
	}
	if svc.Platform != "" {
		pod.NodeSelector = platformSelector(name, svc.Platform, e)
	}
	pod.HostAliases = extraHosts(svc, e)
	for _, name := range env.Spec.ImagePullSecrets { // validated by validateEnv
		pod.ImagePullSecrets = append(pod.ImagePullSecrets, corev1.LocalObjectReference{Name: name})
	}

	c.SecurityContext, pod.SecurityContext = securityContexts(name, svc, e)

	mounts, vols := volumeMounts(svc, volumes, e)
	c.VolumeMounts, pod.Volumes = mounts, vols

	pod.Containers = []corev1.Container{c}

	tmpl := &corev1.PodTemplateSpec{ObjectMeta: templateMeta(env, svc, e), Spec: pod}
	if len(*e) > before {
		return nil
	}
	return tmpl
}

// templateMeta is the pod template's labels (the service's own, then the selector's) and
// annotations.
func templateMeta(env *v1alpha1.ErgomakeEnv, svc *v1alpha1.ServiceSpec, e *errs) metav1.ObjectMeta {
	name := svc.Name
	meta := metav1.ObjectMeta{Labels: map[string]string{}}
	keys := make([]string, 0, len(svc.Labels))
	for k := range svc.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := svc.Labels[k]
		if msgs := validation.IsQualifiedName(k); len(msgs) > 0 {
			e.add(name, "labels", "%q is not a valid label key: %s", k, strings.Join(msgs, "; "))
			continue
		}
		if msgs := validation.IsValidLabelValue(v); len(msgs) > 0 {
			e.add(name, "labels", "label %q: %q is not a valid label value: %s", k, v, strings.Join(msgs, "; "))
			continue
		}
		meta.Labels[k] = v
	}
	// The selector labels always win over the service's own labels.
	for k, v := range SelectorLabels(env, svc.Name) {
		meta.Labels[k] = v
	}
	keys = keys[:0]
	for k := range svc.Annotations {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := svc.Annotations[k]
		if msgs := validation.IsQualifiedName(strings.ToLower(k)); len(msgs) > 0 {
			e.add(name, "annotations", "%q is not a valid annotation key: %s", k, strings.Join(msgs, "; "))
			continue
		}
		if k == v1alpha1.AnnotationSpecHash || k == v1alpha1.AnnotationEnvSecretVersion {
			continue
		}
		setAnnotation(&meta, k, v)
	}
	if svc.EnvSecretVersion != "" {
		// part of the spec hash: new values in the Secret restart the service's pods
		setAnnotation(&meta, v1alpha1.AnnotationEnvSecretVersion, svc.EnvSecretVersion)
	}
	return meta
}

func dnsConfig(name string, d *v1alpha1.DNSSpec, e *errs) *corev1.PodDNSConfig {
	if len(d.Nameservers) == 0 && len(d.Searches) == 0 && len(d.Options) == 0 {
		return nil
	}
	cfg := &corev1.PodDNSConfig{}
	for _, ns := range d.Nameservers {
		if net.ParseIP(ns) == nil {
			e.add(name, "dns.nameservers", "%q is not an IP address", ns)
			continue
		}
		cfg.Nameservers = append(cfg.Nameservers, ns)
	}
	if len(d.Nameservers) > maxDNSNameservers {
		e.add(name, "dns.nameservers", "at most %d nameservers, not %d", maxDNSNameservers, len(d.Nameservers))
	}
	for _, s := range d.Searches {
		s = strings.ToLower(s)
		if s != "." {
			s = strings.TrimSuffix(s, ".")
			if msgs := validation.IsDNS1123SubdomainWithUnderscore(s); len(msgs) > 0 {
				e.add(name, "dns.searches", "%q is not a valid search domain: %s", s, strings.Join(msgs, "; "))
				continue
			}
		}
		cfg.Searches = append(cfg.Searches, s)
	}
	if len(d.Searches) > maxDNSSearches {
		e.add(name, "dns.searches", "at most %d search domains, not %d", maxDNSSearches, len(d.Searches))
	}
	if n := len(strings.Join(cfg.Searches, " ")); n > maxDNSSearchChars {
		e.add(name, "dns.searches", "the search list is %d characters long, more than %d", n, maxDNSSearchChars)
	}
	for _, o := range d.Options {
		n, v, hasValue := strings.Cut(o, ":")
		n = strings.TrimSpace(n)
		if n == "" {
			e.add(name, "dns.options", "option %q has no name", o)
			continue
		}
		opt := corev1.PodDNSConfigOption{Name: n}
		if hasValue {
			opt.Value = ptr.To(strings.TrimSpace(v))
		}
		cfg.Options = append(cfg.Options, opt)
	}
	return cfg
}

func platformSelector(name, platform string, e *errs) map[string]string {
	parts := strings.Split(strings.ToLower(platform), "/")
	if len(parts) > 3 || parts[0] == "" || (len(parts) > 1 && parts[1] == "") {
		e.add(name, "platform", "%q is not os[/arch[/variant]]", platform)
		return nil
	}
	sel := map[string]string{labelOS: parts[0]}
	if len(parts) > 1 {
		sel[labelArch] = parts[1]
	}
	for k, v := range sel {
		if msgs := validation.IsValidLabelValue(v); len(msgs) > 0 {
			e.add(name, "platform", "%q: %q is not a valid %s: %s", platform, v, k, strings.Join(msgs, "; "))
		}
	}
	return sel
}

// extraHosts turns the service's extra_hosts into hostAliases, merged per IP, sorted.
func extraHosts(svc *v1alpha1.ServiceSpec, e *errs) []corev1.HostAlias {
	byIP := map[string][]string{}
	for i, h := range svc.ExtraHosts {
		field := fmt.Sprintf("extraHosts[%d]", i)
		ip := net.ParseIP(strings.Trim(h.IP, "[]"))
		if ip == nil {
			e.add(svc.Name, field, "%q is not an IP address (host %q)", h.IP, h.Hostname)
			continue
		}
		host, ok := hostAliasName(h.Hostname)
		if !ok {
			e.add(svc.Name, field, "%q cannot be a Kubernetes host alias (lowercase letters, digits, '-' and '.' only)", h.Hostname)
			continue
		}
		byIP[ip.String()] = append(byIP[ip.String()], host)
	}
	return mergeHostAliases(byIP)
}

// addHostAliases merges more entries into hostAliases, per IP, sorted.
func addHostAliases(have, more []corev1.HostAlias) []corev1.HostAlias {
	if len(more) == 0 {
		return have
	}
	byIP := map[string][]string{}
	for _, list := range [][]corev1.HostAlias{have, more} {
		for _, a := range list {
			byIP[a.IP] = append(byIP[a.IP], a.Hostnames...)
		}
	}
	return mergeHostAliases(byIP)
}
