package session

import (
	"strconv"
	"strings"
	"testing"

	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

func testEnv() *v1alpha1.ErgomakeEnv {
	env := &v1alpha1.ErgomakeEnv{}
	env.Name, env.Namespace = "shop", "ergomake-shop"
	env.Spec.Services = []v1alpha1.ServiceSpec{
		{Name: "db", Expose: []v1alpha1.PortSpec{{Name: "pg", Target: 5432}}},
		{Name: "web", Ports: []v1alpha1.PortSpec{
			{Name: "http", Target: 80, Publish: true, Published: "8080"},
			{Name: "any", Target: 81, Publish: true},
			{Name: "range", Target: 82, Publish: true, Published: "9000-9010"},
			{Name: "internal", Target: 83},
			{Name: "dns", Target: 53, Protocol: "UDP", Publish: true, Published: "5353"},
			{Name: "admin", Target: 9000, Publish: true, Published: "9999", HostIP: "127.0.0.2"},
		}},
	}
	env.Status.Services = []v1alpha1.ServiceStatus{
		{Name: "db", State: v1alpha1.StateHealthy, Ready: 1, Desired: 1, Reason: "Healthy", Message: "1/1 ready"},
		{Name: "web", State: v1alpha1.StateWaiting, Desired: 1, WaitingFor: []string{"db"}},
	}
	return env
}

func TestPublishedPorts(t *testing.T) {
	got := PublishedPorts(testEnv(), nil)
	var lines []string
	for _, p := range got {
		lines = append(lines, strings.Join([]string{p.Service, p.Selector[v1alpha1.LabelEnv], p.Selector[v1alpha1.LabelService],
			itoa(int(p.RemotePort)), itoa(p.LocalPort), itoa(p.LocalRange[0]) + "-" + itoa(p.LocalRange[1]), p.HostIP, p.Protocol}, " "))
	}
	want := []string{
		"web shop web 80 8080 0-0  ",
		"web shop web 81 0 0-0  ",
		"web shop web 82 0 9000-9010  ",
		"web shop web 53 5353 0-0  UDP",
		"web shop web 9000 9999 0-0 127.0.0.2 ",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("publishedPorts:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	if got := PublishedPorts(testEnv(), map[string]bool{"db": true}); len(got) != 0 {
		t.Errorf("db publishes nothing (expose only), got %v", got)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

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
	env := testEnv()
	env.Status.Phase = v1alpha1.PhaseProgressing
	if got, want := Summary(env), "Progressing, 1/2 services ready"; got != want {
		t.Errorf("Summary = %q, want %q", got, want)
	}
	env.Status = v1alpha1.EnvStatus{}
	if got, want := Summary(env), "Pending, 0/2 services ready"; got != want {
		t.Errorf("Summary of an unobserved environment = %q, want %q", got, want)
	}
}
