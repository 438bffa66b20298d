package operator

import (
	"fmt"
	"strings"

	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// gate is the decision whether a service's workload may be created.
type gate struct {
	// Open: every dependency meets its condition.
	Open bool
	// WaitingFor are the dependencies that do not meet their condition yet, as "name (condition)".
	WaitingFor []string
	// Failed are the dependencies that failed, as "name: reason".
	Failed []string
}

// met says whether a dependency in the given state meets the condition.
func met(cond v1alpha1.DependencyCondition, a assessment) bool {
	switch cond {
	case v1alpha1.ServiceCompletedSuccessfully:
		return a.Completed
	case v1alpha1.ServiceHealthy:
		return !a.Failed && (a.Healthy || a.Completed)
	default: // service_started, and the API's default when unset
		return !a.Failed && (a.Started || a.Completed)
	}
}

// decideGate says whether svc may start, given the services of the spec and where each stands.
// A dependency absent from the spec is skipped when it is not required; a required one that is
// absent never opens the gate (render rejects such a spec before this is asked).
func decideGate(svc v1alpha1.ServiceSpec, specs map[string]*v1alpha1.ServiceSpec, states map[string]assessment) gate {
	g := gate{Open: true}
	for _, d := range svc.DependsOn {
		dep, ok := specs[d.Service]
		if !ok {
			if !d.Required {
				continue
			}
			g.Open = false
			g.WaitingFor = append(g.WaitingFor, fmt.Sprintf("%s (not in the environment)", d.Service))
			continue
		}
		a := states[d.Service]
		if met(d.Condition, a) {
			continue
		}
		g.Open = false
		cond := d.Condition
		if cond == "" {
			cond = v1alpha1.ServiceStarted
		}
		g.WaitingFor = append(g.WaitingFor, fmt.Sprintf("%s (%s)", d.Service, cond))
		switch {
		case a.Failed:
			g.Failed = append(g.Failed, fmt.Sprintf("%s: %s", d.Service, nonEmpty(a.Reason, "failed")))
		case a.Reason == ReasonDependencyFailed:
			g.Failed = append(g.Failed, fmt.Sprintf("%s: %s", d.Service, a.Message))
		case cond == v1alpha1.ServiceCompletedSuccessfully && dep.Lifecycle != v1alpha1.OneShot:
			g.Failed = append(g.Failed, fmt.Sprintf("%s: runs until stopped, it never completes", d.Service))
		}
	}
	return g
}

// waitingAssessment is the status of a service held back by its dependencies.
func waitingAssessment(svc v1alpha1.ServiceSpec, g gate) assessment {
	a := assessment{State: v1alpha1.StateWaiting, Desired: desiredReplicas(svc)}
	if len(g.Failed) > 0 {
		a.Reason = ReasonDependencyFailed
		a.Message = "held back: dependency failed (" + strings.Join(g.Failed, "; ") + ")"
		return a
	}
	a.Reason = ReasonWaitingForDependencies
	a.Message = "waiting for " + strings.Join(g.WaitingFor, ", ")
	return a
}

func desiredReplicas(svc v1alpha1.ServiceSpec) int32 {
	if svc.Lifecycle == v1alpha1.OneShot {
		return 1
	}
	if svc.Replicas != nil {
		return *svc.Replicas
	}
	return 1
}

// dependencyNames are the names in WaitingFor without their conditions.
func dependencyNames(g gate) []string {
	out := make([]string, 0, len(g.WaitingFor))
	for _, w := range g.WaitingFor {
		name, _, _ := strings.Cut(w, " (")
		out = append(out, name)
	}
	return out
}

// decideGates decides the gate of every service of env whose workload does not exist yet (states
// holds the services whose workload exists). A service held back by a failed dependency passes
// the failure on to what depends on it, however deep the chain.
func decideGates(env *v1alpha1.ErgomakeEnv, specs map[string]*v1alpha1.ServiceSpec, states map[string]assessment) map[string]gate {
	all := make(map[string]assessment, len(states))
	for k, v := range states {
		all[k] = v
	}
	gates := map[string]gate{}
	// Each round settles at least one more level of the dependency chains.
	for range len(env.Spec.Services) + 1 {
		changed := false
		for _, svc := range env.Spec.Services {
			if _, exists := states[svc.Name]; exists {
				gates[svc.Name] = decideGate(svc, specs, all)
				continue
			}
			g := decideGate(svc, specs, all)
			w := assessment{}
			if !g.Open {
				w = waitingAssessment(svc, g)
			}
			if prev, ok := all[svc.Name]; !ok || prev.Reason != w.Reason || prev.Message != w.Message {
				changed = true
			}
			all[svc.Name] = w
			gates[svc.Name] = g
		}
		if !changed {
			break
		}
	}
	return gates
}
