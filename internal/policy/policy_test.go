package policy

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	psaapi "k8s.io/pod-security-admission/api"
	psapolicy "k8s.io/pod-security-admission/policy"
	"k8s.io/utils/ptr"

	"github.com/ergomake/ergomake/internal/render"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

func TestParseLevel(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Level
		err  bool
	}{
		{"", Baseline, false},
		{"baseline", Baseline, false},
		{"Restricted", Restricted, false},
		{" privileged ", Privileged, false},
		{"root", "", true},
		{"default", "", true},
	} {
		got, err := ParseLevel(tc.in)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("ParseLevel(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestAllows(t *testing.T) {
	for _, tc := range []struct {
		ceiling, need Level
		want          bool
	}{
		{Privileged, Privileged, true}, {Privileged, Baseline, true}, {Privileged, Restricted, true},
		{Baseline, Privileged, false}, {Baseline, Baseline, true}, {Baseline, Restricted, true},
		{Restricted, Privileged, false}, {Restricted, Baseline, false}, {Restricted, Restricted, true},
	} {
		if got := tc.ceiling.Allows(tc.need); got != tc.want {
			t.Errorf("%s.Allows(%s) = %v, want %v", tc.ceiling, tc.need, got, tc.want)
		}
	}
}

// svc is a minimal valid service, changed by mod.
func svc(name string, mod func(s *v1alpha1.ServiceSpec)) v1alpha1.ServiceSpec {
	s := v1alpha1.ServiceSpec{Name: name, ServiceName: name, Image: "nginx"}
	if mod != nil {
		mod(&s)
	}
	return s
}

// checkCases are services and the violations (key=value needs level) expected at baseline and at
// restricted (none at privileged).
var checkCases = []struct {
	name                 string
	svc                  v1alpha1.ServiceSpec
	baseline, restricted []string
}{
	{name: "plain", svc: svc("web", nil)},
	{name: "non-root user", svc: svc("web", func(s *v1alpha1.ServiceSpec) { s.User = &v1alpha1.UserSpec{UID: 1000} })},
	{
		name:       "root user",
		svc:        svc("web", func(s *v1alpha1.ServiceSpec) { s.User = &v1alpha1.UserSpec{UID: 0, GID: ptr.To(int64(0))} }),
		restricted: []string{"user=0 baseline"},
	},
	{
		name:       "privileged",
		svc:        svc("web", func(s *v1alpha1.ServiceSpec) { s.Security = &v1alpha1.SecuritySpec{Privileged: true} }),
		baseline:   []string{"privileged= privileged"},
		restricted: []string{"privileged= privileged"},
	},
	{
		name:       "host network",
		svc:        svc("web", func(s *v1alpha1.ServiceSpec) { s.HostNetwork = true }),
		baseline:   []string{"network_mode=host privileged"},
		restricted: []string{"network_mode=host privileged"},
	},
	{
		name: "capabilities",
		svc: svc("web", func(s *v1alpha1.ServiceSpec) {
			s.Security = &v1alpha1.SecuritySpec{CapAdd: []string{"NET_BIND_SERVICE", "chown", "CAP_SYS_ADMIN", "NET_ADMIN", "SYS_ADMIN"}}
		}),
		baseline:   []string{"cap_add=SYS_ADMIN privileged", "cap_add=NET_ADMIN privileged"},
		restricted: []string{"cap_add=CHOWN baseline", "cap_add=SYS_ADMIN privileged", "cap_add=NET_ADMIN privileged"},
	},
	{
		name:       "cap_add ALL",
		svc:        svc("web", func(s *v1alpha1.ServiceSpec) { s.Security = &v1alpha1.SecuritySpec{CapAdd: []string{"ALL"}} }),
		baseline:   []string{"cap_add=ALL privileged"},
		restricted: []string{"cap_add=ALL privileged"},
	},
	{
		name: "cap_drop alone",
		svc:  svc("web", func(s *v1alpha1.ServiceSpec) { s.Security = &v1alpha1.SecuritySpec{CapDrop: []string{"NET_RAW"}} }),
	},
	{
		name: "sysctls",
		svc: svc("web", func(s *v1alpha1.ServiceSpec) {
			s.Security = &v1alpha1.SecuritySpec{Sysctls: map[string]string{"net.ipv4.ip_unprivileged_port_start": "0", "net.core.somaxconn": "1024"}}
		}),
		baseline:   []string{"sysctls=net.core.somaxconn privileged"},
		restricted: []string{"sysctls=net.core.somaxconn privileged"},
	},
	{
		name: "host path",
		svc: svc("web", func(s *v1alpha1.ServiceSpec) {
			s.Volumes = []v1alpha1.VolumeMount{
				{Type: v1alpha1.MountTmpfs, Target: "/tmp"},
				{Type: v1alpha1.MountHostPath, Source: "/var/run/docker.sock", Target: "/var/run/docker.sock"},
			}
		}),
		baseline:   []string{"volumes=/var/run/docker.sock privileged"},
		restricted: []string{"volumes=/var/run/docker.sock privileged"},
	},
	{
		name: "AppArmor",
		svc: svc("web", func(s *v1alpha1.ServiceSpec) {
			s.Annotations = map[string]string{appArmorPrefix + "web": "unconfined", appArmorPrefix + "other": "runtime/default"}
		}),
		baseline:   []string{"annotations=" + appArmorPrefix + "web privileged"},
		restricted: []string{"annotations=" + appArmorPrefix + "web privileged"},
	},
	{
		name: "everything allowed under restricted",
		svc: svc("web", func(s *v1alpha1.ServiceSpec) {
			s.User = &v1alpha1.UserSpec{UID: 101}
			s.Security = &v1alpha1.SecuritySpec{CapAdd: []string{"NET_BIND_SERVICE"}, CapDrop: []string{"ALL"}, NoNewPrivileges: true,
				Sysctls: map[string]string{"net.ipv4.ping_group_range": "0 1"}, ReadOnlyRootFilesystem: true}
			s.Volumes = []v1alpha1.VolumeMount{{Type: v1alpha1.MountEmptyDir, Target: "/data"}}
		}),
	},
}

func short(vs []Violation) []string {
	var out []string
	for _, v := range vs {
		out = append(out, fmt.Sprintf("%s=%s %s", v.Key, v.Value, v.Needs))
	}
	return out
}

func TestCheckEnv(t *testing.T) {
	for _, tc := range checkCases {
		spec := &v1alpha1.EnvSpec{Project: "p", Services: []v1alpha1.ServiceSpec{tc.svc}}
		for _, lv := range []struct {
			level Level
			want  []string
		}{{Privileged, nil}, {Baseline, tc.baseline}, {Restricted, tc.restricted}} {
			got := CheckEnv(spec, lv.level)
			if strings.Join(short(got), "; ") != strings.Join(lv.want, "; ") {
				t.Errorf("%s at %s: got %q, want %q", tc.name, lv.level, short(got), lv.want)
			}
			for _, v := range got {
				if v.Service != "web" || v.Ceiling != lv.level || lv.level.Allows(v.Needs) || !strings.HasPrefix(v.Field, "spec.services[web].") {
					t.Errorf("%s at %s: bad violation %+v", tc.name, lv.level, v)
				}
				if !strings.Contains(v.String(), "ergomake install --pod-security "+string(v.Needs)) {
					t.Errorf("%s: %q does not say what the admin can change", tc.name, v.String())
				}
			}
		}
	}
	if CheckEnv(nil, Restricted) != nil {
		t.Error("CheckEnv(nil) has violations")
	}
}

func TestViolationLines(t *testing.T) {
	v := Violation{Service: "web", Key: "privileged", Field: "spec.services[web].security.privileged", Message: "a privileged container",
		Needs: Privileged, Ceiling: Baseline, File: "/p/compose.yaml", Line: 4}
	want := `/p/compose.yaml:4: service "web": privileged: a privileged container exceeds the cluster's pod security ceiling "baseline"; ` +
		"a cluster admin can allow it with `ergomake install --pod-security privileged`"
	if got := v.String(); got != want {
		t.Errorf("String() =\n%s\nwant\n%s", got, want)
	}
	wantReason := `service "web": spec.services[web].security.privileged: a privileged container exceeds the pod security ceiling "baseline" (needs "privileged")`
	if got := v.Reason(); got != wantReason {
		t.Errorf("Reason() =\n%s\nwant\n%s", got, wantReason)
	}
}

// psa evaluates pods with the Pod Security Admission library of the API server.
var psa = func() interface {
	EvaluatePod(psaapi.LevelVersion, *metav1.ObjectMeta, *corev1.PodSpec) []psapolicy.CheckResult
} {
	e, err := psapolicy.NewEvaluator(psapolicy.DefaultChecks(), nil)
	if err != nil {
		panic(err)
	}
	return e
}()

// admitted renders spec, hardens it for level and returns what Pod Security Admission at level
// forbids in its pods ("" when it admits them all).
func admitted(spec v1alpha1.EnvSpec, level Level) (string, error) {
	env := &v1alpha1.ErgomakeEnv{Spec: spec}
	env.Name, env.Namespace = "p", "ns"
	objs, err := render.Render(env, render.Options{})
	if err != nil {
		return "", err
	}
	Harden(objs, level)
	var forbidden []string
	for _, s := range objs.Services {
		tmpl := &corev1.PodTemplateSpec{}
		switch {
		case s.Deployment != nil:
			tmpl = &s.Deployment.Spec.Template
		case s.Job != nil:
			tmpl = &s.Job.Spec.Template
		}
		lv := psaapi.LevelVersion{Level: psaapi.Level(level), Version: psaapi.LatestVersion()}
		for _, r := range psa.EvaluatePod(lv, &tmpl.ObjectMeta, &tmpl.Spec) {
			if !r.Allowed {
				forbidden = append(forbidden, s.Name+": "+r.ForbiddenReason+" ("+r.ForbiddenDetail+")")
			}
		}
	}
	return strings.Join(forbidden, "; "), nil
}

// TestAgreesWithPodSecurityAdmission: what CheckEnv lets through, the API server's Pod Security
// Admission admits once hardened; what CheckEnv refuses, it would refuse too.
func TestAgreesWithPodSecurityAdmission(t *testing.T) {
	for _, tc := range checkCases {
		spec := v1alpha1.EnvSpec{Project: "p", Services: []v1alpha1.ServiceSpec{tc.svc}}
		for _, level := range []Level{Privileged, Baseline, Restricted} {
			vs := CheckEnv(&spec, level)
			forbidden, err := admitted(spec, level)
			if err != nil {
				t.Fatalf("%s: render: %v", tc.name, err)
			}
			if len(vs) == 0 && forbidden != "" {
				t.Errorf("%s at %s: CheckEnv finds nothing, Pod Security Admission forbids %s", tc.name, level, forbidden)
			}
			if len(vs) > 0 && forbidden == "" {
				t.Errorf("%s at %s: CheckEnv finds %q, Pod Security Admission admits the pods", tc.name, level, short(vs))
			}
		}
	}
}

func TestHarden(t *testing.T) {
	pod := corev1.PodSpec{Containers: []corev1.Container{{Name: "c", SecurityContext: &corev1.SecurityContext{
		Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_BIND_SERVICE"}, Drop: []corev1.Capability{"NET_RAW"}},
	}}}}
	HardenPod(&pod)
	HardenPod(&pod) // twice is once
	sc := pod.Containers[0].SecurityContext
	if got := fmt.Sprint(sc.Capabilities.Drop); got != "[NET_RAW ALL]" {
		t.Errorf("drop = %s, want [NET_RAW ALL]", got)
	}
	if fmt.Sprint(sc.Capabilities.Add) != "[NET_BIND_SERVICE]" || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("container security context = %+v", sc)
	}
	psc := pod.SecurityContext
	if psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault || !*psc.RunAsNonRoot {
		t.Errorf("pod security context = %+v", psc)
	}

	// The spec hash of a hardened workload differs from the unhardened one, everywhere.
	env0 := &v1alpha1.ErgomakeEnv{Spec: v1alpha1.EnvSpec{Project: "p", Services: []v1alpha1.ServiceSpec{svc("web", nil)}}}
	env0.Name, env0.Namespace = "p", "ns"
	objs, err := render.Render(env0, render.Options{})
	if err != nil {
		t.Fatal(err)
	}
	plain := objs.Services[0].SpecHash
	Harden(objs, Restricted)
	s := objs.Services[0]
	if s.SpecHash == plain || s.Deployment.Annotations[v1alpha1.AnnotationSpecHash] != s.SpecHash ||
		s.Deployment.Spec.Template.Annotations[v1alpha1.AnnotationSpecHash] != s.SpecHash {
		t.Errorf("spec hash %q (unhardened %q), workload %q, template %q", s.SpecHash, plain,
			s.Deployment.Annotations[v1alpha1.AnnotationSpecHash], s.Deployment.Spec.Template.Annotations[v1alpha1.AnnotationSpecHash])
	}

	// Only restricted hardens.
	env := &v1alpha1.ErgomakeEnv{Spec: v1alpha1.EnvSpec{Project: "p", Services: []v1alpha1.ServiceSpec{svc("web", nil)}}}
	env.Name, env.Namespace = "p", "ns"
	for _, level := range []Level{Privileged, Baseline} {
		objs, err := render.Render(env, render.Options{})
		if err != nil {
			t.Fatal(err)
		}
		Harden(objs, level)
		p := objs.Services[0].Deployment.Spec.Template.Spec
		if p.SecurityContext != nil || p.Containers[0].SecurityContext != nil {
			t.Errorf("%s: the pod was changed: %+v %+v", level, p.SecurityContext, p.Containers[0].SecurityContext)
		}
	}
	Harden(nil, Restricted)
}
