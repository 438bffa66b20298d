package translate

import (
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/ergomake/ergomake/internal/compose/defaults"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// service translates one compose service. taken holds the alias Service names already given out.
func (t *translator) service(s types.ServiceConfig, taken map[string]string) (v1alpha1.ServiceSpec, error) {
	name := s.Name
	out := v1alpha1.ServiceSpec{
		Name:        name,
		ServiceName: t.serviceNames[name],
		Image:       s.Image,
		Lifecycle:   v1alpha1.LongRunning,
		WorkingDir:  s.WorkingDir,
		Platform:    s.Platform,
		Restart:     s.Restart,
		Tty:         s.Tty,
		StdinOpen:   s.StdinOpen,
	}

	// build and image
	if s.Build != nil {
		t.build(&out, s)
	}
	if out.Image == "" && s.Provider != nil {
		return out, t.errorf(name, "provider", "provider services (%s) are not supported", s.Provider.Type)
	}
	if out.Image == "" {
		return out, t.errorf(name, "image", "no image to run")
	}
	if s.Dockerfile != "" {
		t.warn(name, "dockerfile", "ignored: the Dockerfile of a build is build.dockerfile")
	}
	out.ImagePullPolicy = t.pullPolicy(s)

	if s.Deploy != nil && strings.HasSuffix(s.Deploy.Mode, "-job") || t.oneShot[name] {
		out.Lifecycle = v1alpha1.OneShot
	}

	// command and entrypoint: literal argv (render escapes $).
	if len(s.Command) > 0 {
		out.Command = append([]string{}, s.Command...)
	}
	switch {
	case s.Entrypoint == nil:
	case len(s.Entrypoint) == 1 && s.Entrypoint[0] == "" && len(s.Command) == 0:
		// The engine resets [""] to no entrypoint, then takes no CMD from the image since an
		// entrypoint was given, and fails.
		return out, t.errorf(name, "entrypoint", `[""] without a command: docker refuses it too ("no command specified"); write entrypoint: "" to run the image's CMD`)
	case len(s.Entrypoint) == 1 && s.Entrypoint[0] == "":
		// The engine resets [""] to no entrypoint: the command is the whole argv.
		out.Entrypoint, out.Command = out.Command, nil
	case len(s.Entrypoint) > 0:
		out.Entrypoint = append([]string{}, s.Entrypoint...)
		if len(s.Command) == 0 { // Docker drops the image's CMD when the entrypoint changes
			out.ResetCommand = true
		}
	case len(out.Command) > 0:
		// `entrypoint: ""` clears the image's ENTRYPOINT: the command is the whole argv
		out.Entrypoint, out.Command = out.Command, nil
	default:
		t.warn(name, "entrypoint", "an empty entrypoint without a command runs the image's CMD as the whole command line in Docker; Kubernetes cannot express that, so the image's ENTRYPOINT is kept")
	}

	t.environment(&out, s)

	if err := t.user(&out, s); err != nil {
		return out, err
	}
	t.hostname(&out, s)
	if err := t.ports(&out, s); err != nil {
		return out, err
	}
	t.network(&out, s)
	if len(out.Ports) == 0 && len(out.Expose) == 0 && out.Lifecycle == v1alpha1.LongRunning && !out.HostNetwork {
		t.warn(name, "ports", "no ports or expose: the service gets a headless Service (its name resolves to the pod, so any port works)")
	}
	t.healthcheck(&out, s)
	t.dependsOn(&out, s)
	t.restart(&out, s)
	if s.Scale != nil || (s.Deploy != nil && s.Deploy.Replicas != nil) {
		r := int32(s.GetScale())
		out.Replicas = &r
	}
	t.resources(&out, s)
	if err := t.mounts(&out, s); err != nil {
		return out, err
	}
	if err := t.secretMounts(&out, s); err != nil {
		return out, err
	}
	if err := t.configMounts(&out, s); err != nil {
		return out, err
	}
	t.aliases(&out, s, taken)
	t.hosts(&out, s)
	if err := t.security(&out, s); err != nil {
		return out, err
	}
	grace := defaults.StopGracePeriod
	if s.StopGracePeriod != nil {
		grace = time.Duration(*s.StopGracePeriod)
	}
	out.StopGracePeriod = &metav1.Duration{Duration: grace}
	if s.ShmSize > 0 {
		q := resource.NewQuantity(int64(s.ShmSize), resource.BinarySI)
		out.ShmSize = q
	}
	if err := t.labelsAndAnnotations(&out, s); err != nil {
		return out, err
	}
	t.deploy(s)
	t.unsupported(s)
	return out, nil
}

func (t *translator) pullPolicy(s types.ServiceConfig) string {
	switch p := s.PullPolicy; {
	case p == types.PullPolicyAlways:
		return "Always"
	case p == types.PullPolicyNever:
		return "Never"
	case p == types.PullPolicyBuild && s.Build != nil:
		// built by ergomake, then run as any image
	case p == types.PullPolicyBuild:
		t.warn(s.Name, "pull_policy", "build, but the service has no build: section; the image is pulled when missing")
	case p == "", p == types.PullPolicyMissing, p == types.PullPolicyIfNotPresent:
	case p == types.PullPolicyRefresh, p == "daily", p == "weekly", strings.HasPrefix(p, "every_"):
		t.warn(s.Name, "pull_policy", "%q: the image is pulled when missing (Kubernetes has no periodic refresh)", p)
	default:
		t.warn(s.Name, "pull_policy", "unknown policy %q: the image is pulled when missing", p)
	}
	if s.PullRefreshAfter != "" {
		t.warn(s.Name, "pull_refresh_after", "ignored: Kubernetes has no periodic refresh")
	}
	return defaults.PullPolicy
}

func (t *translator) user(out *v1alpha1.ServiceSpec, s types.ServiceConfig) error {
	if s.User == "" {
		return nil
	}
	u, g, hasGroup := strings.Cut(s.User, ":")
	parse := func(v string) (int64, bool) {
		if v == "root" {
			return 0, true
		}
		n, err := strconv.ParseInt(v, 10, 64)
		return n, err == nil && n >= 0
	}
	uid, ok := parse(u)
	if !ok {
		t.warn(s.Name, "user", "user %q is a name; Kubernetes needs a numeric uid, so the image's default user is used", s.User)
		return nil
	}
	out.User = &v1alpha1.UserSpec{UID: uid}
	if hasGroup {
		gid, ok := parse(g)
		if !ok {
			t.warn(s.Name, "user", "group %q is a name; Kubernetes needs a numeric gid, so the image's default group is used", g)
		} else {
			out.User.GID = &gid
		}
	}
	return nil
}

func (t *translator) hostname(out *v1alpha1.ServiceSpec, s types.ServiceConfig) {
	if s.DomainName != "" {
		t.warn(s.Name, "domainname", "not supported on Kubernetes; ignored")
	}
	if s.Hostname == "" {
		return
	}
	first, rest, fqdn := strings.Cut(s.Hostname, ".")
	if len(validation.IsDNS1123Label(first)) != 0 {
		t.warn(s.Name, "hostname", "%q is not a valid host name on Kubernetes; the pod keeps its default name", s.Hostname)
		return
	}
	out.Hostname = first
	if fqdn {
		sub, _, _ := strings.Cut(rest, ".")
		if len(validation.IsDNS1123Label(sub)) == 0 {
			out.Subdomain = sub
		}
		t.warn(s.Name, "hostname", "FQDN %q approximated: hostname %q, subdomain %q (the cluster domain replaces the rest)", s.Hostname, first, out.Subdomain)
	}
}

func (t *translator) healthcheck(out *v1alpha1.ServiceSpec, s types.ServiceConfig) {
	h := s.HealthCheck
	if h == nil || h.Disable {
		return
	}
	var exec []string
	switch {
	case len(h.Test) == 0:
		t.warn(s.Name, "healthcheck", "no test: the image's HEALTHCHECK cannot be read, so the service has no readiness check")
		return
	case h.Test[0] == "NONE":
		return
	case h.Test[0] == "CMD":
		exec = append([]string{}, h.Test[1:]...)
	case h.Test[0] == "CMD-SHELL":
		exec = []string{"/bin/sh", "-c", strings.Join(h.Test[1:], " ")}
	default:
		// compose-go rejects other forms; be safe anyway
		exec = []string{"/bin/sh", "-c", strings.Join(h.Test, " ")}
	}
	if len(exec) == 0 {
		t.warn(s.Name, "healthcheck.test", "empty CMD: no readiness check")
		return
	}
	hc := &v1alpha1.Healthcheck{
		Exec:     exec,
		Interval: metav1.Duration{Duration: defaults.HealthInterval},
		Timeout:  metav1.Duration{Duration: defaults.HealthTimeout},
		Retries:  defaults.HealthRetries,
	}
	if h.Interval != nil && *h.Interval > 0 {
		hc.Interval.Duration = time.Duration(*h.Interval)
	}
	if h.Timeout != nil && *h.Timeout > 0 {
		hc.Timeout.Duration = time.Duration(*h.Timeout)
	}
	if h.Retries != nil {
		r := *h.Retries
		if r == 0 {
			r = defaults.HealthRetries
		}
		if r > math.MaxInt32 {
			r = math.MaxInt32
		}
		hc.Retries = int32(r)
	}
	if h.StartPeriod != nil && *h.StartPeriod > 0 {
		hc.StartPeriod = &metav1.Duration{Duration: time.Duration(*h.StartPeriod)}
		si := defaults.HealthStartInterval
		if h.StartInterval != nil && *h.StartInterval > 0 {
			si = time.Duration(*h.StartInterval)
		}
		hc.StartInterval = &metav1.Duration{Duration: si}
	} else if h.StartInterval != nil && *h.StartInterval > 0 {
		hc.StartInterval = &metav1.Duration{Duration: time.Duration(*h.StartInterval)}
	}
	out.Healthcheck = hc
}

func (t *translator) dependsOn(out *v1alpha1.ServiceSpec, s types.ServiceConfig) {
	for _, dep := range sortedKeys(s.DependsOn) {
		d := s.DependsOn[dep]
		cond := v1alpha1.DependencyCondition(d.Condition)
		switch cond {
		case v1alpha1.ServiceStarted, v1alpha1.ServiceHealthy, v1alpha1.ServiceCompletedSuccessfully:
		case "":
			cond = v1alpha1.ServiceStarted
		default:
			t.warn(s.Name, "depends_on."+dep+".condition", "unknown condition %q; waiting for the service to start", d.Condition)
			cond = v1alpha1.ServiceStarted
		}
		if _, ok := t.p.Services[dep]; !ok && d.Required {
			// compose-go rejects this; keep the spec consistent anyway
			t.warn(s.Name, "depends_on", "%q is not part of the environment", dep)
			continue
		}
		if cond == v1alpha1.ServiceHealthy {
			if ds, ok := t.p.Services[dep]; ok && (ds.HealthCheck == nil || ds.HealthCheck.Disable || len(ds.HealthCheck.Test) == 0 || ds.HealthCheck.Test[0] == "NONE") {
				t.warn(s.Name, "depends_on."+dep, "service_healthy, but %q has no healthcheck ergomake can run: it counts as healthy once ready", dep)
			}
		}
		if d.Restart && t.loc.Has(s.Name, "depends_on."+dep+".restart") {
			t.warn(s.Name, "depends_on."+dep+".restart", "not supported: the service is not restarted when %q is", dep)
		}
		out.DependsOn = append(out.DependsOn, v1alpha1.Dependency{Service: dep, Condition: cond, Required: d.Required})
	}
}

func (t *translator) restart(out *v1alpha1.ServiceSpec, s types.ServiceConfig) {
	policy, n, hasN := strings.Cut(s.Restart, ":")
	if s.Deploy != nil && s.Deploy.RestartPolicy != nil {
		rp := s.Deploy.RestartPolicy
		if s.Restart == "" {
			switch rp.Condition {
			case "none":
				policy = defaults.RestartNo
			case "on-failure":
				policy = defaults.RestartOnFailure
			case "any", "":
				policy = defaults.RestartAlways
			default:
				policy = rp.Condition
			}
		}
		if rp.MaxAttempts != nil {
			m := int32(min(*rp.MaxAttempts, math.MaxInt32))
			out.MaxRetries = &m
		}
		if rp.Delay != nil || rp.Window != nil {
			t.warn(s.Name, "deploy.restart_policy", "delay and window are not supported; Kubernetes backs off on its own")
		}
	}
	if !defaults.KnownRestart(policy) {
		t.warn(s.Name, "restart", "unknown policy %q", s.Restart)
	}
	out.Restart = policy
	if hasN {
		if m, err := strconv.ParseInt(n, 10, 32); err == nil && m >= 0 {
			m32 := int32(m)
			out.MaxRetries = &m32
		} else {
			t.warn(s.Name, "restart", "invalid retry count %q", n)
		}
	}
	if out.Lifecycle == v1alpha1.LongRunning && (policy == defaults.RestartNo || policy == defaults.RestartOnFailure) && s.Restart != "" {
		t.warn(s.Name, "restart", "%q: a long-running service is restarted by Kubernetes whenever it exits", s.Restart)
	}
}

func (t *translator) resources(out *v1alpha1.ServiceSpec, s types.ServiceConfig) {
	limits := map[string]resource.Quantity{}
	requests := map[string]resource.Quantity{}
	cpu := func(v float64) resource.Quantity {
		return *resource.NewMilliQuantity(int64(math.Round(v*1000)), resource.DecimalSI)
	}
	mem := func(b types.UnitBytes) resource.Quantity {
		return *resource.NewQuantity(int64(b), resource.BinarySI)
	}
	if s.Deploy != nil {
		if l := s.Deploy.Resources.Limits; l != nil {
			if l.NanoCPUs > 0 {
				limits["cpu"] = cpu(float64(l.NanoCPUs))
			}
			if l.MemoryBytes > 0 {
				limits["memory"] = mem(l.MemoryBytes)
			}
			t.resourceExtras(s.Name, "deploy.resources.limits", l, limits)
		}
		if r := s.Deploy.Resources.Reservations; r != nil {
			if r.NanoCPUs > 0 {
				requests["cpu"] = cpu(float64(r.NanoCPUs))
			}
			if r.MemoryBytes > 0 {
				requests["memory"] = mem(r.MemoryBytes)
			}
			t.resourceExtras(s.Name, "deploy.resources.reservations", r, limits)
		}
	}
	if _, ok := limits["cpu"]; !ok {
		if s.CPUS > 0 {
			limits["cpu"] = cpu(float64(s.CPUS))
		} else if s.CPUQuota > 0 {
			period := s.CPUPeriod
			if period <= 0 {
				period = 100000
			}
			limits["cpu"] = cpu(float64(s.CPUQuota) / float64(period))
		}
	}
	if s.CPUPeriod > 0 && s.CPUQuota <= 0 {
		t.warn(s.Name, "cpu_period", "ignored without cpu_quota")
	}
	if _, ok := limits["memory"]; !ok && s.MemLimit > 0 {
		limits["memory"] = mem(s.MemLimit)
	}
	if _, ok := requests["memory"]; !ok && s.MemReservation > 0 {
		requests["memory"] = mem(s.MemReservation)
	}
	if s.CPUShares > 0 {
		if _, ok := requests["cpu"]; !ok {
			requests["cpu"] = cpu(float64(s.CPUShares) / 1024)
			t.warn(s.Name, "cpu_shares", "approximated as a CPU request of %s", ptr(requests["cpu"]).String())
		} else {
			t.warn(s.Name, "cpu_shares", "ignored: deploy.resources.reservations.cpus is set")
		}
	}
	for _, g := range s.Gpus {
		t.gpu(s.Name, "gpus", g, limits)
	}
	// Kubernetes requires requests <= limits
	for k, r := range requests {
		if l, ok := limits[k]; ok && r.Cmp(l) > 0 {
			t.warn(s.Name, "resources", "the %s reservation %s exceeds the limit %s; the request is lowered to the limit", k, r.String(), l.String())
			requests[k] = l
		}
	}
	if len(limits) == 0 && len(requests) == 0 {
		return
	}
	out.Resources = &v1alpha1.Resources{}
	if len(limits) > 0 {
		out.Resources.Limits = limits
	}
	if len(requests) > 0 {
		out.Resources.Requests = requests
	}
}

func ptr[T any](v T) *T { return &v }

func (t *translator) resourceExtras(service, key string, r *types.Resource, limits map[string]resource.Quantity) {
	if r.Pids > 0 {
		t.warn(service, key+".pids", "no per-pod pids limit on Kubernetes; ignored")
	}
	for _, d := range r.Devices {
		t.gpu(service, key+".devices", d, limits)
	}
	if len(r.GenericResources) > 0 {
		t.warn(service, key+".generic_resources", "not supported; ignored")
	}
}

func (t *translator) gpu(service, key string, d types.DeviceRequest, limits map[string]resource.Quantity) {
	isGPU := len(d.Capabilities) == 0 && key == "gpus"
	for _, c := range d.Capabilities {
		if c == "gpu" {
			isGPU = true
		}
	}
	if !isGPU || (d.Driver != "" && d.Driver != "nvidia") {
		t.warn(service, key, "devices %v are not supported; ignored", d.Capabilities)
		return
	}
	count := int64(d.Count)
	if len(d.IDs) > 0 {
		count = int64(len(d.IDs))
		t.warn(service, key, "device_ids cannot be chosen on Kubernetes; %d GPU(s) requested", count)
	}
	if count < 0 {
		count = 1
		t.warn(service, key, "count \"all\" cannot be expressed on Kubernetes; 1 GPU requested")
	}
	if count == 0 {
		count = 1
	}
	limits["nvidia.com/gpu"] = *resource.NewQuantity(count, resource.DecimalSI)
}

func (t *translator) hosts(out *v1alpha1.ServiceSpec, s types.ServiceConfig) {
	for _, host := range sortedKeys(s.ExtraHosts) {
		ips := append([]string{}, s.ExtraHosts[host]...)
		sort.Strings(ips)
		for _, ip := range ips {
			if ip == "host-gateway" {
				t.warn(s.Name, "extra_hosts", "%s=host-gateway: the host machine is not reachable from the cluster that way; left out", host)
				continue
			}
			out.ExtraHosts = append(out.ExtraHosts, v1alpha1.HostEntry{Hostname: host, IP: ip})
		}
	}
	// An empty string is a valid value that adds nothing (`dns_search: ""` is docker's "no search
	// domains"; the cluster's stay, for the service names): left out.
	dns, search, opts := nonEmpty(s.DNS), nonEmpty(s.DNSSearch), nonEmpty(s.DNSOpts)
	if len(dns) > 0 || len(search) > 0 || len(opts) > 0 {
		out.DNS = &v1alpha1.DNSSpec{Nameservers: dns, Searches: search, Options: opts}
	}
	for _, l := range s.ExternalLinks {
		t.warn(s.Name, "external_links", "%q: containers outside the project are not reachable; left out", l)
	}
}

// safeSysctls are the sysctls the kubelet allows without --allowed-unsafe-sysctls.
var safeSysctls = map[string]bool{
	"kernel.shm_rmid_forced": true, "net.ipv4.ip_local_port_range": true, "net.ipv4.tcp_syncookies": true,
	"net.ipv4.ping_group_range": true, "net.ipv4.ip_unprivileged_port_start": true,
	"net.ipv4.ip_local_reserved_ports": true, "net.ipv4.tcp_keepalive_time": true,
	"net.ipv4.tcp_fin_timeout": true, "net.ipv4.tcp_keepalive_intvl": true, "net.ipv4.tcp_keepalive_probes": true,
}

func (t *translator) security(out *v1alpha1.ServiceSpec, s types.ServiceConfig) error {
	sec := v1alpha1.SecuritySpec{Privileged: s.Privileged, ReadOnlyRootFilesystem: s.ReadOnly}
	caps := func(key string, in []string) ([]string, error) {
		var o []string
		for _, c := range in {
			if strings.TrimSpace(c) == "" {
				// as docker's engine: "invalid CapAdd: unknown capability: \"CAP_\""
				return nil, t.errorf(s.Name, key, "%q is not a capability", c)
			}
			o = append(o, strings.TrimPrefix(strings.ToUpper(c), "CAP_"))
		}
		sort.Strings(o)
		return o, nil
	}
	var err error
	if sec.CapAdd, err = caps("cap_add", s.CapAdd); err != nil {
		return err
	}
	if sec.CapDrop, err = caps("cap_drop", s.CapDrop); err != nil {
		return err
	}
	for _, o := range s.SecurityOpt {
		k, v, _ := strings.Cut(strings.ReplaceAll(o, "=", ":"), ":")
		switch {
		case k == "no-new-privileges" && (v == "" || v == "true"):
			sec.NoNewPrivileges = true
		case k == "no-new-privileges":
		default:
			t.warn(s.Name, "security_opt", "%q is not supported; ignored", o)
		}
	}
	for _, g := range s.GroupAdd {
		n, err := strconv.ParseInt(g, 10, 64)
		if err != nil {
			t.warn(s.Name, "group_add", "group %q is a name; Kubernetes needs a numeric gid; left out", g)
			continue
		}
		sec.SupplementalGroups = append(sec.SupplementalGroups, n)
	}
	if len(s.Sysctls) > 0 {
		sec.Sysctls = map[string]string{}
		for _, k := range sortedKeys(s.Sysctls) {
			if k == "" {
				// runc refuses it too (not a namespaced sysctl)
				return t.errorf(s.Name, "sysctls", "empty sysctl name")
			}
			sec.Sysctls[k] = s.Sysctls[k]
			if !safeSysctls[k] {
				t.warn(s.Name, "sysctls", "%s is not a safe sysctl: the node's kubelet must allow it (--allowed-unsafe-sysctls)", k)
			}
		}
	}
	if sec.Privileged || sec.ReadOnlyRootFilesystem || sec.NoNewPrivileges || len(sec.CapAdd) > 0 || len(sec.CapDrop) > 0 ||
		len(sec.SupplementalGroups) > 0 || len(sec.Sysctls) > 0 {
		out.Security = &sec
	}
	return nil
}

func (t *translator) network(out *v1alpha1.ServiceSpec, s types.ServiceConfig) {
	switch m := s.NetworkMode; {
	case m == "" || m == "bridge" || m == "default":
	case m == "host":
		out.HostNetwork = true
		t.warn(s.Name, "network_mode", "host: the pod uses its node's network, not your machine's")
	case m == "none":
		t.warn(s.Name, "network_mode", "none is not supported: the pod has the cluster network")
	case strings.HasPrefix(m, types.ServicePrefix), strings.HasPrefix(m, types.ContainerPrefix):
		t.warn(s.Name, "network_mode", "%q is not supported: the service runs in its own pod with its own network", m)
	default:
		t.warn(s.Name, "network_mode", "%q is not supported: the pod has the cluster network", m)
	}
	if s.Net != "" {
		t.warn(s.Name, "net", "obsolete key %q ignored", s.Net)
	}
	for _, n := range sortedKeys(s.Networks) {
		c := s.Networks[n]
		if c == nil {
			continue
		}
		if c.Ipv4Address != "" || c.Ipv6Address != "" || len(c.LinkLocalIPs) > 0 {
			t.warn(s.Name, "networks."+n, "fixed IP addresses are not supported: pod IPs are dynamic; use the service name")
		}
		if c.MacAddress != "" {
			t.warn(s.Name, "networks."+n+".mac_address", "not supported; ignored")
		}
		if len(c.DriverOpts) > 0 || c.InterfaceName != "" || c.GatewayPriority != 0 || c.Priority != 0 {
			t.warn(s.Name, "networks."+n, "driver_opts, interface_name, gw_priority and priority are not supported; ignored")
		}
	}
}

// aliases collects further DNS names: network aliases, links aliases, container_name.
func (t *translator) aliases(out *v1alpha1.ServiceSpec, s types.ServiceConfig, taken map[string]string) {
	seen := map[string]bool{}
	var cands []struct{ alias, key string }
	add := func(a, key string) {
		if a == "" || a == s.Name || seen[a] {
			return
		}
		seen[a] = true
		cands = append(cands, struct{ alias, key string }{a, key})
	}
	for _, n := range sortedKeys(s.Networks) {
		if c := s.Networks[n]; c != nil {
			for _, a := range c.Aliases {
				add(a, "networks."+n+".aliases")
			}
		}
	}
	for _, a := range t.linkAliases[s.Name] {
		add(a, "links")
	}
	add(s.ContainerName, "container_name")
	for _, l := range s.Links {
		target, _, _ := strings.Cut(l, ":")
		if _, ok := t.p.Services[target]; !ok {
			t.warn(s.Name, "links", "%q is not a service of the project; left out", target)
		}
	}
	for _, c := range cands {
		if _, isService := t.p.Services[c.alias]; isService {
			t.warn(s.Name, c.key, "alias %q is also a service name; it resolves to that service", c.alias)
			continue
		}
		if owner, ok := taken[c.alias]; ok && owner == s.Name {
			continue // its own Service name already
		}
		if owner, ok := taken[c.alias]; ok {
			t.warn(s.Name, c.key, "alias %q is already an alias of %q; it resolves to %q only", c.alias, owner, owner)
			continue
		}
		taken[c.alias] = s.Name
		out.Aliases = append(out.Aliases, c.alias)
	}
	sort.Strings(out.Aliases)
}

func (t *translator) labelsAndAnnotations(out *v1alpha1.ServiceSpec, s types.ServiceConfig) error {
	for _, k := range sortedKeys(s.Labels) {
		v := s.Labels[k]
		if k == "" {
			// docker's engine keeps it; Kubernetes has no label or annotation without a name
			t.warn(s.Name, "labels", "an empty label name (value %q): left out", v)
			continue
		}
		if len(validation.IsQualifiedName(k)) == 0 && len(validation.IsValidLabelValue(v)) == 0 && !strings.HasPrefix(k, "ergomake.dev/") {
			if out.Labels == nil {
				out.Labels = map[string]string{}
			}
			out.Labels[k] = v
			continue
		}
		if out.Annotations == nil {
			out.Annotations = map[string]string{}
		}
		out.Annotations[k] = v
	}
	for _, k := range sortedKeys(s.Annotations) {
		if k == "" {
			// as docker's engine: "the empty string is not permitted as an annotation key"
			return t.errorf(s.Name, "annotations", "empty annotation key")
		}
		if out.Annotations == nil {
			out.Annotations = map[string]string{}
		}
		out.Annotations[k] = s.Annotations[k]
	}
	return nil
}

func (t *translator) deploy(s types.ServiceConfig) {
	d := s.Deploy
	if d == nil {
		return
	}
	switch d.Mode {
	case "", "replicated", "replicated-job":
	case "global", "global-job":
		t.warn(s.Name, "deploy.mode", "%s: runs as many replicas as asked (one by default), not one per node", d.Mode)
	default:
		t.warn(s.Name, "deploy.mode", "unknown mode %q", d.Mode)
	}
	if len(d.Labels) > 0 {
		t.warn(s.Name, "deploy.labels", "not applied (they label the swarm service, not the containers)")
	}
	if d.UpdateConfig != nil {
		t.warn(s.Name, "deploy.update_config", "not supported; Kubernetes' rolling update defaults apply")
	}
	if d.RollbackConfig != nil {
		t.warn(s.Name, "deploy.rollback_config", "not supported; ignored")
	}
	if len(d.Placement.Constraints) > 0 || len(d.Placement.Preferences) > 0 || d.Placement.MaxReplicas > 0 {
		t.warn(s.Name, "deploy.placement", "not supported; pods go wherever the scheduler puts them")
	}
	if d.EndpointMode != "" && d.EndpointMode != "vip" {
		t.warn(s.Name, "deploy.endpoint_mode", "%q is not supported; the service gets a regular Service", d.EndpointMode)
	}
}

// unsupported reports every key that has no translation.
func (t *translator) unsupported(s types.ServiceConfig) {
	n := s.Name
	w := func(cond bool, key, msg string) {
		if cond {
			t.warn(n, key, "%s", msg)
		}
	}
	w(s.BlkioConfig != nil, "blkio_config", "no per-pod block I/O limits on Kubernetes; ignored")
	w(s.CgroupParent != "", "cgroup_parent", "not supported; ignored")
	w(s.Cgroup != "", "cgroup", "not supported; ignored")
	w(s.CPUCount != 0, "cpu_count", "not supported; use cpus")
	w(s.CPUPercent != 0, "cpu_percent", "not supported; use cpus")
	w(s.CPURTPeriod != 0, "cpu_rt_period", "not supported; ignored")
	w(s.CPURTRuntime != 0, "cpu_rt_runtime", "not supported; ignored")
	w(s.CPUSet != "", "cpuset", "not supported (needs the kubelet's static CPU manager); ignored")
	w(s.CredentialSpec != nil, "credential_spec", "Windows only; ignored")
	w(len(s.DeviceCgroupRules) > 0, "device_cgroup_rules", "not supported; ignored")
	w(len(s.Devices) > 0, "devices", "host devices are not available to pods; ignored")
	w(s.Init != nil && *s.Init, "init", "no init process is added on Kubernetes; ignored")
	w(s.Ipc != "", "ipc", "not supported; ignored")
	w(s.Isolation != "", "isolation", "Windows only; ignored")
	if s.Logging != nil && s.Logging.Driver != "" && s.Logging.Driver != "json-file" && s.Logging.Driver != "local" {
		t.warn(n, "logging", "driver %q is not used: logs go to the cluster's container logs", s.Logging.Driver)
	} else if s.Logging != nil && len(s.Logging.Options) > 0 {
		t.warn(n, "logging.options", "ignored: the cluster manages container logs")
	}
	w(s.LogDriver != "", "log_driver", "ignored: logs go to the cluster's container logs")
	w(len(s.LogOpt) > 0, "log_opt", "ignored: the cluster manages container logs")
	w(s.MacAddress != "", "mac_address", "not supported; ignored")
	w(s.MemSwapLimit != 0, "memswap_limit", "no swap limit on Kubernetes; ignored")
	w(s.MemSwappiness != 0, "mem_swappiness", "not supported; ignored")
	w(len(s.Models) > 0, "models", "AI models are not supported; ignored")
	w(s.OomKillDisable, "oom_kill_disable", "not supported; ignored")
	w(s.OomScoreAdj != 0, "oom_score_adj", "not supported; ignored")
	w(s.Pid != "", "pid", "not supported; ignored")
	w(s.PidsLimit != 0, "pids_limit", "no per-pod pids limit on Kubernetes; ignored")
	w(s.Runtime != "", "runtime", "not supported; the cluster's default runtime is used")
	w(s.StopSignal != "", "stop_signal", "not supported: pods are stopped with SIGTERM")
	w(len(s.StorageOpt) > 0, "storage_opt", "not supported; ignored")
	w(len(s.Ulimits) > 0, "ulimits", "no per-pod ulimits on Kubernetes; ignored")
	w(s.Umask != nil, "umask", "not supported; ignored")
	w(s.UseAPISocket, "use_api_socket", "the Docker API is not available in the cluster; ignored")
	w(s.UserNSMode != "" && s.UserNSMode != "host", "userns_mode", "not supported; ignored")
	w(s.Uts != "", "uts", "not supported; ignored")
	w(s.VolumeDriver != "", "volume_driver", "not supported; the cluster's default storage is used")
	w(len(s.VolumesFrom) > 0, "volumes_from", "not supported: mount the same named volumes instead")
	w(s.Provider != nil, "provider", "provider services are not supported; the service's image runs instead")
	w(len(s.PreStart) > 0, "pre_start", "not supported; ignored")
	w(len(s.PostStart) > 0, "post_start", "not supported; ignored")
	w(len(s.PreStop) > 0, "pre_stop", "not supported; ignored")
	w(s.Develop != nil, "develop", "compose watch is not supported; ignored")
}

// nonEmpty is list without its empty strings, nil when none is left.
func nonEmpty(list []string) []string {
	var out []string
	for _, s := range list {
		if strings.TrimSpace(s) != "" {
			out = append(out, s)
		}
	}
	return out
}
