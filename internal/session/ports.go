package session

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/ergomake/ergomake/internal/forward"
	"github.com/ergomake/ergomake/internal/render"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// PublishedPorts are the ports of the environment to forward: every `ports` entry compose
// publishes (never `expose`), of the services in only (all when nil). Pods are selected by the
// label values the operator writes (render.SelectorLabels), never by the raw compose names.
func PublishedPorts(env *v1alpha1.ErgomakeEnv, only map[string]bool) []forward.Port {
	var out []forward.Port
	for _, s := range env.Spec.Services {
		if only != nil && !only[s.Name] {
			continue
		}
		for _, p := range s.Ports {
			if !p.Publish {
				continue
			}
			fp := forward.Port{
				Service:    s.Name,
				Selector:   render.SelectorLabels(env, s.Name),
				RemotePort: p.Target,
				HostIP:     p.HostIP,
				Protocol:   p.Protocol,
			}
			if lo, hi, ok := strings.Cut(p.Published, "-"); ok {
				a, errA := strconv.Atoi(lo)
				b, errB := strconv.Atoi(hi)
				if errA == nil && errB == nil {
					fp.LocalRange = [2]int{a, b}
				}
			} else if n, err := strconv.Atoi(p.Published); err == nil {
				fp.LocalPort = n
			}
			out = append(out, fp)
		}
	}
	return out
}

// shortenForwardError shortens the kubelet's answer when nothing listens on the port inside the
// pod (several hundred characters naming network namespaces and container IDs) to what the user
// can act on.
func shortenForwardError(line string) string {
	i := strings.Index(line, ": error forwarding port ")
	if i < 0 || !strings.Contains(line[i:], "connection refused") {
		return line
	}
	return line[:i] + ": connection refused inside the pod (is anything listening on that port?)"
}

// Summary is an environment in a few words: "Ready, 2/2 services ready".
func Summary(env *v1alpha1.ErgomakeEnv) string {
	ready, total := ReadyCount(env)
	phase := string(env.Status.Phase)
	if phase == "" {
		phase = string(v1alpha1.PhasePending)
	}
	return fmt.Sprintf("%s, %d/%d services ready", phase, ready, total)
}

// ReadyCount is how many services of the environment are ready, out of how many.
func ReadyCount(env *v1alpha1.ErgomakeEnv) (ready, total int) {
	for _, s := range env.Status.Services {
		total++
		if s.IsReady() {
			ready++
		}
	}
	if total == 0 {
		total = len(env.Spec.Services)
	}
	return ready, total
}
