package operator

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ergomake/ergomake/internal/render"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// Names like "web_app" are neither valid Service names nor accepted by the API server in a pod's
// hostAliases (DNS-1123 subdomains only), yet compose resolves them. The environment DNS
// (internal/namedns, the ergomake-dns Service the installed operator serves) answers them; where
// there is none (an operator run outside the cluster against a cluster without it), the operator
// falls back to writing each pod's /etc/hosts itself: a ConfigMap holds one hosts file
// per service (what the kubelet would write, plus a line per such name pointing at the ClusterIP of
// its service), mounted over /etc/hosts. Environments without such names keep the kubelet's file.
//
// The kubelet's file maps the pod's hostname to the pod IP, which is not known before the pod
// runs; the operator's file maps it to 127.0.1.1 (as Debian does), after giving pods without a
// compose hostname the Service name as hostname, so that the name is known.

// HostsConfigMapName is the ConfigMap holding the hosts files of an environment.
const HostsConfigMapName = "ergomake-hosts"

// AnnotationHostsHash on a workload and its pod template is the hash of the hosts file mounted
// into its pods, so that a changed file rolls the pods.
const AnnotationHostsHash = "ergomake.dev/hosts-hash"

const hostsVolume = "ergomake-etc-hosts"

// hostsPlan is the hosts file of each service of an environment that needs them.
type hostsPlan struct {
	// Files maps a service's compose name to its hosts file.
	Files map[string]string
	// Keys maps a service's compose name to its key in the ConfigMap.
	Keys map[string]string
}

// planHosts decides the hosts files, or returns nil when the environment needs none: no name
// that hostAliases cannot carry has a ClusterIP to point at.
func planHosts(env *v1alpha1.ErgomakeEnv, objs *render.Objects, clusterIPs map[string]string) *hostsPlan {
	specs := map[string]*v1alpha1.ServiceSpec{}
	for i := range env.Spec.Services {
		specs[env.Spec.Services[i].Name] = &env.Spec.Services[i]
	}
	byIP := map[string][]string{}
	for _, u := range render.UnresolvableNames(env) {
		svc := specs[u.Service]
		if svc == nil {
			continue
		}
		ip := clusterIPs[svc.ServiceName]
		if ip == "" || ip == corev1.ClusterIPNone {
			continue
		}
		byIP[ip] = append(byIP[ip], u.Name)
	}
	if len(byIP) == 0 {
		return nil
	}
	ips := make([]string, 0, len(byIP))
	for ip := range byIP {
		ips = append(ips, ip)
	}
	sort.Strings(ips)
	var extra strings.Builder
	extra.WriteString("\n# Names of the environment that cluster DNS cannot answer.\n")
	for _, ip := range ips {
		names := byIP[ip]
		sort.Strings(names)
		fmt.Fprintf(&extra, "%s\t%s\n", ip, strings.Join(slices.Compact(names), " "))
	}

	plan := &hostsPlan{Files: map[string]string{}, Keys: map[string]string{}}
	for i := range objs.Services {
		rs := &objs.Services[i]
		svc := specs[rs.Name]
		tmpl := podTemplateOf(rs)
		if svc == nil || tmpl == nil || tmpl.Spec.HostNetwork {
			continue // the node's /etc/hosts is used on the host network
		}
		hostname := tmpl.Spec.Hostname
		if hostname == "" {
			hostname = svc.ServiceName
		}
		var b strings.Builder
		b.WriteString("# /etc/hosts written by the ergomake operator.\n")
		b.WriteString("127.0.0.1\tlocalhost\n")
		b.WriteString("::1\tlocalhost ip6-localhost ip6-loopback\n")
		b.WriteString("fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n")
		if tmpl.Spec.Subdomain != "" {
			fmt.Fprintf(&b, "127.0.1.1\t%s.%s.%s.svc %s\n", hostname, tmpl.Spec.Subdomain, env.Namespace, hostname)
		} else {
			fmt.Fprintf(&b, "127.0.1.1\t%s\n", hostname)
		}
		if len(tmpl.Spec.HostAliases) > 0 {
			b.WriteString("\n# Entries added by HostAliases.\n")
			for _, ha := range tmpl.Spec.HostAliases {
				fmt.Fprintf(&b, "%s\t%s\n", ha.IP, strings.Join(ha.Hostnames, "\t"))
			}
		}
		b.WriteString(extra.String())
		plan.Files[rs.Name] = b.String()
		plan.Keys[rs.Name] = svc.ServiceName
	}
	return plan
}

func podTemplateOf(rs *render.Service) *corev1.PodTemplateSpec {
	switch {
	case rs.Deployment != nil:
		return &rs.Deployment.Spec.Template
	case rs.Job != nil:
		return &rs.Job.Spec.Template
	}
	return nil
}

// configMap is the ConfigMap of the plan's hosts files.
func (p *hostsPlan) configMap(env *v1alpha1.ErgomakeEnv) *corev1.ConfigMap {
	data := map[string]string{}
	for name, file := range p.Files {
		data[p.Keys[name]] = file
	}
	return &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: HostsConfigMapName, Namespace: env.Namespace, Labels: render.EnvLabels(env)},
		Data:       data,
	}
}

// mount makes the service's pods use their hosts file, and records its hash on the workload.
func (p *hostsPlan) mount(rs *render.Service) {
	file, ok := p.Files[rs.Name]
	tmpl := podTemplateOf(rs)
	if !ok || tmpl == nil {
		return
	}
	sum := sha256.Sum256([]byte(file))
	hash := hex.EncodeToString(sum[:])[:16]
	if tmpl.Spec.Hostname == "" {
		tmpl.Spec.Hostname = p.Keys[rs.Name]
	}
	tmpl.Spec.Volumes = append(tmpl.Spec.Volumes, corev1.Volume{
		Name: hostsVolume,
		VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: HostsConfigMapName},
			Items:                []corev1.KeyToPath{{Key: p.Keys[rs.Name], Path: "hosts"}},
		}},
	})
	m := corev1.VolumeMount{Name: hostsVolume, MountPath: "/etc/hosts", SubPath: "hosts", ReadOnly: true}
	for i := range tmpl.Spec.InitContainers {
		tmpl.Spec.InitContainers[i].VolumeMounts = append(tmpl.Spec.InitContainers[i].VolumeMounts, m)
	}
	for i := range tmpl.Spec.Containers {
		tmpl.Spec.Containers[i].VolumeMounts = append(tmpl.Spec.Containers[i].VolumeMounts, m)
	}
	setAnnotation(&tmpl.ObjectMeta, AnnotationHostsHash, hash)
	if rs.Deployment != nil {
		setAnnotation(&rs.Deployment.ObjectMeta, AnnotationHostsHash, hash)
	} else {
		setAnnotation(&rs.Job.ObjectMeta, AnnotationHostsHash, hash)
	}
}

func setAnnotation(m *metav1.ObjectMeta, k, v string) {
	if m.Annotations == nil {
		m.Annotations = map[string]string{}
	}
	m.Annotations[k] = v
}
