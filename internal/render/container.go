package render

import (
	"fmt"
	"math"
	"path"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/ergomake/ergomake/internal/compose/defaults"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

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

// renderContainer builds the container of svc: image, command, environment, ports, probes and
// resources (its security context and mounts come with the pod's).
func renderContainer(svc *v1alpha1.ServiceSpec, e *errs) corev1.Container {
	name := svc.Name
	c := corev1.Container{
		Name:            svc.ServiceName,
		Image:           svc.Image,
		ImagePullPolicy: corev1.PullPolicy(defaults.PullPolicy),
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

	envSecretOK := true
	if svc.EnvSecret != "" {
		if msgs := validation.IsDNS1123Subdomain(svc.EnvSecret); len(msgs) > 0 {
			e.add(name, "envSecret", "%q is not a valid Secret name: %s", svc.EnvSecret, strings.Join(msgs, "; "))
			envSecretOK = false
		}
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
		if v.SecretKey == "" {
			// written by hand: the value is in the spec
			c.Env = append(c.Env, corev1.EnvVar{Name: v.Name, Value: escape(v.Value)})
			continue
		}
		// The value is in the service's Secret (decision 15). Kubernetes does not expand $(VAR)
		// in values from a Secret, so they are not escaped: the container sees them as written.
		switch {
		case v.Value != "":
			e.add(name, field, "variable %q has both a value and a secretKey", v.Name)
			continue
		case svc.EnvSecret == "":
			e.add(name, field, "variable %q takes its value from key %q of the service's envSecret, but the service has none", v.Name, v.SecretKey)
			continue
		case !envSecretOK:
			continue
		}
		if msgs := validation.IsConfigMapKey(v.SecretKey); len(msgs) > 0 {
			e.add(name, field+".secretKey", "%q is not a valid Secret key: %s", v.SecretKey, strings.Join(msgs, "; "))
			continue
		}
		c.Env = append(c.Env, corev1.EnvVar{Name: v.Name, ValueFrom: &corev1.EnvVarSource{
			SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: svc.EnvSecret},
				Key:                  v.SecretKey,
			},
		}})
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

	return c
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
	interval := dur("interval", &hc.Interval, defaults.HealthInterval)
	timeout := dur("timeout", &hc.Timeout, defaults.HealthTimeout)
	retries := hc.Retries
	switch {
	case retries < 0:
		e.add(name, "healthcheck.retries", "must not be negative, not %d", retries)
	case retries == 0:
		retries = defaults.HealthRetries
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
		every := dur("startInterval", hc.StartInterval, defaults.HealthStartInterval)
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
