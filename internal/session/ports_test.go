package session

import (
	"reflect"
	"testing"

	"github.com/ergomake/ergomake/internal/forward"
	"github.com/ergomake/ergomake/internal/render"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

func TestPublishedPorts(t *testing.T) {
	sel := map[string]string{v1alpha1.LabelEnv: "shop", v1alpha1.LabelService: "web"}
	tests := []struct {
		name string
		spec v1alpha1.PortSpec
		want []forward.Port // nil: not forwarded
	}{
		{"fixed", v1alpha1.PortSpec{Target: 80, Publish: true, Published: "8080"},
			[]forward.Port{{Service: "web", Selector: sel, RemotePort: 80, LocalPort: 8080}}},
		{"any local port", v1alpha1.PortSpec{Target: 81, Publish: true},
			[]forward.Port{{Service: "web", Selector: sel, RemotePort: 81}}},
		{"range", v1alpha1.PortSpec{Target: 82, Publish: true, Published: "9000-9010"},
			[]forward.Port{{Service: "web", Selector: sel, RemotePort: 82, LocalRange: [2]int{9000, 9010}}}},
		{"not published", v1alpha1.PortSpec{Target: 83}, nil},
		{"udp", v1alpha1.PortSpec{Target: 53, Protocol: "UDP", Publish: true, Published: "5353"},
			[]forward.Port{{Service: "web", Selector: sel, RemotePort: 53, LocalPort: 5353, Protocol: "UDP"}}},
		{"host ip", v1alpha1.PortSpec{Target: 9000, Publish: true, Published: "9999", HostIP: "127.0.0.2"},
			[]forward.Port{{Service: "web", Selector: sel, RemotePort: 9000, LocalPort: 9999, HostIP: "127.0.0.2"}}},
	}
	for _, tt := range tests {
		env := &v1alpha1.ErgomakeEnv{}
		env.Name = "shop"
		env.Spec.Services = []v1alpha1.ServiceSpec{
			{Name: "db", Expose: []v1alpha1.PortSpec{{Target: 5432}}},
			{Name: "web", Ports: []v1alpha1.PortSpec{tt.spec}},
		}
		if got := PublishedPorts(env, nil); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: PublishedPorts = %+v, want %+v", tt.name, got, tt.want)
		}
		if got := PublishedPorts(env, map[string]bool{"db": true}); got != nil {
			t.Errorf("%s: db publishes nothing (expose only), got %+v", tt.name, got)
		}
	}
}

func TestShortenForwardError(t *testing.T) {
	long := `forward: elasticsearch: localhost:45649 → pod elasticsearch-648b5dfdfb-vp27n port 9300: error forwarding port 9300 to pod c27cc829, uid : failed to execute portforward in network namespace "/x": failed to connect to localhost:9300 inside namespace "c27cc829", IPv4: dial tcp4 127.0.0.1:9300: connect: connection refused IPv6 dial tcp6: address localhost: no suitable address found`
	want := "forward: elasticsearch: localhost:45649 → pod elasticsearch-648b5dfdfb-vp27n port 9300: connection refused inside the pod (is anything listening on that port?)"
	if got := shortenForwardError(long); got != want {
		t.Errorf("shortenForwardError = %q", got)
	}
	other := "forward: web: pod web-1 gone; next connections go to its replacement"
	if got := shortenForwardError(other); got != other {
		t.Errorf("other lines must pass unchanged: %q", got)
	}
}

func TestSummary(t *testing.T) {
	env := &v1alpha1.ErgomakeEnv{}
	env.Spec.Services = []v1alpha1.ServiceSpec{{Name: "db"}, {Name: "web"}}
	if got, want := Summary(env), "Pending, 0/2 services ready"; got != want {
		t.Errorf("Summary of an unobserved environment = %q, want %q", got, want)
	}
	env.Status.Phase = v1alpha1.PhaseProgressing
	env.Status.Services = []v1alpha1.ServiceStatus{
		{Name: "db", State: v1alpha1.StateHealthy, Ready: 1, Desired: 1},
		{Name: "web", State: v1alpha1.StateRunning, Ready: 1, Desired: 2},
	}
	if got, want := Summary(env), "Progressing, 1/2 services ready"; got != want {
		t.Errorf("Summary = %q, want %q", got, want)
	}
}

// Service names that are no label values select the pods by the label value the operator writes.
func TestPublishedPortsLabelValues(t *testing.T) {
	long := "a-service-name-that-is-much-longer-than-sixty-three-characters-in-all"
	env := &v1alpha1.ErgomakeEnv{}
	env.Name = "shop"
	env.Spec.Services = []v1alpha1.ServiceSpec{
		{Name: "worker_", Ports: []v1alpha1.PortSpec{{Target: 80, Publish: true}}},
		{Name: long, Ports: []v1alpha1.PortSpec{{Target: 81, Publish: true}}},
	}
	got := PublishedPorts(env, nil)
	if len(got) != 2 {
		t.Fatalf("PublishedPorts = %+v", got)
	}
	for i, name := range []string{"worker_", long} {
		want := render.LabelValue(name)
		if want == name {
			t.Fatalf("%q is a label value: the test proves nothing", name)
		}
		if got[i].Service != name || got[i].Selector[v1alpha1.LabelService] != want || got[i].Selector[v1alpha1.LabelEnv] != "shop" {
			t.Errorf("%s: %+v, want selector %s=%s", name, got[i], v1alpha1.LabelService, want)
		}
	}
}
