package cli

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/lipgloss"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ergomake/ergomake/internal/forward"
	"github.com/ergomake/ergomake/internal/iostreams"
	"github.com/ergomake/ergomake/internal/render"
	"github.com/ergomake/ergomake/internal/ui"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

func seedEnv() *v1alpha1.ErgomakeEnv {
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

func TestPrintBindings(t *testing.T) {
	ios, _, out, _ := iostreams.Test()
	printBindings(ios, []forward.Binding{
		{Port: forward.Port{Service: "elasticsearch", RemotePort: 9200}, LocalPort: 9200},
		{Port: forward.Port{Service: "kibana", RemotePort: 5601}, LocalPort: 41234, Note: "5601 is taken: a free port was chosen"},
		{Port: forward.Port{Service: "dns", RemotePort: 53, Protocol: "UDP"}, Note: "Kubernetes cannot forward UDP"},
		{Port: forward.Port{Service: "admin", RemotePort: 9000, HostIP: "::1"}, LocalPort: 9999},
	})
	want := `elasticsearch · localhost:9200 → 9200
kibana        · localhost:41234 → 5601  (5601 is taken: a free port was chosen)
dns           · 53/udp not forwarded  (Kubernetes cannot forward UDP)
admin         · [::1]:9999 → 9000
`
	if out.String() != want {
		t.Errorf("printBindings:\n%s\nwant:\n%s", out, want)
	}
}

func TestPsEntries(t *testing.T) {
	entries := psEntries(seedEnv(), nil)
	if len(entries) != 2 {
		t.Fatalf("entries = %+v", entries)
	}
	var ports []string
	for _, p := range entries[1].Ports {
		ports = append(ports, portText(p))
	}
	want := "8080->80/tcp, auto->81/tcp, 9000-9010->82/tcp, 83/tcp, 5353->53/udp, 127.0.0.2:9999->9000/tcp"
	if got := strings.Join(ports, ", "); got != want {
		t.Errorf("web ports = %s, want %s", got, want)
	}
	if got := portText(entries[0].Ports[0]); got != "5432/tcp" {
		t.Errorf("db port = %s", got)
	}
	if entries[1].State != "waiting" || entries[1].WaitingFor[0] != "db" {
		t.Errorf("web = %+v", entries[1])
	}
	// A service the operator has not reported yet is pending.
	env := seedEnv()
	env.Status.Services = nil
	if got := psEntries(env, map[string]bool{"web": true}); len(got) != 1 || got[0].State != "pending" {
		t.Errorf("unreported service = %+v", got)
	}
}

func TestServiceSummary(t *testing.T) {
	tests := []struct {
		s    v1alpha1.ServiceStatus
		want string
	}{
		{v1alpha1.ServiceStatus{State: v1alpha1.StateHealthy, Ready: 1, Desired: 1, Reason: "Healthy", Message: "1/1 ready"}, "healthy 1/1"},
		{v1alpha1.ServiceStatus{State: v1alpha1.StateWaiting, WaitingFor: []string{"db", "cache"}}, "waiting: waiting for db, cache"},
		{v1alpha1.ServiceStatus{State: v1alpha1.StateFailed, Desired: 1, Reason: "CrashLoopBackOff",
			Message: "crash loop", LogTail: []string{"panic: boom"}}, "failed 0/1: crash loop"},
		{v1alpha1.ServiceStatus{State: v1alpha1.StatePulling, Desired: 2, Reason: "Pulling"}, "pulling 0/2: Pulling"},
		{v1alpha1.ServiceStatus{}, "pending"},
	}
	for _, tt := range tests {
		if got := serviceSummary(tt.s); got != tt.want {
			t.Errorf("serviceSummary(%+v) = %q, want %q", tt.s, got, tt.want)
		}
	}
}

func TestEnvViewPlain(t *testing.T) {
	ios, _, _, errOut := iostreams.Test()
	clock := time.Date(2026, 1, 2, 17, 30, 5, 0, time.UTC)
	v := newEnvView(ios, "Waiting for services", func() time.Time { return clock })
	v.Start()
	env := seedEnv()
	v.Update(env)
	v.Update(env.DeepCopy()) // nothing changed: nothing printed
	next := env.DeepCopy()
	next.Status.Services[1] = v1alpha1.ServiceStatus{Name: "web", State: v1alpha1.StateStarting, Desired: 1, Reason: "ContainerCreating"}
	v.Update(next)
	v.Logf("a line")
	v.End(true)
	want := `17:30:05 • Waiting for services ...
17:30:05 db: healthy 1/1
17:30:05 web: waiting 0/1: waiting for db
17:30:05 web: starting 0/1: ContainerCreating
17:30:05 a line
17:30:05 ✓ Waiting for services
`
	if errOut.String() != want {
		t.Errorf("plain view:\n%s\nwant:\n%s", errOut, want)
	}
}

func TestEnvViewTerminal(t *testing.T) {
	ios, _, _, errOut := iostreams.Test()
	ios.SetStderrTTY(true)
	ios.SetEnv(iostreams.Env{NoColor: true})
	ios.SetWidth(80)
	v := newEnvView(ios, "Waiting for services", nil)
	v.Start()
	env := seedEnv()
	env.Status.Services[1].Message = strings.Repeat("a very long explanation ", 10)
	v.Update(env)
	v.End(false)
	out := errOut.String()
	// The buffer is no terminal, so the spinner library draws no frames: what stays is the last
	// frame End leaves (the redrawing in place is TestLiveViewPTY's, in internal/ui).
	for _, want := range []string{"SERVICE", "STATE", "│ waiting ", "a very long explanation", "…", "✗ Waiting for services: 1/2 ready"} {
		if !strings.Contains(out, want) {
			t.Errorf("terminal view lacks %q:\n%s", want, out)
		}
	}
	if regexp.MustCompile("\033\\[[0-9;]*m").MatchString(out) {
		t.Errorf("colour without a colour terminal:\n%q", out)
	}
	for _, line := range strings.Split(out, "\n") {
		if i := strings.LastIndex(line, "\033[J"); i >= 0 {
			line = line[i+3:]
		}
		if w := lipgloss.Width(line); w > 80 {
			t.Errorf("line wider than the terminal (%d): %q", w, line)
		}
	}
}

func TestDownCommand(t *testing.T) {
	tests := []struct {
		c           ClusterOptions
		project, ns string
		want        string
	}{
		{ClusterOptions{}, "shop", "ergomake-shop", "ergomake down -p shop -n ergomake-shop"},
		{ClusterOptions{Context: "kind-dev", Kubeconfig: "/home/me/my config"}, "shop", "team",
			"ergomake down -p shop -n team --context kind-dev --kubeconfig '/home/me/my config'"},
		{ClusterOptions{}, "it's", "x", `ergomake down -p 'it'\''s' -n x`},
	}
	for _, tt := range tests {
		if got := downCommand(tt.c, tt.project, tt.ns); got != tt.want {
			t.Errorf("downCommand = %s, want %s", got, tt.want)
		}
	}
}

func TestServiceFilter(t *testing.T) {
	env := seedEnv()
	if m, err := serviceFilter(env, nil); err != nil || m != nil {
		t.Errorf("no names: %v %v", m, err)
	}
	if m, err := serviceFilter(env, []string{"web"}); err != nil || !m["web"] || m["db"] {
		t.Errorf("web: %v %v", m, err)
	}
	if _, err := serviceFilter(env, []string{"nope"}); err == nil || err.Error() != "no such service: nope" {
		t.Errorf("unknown service: %v", err)
	}
}

func TestLogMuxPrefixes(t *testing.T) {
	ios, _, out, _ := iostreams.Test()
	m := newLogMux(ios, []string{"web", "elasticsearch"})
	pod := func(uid, svc string) *corev1.Pod {
		p := &corev1.Pod{}
		p.UID = types.UID(uid)
		p.Labels = map[string]string{v1alpha1.LabelService: svc}
		return p
	}
	w1, w2, es := pod("a", "web"), pod("b", "web"), pod("c", "elasticsearch")
	m.line("web", m.prefix(w1), "one")
	m.line("elasticsearch", m.prefix(es), "two")
	m.line("web", m.prefix(w2), "three")
	m.line("web", m.prefix(w1), "four") // the same pod keeps its number
	want := `web-1           | one
elasticsearch-1 | two
web-2           | three
web-1           | four
`
	if out.String() != want {
		t.Errorf("log lines:\n%s\nwant:\n%s", out, want)
	}

	// A service whose name is no label value: its pods carry render.LabelValue of it, and are
	// shown (and filtered) under the compose name.
	ios, _, out, _ = iostreams.Test()
	m = newLogMux(ios, []string{"worker_"})
	wp := pod("w", render.LabelValue("worker_"))
	if got := m.service(wp); got != "worker_" {
		t.Errorf("service of a worker_ pod = %q", got)
	}
	m.line(m.service(wp), m.prefix(wp), "x")
	if out.String() != "worker_-1 | x\n" {
		t.Errorf("worker_ log line: %q", out.String())
	}

	// On a colour terminal each service's prefix has its colour.
	ios, _, out, _ = iostreams.Test()
	ios.SetStdoutTTY(true)
	m = newLogMux(ios, []string{"web", "db"})
	m.line("web", m.prefix(pod("a", "web")), "x")
	m.line("db", m.prefix(pod("b", "db")), "y")
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "\x1b[") || lines[0][:8] == lines[1][:8] {
		t.Errorf("coloured prefixes: %q", lines)
	}
}

func TestEnvViewNarrowTerminal(t *testing.T) {
	ios, _, _, errOut := iostreams.Test()
	ios.SetStderrTTY(true)
	ios.SetEnv(iostreams.Env{NoColor: true})
	ios.SetWidth(30)
	v := newEnvView(ios, "Waiting", nil)
	v.Start()
	env := seedEnv()
	env.Status.Services[0].Name = "a-service-with-a-long-name"
	v.Update(env)
	v.End(true)
	for _, line := range strings.Split(errOut.String(), "\n") {
		if i := strings.LastIndex(line, "\033[J"); i >= 0 {
			line = line[i+3:]
		}
		if w := lipgloss.Width(line); w >= 30 {
			t.Errorf("line as wide as the terminal (%d): %q", w, line)
		}
	}
}

// TestLiveView: what the session reports, as `up` shows it without a terminal: phases, the
// services while waiting, then one line per change while attached; results on stdout.
func TestLiveView(t *testing.T) {
	ios, _, out, errOut := iostreams.Test()
	clock := func() time.Time { return time.Date(2026, 1, 2, 17, 30, 5, 0, time.UTC) }
	v := newLiveView(ios, ui.NewStatus(ios, ui.StatusOptions{Now: clock}), clock)
	v.Start("Applying environment ergomake-shop/shop")
	v.End(true)
	v.WaitStart("Waiting for services")
	env := seedEnv()
	v.Env(env)
	v.Logf("forward: a line")
	ready := env.DeepCopy()
	ready.Status.Services[1] = v1alpha1.ServiceStatus{Name: "web", State: v1alpha1.StateRunning, Ready: 1, Desired: 1}
	v.Env(ready)
	v.WaitEnd(true)
	v.Bound([]forward.Binding{{Port: forward.Port{Service: "web", RemotePort: 80}, LocalPort: 8080}})
	v.Printf("Environment ready.")
	crashed := ready.DeepCopy()
	crashed.Status.Services[1] = v1alpha1.ServiceStatus{Name: "web", State: v1alpha1.StateFailed, Desired: 1, Reason: "CrashLoopBackOff"}
	v.Env(ready) // nothing changed: nothing printed
	v.Env(crashed)
	v.Warnf("careful")
	v.Noticef("Environment %s removed.", "shop")
	wantErr := `17:30:05 • Applying environment ergomake-shop/shop ...
17:30:05 ✓ Applying environment ergomake-shop/shop
17:30:05 • Waiting for services ...
17:30:05 db: healthy 1/1
17:30:05 web: waiting 0/1: waiting for db
17:30:05 forward: a line
17:30:05 web: running 1/1
17:30:05 ✓ Waiting for services
17:30:05 web: failed 0/1: CrashLoopBackOff
17:30:05 warning: careful
Environment shop removed.
`
	if errOut.String() != wantErr {
		t.Errorf("stderr:\n%s\nwant:\n%s", errOut, wantErr)
	}
	if want := "web · localhost:8080 → 80\nEnvironment ready.\n"; out.String() != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", out, want)
	}
}
