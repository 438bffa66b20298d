package render

import (
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

func securityContexts(name string, svc *v1alpha1.ServiceSpec, e *errs) (*corev1.SecurityContext, *corev1.PodSecurityContext) {
	var sc corev1.SecurityContext
	var psc corev1.PodSecurityContext
	if u := svc.User; u != nil {
		if u.UID < 0 {
			e.add(name, "user.uid", "must not be negative, not %d", u.UID)
		}
		sc.RunAsUser = ptr.To(u.UID)
		if u.GID != nil {
			if *u.GID < 0 {
				e.add(name, "user.gid", "must not be negative, not %d", *u.GID)
			}
			sc.RunAsGroup = ptr.To(*u.GID)
		}
	}
	if s := svc.Security; s != nil {
		if s.Privileged {
			sc.Privileged = ptr.To(true)
		}
		if s.ReadOnlyRootFilesystem {
			sc.ReadOnlyRootFilesystem = ptr.To(true)
		}
		caps := func(field string, in []string) []corev1.Capability {
			var out []corev1.Capability
			seen := map[string]bool{}
			for _, c := range in {
				c = strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(c)), "CAP_")
				if c == "" {
					e.add(name, "security."+field, "empty capability")
					continue
				}
				if !seen[c] {
					seen[c] = true
					out = append(out, corev1.Capability(c))
				}
			}
			return out
		}
		add, drop := caps("capAdd", s.CapAdd), caps("capDrop", s.CapDrop)
		if len(add) > 0 || len(drop) > 0 {
			sc.Capabilities = &corev1.Capabilities{Add: add, Drop: drop}
		}
		if s.NoNewPrivileges {
			if s.Privileged {
				e.add(name, "security", "privileged and no-new-privileges cannot be combined on Kubernetes")
			}
			for _, c := range add {
				if c == "SYS_ADMIN" || c == "ALL" {
					e.add(name, "security", "cap_add %s and no-new-privileges cannot be combined on Kubernetes", c)
				}
			}
			sc.AllowPrivilegeEscalation = ptr.To(false)
		}
		for _, g := range s.SupplementalGroups {
			if g < 0 {
				e.add(name, "security.supplementalGroups", "group %d must not be negative", g)
			}
		}
		if len(s.SupplementalGroups) > 0 {
			psc.SupplementalGroups = append([]int64(nil), s.SupplementalGroups...)
		}
		keys := make([]string, 0, len(s.Sysctls))
		for k := range s.Sysctls {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if !validSysctl(k) {
				e.add(name, "security.sysctls", "%q is not a valid sysctl name", k)
				continue
			}
			psc.Sysctls = append(psc.Sysctls, corev1.Sysctl{Name: k, Value: s.Sysctls[k]})
		}
	}
	var scOut *corev1.SecurityContext
	if sc != (corev1.SecurityContext{}) {
		scOut = &sc
	}
	var pscOut *corev1.PodSecurityContext
	if len(psc.SupplementalGroups) > 0 || len(psc.Sysctls) > 0 {
		pscOut = &psc
	}
	return scOut, pscOut
}

// validSysctl follows Kubernetes' sysctl name syntax (segments separated by '.' or '/').
func validSysctl(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, seg := range strings.FieldsFunc(s, func(r rune) bool { return r == '.' || r == '/' }) {
		if seg == "" {
			return false
		}
		for i, r := range seg {
			ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || (r == '-' || r == '_') && i > 0 && i < len(seg)-1
			if !ok {
				return false
			}
		}
	}
	return !strings.HasPrefix(s, ".") && !strings.HasPrefix(s, "/") && !strings.HasSuffix(s, ".") &&
		!strings.HasSuffix(s, "/") && !strings.Contains(s, "..") && !strings.Contains(s, "//")
}
