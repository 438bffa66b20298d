package render

import (
	"fmt"
	"math"
	"net"
	"path"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"

	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// Compose's defaults, written out because Kubernetes' differ.
const (
	defaultHealthInterval   = 30 * time.Second
	defaultHealthTimeout    = 30 * time.Second
	defaultHealthRetries    = 3
	defaultStartInterval    = 5 * time.Second
	defaultStopGracePeriod  = 10 * time.Second
	defaultJobBackoffLimit  = 6
	shmVolumeName           = "dshm"
	shmPath                 = "/dev/shm"
	maxDNSNameservers       = 3
	maxDNSSearches          = 32
	maxDNSSearchChars       = 2048
	labelOS                 = "kubernetes.io/os"
	labelArch               = "kubernetes.io/arch"
	restartNo               = "no"
	restartAlways           = "always"
	restartOnFailure        = "on-failure"
	restartUnlessStopped    = "unless-stopped"
	defaultImagePullPolicy  = corev1.PullIfNotPresent
	maxTerminationGraceSecs = math.MaxInt32
)

// The rendered objects share no memory with the spec: callers hand them to clients that decode
// answers into them.
func copyQuantity(q *resource.Quantity) *resource.Quantity {
	if q == nil {
		return nil
	}
	c := q.DeepCopy()
	return &c
}

func copyPtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

func intOrPort(p int32) intstr.IntOrString { return intstr.FromInt32(p) }

// escape doubles every '$', since Kubernetes expands $(VAR) in command, args, env values and exec
// probe commands, and compose has interpolated everything already ($$ comes out as $).
func escape(s string) string { return strings.ReplaceAll(s, "$", "$$") }

func escapeAll(in []string) []string {
	if in == nil {
		return nil
	}
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = escape(s)
	}
	return out
}

// renderPod builds the pod template of svc (without hostAliases from ClusterIPs, added later).
// It returns nil when svc has errors.
func renderPod(env *v1alpha1.ErgomakeEnv, svc *v1alpha1.ServiceSpec, volumes map[string]*v1alpha1.VolumeSpec, e *errs) *corev1.PodTemplateSpec {
	before := len(*e)
	name := svc.Name
	c := corev1.Container{
		Name:            svc.ServiceName,
		Image:           svc.Image,
		ImagePullPolicy: defaultImagePullPolicy,
		WorkingDir:      svc.WorkingDir,
		TTY:             svc.Tty,
		Stdin:           svc.StdinOpen,
	}
	if svc.Image == "" {
		e.add(name, "image", "the service has no image")
	}
	switch p := corev1.PullPolicy(svc.ImagePullPolicy); p {
	case "":
	case corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
		c.ImagePullPolicy = p
	default:
		e.add(name, "imagePullPolicy", "unknown pull policy %q (want Always, IfNotPresent or Never)", svc.ImagePullPolicy)
	}
	if svc.WorkingDir != "" && !path.IsAbs(svc.WorkingDir) {
		e.add(name, "workingDir", "%q is not an absolute path", svc.WorkingDir)
	}

	// Entrypoint -> command, command -> args. Kubernetes, like Docker, ignores the image's CMD when
	// a command is given without args, which is what ResetCommand asks for.
	switch {
	case len(svc.Entrypoint) > 0:
		c.Command = escapeAll(svc.Entrypoint)
		if len(svc.Command) > 0 {
			c.Args = escapeAll(svc.Command)
		}
	case svc.Entrypoint != nil && len(svc.Command) > 0:
		// entrypoint reset to nothing: the command is the whole argv.
		c.Command = escapeAll(svc.Command)
	case len(svc.Command) > 0:
		c.Args = escapeAll(svc.Command)
	}

	envNames := map[string]bool{}
	for i, v := range svc.Environment {
		field := fmt.Sprintf("environment[%d]", i)
		switch {
		case v.Name == "":
			e.add(name, field, "empty variable name")
			continue
		case strings.Contains(v.Name, "="):
			e.add(name, field, "variable name %q contains '='", v.Name)
			continue
		case envNames[v.Name]:
			e.add(name, field, "variable %q is set twice", v.Name)
			continue
		}
		for _, msg := range validation.IsRelaxedEnvVarName(v.Name) {
			e.add(name, field, "invalid variable name %q: %s", v.Name, msg)
		}
		envNames[v.Name] = true
		c.Env = append(c.Env, corev1.EnvVar{Name: v.Name, Value: escape(v.Value)})
	}

	for _, p := range servicePorts(svc) {
		cp := corev1.ContainerPort{ContainerPort: p.Target, Protocol: corev1.Protocol(p.Protocol)}
		// Container port names are IANA service names (at most 15 characters); a longer Service
		// port name simply leaves the container port unnamed (Services target the number).
		if len(validation.IsValidPortName(p.Name)) == 0 {
			cp.Name = p.Name
		}
		c.Ports = append(c.Ports, cp)
	}
	validatePorts(svc, e)

	if hc := svc.Healthcheck; hc != nil {
		c.ReadinessProbe, c.StartupProbe = probes(name, hc, e)
	}

	if r := svc.Resources; r != nil {
		c.Resources = resources(name, r, e)
	}

	pod := corev1.PodSpec{
		RestartPolicy:                 corev1.RestartPolicyAlways,
		TerminationGracePeriodSeconds: ptr.To(int64(defaultStopGracePeriod / time.Second)),
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

	c.SecurityContext, pod.SecurityContext = securityContexts(name, svc, e)

	mounts, vols := volumeMounts(svc, volumes, e)
	c.VolumeMounts, pod.Volumes = mounts, vols

	pod.Containers = []corev1.Container{c}

	tmpl := &corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{}},
		Spec:       pod,
	}
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
		tmpl.Labels[k] = v
	}
	// The selector labels always win over the service's own labels.
	for k, v := range SelectorLabels(env, svc.Name) {
		tmpl.Labels[k] = v
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
		if k == v1alpha1.AnnotationSpecHash {
			continue
		}
		setAnnotation(&tmpl.ObjectMeta, k, v)
	}
	if len(*e) > before {
		return nil
	}
	return tmpl
}

func validatePorts(svc *v1alpha1.ServiceSpec, e *errs) {
	check := func(kind string, ports []v1alpha1.PortSpec) {
		for i, p := range ports {
			field := fmt.Sprintf("%s[%d]", kind, i)
			if p.Target < 1 || p.Target > 65535 {
				e.add(svc.Name, field+".target", "port %d is out of range 1-65535", p.Target)
			}
			switch protocol(p.Protocol) {
			case "TCP", "UDP", "SCTP":
			default:
				e.add(svc.Name, field+".protocol", "unknown protocol %q (want TCP, UDP or SCTP)", p.Protocol)
			}
			if p.Name != "" {
				if msgs := validation.IsDNS1123Label(p.Name); len(msgs) > 0 {
					e.add(svc.Name, field+".name", "%q is not a valid port name: %s", p.Name, strings.Join(msgs, "; "))
				}
			}
			if p.AppProtocol != "" {
				if msgs := validation.IsQualifiedName(p.AppProtocol); len(msgs) > 0 {
					e.add(svc.Name, field+".appProtocol", "%q is not a valid application protocol: %s", p.AppProtocol, strings.Join(msgs, "; "))
				}
			}
		}
	}
	check("ports", svc.Ports)
	check("expose", svc.Expose)
	names := map[string]int32{}
	for _, p := range servicePorts(svc) {
		if other, ok := names[p.Name]; ok {
			e.add(svc.Name, "ports", "port name %q is used by both port %d and port %d", p.Name, other, p.Target)
			continue
		}
		names[p.Name] = p.Target
	}
}

// ceilSeconds is d in whole seconds, rounded up, at least 1 for a positive d, at most max.
func ceilSeconds(d time.Duration, max int64) int64 {
	if d <= 0 {
		return 0
	}
	s := int64((d + time.Second - 1) / time.Second)
	if s > max {
		return max
	}
	return s
}

func probes(name string, hc *v1alpha1.Healthcheck, e *errs) (readiness, startup *corev1.Probe) {
	if len(hc.Exec) == 0 || hc.Exec[0] == "" {
		e.add(name, "healthcheck.exec", "the healthcheck has no command")
		return nil, nil
	}
	dur := func(field string, d *metav1.Duration, def time.Duration) time.Duration {
		switch {
		case d == nil || d.Duration == 0:
			return def
		case d.Duration < 0:
			e.add(name, "healthcheck."+field, "must not be negative, not %s", d.Duration)
			return def
		}
		return d.Duration
	}
	interval := dur("interval", &hc.Interval, defaultHealthInterval)
	timeout := dur("timeout", &hc.Timeout, defaultHealthTimeout)
	retries := hc.Retries
	switch {
	case retries < 0:
		e.add(name, "healthcheck.retries", "must not be negative, not %d", retries)
	case retries == 0:
		retries = defaultHealthRetries
	}
	handler := corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: escapeAll(hc.Exec)}}
	readiness = &corev1.Probe{
		ProbeHandler:     handler,
		PeriodSeconds:    int32(ceilSeconds(interval, math.MaxInt32)),
		TimeoutSeconds:   int32(ceilSeconds(timeout, math.MaxInt32)),
		FailureThreshold: retries,
		SuccessThreshold: 1,
	}
	if hc.StartPeriod != nil && hc.StartPeriod.Duration != 0 {
		if period := dur("startPeriod", hc.StartPeriod, 0); period <= 0 {
			return readiness, nil
		}
		every := dur("startInterval", hc.StartInterval, defaultStartInterval)
		// During the start period Docker checks every start_interval and the first success makes
		// the container healthy; failures never stop it. A startup probe checks at that pace, but
		// the kubelet kills the container when it runs out of failures, which Docker never does
		// (and which would interrupt a slow first start, e.g. a database initialising its data
		// directory, over and over). So it gets no practical limit: a service that never passes
		// stays not ready, as it stays unhealthy under Docker.
		startup = &corev1.Probe{
			ProbeHandler:     handler,
			PeriodSeconds:    int32(ceilSeconds(every, math.MaxInt32)),
			TimeoutSeconds:   readiness.TimeoutSeconds,
			FailureThreshold: math.MaxInt32,
			SuccessThreshold: 1,
		}
	}
	return readiness, startup
}

func isStandardResource(n string) bool {
	switch corev1.ResourceName(n) {
	case corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage:
		return true
	}
	return strings.HasPrefix(n, corev1.ResourceHugePagesPrefix)
}

func resources(name string, r *v1alpha1.Resources, e *errs) corev1.ResourceRequirements {
	conv := func(field string, in map[string]resource.Quantity) corev1.ResourceList {
		if len(in) == 0 {
			return nil
		}
		out := corev1.ResourceList{}
		for k, q := range in {
			if !isStandardResource(k) && (!strings.Contains(k, "/") || len(validation.IsQualifiedName(k)) > 0) {
				e.add(name, "resources."+field, "unknown resource %q (want cpu, memory, ephemeral-storage, hugepages-<size> or a domain-qualified name like nvidia.com/gpu)", k)
				continue
			}
			if q.Sign() < 0 {
				e.add(name, "resources."+field, "%s must not be negative, not %s", k, q.String())
				continue
			}
			out[corev1.ResourceName(k)] = q.DeepCopy()
		}
		return out
	}
	req := corev1.ResourceRequirements{Limits: conv("limits", r.Limits), Requests: conv("requests", r.Requests)}
	keys := make([]string, 0, len(req.Requests))
	for k := range req.Requests {
		keys = append(keys, string(k))
	}
	sort.Strings(keys)
	for _, k := range keys {
		q := req.Requests[corev1.ResourceName(k)]
		lim, hasLimit := req.Limits[corev1.ResourceName(k)]
		overcommit := k == string(corev1.ResourceCPU) || k == string(corev1.ResourceMemory) || k == string(corev1.ResourceEphemeralStorage)
		switch {
		case !overcommit && !hasLimit:
			e.add(name, "resources", "%s needs a limit (Kubernetes does not overcommit it)", k)
		case !overcommit && q.Cmp(lim) != 0:
			e.add(name, "resources", "the %s request %s must equal its limit %s (Kubernetes does not overcommit it)", k, q.String(), lim.String())
		case hasLimit && q.Cmp(lim) > 0:
			e.add(name, "resources", "the %s request %s exceeds its limit %s", k, q.String(), lim.String())
		}
	}
	hasHuge, hasCPUOrMemory := false, false
	for _, l := range []corev1.ResourceList{req.Limits, req.Requests} {
		for k := range l {
			hasHuge = hasHuge || strings.HasPrefix(string(k), corev1.ResourceHugePagesPrefix)
			hasCPUOrMemory = hasCPUOrMemory || k == corev1.ResourceCPU || k == corev1.ResourceMemory
		}
	}
	if hasHuge && !hasCPUOrMemory {
		e.add(name, "resources", "hugepages need a cpu or memory limit or request too")
	}
	return req
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

func validSubPath(p string) bool {
	if p == "" {
		return true
	}
	if path.IsAbs(p) {
		return false
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == ".." {
			return false
		}
	}
	return true
}

// volumeMounts builds the container mounts and pod volumes of svc, in spec order: volumes,
// secrets, configs, then /dev/shm.
func volumeMounts(svc *v1alpha1.ServiceSpec, volumes map[string]*v1alpha1.VolumeSpec, e *errs) ([]corev1.VolumeMount, []corev1.Volume) {
	name := svc.Name
	var mounts []corev1.VolumeMount
	var vols []corev1.Volume
	alloc := nameAllocator{shmVolumeName: true}
	targets := map[string]string{}
	target := func(field, t string) bool {
		if !path.IsAbs(t) {
			e.add(name, field+".target", "%q is not an absolute path", t)
			return false
		}
		t = path.Clean(t)
		if other, ok := targets[t]; ok {
			e.add(name, field+".target", "%q is also the target of %s", t, other)
			return false
		}
		targets[t] = field
		return true
	}
	// Pod volumes shared by several mounts of the same source.
	byKey := map[string]string{}
	volumeFor := func(key, hint string, src corev1.VolumeSource) string {
		if n, ok := byKey[key]; ok {
			return n
		}
		n := alloc.name(hint)
		byKey[key] = n
		vols = append(vols, corev1.Volume{Name: n, VolumeSource: src})
		return n
	}

	for i, m := range svc.Volumes {
		field := fmt.Sprintf("volumes[%d]", i)
		if !target(field, m.Target) {
			continue
		}
		if !validSubPath(m.SubPath) {
			e.add(name, field+".subPath", "%q must be a relative path without '..'", m.SubPath)
			continue
		}
		if m.SizeLimit != nil && m.SizeLimit.Sign() < 0 {
			e.add(name, field+".sizeLimit", "must not be negative, not %s", m.SizeLimit.String())
			continue
		}
		vm := corev1.VolumeMount{MountPath: m.Target, SubPath: m.SubPath, ReadOnly: m.ReadOnly}
		switch m.Type {
		case v1alpha1.MountVolume:
			v := volumes[m.Source]
			if v == nil {
				e.add(name, field+".source", "volume %q is not declared in the project's volumes", m.Source)
				continue
			}
			if v.EmptyDir {
				vm.Name = volumeFor("volume/"+v.Name, v.Name, corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: copyQuantity(v.Size)}})
			} else {
				vm.Name = volumeFor("volume/"+v.Name, v.Name, corev1.VolumeSource{
					PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: v.ClaimName},
				})
			}
		case v1alpha1.MountConfigMap:
			if msgs := validation.IsDNS1123Subdomain(m.Source); len(msgs) > 0 {
				e.add(name, field+".source", "%q is not a valid ConfigMap name: %s", m.Source, strings.Join(msgs, "; "))
				continue
			}
			items, ok := keyPaths(name, field, m.Items, e)
			if !ok {
				continue
			}
			src := corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: m.Source},
				Items:                items,
			}}
			// One pod volume per mount: items differ between mounts of one ConfigMap.
			vm.Name = volumeFor(fmt.Sprintf("configMap/%d", i), m.Source, src)
		case v1alpha1.MountTmpfs:
			vm.Name = volumeFor(fmt.Sprintf("tmpfs/%d", i), "tmpfs-"+m.Target, corev1.VolumeSource{
				EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: copyQuantity(m.SizeLimit)},
			})
		case v1alpha1.MountEmptyDir:
			vm.Name = volumeFor(fmt.Sprintf("emptyDir/%d", i), "anon-"+m.Target, corev1.VolumeSource{
				EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: copyQuantity(m.SizeLimit)},
			})
		case v1alpha1.MountHostPath:
			if !path.IsAbs(m.Source) {
				e.add(name, field+".source", "host path %q is not absolute", m.Source)
				continue
			}
			vm.Name = volumeFor("hostPath/"+path.Clean(m.Source), "host-"+m.Source, corev1.VolumeSource{
				HostPath: &corev1.HostPathVolumeSource{Path: m.Source},
			})
		default:
			e.add(name, field+".type", "unknown mount type %q (want volume, configMap, tmpfs, emptyDir or hostPath)", m.Type)
			continue
		}
		mounts = append(mounts, vm)
	}

	files := func(kind string, list []v1alpha1.FileMount, secret bool) {
		for i, f := range list {
			field := fmt.Sprintf("%s[%d]", kind, i)
			if f.Name != "" {
				field = fmt.Sprintf("%s %q", kind, f.Name)
			}
			if !target(field, f.Target) {
				continue
			}
			if msgs := validation.IsDNS1123Subdomain(f.Object); len(msgs) > 0 {
				e.add(name, field+".object", "%q is not a valid object name: %s", f.Object, strings.Join(msgs, "; "))
				continue
			}
			if msgs := validation.IsConfigMapKey(f.Key); len(msgs) > 0 {
				e.add(name, field+".key", "%q is not a valid key: %s", f.Key, strings.Join(msgs, "; "))
				continue
			}
			if f.Mode != nil && (*f.Mode < 0 || *f.Mode > 0o777) {
				e.add(name, field+".mode", "%#o is not a file mode (0-0777)", *f.Mode)
				continue
			}
			base := path.Base(path.Clean(f.Target))
			items := []corev1.KeyToPath{{Key: f.Key, Path: base, Mode: copyPtr(f.Mode)}}
			var src corev1.VolumeSource
			hint := "config-" + f.Name
			if secret {
				hint = "secret-" + f.Name
				src.Secret = &corev1.SecretVolumeSource{SecretName: f.Object, Items: items}
			} else {
				src.ConfigMap = &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: f.Object}, Items: items}
			}
			vn := volumeFor(fmt.Sprintf("%s/%d", kind, i), hint, src)
			mounts = append(mounts, corev1.VolumeMount{Name: vn, MountPath: f.Target, SubPath: base, ReadOnly: true})
		}
	}
	files("secrets", svc.Secrets, true)
	files("configs", svc.Configs, false)

	if svc.ShmSize != nil {
		switch {
		case svc.ShmSize.Sign() <= 0:
			e.add(name, "shmSize", "must be positive, not %s", svc.ShmSize.String())
		case target("shmSize", shmPath):
			size := svc.ShmSize.DeepCopy()
			vols = append(vols, corev1.Volume{Name: shmVolumeName, VolumeSource: corev1.VolumeSource{
				EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: &size},
			}})
			mounts = append(mounts, corev1.VolumeMount{Name: shmVolumeName, MountPath: shmPath})
		}
	}
	return mounts, vols
}

func keyPaths(name, field string, in []v1alpha1.KeyPath, e *errs) ([]corev1.KeyToPath, bool) {
	ok := true
	var out []corev1.KeyToPath
	for j, kp := range in {
		f := fmt.Sprintf("%s.items[%d]", field, j)
		if msgs := validation.IsConfigMapKey(kp.Key); len(msgs) > 0 {
			e.add(name, f+".key", "%q is not a valid key: %s", kp.Key, strings.Join(msgs, "; "))
			ok = false
		}
		if kp.Path == "" || !validSubPath(kp.Path) {
			e.add(name, f+".path", "%q must be a relative path without '..'", kp.Path)
			ok = false
		}
		if kp.Mode != nil && (*kp.Mode < 0 || *kp.Mode > 0o777) {
			e.add(name, f+".mode", "%#o is not a file mode (0-0777)", *kp.Mode)
			ok = false
		}
		out = append(out, corev1.KeyToPath{Key: kp.Key, Path: kp.Path, Mode: copyPtr(kp.Mode)})
	}
	return out, ok
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

// renderWorkload wraps the pod template in a Deployment or a Job.
func renderWorkload(env *v1alpha1.ErgomakeEnv, svc *v1alpha1.ServiceSpec, tmpl *corev1.PodTemplateSpec, r *Service, e *errs) {
	name := svc.Name
	switch svc.Restart {
	case "", restartNo, restartAlways, restartOnFailure, restartUnlessStopped:
	default:
		e.add(name, "restart", "unknown restart policy %q (want no, always, on-failure or unless-stopped)", svc.Restart)
		return
	}
	if svc.MaxRetries != nil && *svc.MaxRetries < 0 {
		e.add(name, "maxRetries", "must not be negative, not %d", *svc.MaxRetries)
		return
	}
	if svc.Replicas != nil && *svc.Replicas < 0 {
		e.add(name, "replicas", "must not be negative, not %d", *svc.Replicas)
		return
	}
	meta := objectMeta(env, svc.ServiceName, svc.Name)
	switch lifecycle(svc) {
	case v1alpha1.LongRunning:
		replicas := int32(1)
		if svc.Replicas != nil {
			replicas = *svc.Replicas
		}
		strategy := appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType}
		if svc.HostNetwork || mountsClaim(svc, env) {
			// A read-write-once claim (a database's data directory) or the node's ports cannot be
			// shared by the old and the new pod.
			strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
		}
		tmpl.Spec.RestartPolicy = corev1.RestartPolicyAlways
		r.Deployment = &appsv1.Deployment{
			TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
			ObjectMeta: meta,
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To(replicas),
				Selector: &metav1.LabelSelector{MatchLabels: SelectorLabels(env, svc.Name)},
				Template: *tmpl,
				Strategy: strategy,
			},
		}
	case v1alpha1.OneShot:
		// compose's restart "no" (the default) runs the container once; any other policy retries it.
		policy, backoff := corev1.RestartPolicyNever, int32(0)
		if svc.Restart != "" && svc.Restart != restartNo {
			policy, backoff = corev1.RestartPolicyOnFailure, defaultJobBackoffLimit
		}
		if svc.MaxRetries != nil {
			backoff = *svc.MaxRetries
		}
		tmpl.Spec.RestartPolicy = policy
		job := &batchv1.Job{
			TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
			ObjectMeta: meta,
			Spec: batchv1.JobSpec{
				BackoffLimit: ptr.To(backoff),
				Template:     *tmpl,
			},
		}
		if svc.Replicas != nil {
			job.Spec.Completions = ptr.To(*svc.Replicas)
			job.Spec.Parallelism = ptr.To(*svc.Replicas)
		}
		r.Job = job
	default:
		e.add(name, "lifecycle", "unknown lifecycle %q (want %s or %s)", svc.Lifecycle, v1alpha1.LongRunning, v1alpha1.OneShot)
	}
}

func mountsClaim(svc *v1alpha1.ServiceSpec, env *v1alpha1.ErgomakeEnv) bool {
	for _, m := range svc.Volumes {
		if m.Type != v1alpha1.MountVolume || m.ReadOnly {
			continue
		}
		for i := range env.Spec.Volumes {
			if v := &env.Spec.Volumes[i]; v.Name == m.Source && !v.EmptyDir {
				return true
			}
		}
	}
	return false
}
