package render

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"

	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// baseEnv is a small valid environment: web (port 8080) depends on db (port 5432, volume data).
func baseEnv() *v1alpha1.ErgomakeEnv {
	return &v1alpha1.ErgomakeEnv{
		ObjectMeta: metav1.ObjectMeta{Name: "proj", Namespace: "ergomake-proj"},
		Spec: v1alpha1.EnvSpec{
			Project: "proj",
			Volumes: []v1alpha1.VolumeSpec{{Name: "data", ClaimName: "proj-data"}},
			Services: []v1alpha1.ServiceSpec{
				{
					Name: "db", ServiceName: "db", Image: "postgres:16",
					Ports:   []v1alpha1.PortSpec{{Name: "tcp-5432", Target: 5432}},
					Volumes: []v1alpha1.VolumeMount{{Type: v1alpha1.MountVolume, Source: "data", Target: "/var/lib/postgresql/data"}},
				},
				{
					Name: "web", ServiceName: "web", Image: "example/web:1",
					Ports:     []v1alpha1.PortSpec{{Name: "tcp-8080", Target: 8080, Published: "8080", Publish: true}},
					DependsOn: []v1alpha1.Dependency{{Service: "db", Condition: v1alpha1.ServiceStarted, Required: true}},
				},
			},
		},
	}
}

func svc(env *v1alpha1.ErgomakeEnv, name string) *v1alpha1.ServiceSpec {
	for i := range env.Spec.Services {
		if env.Spec.Services[i].Name == name {
			return &env.Spec.Services[i]
		}
	}
	panic("no service " + name)
}

func mustRender(t *testing.T, env *v1alpha1.ErgomakeEnv, opts Options) *Objects {
	t.Helper()
	objs, err := Render(env, opts)
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	return objs
}

func q(s string) *resource.Quantity { v := resource.MustParse(s); return &v }

func TestRenderErrors(t *testing.T) {
	web := func(f func(s *v1alpha1.ServiceSpec)) func(*v1alpha1.ErgomakeEnv) {
		return func(env *v1alpha1.ErgomakeEnv) { f(svc(env, "web")) }
	}
	tests := []struct {
		name    string
		mutate  func(env *v1alpha1.ErgomakeEnv)
		service string // the service the first error names
		want    string // substring of the error
	}{
		{"no namespace", func(env *v1alpha1.ErgomakeEnv) { env.Namespace = "" }, "", "metadata.namespace: the environment has no namespace"},
		{"no services", func(env *v1alpha1.ErgomakeEnv) { env.Spec.Services = nil }, "", "no services"},
		{"unknown dependency", web(func(s *v1alpha1.ServiceSpec) {
			s.DependsOn = append(s.DependsOn, v1alpha1.Dependency{Service: "cache", Condition: v1alpha1.ServiceStarted, Required: true})
		}), "web", `service "web": dependsOn "cache": depends on unknown service "cache"`},
		{"self dependency", web(func(s *v1alpha1.ServiceSpec) {
			s.DependsOn = []v1alpha1.Dependency{{Service: "web", Required: true}}
		}), "web", "cannot depend on itself"},
		{"dependency listed twice", web(func(s *v1alpha1.ServiceSpec) {
			s.DependsOn = append(s.DependsOn, s.DependsOn[0])
		}), "web", `dependsOn "db": listed twice`},
		{"unknown condition", web(func(s *v1alpha1.ServiceSpec) { s.DependsOn[0].Condition = "service_ready" }), "web", `unknown condition "service_ready"`},
		{"completed on long-running", web(func(s *v1alpha1.ServiceSpec) {
			s.DependsOn[0].Condition = v1alpha1.ServiceCompletedSuccessfully
		}), "web", `service_completed_successfully needs "db" to be a one-shot service, but it is LongRunning`},
		{"cycle", func(env *v1alpha1.ErgomakeEnv) {
			svc(env, "db").DependsOn = []v1alpha1.Dependency{{Service: "web", Condition: v1alpha1.ServiceStarted, Required: true}}
		}, "db", "dependency cycle: db -> web -> db"},
		{"duplicate compose name", func(env *v1alpha1.ErgomakeEnv) {
			s := *svc(env, "web")
			s.ServiceName = "web2"
			env.Spec.Services = append(env.Spec.Services, s)
		}, "web", "declared twice"},
		{"duplicate Service name", func(env *v1alpha1.ErgomakeEnv) {
			env.Spec.Services = append(env.Spec.Services, v1alpha1.ServiceSpec{Name: "web_", ServiceName: "web", Image: "x"})
		}, "web_", `Service name "web" is also used by service "web"`},
		{"invalid Service name", web(func(s *v1alpha1.ServiceSpec) { s.ServiceName = "Web" }), "web", `serviceName: "Web" is not a valid Service name`},
		{"alias clashes with a Service name", web(func(s *v1alpha1.ServiceSpec) { s.Aliases = []string{"db"} }), "web", `alias "db" clashes with the Service name of service "db"`},
		{"host alias clashes", func(env *v1alpha1.ErgomakeEnv) {
			svc(env, "db").Aliases = []string{"files.minio"}
			svc(env, "web").Aliases = []string{"Files.Minio"}
		}, "web", `name "Files.Minio" is also a name of service "db"`},
		{"uppercase name clashes with another Service", func(env *v1alpha1.ErgomakeEnv) {
			svc(env, "web").Aliases = []string{"DB"}
		}, "web", `name "DB" clashes with the Service name of service "db"`},
		{"duplicate port names", web(func(s *v1alpha1.ServiceSpec) {
			s.Expose = []v1alpha1.PortSpec{{Name: "tcp-8080", Target: 8081}}
		}), "web", `port name "tcp-8080" is used by both port 8080 and port 8081`},
		{"port out of range", web(func(s *v1alpha1.ServiceSpec) { s.Ports[0].Target = 70000 }), "web", "ports[0].target: port 70000 is out of range"},
		{"bad protocol", web(func(s *v1alpha1.ServiceSpec) { s.Expose = []v1alpha1.PortSpec{{Name: "x", Target: 1, Protocol: "tcp"}} }), "web", `expose[0].protocol: unknown protocol "tcp"`},
		{"bad port name", web(func(s *v1alpha1.ServiceSpec) { s.Ports[0].Name = "HTTP" }), "web", `ports[0].name: "HTTP" is not a valid port name`},
		{"bad app protocol", web(func(s *v1alpha1.ServiceSpec) { s.Ports[0].AppProtocol = "http 2" }), "web", `ports[0].appProtocol`},
		{"undeclared volume", web(func(s *v1alpha1.ServiceSpec) {
			s.Volumes = []v1alpha1.VolumeMount{{Type: v1alpha1.MountVolume, Source: "cache", Target: "/cache"}}
		}), "web", `volumes[0].source: volume "cache" is not declared`},
		{"duplicate mount target", web(func(s *v1alpha1.ServiceSpec) {
			s.Volumes = []v1alpha1.VolumeMount{{Type: v1alpha1.MountTmpfs, Target: "/run/secrets/key/"}}
			s.Secrets = []v1alpha1.FileMount{{Name: "key", Object: "proj-secrets", Key: "key", Target: "/run/secrets/key"}}
		}), "web", `secrets "key".target: "/run/secrets/key" is also the target of volumes[0]`},
		{"tmpfs at /dev/shm and shm size", web(func(s *v1alpha1.ServiceSpec) {
			s.Volumes = []v1alpha1.VolumeMount{{Type: v1alpha1.MountTmpfs, Target: "/dev/shm"}}
			s.ShmSize = q("1Gi")
		}), "web", `shmSize.target: "/dev/shm" is also the target of volumes[0]`},
		{"relative target", web(func(s *v1alpha1.ServiceSpec) {
			s.Volumes = []v1alpha1.VolumeMount{{Type: v1alpha1.MountEmptyDir, Target: "data"}}
		}), "web", `volumes[0].target: "data" is not an absolute path`},
		{"subPath escapes", web(func(s *v1alpha1.ServiceSpec) {
			s.Volumes = []v1alpha1.VolumeMount{{Type: v1alpha1.MountVolume, Source: "data", Target: "/d", SubPath: "../etc"}}
		}), "web", `volumes[0].subPath: "../etc" must be a relative path`},
		{"unknown mount type", web(func(s *v1alpha1.ServiceSpec) {
			s.Volumes = []v1alpha1.VolumeMount{{Type: "bind", Source: "/x", Target: "/x"}}
		}), "web", `volumes[0].type: unknown mount type "bind"`},
		{"relative host path", web(func(s *v1alpha1.ServiceSpec) {
			s.Volumes = []v1alpha1.VolumeMount{{Type: v1alpha1.MountHostPath, Source: "./x", Target: "/x"}}
		}), "web", `host path "./x" is not absolute`},
		{"bad configMap item path", web(func(s *v1alpha1.ServiceSpec) {
			s.Volumes = []v1alpha1.VolumeMount{{Type: v1alpha1.MountConfigMap, Source: "cm", Target: "/x", Items: []v1alpha1.KeyPath{{Key: "a", Path: "/abs"}}}}
		}), "web", `volumes[0].items[0].path`},
		{"bad secret mode", web(func(s *v1alpha1.ServiceSpec) {
			s.Secrets = []v1alpha1.FileMount{{Name: "k", Object: "o", Key: "k", Target: "/run/secrets/k", Mode: ptr.To(int32(0o1777))}}
		}), "web", `secrets "k".mode`},
		{"bad secret object name", web(func(s *v1alpha1.ServiceSpec) {
			s.Secrets = []v1alpha1.FileMount{{Name: "k", Object: "My_Secrets", Key: "k", Target: "/run/secrets/k"}}
		}), "web", `secrets "k".object: "My_Secrets" is not a valid object name`},
		{"bad pull secret name", func(env *v1alpha1.ErgomakeEnv) { env.Spec.ImagePullSecrets = []string{"Registry_Creds"} },
			"", `spec.imagePullSecrets[0]: "Registry_Creds" is not a valid Secret name`},
		{"no image", web(func(s *v1alpha1.ServiceSpec) { s.Image = "" }), "web", "image: the service has no image"},
		{"bad pull policy", web(func(s *v1alpha1.ServiceSpec) { s.ImagePullPolicy = "missing" }), "web", `unknown pull policy "missing"`},
		{"bad restart", web(func(s *v1alpha1.ServiceSpec) { s.Restart = "on-failure:3" }), "web", `restart: unknown restart policy "on-failure:3"`},
		{"bad lifecycle", web(func(s *v1alpha1.ServiceSpec) { s.Lifecycle = "Daemon" }), "web", `lifecycle: unknown lifecycle "Daemon"`},
		{"negative replicas", web(func(s *v1alpha1.ServiceSpec) { s.Replicas = ptr.To(int32(-1)) }), "web", "replicas: must not be negative"},
		{"negative retries", web(func(s *v1alpha1.ServiceSpec) { s.MaxRetries = ptr.To(int32(-2)) }), "web", "maxRetries: must not be negative"},
		{"empty healthcheck", web(func(s *v1alpha1.ServiceSpec) { s.Healthcheck = &v1alpha1.Healthcheck{} }), "web", "healthcheck.exec: the healthcheck has no command"},
		{"negative healthcheck retries", web(func(s *v1alpha1.ServiceSpec) {
			s.Healthcheck = &v1alpha1.Healthcheck{Exec: []string{"true"}, Retries: -1}
		}), "web", "healthcheck.retries: must not be negative"},
		{"variable set twice", web(func(s *v1alpha1.ServiceSpec) {
			s.Environment = []v1alpha1.EnvVar{{Name: "A", Value: "1"}, {Name: "A", Value: "2"}}
		}), "web", `environment[1]: variable "A" is set twice`},
		{"variable with =", web(func(s *v1alpha1.ServiceSpec) { s.Environment = []v1alpha1.EnvVar{{Name: "A=B"}} }), "web", `contains '='`},
		{"secretKey without envSecret", web(func(s *v1alpha1.ServiceSpec) {
			s.Environment = []v1alpha1.EnvVar{{Name: "TOKEN", SecretKey: "TOKEN"}}
		}), "web", `environment[0]: variable "TOKEN" takes its value from key "TOKEN" of the service's envSecret, but the service has none`},
		{"value and secretKey", web(func(s *v1alpha1.ServiceSpec) {
			s.EnvSecret = "env-web"
			s.Environment = []v1alpha1.EnvVar{{Name: "TOKEN", Value: "x", SecretKey: "TOKEN"}}
		}), "web", `variable "TOKEN" has both a value and a secretKey`},
		{"invalid envSecret", web(func(s *v1alpha1.ServiceSpec) {
			s.EnvSecret = "Env_Web"
			s.Environment = []v1alpha1.EnvVar{{Name: "TOKEN", SecretKey: "TOKEN"}}
		}), "web", `envSecret: "Env_Web" is not a valid Secret name`},
		{"invalid secretKey", web(func(s *v1alpha1.ServiceSpec) {
			s.EnvSecret = "env-web"
			s.Environment = []v1alpha1.EnvVar{{Name: "TOKEN", SecretKey: "a b"}}
		}), "web", `environment[0].secretKey: "a b" is not a valid Secret key`},
		{"invalid secret mount", web(func(s *v1alpha1.ServiceSpec) {
			s.Volumes = []v1alpha1.VolumeMount{{Type: v1alpha1.MountSecret, Source: "Certs", Target: "/certs"}}
		}), "web", `volumes[0].source: "Certs" is not a valid Secret name`},
		{"unknown resource", web(func(s *v1alpha1.ServiceSpec) {
			s.Resources = &v1alpha1.Resources{Limits: map[string]resource.Quantity{"gpu": resource.MustParse("1")}}
		}), "web", `resources.limits: unknown resource "gpu"`},
		{"request above limit", web(func(s *v1alpha1.ServiceSpec) {
			s.Resources = &v1alpha1.Resources{
				Limits:   map[string]resource.Quantity{"memory": resource.MustParse("256Mi")},
				Requests: map[string]resource.Quantity{"memory": resource.MustParse("1Gi")},
			}
		}), "web", "the memory request 1Gi exceeds its limit 256Mi"},
		{"gpu request without limit", web(func(s *v1alpha1.ServiceSpec) {
			s.Resources = &v1alpha1.Resources{Requests: map[string]resource.Quantity{"nvidia.com/gpu": resource.MustParse("1")}}
		}), "web", "nvidia.com/gpu needs a limit"},
		{"privileged without privilege escalation", web(func(s *v1alpha1.ServiceSpec) {
			s.Security = &v1alpha1.SecuritySpec{Privileged: true, NoNewPrivileges: true}
		}), "web", "privileged and no-new-privileges cannot be combined"},
		{"bad sysctl", web(func(s *v1alpha1.ServiceSpec) {
			s.Security = &v1alpha1.SecuritySpec{Sysctls: map[string]string{"Net.Core": "1"}}
		}), "web", `"Net.Core" is not a valid sysctl name`},
		{"bad extra host IP", web(func(s *v1alpha1.ServiceSpec) {
			s.ExtraHosts = []v1alpha1.HostEntry{{Hostname: "gw", IP: "host-gateway"}}
		}), "web", `extraHosts[0]: "host-gateway" is not an IP address`},
		{"extra host with underscore", web(func(s *v1alpha1.ServiceSpec) {
			s.ExtraHosts = []v1alpha1.HostEntry{{Hostname: "my_host", IP: "10.0.0.1"}}
		}), "web", `extraHosts[0]: "my_host" cannot be a Kubernetes host alias`},
		{"bad hostname", web(func(s *v1alpha1.ServiceSpec) { s.Hostname = "my_host" }), "web", `hostname: "my_host" is not a valid host name label`},
		{"bad platform", web(func(s *v1alpha1.ServiceSpec) { s.Platform = "/amd64" }), "web", `platform: "/amd64" is not os[/arch[/variant]]`},
		{"bad nameserver", web(func(s *v1alpha1.ServiceSpec) { s.DNS = &v1alpha1.DNSSpec{Nameservers: []string{"dns.google"}} }), "web", `dns.nameservers: "dns.google" is not an IP address`},
		{"bad label", web(func(s *v1alpha1.ServiceSpec) { s.Labels = map[string]string{"com.example/a b": "x"} }), "web", `labels: "com.example/a b" is not a valid label key`},
		{"bad label value", web(func(s *v1alpha1.ServiceSpec) { s.Labels = map[string]string{"a": "b c"} }), "web", `labels: label "a": "b c" is not a valid label value`},
		{"negative stop grace period", web(func(s *v1alpha1.ServiceSpec) {
			s.StopGracePeriod = &metav1.Duration{Duration: -time.Second}
		}), "web", "stopGracePeriod: must not be negative"},
		{"volume declared twice", func(env *v1alpha1.ErgomakeEnv) {
			env.Spec.Volumes = append(env.Spec.Volumes, v1alpha1.VolumeSpec{Name: "data", ClaimName: "other"})
		}, "", `volume "data": declared twice`},
		{"claim shared by two volumes", func(env *v1alpha1.ErgomakeEnv) {
			env.Spec.Volumes = append(env.Spec.Volumes, v1alpha1.VolumeSpec{Name: "data2", ClaimName: "proj-data"})
		}, "", `volume "data2": claimName: claim "proj-data" is also the claim of volume "data"`},
		{"invalid claim name", func(env *v1alpha1.ErgomakeEnv) { env.Spec.Volumes[0].ClaimName = "Proj_Data" }, "", `volume "data": claimName: "Proj_Data" is not a valid claim name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := baseEnv()
			tt.mutate(env)
			objs, err := Render(env, Options{})
			if err == nil {
				t.Fatalf("no error; rendered %d services", len(objs.Services))
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not contain %q", err, tt.want)
			}
			var re *Error
			if !errors.As(err, &re) {
				t.Fatalf("error is a %T, not an *Error", err)
			}
			if re.Service != tt.service {
				t.Errorf("error names service %q, want %q: %v", re.Service, tt.service, err)
			}
		})
	}
}

func TestRenderReportsEveryError(t *testing.T) {
	env := baseEnv()
	svc(env, "db").Image = ""
	svc(env, "web").Restart = "sometimes"
	_, err := Render(env, Options{})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{`service "db": image`, `service "web": restart`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestRenderOptionalDependency(t *testing.T) {
	env := baseEnv()
	svc(env, "web").DependsOn = append(svc(env, "web").DependsOn,
		v1alpha1.Dependency{Service: "tracing", Condition: v1alpha1.ServiceStarted, Required: false})
	mustRender(t, env, Options{})
}

func TestRenderObjectsAndOrder(t *testing.T) {
	env := baseEnv()
	svc(env, "web").Aliases = []string{"www", "frontend", "www"}
	objs := mustRender(t, env, Options{})
	var got []string
	for _, o := range objs.List() {
		got = append(got, o.GetObjectKind().GroupVersionKind().Kind+"/"+o.GetName())
		if o.GetNamespace() != "ergomake-proj" {
			t.Errorf("%s: namespace %q", o.GetName(), o.GetNamespace())
		}
		l := o.GetLabels()
		if l[v1alpha1.LabelEnv] != "proj" || l[v1alpha1.LabelManagedBy] != "ergomake" || l[v1alpha1.LabelPartOf] != "proj" {
			t.Errorf("%s: labels %v", o.GetName(), l)
		}
	}
	want := []string{
		"PersistentVolumeClaim/proj-data",
		"Service/db", "Service/web", "Service/frontend", "Service/www",
		"Deployment/db", "Deployment/web",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("List() = %v, want %v", got, want)
	}
	w := objs.ServiceByName("web")
	if w == nil || w.Deployment == nil || w.Job != nil || w.Workload() != w.Deployment {
		t.Fatalf("ServiceByName(web) = %+v", w)
	}
	if (&Service{}).Workload() != nil {
		t.Error("Workload() of a service without workload is not nil")
	}
	if objs.ServiceByName("nope") != nil {
		t.Error("ServiceByName(nope) != nil")
	}
	for _, s := range w.Services {
		if s.Labels[v1alpha1.LabelService] != "web" || !reflect.DeepEqual(s.Spec.Selector, SelectorLabels(env, "web")) {
			t.Errorf("Service %s: labels %v selector %v", s.Name, s.Labels, s.Spec.Selector)
		}
		if len(s.Spec.Ports) != 1 || s.Spec.Ports[0].Port != 8080 || s.Spec.Ports[0].TargetPort.IntVal != 8080 {
			t.Errorf("Service %s: ports %+v", s.Name, s.Spec.Ports)
		}
	}
	if got := w.Deployment.Spec.Template.Labels; !reflect.DeepEqual(got, SelectorLabels(env, "web")) {
		t.Errorf("pod labels %v", got)
	}
	db := objs.ServiceByName("db").Deployment
	if db.Spec.Strategy.Type != "Recreate" {
		t.Errorf("db (a read-write claim) strategy %q, want Recreate", db.Spec.Strategy.Type)
	}
	if w.Deployment.Spec.Strategy.Type != "RollingUpdate" {
		t.Errorf("web strategy %q, want RollingUpdate", w.Deployment.Spec.Strategy.Type)
	}
}

func TestClaims(t *testing.T) {
	env := baseEnv()
	env.Spec.Volumes = []v1alpha1.VolumeSpec{
		{Name: "data", ClaimName: "proj-data"},
		{Name: "big", ClaimName: "proj-big", Size: q("20Gi"), StorageClassName: ptr.To("fast")},
		{Name: "ext", ClaimName: "shared-ext", External: true},
		{Name: "tmp", ClaimName: "proj-tmp", EmptyDir: true},
	}
	objs := mustRender(t, env, Options{})
	if len(objs.Claims) != 2 {
		t.Fatalf("%d claims, want 2 (external and emptyDir volumes have none)", len(objs.Claims))
	}
	c := objs.Claims[0]
	if c.Name != "proj-data" || c.Spec.Resources.Requests.Storage().String() != "1Gi" || c.Spec.StorageClassName != nil ||
		!reflect.DeepEqual(c.Spec.AccessModes, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}) {
		t.Errorf("claim %+v", c)
	}
	if c.Labels[LabelVolume] != "data" || c.Labels[v1alpha1.LabelEnv] != "proj" {
		t.Errorf("claim labels %v", c.Labels)
	}
	c = objs.Claims[1]
	if c.Spec.Resources.Requests.Storage().String() != "20Gi" || ptr.Deref(c.Spec.StorageClassName, "") != "fast" {
		t.Errorf("claim %+v", c.Spec)
	}
}

func TestCommandAndArgs(t *testing.T) {
	tests := []struct {
		name                 string
		entrypoint, command  []string
		reset                bool
		wantCommand, wantArg []string
	}{
		{"image defaults", nil, nil, false, nil, nil},
		{"command only", nil, []string{"serve", "--port=$PORT"}, false, nil, []string{"serve", "--port=$$PORT"}},
		{"empty command keeps the image CMD", nil, []string{}, false, nil, nil},
		{"entrypoint and command", []string{"/entry"}, []string{"a"}, false, []string{"/entry"}, []string{"a"}},
		{"entrypoint without command drops CMD", []string{"/entry"}, nil, true, []string{"/entry"}, nil},
		{"entrypoint reset, command is argv", []string{}, []string{"run", "x"}, false, []string{"run", "x"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := baseEnv()
			s := svc(env, "web")
			s.Entrypoint, s.Command, s.ResetCommand = tt.entrypoint, tt.command, tt.reset
			c := mustRender(t, env, Options{}).ServiceByName("web").Deployment.Spec.Template.Spec.Containers[0]
			if !reflect.DeepEqual(c.Command, tt.wantCommand) || !reflect.DeepEqual(c.Args, tt.wantArg) {
				t.Errorf("command %q args %q, want %q %q", c.Command, c.Args, tt.wantCommand, tt.wantArg)
			}
		})
	}
}

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		"":              "",
		"plain":         "plain",
		"$HOME":         "$$HOME",
		"$(HOME)":       "$$(HOME)",
		"$$":            "$$$$",
		"a $ b":         "a $$ b",
		"${X:-default}": "$${X:-default}",
	} {
		if got := escape(in); got != want {
			t.Errorf("escape(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestProbes(t *testing.T) {
	tests := []struct {
		name          string
		hc            v1alpha1.Healthcheck
		wantReadiness [3]int32 // period, timeout, failureThreshold
		wantStartup   *[3]int32
	}{
		{"compose defaults written out", v1alpha1.Healthcheck{Exec: []string{"true"}}, [3]int32{30, 30, 3}, nil},
		{"sub-second rounds up", v1alpha1.Healthcheck{Exec: []string{"true"},
			Interval: metav1.Duration{Duration: 1500 * time.Millisecond}, Timeout: metav1.Duration{Duration: 200 * time.Millisecond}, Retries: 5},
			[3]int32{2, 1, 5}, nil},
		{"start period with the default start interval", v1alpha1.Healthcheck{Exec: []string{"true"},
			Interval: metav1.Duration{Duration: 10 * time.Second}, Timeout: metav1.Duration{Duration: 5 * time.Second}, Retries: 3,
			StartPeriod: &metav1.Duration{Duration: 42 * time.Second}},
			[3]int32{10, 5, 3}, &[3]int32{5, 5, math.MaxInt32}},
		{"start period with a start interval", v1alpha1.Healthcheck{Exec: []string{"true"},
			Interval: metav1.Duration{Duration: 10 * time.Second}, Timeout: metav1.Duration{Duration: 5 * time.Second}, Retries: 3,
			StartPeriod: &metav1.Duration{Duration: time.Minute}, StartInterval: &metav1.Duration{Duration: 2 * time.Second}},
			[3]int32{10, 5, 3}, &[3]int32{2, 5, math.MaxInt32}},
		{"zero start period: no startup probe", v1alpha1.Healthcheck{Exec: []string{"true"}, StartPeriod: &metav1.Duration{}},
			[3]int32{30, 30, 3}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := baseEnv()
			hc := tt.hc
			svc(env, "web").Healthcheck = &hc
			c := mustRender(t, env, Options{}).ServiceByName("web").Deployment.Spec.Template.Spec.Containers[0]
			if c.LivenessProbe != nil {
				t.Fatal("a liveness probe")
			}
			r := c.ReadinessProbe
			if got := [3]int32{r.PeriodSeconds, r.TimeoutSeconds, r.FailureThreshold}; got != tt.wantReadiness || r.SuccessThreshold != 1 {
				t.Errorf("readiness %v success %d, want %v", got, r.SuccessThreshold, tt.wantReadiness)
			}
			s := c.StartupProbe
			switch {
			case tt.wantStartup == nil && s != nil:
				t.Errorf("unexpected startup probe %+v", s)
			case tt.wantStartup != nil && s == nil:
				t.Errorf("no startup probe")
			case s != nil:
				if got := [3]int32{s.PeriodSeconds, s.TimeoutSeconds, s.FailureThreshold}; got != *tt.wantStartup {
					t.Errorf("startup %v, want %v", got, *tt.wantStartup)
				}
			}
		})
	}
}

func TestJobs(t *testing.T) {
	tests := []struct {
		restart     string
		maxRetries  *int32
		replicas    *int32
		wantPolicy  corev1.RestartPolicy
		wantBackoff int32
	}{
		{"", nil, nil, corev1.RestartPolicyNever, 0},
		{"no", ptr.To(int32(2)), nil, corev1.RestartPolicyNever, 2},
		{"on-failure", nil, nil, corev1.RestartPolicyOnFailure, 6},
		{"on-failure", ptr.To(int32(3)), ptr.To(int32(2)), corev1.RestartPolicyOnFailure, 3},
		{"always", nil, nil, corev1.RestartPolicyOnFailure, 6},
		{"unless-stopped", nil, nil, corev1.RestartPolicyOnFailure, 6},
	}
	for _, tt := range tests {
		t.Run(tt.restart, func(t *testing.T) {
			env := baseEnv()
			env.Spec.Services = append(env.Spec.Services, v1alpha1.ServiceSpec{
				Name: "migrate", ServiceName: "migrate", Image: "example/web:1", Lifecycle: v1alpha1.OneShot,
				Restart: tt.restart, MaxRetries: tt.maxRetries, Replicas: tt.replicas,
				DependsOn: []v1alpha1.Dependency{{Service: "db", Condition: v1alpha1.ServiceHealthy, Required: true}},
			})
			svc(env, "web").DependsOn = append(svc(env, "web").DependsOn,
				v1alpha1.Dependency{Service: "migrate", Condition: v1alpha1.ServiceCompletedSuccessfully, Required: true})
			m := mustRender(t, env, Options{}).ServiceByName("migrate")
			if m.Deployment != nil || m.Job == nil {
				t.Fatalf("want a Job only: %+v", m)
			}
			j := m.Job
			if j.Spec.Template.Spec.RestartPolicy != tt.wantPolicy || ptr.Deref(j.Spec.BackoffLimit, -1) != tt.wantBackoff {
				t.Errorf("restart %q backoff %v, want %q %d", j.Spec.Template.Spec.RestartPolicy, ptr.Deref(j.Spec.BackoffLimit, -1), tt.wantPolicy, tt.wantBackoff)
			}
			if j.Spec.Selector != nil || j.Spec.ManualSelector != nil || j.Spec.TTLSecondsAfterFinished != nil {
				t.Errorf("selector %v manualSelector %v ttl %v: want none", j.Spec.Selector, j.Spec.ManualSelector, j.Spec.TTLSecondsAfterFinished)
			}
			if !reflect.DeepEqual(j.Spec.Completions, tt.replicas) || !reflect.DeepEqual(j.Spec.Parallelism, tt.replicas) {
				t.Errorf("completions %v parallelism %v, want %v", j.Spec.Completions, j.Spec.Parallelism, tt.replicas)
			}
			if j.Spec.Template.Annotations[v1alpha1.AnnotationSpecHash] != m.SpecHash || j.Annotations[v1alpha1.AnnotationSpecHash] != m.SpecHash {
				t.Error("the Job and its template lack the spec hash")
			}
		})
	}
}

func TestSpecHash(t *testing.T) {
	env := func() *v1alpha1.ErgomakeEnv {
		e := baseEnv()
		svc(e, "web").Aliases = []string{"web.app"}
		return e
	}
	hash := func(e *v1alpha1.ErgomakeEnv, opts Options, name string) string {
		t.Helper()
		return mustRender(t, e, opts).ServiceByName(name).SpecHash
	}
	base := hash(env(), Options{}, "web")
	if base == "" || base != hash(env(), Options{}, "web") {
		t.Fatal("the hash is empty or unstable")
	}
	if hash(env(), Options{ClusterIPs: map[string]string{"web": "10.96.0.5"}}, "web") != base {
		t.Error("a ClusterIP becoming known changed the hash")
	}
	if h := mustRender(t, env(), Options{ClusterIPs: map[string]string{"web": "10.96.0.5"}}).ServiceByName("web"); len(h.Deployment.Spec.Template.Spec.HostAliases) != 1 {
		t.Errorf("hostAliases %v", h.Deployment.Spec.Template.Spec.HostAliases)
	}
	e := env()
	svc(e, "web").DependsOn = nil
	if hash(e, Options{}, "web") != base {
		t.Error("dependsOn changed the hash, but not the workload")
	}
	e = env()
	svc(e, "web").Image = "example/web:2"
	if hash(e, Options{}, "web") == base {
		t.Error("a new image did not change the hash")
	}
	e = env()
	svc(e, "web").ExtraHosts = []v1alpha1.HostEntry{{Hostname: "gw.local", IP: "10.0.0.1"}}
	if hash(e, Options{}, "web") == base {
		t.Error("a new extra host did not change the hash")
	}
	e = env()
	svc(e, "web").Environment = []v1alpha1.EnvVar{{Name: "A", Value: "1"}}
	if hash(e, Options{}, "web") == base {
		t.Error("a new variable did not change the hash")
	}
	// Values in the service's Secret: a new EnvSecretVersion (new values) restarts the pods.
	e = env()
	svc(e, "web").EnvSecret = "env-web"
	svc(e, "web").Environment = []v1alpha1.EnvVar{{Name: "A", SecretKey: "A"}}
	svc(e, "web").EnvSecretVersion = "v1"
	v1 := hash(e, Options{}, "web")
	svc(e, "web").EnvSecretVersion = "v2"
	if hash(e, Options{}, "web") == v1 {
		t.Error("a new envSecretVersion did not change the hash")
	}
	// A compose annotation cannot forge the version.
	svc(e, "web").Annotations = map[string]string{v1alpha1.AnnotationEnvSecretVersion: "v1"}
	if got := mustRender(t, e, Options{}).ServiceByName("web").Deployment.Spec.Template.Annotations[v1alpha1.AnnotationEnvSecretVersion]; got != "v2" {
		t.Errorf("version annotation %q, want v2", got)
	}
	if hash(env(), Options{}, "db") == base {
		t.Error("two services share a hash")
	}
}

func TestHostAliases(t *testing.T) {
	env := &v1alpha1.ErgomakeEnv{
		ObjectMeta: metav1.ObjectMeta{Name: "n", Namespace: "ns"},
		Spec: v1alpha1.EnvSpec{Project: "n", Services: []v1alpha1.ServiceSpec{
			{Name: "API", ServiceName: "api", Image: "x", Aliases: []string{"Api.Internal"}},
			{Name: "web_app", ServiceName: "web-app", Image: "x", Aliases: []string{"frontend", "front.end", "front_end"}},
			{Name: "headless.svc", ServiceName: "headless-svc", Image: "x"},
			{Name: "later.svc", ServiceName: "later-svc", Image: "x"},
		}},
	}
	ips := map[string]string{"api": "10.96.0.10", "web-app": "10.96.0.2", "headless-svc": "None", "frontend": "10.96.0.99"}
	got := HostAliases(env, ips)
	want := []corev1.HostAlias{
		{IP: "10.96.0.10", Hostnames: []string{"api.internal"}},
		{IP: "10.96.0.2", Hostnames: []string{"front.end"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("HostAliases = %+v, want %+v", got, want)
	}
	if got := HostAliases(env, nil); got != nil {
		t.Errorf("without IPs: %+v", got)
	}
	for _, h := range got {
		for _, n := range h.Hostnames {
			if msgs := validation.IsDNS1123Subdomain(n); len(msgs) > 0 {
				t.Errorf("hostAliases name %q would be rejected by the API server: %v", n, msgs)
			}
		}
	}
	un := UnresolvableNames(env)
	wantUn := []UnresolvableName{{Service: "web_app", Name: "front_end"}, {Service: "web_app", Name: "web_app"}}
	if !reflect.DeepEqual(un, wantUn) {
		t.Errorf("UnresolvableNames = %+v, want %+v", un, wantUn)
	}

	// Render puts them, merged with extra_hosts, into every pod.
	env.Spec.Services[1].ExtraHosts = []v1alpha1.HostEntry{{Hostname: "Gateway", IP: "10.96.0.2"}, {Hostname: "front.end", IP: "10.96.0.2"}}
	objs := mustRender(t, env, Options{ClusterIPs: ips})
	if got := objs.ServiceByName("API").Deployment.Spec.Template.Spec.HostAliases; !reflect.DeepEqual(got, want) {
		t.Errorf("API pod hostAliases %+v, want %+v", got, want)
	}
	wantWeb := []corev1.HostAlias{
		{IP: "10.96.0.10", Hostnames: []string{"api.internal"}},
		{IP: "10.96.0.2", Hostnames: []string{"front.end", "gateway"}},
	}
	if got := objs.ServiceByName("web_app").Deployment.Spec.Template.Spec.HostAliases; !reflect.DeepEqual(got, wantWeb) {
		t.Errorf("web_app pod hostAliases %+v, want %+v", got, wantWeb)
	}
}

func TestLabelValue(t *testing.T) {
	long := strings.Repeat("a", 70)
	for _, in := range []string{"web", "web_app", "API", "files.minio", "-x-", "a b", long, long + "b", "_", "é"} {
		got := LabelValue(in)
		if msgs := validation.IsValidLabelValue(got); len(msgs) > 0 {
			t.Errorf("LabelValue(%q) = %q, invalid: %v", in, got, msgs)
		}
		if len(validation.IsValidLabelValue(in)) == 0 && got != in {
			t.Errorf("LabelValue(%q) = %q changed a valid value", in, got)
		}
	}
	if LabelValue(long) == LabelValue(long+"b") {
		t.Error("two long names share a label value")
	}
	if LabelValue("a b") == LabelValue("a/b") {
		t.Error("two names share a label value")
	}
}

func TestLongNamesGetValidLabels(t *testing.T) {
	env := baseEnv()
	long := strings.Repeat("service", 10) // 70 characters, a valid compose name
	env.Spec.Services = append(env.Spec.Services, v1alpha1.ServiceSpec{Name: long, ServiceName: "svc-long", Image: "x"})
	env.Name = strings.Repeat("env.", 20) + "x"
	objs := mustRender(t, env, Options{})
	for _, o := range objs.List() {
		for k, v := range o.GetLabels() {
			if msgs := validation.IsValidLabelValue(v); len(msgs) > 0 {
				t.Errorf("%s: label %s=%q: %v", o.GetName(), k, v, msgs)
			}
		}
	}
	d := objs.ServiceByName(long).Deployment
	if !reflect.DeepEqual(d.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
		t.Errorf("selector %v does not match pod labels %v", d.Spec.Selector.MatchLabels, d.Spec.Template.Labels)
	}
}

func TestPodDefaults(t *testing.T) {
	objs := mustRender(t, baseEnv(), Options{})
	p := objs.ServiceByName("web").Deployment.Spec.Template.Spec
	c := p.Containers[0]
	switch {
	case c.ImagePullPolicy != corev1.PullIfNotPresent:
		t.Errorf("imagePullPolicy %q", c.ImagePullPolicy)
	case ptr.Deref(p.TerminationGracePeriodSeconds, -1) != 10:
		t.Errorf("terminationGracePeriodSeconds %v", p.TerminationGracePeriodSeconds)
	case ptr.Deref(p.EnableServiceLinks, true) || ptr.Deref(p.AutomountServiceAccountToken, true):
		t.Error("service links or service account token enabled")
	case p.DNSPolicy != corev1.DNSClusterFirst || p.RestartPolicy != corev1.RestartPolicyAlways:
		t.Errorf("dnsPolicy %q restartPolicy %q", p.DNSPolicy, p.RestartPolicy)
	case c.LivenessProbe != nil || c.ReadinessProbe != nil:
		t.Error("probes without a healthcheck")
	}
}

func TestHeadlessService(t *testing.T) {
	env := baseEnv()
	s := svc(env, "web")
	s.Ports, s.Aliases = nil, []string{"www"}
	for _, k := range mustRender(t, env, Options{}).ServiceByName("web").Services {
		if k.Spec.ClusterIP != corev1.ClusterIPNone || len(k.Spec.Ports) != 0 || k.Spec.PublishNotReadyAddresses {
			t.Errorf("Service %s: %+v, want headless", k.Name, k.Spec)
		}
	}
}
