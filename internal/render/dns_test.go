package render

import (
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

func dnsEnv(names ...string) *v1alpha1.ErgomakeEnv {
	env := &v1alpha1.ErgomakeEnv{
		ObjectMeta: metav1.ObjectMeta{Name: "n", Namespace: "ns"},
		Spec:       v1alpha1.EnvSpec{Project: "n"},
	}
	for _, n := range names {
		sn := strings.NewReplacer("_", "-", ".", "-").Replace(strings.ToLower(n))
		env.Spec.Services = append(env.Spec.Services, v1alpha1.ServiceSpec{Name: n, ServiceName: sn, Image: "x"})
	}
	return env
}

func TestNonDNSNames(t *testing.T) {
	env := dnsEnv("API", "web_app", "db")
	env.Spec.Services[2].Aliases = []string{"files.minio", "Db", "db_primary", "cache"}
	got := NonDNSNames(env)
	want := []UnresolvableName{
		{Service: "web_app", Name: "web_app"},
		{Service: "db", Name: "db_primary"},
		{Service: "db", Name: "files.minio"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("NonDNSNames = %+v, want %+v", got, want)
	}
	// UnresolvableNames is the part hostAliases cannot carry.
	wantUn := []UnresolvableName{want[0], want[1]}
	if un := UnresolvableNames(env); !reflect.DeepEqual(un, wantUn) {
		t.Errorf("UnresolvableNames = %+v, want %+v", un, wantUn)
	}
}

func TestEnvDNS(t *testing.T) {
	env := dnsEnv("web_app", "client", "host")
	env.Spec.Services[2].HostNetwork = true
	plain := mustRender(t, env, Options{})
	objs := mustRender(t, env, Options{DNSServer: "10.96.0.53"})
	want := &corev1.PodDNSConfig{
		Nameservers: []string{"10.96.0.53"},
		Searches:    []string{"ns.svc.cluster.local", "svc.cluster.local", "cluster.local"},
		Options:     []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptrTo("5")}},
	}
	for _, name := range []string{"web_app", "client"} {
		spec := objs.ServiceByName(name).Deployment.Spec.Template.Spec
		if spec.DNSPolicy != corev1.DNSNone || !reflect.DeepEqual(spec.DNSConfig, want) {
			t.Errorf("%s: dnsPolicy %s, dnsConfig %+v", name, spec.DNSPolicy, spec.DNSConfig)
		}
	}
	if spec := objs.ServiceByName("host").Deployment.Spec.Template.Spec; spec.DNSPolicy != corev1.DNSClusterFirstWithHostNet || spec.DNSConfig != nil {
		t.Errorf("host network pod: dnsPolicy %s, dnsConfig %+v", spec.DNSPolicy, spec.DNSConfig)
	}
	// The DNS server's IP is not part of the spec hash, like ClusterIPs.
	for i := range objs.Services {
		if objs.Services[i].SpecHash != plain.Services[i].SpecHash {
			t.Errorf("%s: the DNS server changed the spec hash", objs.Services[i].Name)
		}
	}

	// Another cluster domain.
	objs = mustRender(t, env, Options{DNSServer: "fd00::53", ClusterDomain: "corp.example."})
	got := objs.ServiceByName("client").Deployment.Spec.Template.Spec.DNSConfig
	if !reflect.DeepEqual(got.Searches, []string{"ns.svc.corp.example", "svc.corp.example", "corp.example"}) || got.Nameservers[0] != "fd00::53" {
		t.Errorf("cluster domain corp.example: %+v", got)
	}

	// An environment whose names cluster DNS and hostAliases cover keeps ClusterFirst.
	ok := dnsEnv("API", "files.minio", "db")
	objs = mustRender(t, ok, Options{DNSServer: "10.96.0.53"})
	for _, s := range objs.Services {
		if spec := s.Deployment.Spec.Template.Spec; spec.DNSPolicy != corev1.DNSClusterFirst || spec.DNSConfig != nil {
			t.Errorf("%s: dnsPolicy %s, dnsConfig %+v", s.Name, spec.DNSPolicy, spec.DNSConfig)
		}
	}
}

func TestEnvDNSMergesServiceDNS(t *testing.T) {
	env := dnsEnv("web_app", "client")
	env.Spec.Services[1].DNS = &v1alpha1.DNSSpec{
		Nameservers: []string{"10.0.0.2", "10.96.0.53", "10.0.0.3"},
		Searches:    []string{"corp.example", "svc.cluster.local"},
		Options:     []string{"ndots:1", "rotate"},
	}
	objs := mustRender(t, env, Options{DNSServer: "10.96.0.53"})
	got := objs.ServiceByName("client").Deployment.Spec.Template.Spec.DNSConfig
	want := &corev1.PodDNSConfig{
		Nameservers: []string{"10.96.0.53", "10.0.0.2", "10.0.0.3"},
		Searches:    []string{"ns.svc.cluster.local", "svc.cluster.local", "cluster.local", "corp.example"},
		Options:     []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptrTo("1")}, {Name: "rotate"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("dnsConfig %+v, want %+v", got, want)
	}
}

func TestEnvDNSBadOptions(t *testing.T) {
	for _, opts := range []Options{{DNSServer: "ergomake-dns"}, {DNSServer: "10.96.0.53", ClusterDomain: "."}} {
		_, err := Render(dnsEnv("web_app"), opts)
		if err == nil || !strings.Contains(err.Error(), "options.") {
			t.Errorf("%+v: error %v", opts, err)
		}
	}
}

func ptrTo[T any](v T) *T { return &v }
