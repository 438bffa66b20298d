// Package policy is the security ceiling of ARCHITECTURE.md decision 13: it checks an environment
// against a Kubernetes Pod Security Standards level (privileged, baseline or restricted), the one
// the cluster admin chose with `ergomake install --pod-security` and that the namespaces ergomake
// creates enforce through Pod Security Admission labels.
//
// CheckEnv checks an ErgomakeEnv's spec: the CLI checks the translated project before it applies
// anything, and the operator checks every environment again (one can be applied with kubectl)
// and creates nothing for one that exceeds the ceiling. CheckProject adds the compose keys that
// ask for the node but that the translation drops (pid, ipc, devices): a compose file asking for
// them is refused under a ceiling that forbids them rather than quietly run without them.
// Locate finds, for each violation, the compose file and line that asked for it.
//
// What a compose file cannot say but the restricted level requires (a seccomp profile,
// runAsNonRoot, no privilege escalation, every capability dropped) ergomake sets itself when the
// ceiling is restricted: Harden does it to the rendered objects.
//
// The package is pure: no cluster, no I/O.
package policy

import (
	"fmt"
	"sort"
	"strings"

	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// Level is a Pod Security Standards level.
type Level string

// The levels, from the most permissive.
const (
	Privileged Level = "privileged"
	Baseline   Level = "baseline"
	Restricted Level = "restricted"
)

// Default is the ceiling of a cluster whose admin chose none.
const Default = Baseline

// ParseLevel reads a level; "" is Default.
func ParseLevel(s string) (Level, error) {
	switch l := Level(strings.ToLower(strings.TrimSpace(s))); l {
	case "":
		return Default, nil
	case Privileged, Baseline, Restricted:
		return l, nil
	}
	return "", fmt.Errorf("pod security level %q: want privileged, baseline or restricted", s)
}

// rank orders the levels: a higher rank allows less.
func (l Level) rank() int {
	switch l {
	case Privileged:
		return 0
	case Restricted:
		return 2
	}
	return 1 // baseline, and anything unknown
}

// Allows reports whether a ceiling of l admits what needs at least need.
func (l Level) Allows(need Level) bool { return l.rank() <= need.rank() }

// Violation is one setting of one service that exceeds the ceiling.
type Violation struct {
	// Service is the compose service name.
	Service string
	// Key is the compose key that asks for it: privileged, cap_add, network_mode, pid, ipc,
	// devices, volumes, sysctls, user or annotations.
	Key string
	// Field is the ErgomakeEnv field, for the operator's status: spec.services[web].security.privileged.
	Field string
	// Value is what the key asks for, as it appears in the spec or the compose file (a
	// capability, a path, a sysctl name), "" when the key says it all.
	Value string
	// Message says what exceeds the ceiling.
	Message string
	// Needs is the least permissive level that allows it.
	Needs Level
	// Ceiling is the level it was checked against.
	Ceiling Level

	// File and Line are where the compose files ask for it (see Locate); empty and 0 when
	// unknown (an ErgomakeEnv applied with kubectl has no compose file).
	File string
	Line int
}

// Remedy says what lets it run: the admin raising the ceiling.
func (v Violation) Remedy() string {
	return fmt.Sprintf("a cluster admin can allow it with `ergomake install --pod-security %s`", v.Needs)
}

// String is the violation on one line, for the CLI: file:line, service, compose key, what and
// the remedy.
func (v Violation) String() string {
	var b strings.Builder
	if v.File != "" {
		b.WriteString(v.File)
		if v.Line > 0 {
			fmt.Fprintf(&b, ":%d", v.Line)
		}
		b.WriteString(": ")
	}
	if v.Service != "" {
		fmt.Fprintf(&b, "service %q: ", v.Service)
	}
	fmt.Fprintf(&b, "%s: %s exceeds the cluster's pod security ceiling %q; %s", v.Key, v.Message, v.Ceiling, v.Remedy())
	return b.String()
}

// Reason is the violation for an operator's status: service and field, no compose file.
func (v Violation) Reason() string {
	return fmt.Sprintf("service %q: %s: %s exceeds the pod security ceiling %q (needs %q)", v.Service, v.Field, v.Message, v.Ceiling, v.Needs)
}

// baselineCaps are the capabilities the baseline level lets a container add: Docker's default set.
var baselineCaps = map[string]bool{
	"AUDIT_WRITE": true, "CHOWN": true, "DAC_OVERRIDE": true, "FOWNER": true, "FSETID": true, "KILL": true,
	"MKNOD": true, "NET_BIND_SERVICE": true, "SETFCAP": true, "SETGID": true, "SETPCAP": true, "SETUID": true,
	"SYS_CHROOT": true,
}

// restrictedCaps are the capabilities the restricted level lets a container add.
var restrictedCaps = map[string]bool{"NET_BIND_SERVICE": true}

// safeSysctls are the sysctls the baseline level allows.
var safeSysctls = map[string]bool{
	"kernel.shm_rmid_forced": true, "net.ipv4.ip_local_port_range": true, "net.ipv4.ip_unprivileged_port_start": true,
	"net.ipv4.tcp_syncookies": true, "net.ipv4.ping_group_range": true, "net.ipv4.ip_local_reserved_ports": true,
	"net.ipv4.tcp_keepalive_time": true, "net.ipv4.tcp_fin_timeout": true, "net.ipv4.tcp_keepalive_intvl": true,
	"net.ipv4.tcp_keepalive_probes": true,
}

// appArmorPrefix starts the (beta) annotations that choose a container's AppArmor profile.
const appArmorPrefix = "container.apparmor.security.beta.kubernetes.io/"

// capName is a capability as Kubernetes names it: upper case, without CAP_.
func capName(c string) string {
	return strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(c)), "CAP_")
}

// CheckEnv returns every setting of spec that exceeds ceiling, in service order, then by key. A
// nil spec has none.
func CheckEnv(spec *v1alpha1.EnvSpec, ceiling Level) []Violation {
	if spec == nil {
		return nil
	}
	var out []Violation
	for i := range spec.Services {
		out = append(out, checkService(&spec.Services[i], ceiling)...)
	}
	return out
}

func checkService(svc *v1alpha1.ServiceSpec, ceiling Level) []Violation {
	var out []Violation
	field := func(f string) string { return fmt.Sprintf("spec.services[%s].%s", svc.Name, f) }
	add := func(needs Level, key, f, value, msg string) {
		if ceiling.Allows(needs) {
			return
		}
		out = append(out, Violation{Service: svc.Name, Key: key, Field: field(f), Value: value, Message: msg, Needs: needs, Ceiling: ceiling})
	}
	if svc.HostNetwork {
		add(Privileged, "network_mode", "hostNetwork", "host", "host (the node's network)")
	}
	if s := svc.Security; s != nil {
		if s.Privileged {
			add(Privileged, "privileged", "security.privileged", "", "a privileged container")
		}
		seen := map[string]bool{}
		for _, c := range s.CapAdd {
			c = capName(c)
			if c == "" || seen[c] {
				continue
			}
			seen[c] = true
			switch {
			case !baselineCaps[c]:
				add(Privileged, "cap_add", "security.capAdd", c, "capability "+c)
			case !restrictedCaps[c]:
				add(Baseline, "cap_add", "security.capAdd", c, "capability "+c)
			}
		}
		for _, k := range sortedKeys(s.Sysctls) {
			if !safeSysctls[k] {
				add(Privileged, "sysctls", "security.sysctls", k, "sysctl "+k)
			}
		}
	}
	for _, m := range svc.Volumes {
		if m.Type == v1alpha1.MountHostPath {
			add(Privileged, "volumes", "volumes", m.Target, fmt.Sprintf("%s mounted from the node's %s", m.Target, m.Source))
		}
	}
	if svc.User != nil && svc.User.UID == 0 {
		add(Baseline, "user", "user.uid", "0", "running as root (uid 0)")
	}
	for _, k := range sortedKeys(svc.Annotations) {
		if !strings.HasPrefix(strings.ToLower(k), appArmorPrefix) {
			continue
		}
		if v := svc.Annotations[k]; v != "runtime/default" && !strings.HasPrefix(v, "localhost/") {
			add(Privileged, "annotations", "annotations", k, fmt.Sprintf("AppArmor profile %q", v))
		}
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
