package policy

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/ergomake/ergomake/internal/render"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// Harden makes the pods of objs meet what the restricted level requires beyond what a compose
// file can ask for (CheckEnv refuses what it asks for against it): the runtime's default seccomp
// profile, runAsNonRoot (the kubelet refuses an image that would run as root), no privilege
// escalation, and every capability dropped (NET_BIND_SERVICE may still be added). It changes
// nothing under the other levels, where the pods stay as the compose file describes them.
func Harden(objs *render.Objects, ceiling Level) {
	if objs == nil || ceiling != Restricted {
		return
	}
	for i := range objs.Services {
		s := &objs.Services[i]
		var meta *metav1.ObjectMeta
		var tmpl *corev1.PodTemplateSpec
		switch {
		case s.Deployment != nil:
			meta, tmpl = &s.Deployment.ObjectMeta, &s.Deployment.Spec.Template
		case s.Job != nil:
			meta, tmpl = &s.Job.ObjectMeta, &s.Job.Spec.Template
		default:
			continue
		}
		HardenPod(&tmpl.Spec)
		// A hardened workload differs from the one rendered under another ceiling: so that a
		// change of ceiling rolls it, its spec hash says so too.
		if s.SpecHash != "" {
			s.SpecHash += hardenedSuffix
			for _, m := range []*metav1.ObjectMeta{meta, &tmpl.ObjectMeta} {
				if m.Annotations == nil {
					m.Annotations = map[string]string{}
				}
				m.Annotations[v1alpha1.AnnotationSpecHash] = s.SpecHash
			}
		}
	}
}

// hardenedSuffix ends the spec hash of a workload Harden changed.
const hardenedSuffix = "-restricted"

// HardenPod is Harden of one pod spec.
func HardenPod(pod *corev1.PodSpec) {
	if pod.SecurityContext == nil {
		pod.SecurityContext = &corev1.PodSecurityContext{}
	}
	psc := pod.SecurityContext
	if psc.SeccompProfile == nil {
		psc.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}
	}
	if psc.RunAsNonRoot == nil {
		psc.RunAsNonRoot = ptr.To(true)
	}
	for _, cs := range [][]corev1.Container{pod.InitContainers, pod.Containers} {
		for i := range cs {
			c := &cs[i]
			if c.SecurityContext == nil {
				c.SecurityContext = &corev1.SecurityContext{}
			}
			sc := c.SecurityContext
			sc.AllowPrivilegeEscalation = ptr.To(false)
			if sc.Capabilities == nil {
				sc.Capabilities = &corev1.Capabilities{}
			}
			hasAll := false
			for _, d := range sc.Capabilities.Drop {
				hasAll = hasAll || d == "ALL"
			}
			if !hasAll {
				sc.Capabilities.Drop = append(sc.Capabilities.Drop, "ALL")
			}
		}
	}
}
