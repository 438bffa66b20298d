package render

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// validateEnv checks what concerns the environment as a whole: names, dependencies, volumes.
// Per-service fields are checked while the pod is built.
func validateEnv(env *v1alpha1.ErgomakeEnv, e *errs) {
	if env.Name == "" {
		e.add("", "metadata.name", "the environment has no name")
	}
	if env.Namespace == "" {
		e.add("", "metadata.namespace", "the environment has no namespace")
	} else if msgs := validation.IsDNS1123Label(env.Namespace); len(msgs) > 0 {
		e.add("", "metadata.namespace", "%q is not a valid namespace name: %s", env.Namespace, strings.Join(msgs, "; "))
	}
	if len(env.Spec.Services) == 0 {
		e.add("", "spec.services", "the environment has no services")
	}

	for i, name := range env.Spec.ImagePullSecrets {
		if msgs := validation.IsDNS1123Subdomain(name); len(msgs) > 0 {
			e.add("", fmt.Sprintf("spec.imagePullSecrets[%d]", i), "%q is not a valid Secret name: %s", name, strings.Join(msgs, "; "))
		}
	}

	// Volumes.
	volNames := map[string]bool{}
	claims := map[string]string{}
	for i := range env.Spec.Volumes {
		v := &env.Spec.Volumes[i]
		field := fmt.Sprintf("spec.volumes[%d]", i)
		if v.Name == "" {
			e.add("", field+".name", "the volume has no name")
			continue
		}
		field = fmt.Sprintf("volume %q", v.Name)
		if volNames[v.Name] {
			e.add("", field, "declared twice")
		}
		volNames[v.Name] = true
		if v.EmptyDir {
			continue
		}
		if msgs := validation.IsDNS1123Subdomain(v.ClaimName); len(msgs) > 0 {
			e.add("", field+": claimName", "%q is not a valid claim name: %s", v.ClaimName, strings.Join(msgs, "; "))
		} else if other, ok := claims[v.ClaimName]; ok {
			e.add("", field+": claimName", "claim %q is also the claim of volume %q", v.ClaimName, other)
		}
		claims[v.ClaimName] = v.Name
		if v.Size != nil && v.Size.Sign() <= 0 {
			e.add("", field+": size", "must be positive, not %s", v.Size.String())
		}
		if v.StorageClassName != nil && *v.StorageClassName != "" {
			if msgs := validation.IsDNS1123Subdomain(*v.StorageClassName); len(msgs) > 0 {
				e.add("", field+": storageClassName", "%q is not a valid storage class name: %s", *v.StorageClassName, strings.Join(msgs, "; "))
			}
		}
	}

	// Service names: compose names, Service names (main and alias), label values.
	byName := map[string]*v1alpha1.ServiceSpec{}
	k8sNames := map[string]string{} // Service name -> compose service owning it
	labelValues := map[string]string{}
	for i := range env.Spec.Services {
		s := &env.Spec.Services[i]
		if s.Name == "" {
			e.add("", fmt.Sprintf("spec.services[%d].name", i), "the service has no name")
			continue
		}
		if byName[s.Name] != nil {
			e.add(s.Name, "name", "the service is declared twice")
			continue
		}
		byName[s.Name] = s
		lv := LabelValue(s.Name)
		if other, ok := labelValues[lv]; ok {
			e.add(s.Name, "name", "its label value %q is also that of service %q", lv, other)
		}
		labelValues[lv] = s.Name
		if msgs := validation.IsDNS1035Label(s.ServiceName); len(msgs) > 0 {
			e.add(s.Name, "serviceName", "%q is not a valid Service name: %s", s.ServiceName, strings.Join(msgs, "; "))
			continue
		}
		if other, ok := k8sNames[s.ServiceName]; ok {
			e.add(s.Name, "serviceName", "Service name %q is also used by service %q", s.ServiceName, other)
		}
		k8sNames[s.ServiceName] = s.Name
	}
	// Aliases after every main name is known, so that an alias clashing with another service's
	// own name is reported against the alias.
	for i := range env.Spec.Services {
		s := &env.Spec.Services[i]
		if s.Name == "" || byName[s.Name] != s || !isDNS1035(s.ServiceName) {
			continue
		}
		for _, a := range aliasServiceNames(s) {
			if other, ok := k8sNames[a]; ok && other != s.Name {
				e.add(s.Name, "aliases", "alias %q clashes with the Service name of service %q", a, other)
				continue
			}
			k8sNames[a] = s.Name
		}
		for j, a := range s.Aliases {
			if a == "" {
				e.add(s.Name, fmt.Sprintf("aliases[%d]", j), "empty alias")
			}
		}
	}
	// A name that is not a valid Service name must not be another service's name either (two
	// services both answering "db" through hostAliases).
	hostNames := map[string]string{}
	for i := range env.Spec.Services {
		s := &env.Spec.Services[i]
		if s.Name == "" || byName[s.Name] != s {
			continue
		}
		for _, n := range extraNames(s, map[string]bool{}) {
			h, ok := hostAliasName(n)
			if !ok {
				continue
			}
			if other, ok := k8sNames[h]; ok && other != s.Name {
				e.add(s.Name, "aliases", "name %q clashes with the Service name of service %q", n, other)
			} else if other, ok := hostNames[h]; ok && other != s.Name {
				e.add(s.Name, "aliases", "name %q is also a name of service %q", n, other)
			}
			hostNames[h] = s.Name
		}
	}

	// Dependencies.
	for i := range env.Spec.Services {
		s := &env.Spec.Services[i]
		if s.Name == "" || byName[s.Name] != s {
			continue
		}
		seen := map[string]bool{}
		for j, d := range s.DependsOn {
			field := fmt.Sprintf("dependsOn[%d]", j)
			if d.Service != "" {
				field = fmt.Sprintf("dependsOn %q", d.Service)
			}
			switch d.Condition {
			case "", v1alpha1.ServiceStarted, v1alpha1.ServiceHealthy, v1alpha1.ServiceCompletedSuccessfully:
			default:
				e.add(s.Name, field+": condition", "unknown condition %q (want %s, %s or %s)", d.Condition,
					v1alpha1.ServiceStarted, v1alpha1.ServiceHealthy, v1alpha1.ServiceCompletedSuccessfully)
			}
			if seen[d.Service] {
				e.add(s.Name, field, "listed twice")
				continue
			}
			seen[d.Service] = true
			if d.Service == s.Name {
				e.add(s.Name, field, "a service cannot depend on itself")
				continue
			}
			dep := byName[d.Service]
			if dep == nil {
				if d.Required {
					e.add(s.Name, field, "depends on unknown service %q", d.Service)
				}
				continue
			}
			if d.Condition == v1alpha1.ServiceCompletedSuccessfully && dep.Lifecycle != v1alpha1.OneShot {
				e.add(s.Name, field+": condition", "%s needs %q to be a one-shot service, but it is %s",
					d.Condition, d.Service, lifecycle(dep))
			}
		}
	}
	if cycle := dependencyCycle(env, byName); cycle != nil {
		e.add(cycle[0], "dependsOn", "dependency cycle: %s", strings.Join(cycle, " -> "))
	}
}

func lifecycle(s *v1alpha1.ServiceSpec) v1alpha1.Lifecycle {
	if s.Lifecycle == "" {
		return v1alpha1.LongRunning
	}
	return s.Lifecycle
}

// dependencyCycle returns one dependency cycle (first service repeated at the end), or nil.
func dependencyCycle(env *v1alpha1.ErgomakeEnv, byName map[string]*v1alpha1.ServiceSpec) []string {
	const (
		unvisited = iota
		active
		done
	)
	state := map[string]int{}
	var stack []string
	var visit func(name string) []string
	visit = func(name string) []string {
		state[name] = active
		stack = append(stack, name)
		s := byName[name]
		deps := make([]string, 0, len(s.DependsOn))
		for _, d := range s.DependsOn {
			if byName[d.Service] != nil && d.Service != name {
				deps = append(deps, d.Service)
			}
		}
		sort.Strings(deps)
		for _, d := range deps {
			switch state[d] {
			case active:
				for i, n := range stack {
					if n == d {
						return append(append([]string(nil), stack[i:]...), d)
					}
				}
			case unvisited:
				if c := visit(d); c != nil {
					return c
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[name] = done
		return nil
	}
	for i := range env.Spec.Services {
		n := env.Spec.Services[i].Name
		if byName[n] != nil && state[n] == unvisited {
			if c := visit(n); c != nil {
				return c
			}
		}
	}
	return nil
}
