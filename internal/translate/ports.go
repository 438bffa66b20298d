package translate

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// ports translates ports and expose. Service ports are the container ports peers dial; the
// published port only drives the local forward.
func (t *translator) ports(out *v1alpha1.ServiceSpec, s types.ServiceConfig) error {
	used := map[string]bool{}
	seen := map[string]bool{} // "80/TCP" already a Service port
	type pending struct {
		spec v1alpha1.PortSpec
		name string // requested name
	}
	var all []pending

	for _, p := range s.Ports {
		if p.Target == 0 || p.Target > 65535 {
			return t.errorf(s.Name, "ports", "invalid container port %d", p.Target)
		}
		proto, err := protocol(p.Protocol)
		if err != nil {
			return t.errorf(s.Name, "ports", "%v", err)
		}
		spec := v1alpha1.PortSpec{
			Target:      int32(p.Target),
			Protocol:    proto,
			Published:   p.Published,
			Publish:     true,
			HostIP:      p.HostIP,
			AppProtocol: p.AppProtocol,
		}
		if proto != "TCP" {
			t.warn(s.Name, "ports", "%d/%s cannot be forwarded to your machine (Kubernetes port-forwarding is TCP only); it stays reachable inside the environment", p.Target, strings.ToLower(proto))
		}
		if p.Published != "" {
			if err := checkPublished(p.Published); err != nil {
				return t.errorf(s.Name, "ports", "published port %q: %v", p.Published, err)
			}
		}
		all = append(all, pending{spec: spec, name: p.Name})
	}
	nPorts := len(all)
	for _, e := range s.Expose {
		if strings.TrimSpace(e) == "" {
			continue // the engine parses an empty exposed port as none
		}
		specs, err := parseExpose(e)
		if err != nil {
			return t.errorf(s.Name, "expose", "%q: %v", e, err)
		}
		for _, spec := range specs {
			all = append(all, pending{spec: spec})
		}
	}

	// names: requested ones first, so generated names never steal them
	names := make([]string, len(all))
	for i, p := range all {
		if p.name == "" {
			continue
		}
		n := strings.ToLower(p.name)
		if isPortName(n) && !used[n] {
			names[i] = n
			used[n] = true
			continue
		}
		t.warn(s.Name, "ports", "port name %q is not a valid Kubernetes port name (at most 15 lowercase letters, digits and dashes) or is used twice; a generated name is used", p.name)
	}
	for i, p := range all {
		if names[i] != "" {
			continue
		}
		base := fmt.Sprintf("%s-%d", strings.ToLower(p.spec.Protocol), p.spec.Target)
		n := base
		for k := 2; used[n]; k++ {
			n = fmt.Sprintf("%s-%d", base, k)
			if len(n) > 15 {
				n = fmt.Sprintf("p%d-%s", k, shortHash(base)[:6])
			}
		}
		names[i] = n
		used[n] = true
	}
	for i, p := range all {
		p.spec.Name = names[i]
		id := fmt.Sprintf("%d/%s", p.spec.Target, p.spec.Protocol)
		if i < nPorts {
			out.Ports = append(out.Ports, p.spec)
			seen[id] = true
			continue
		}
		if seen[id] {
			continue // already a Service port through `ports`
		}
		seen[id] = true
		out.Expose = append(out.Expose, p.spec)
	}
	return nil
}

func protocol(p string) (string, error) {
	switch strings.ToLower(p) {
	case "", "tcp":
		return "TCP", nil
	case "udp":
		return "UDP", nil
	case "sctp":
		return "SCTP", nil
	}
	return "", fmt.Errorf("unknown protocol %q (tcp, udp or sctp)", p)
}

func checkPublished(p string) error {
	lo, hi, isRange := strings.Cut(p, "-")
	a, err := strconv.Atoi(lo)
	if err != nil || a < 0 || a > 65535 {
		return fmt.Errorf("not a port number")
	}
	if isRange {
		b, err := strconv.Atoi(hi)
		if err != nil || b < a || b > 65535 {
			return fmt.Errorf("not a port range")
		}
	}
	return nil
}

// parseExpose parses "3000", "3000/udp", "3000-3005".
func parseExpose(e string) ([]v1alpha1.PortSpec, error) {
	ports, proto, _ := strings.Cut(e, "/")
	pr, err := protocol(proto)
	if err != nil {
		return nil, err
	}
	lo, hi, isRange := strings.Cut(ports, "-")
	a, err := strconv.Atoi(lo)
	if err != nil || a < 1 || a > 65535 {
		return nil, fmt.Errorf("not a port number")
	}
	b := a
	if isRange {
		if b, err = strconv.Atoi(hi); err != nil || b < a || b > 65535 {
			return nil, fmt.Errorf("not a port range")
		}
		if b-a >= 1000 {
			return nil, fmt.Errorf("range of %d ports is too large", b-a+1)
		}
	}
	var out []v1alpha1.PortSpec
	for p := a; p <= b; p++ {
		out = append(out, v1alpha1.PortSpec{Target: int32(p), Protocol: pr})
	}
	return out, nil
}
