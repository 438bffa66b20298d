package cli

import (
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ergomake/ergomake/internal/iostreams"
	"github.com/ergomake/ergomake/internal/iostreams/termtest"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// TestLiveViewPTY runs the live view of `up` on a real (pseudo-)terminal: the spinner animates,
// the table is redrawn in place as services change, lines printed meanwhile stay above it, and
// what is left on screen is those lines and the last table under the ✓ line, nothing twice.
func TestLiveViewPTY(t *testing.T) {
	pty := termtest.OpenPTY(t)
	ios, _, _, _ := iostreams.Test()
	ios.ErrOut = pty.Slave
	ios.SetStderrTTY(true)
	ios.SetEnv(iostreams.Env{NoColor: true})
	ios.SetWidth(64)

	env := &v1alpha1.ErgomakeEnv{}
	env.Spec.Services = []v1alpha1.ServiceSpec{{Name: "db"}, {Name: "web"}}
	env.Status.Services = []v1alpha1.ServiceStatus{
		{Name: "db", State: v1alpha1.StateStarting, Desired: 1, Reason: "ContainerCreating"},
		{Name: "web", State: v1alpha1.StateWaiting, Desired: 1, WaitingFor: []string{"db"}},
	}
	v := newEnvView(ios, "Waiting for services", nil)
	v.Start()
	v.Update(env)
	time.Sleep(300 * time.Millisecond)
	next := env.DeepCopy()
	next.Status.Services[0] = v1alpha1.ServiceStatus{Name: "db", State: v1alpha1.StateHealthy, Ready: 1, Desired: 1}
	next.Status.Services[1] = v1alpha1.ServiceStatus{Name: "web", State: v1alpha1.StateFailed, Desired: 1,
		Reason: "CrashLoopBackOff", Message: "back-off restarting the failed container, again and again"}
	v.Update(next)
	v.Warnf("web restarts")
	time.Sleep(300 * time.Millisecond)
	v.End(false)
	out := pty.Output(t)

	if regexp.MustCompile("\x1b\\[[0-9;]*m").MatchString(out) {
		t.Errorf("NO_COLOR terminal got colour codes: %q", out)
	}
	if !strings.Contains(out, "│ db      │ starting │") {
		t.Errorf("the first table was never drawn: %q", out)
	}
	want := []string{
		" ! web restarts",
		" ✗ Waiting for services: 1/2 ready",
		"╭─────────┬─────────┬───────┬─────────────────────────────────╮", // 63 columns: under 64
		"│ SERVICE │ STATE   │ READY │ DETAILS                         │",
		"├─────────┼─────────┼───────┼─────────────────────────────────┤",
		"│ db      │ healthy │ 1/1   │                                 │",
		"│ web     │ failed  │ 0/1   │ back-off restarting the failed… │",
		"╰─────────┴─────────┴───────┴─────────────────────────────────╯",
	}
	if screen := termtest.Screen(out); !reflect.DeepEqual(screen, want) {
		t.Errorf("screen:\n%s\nwant:\n%s\noutput: %q", strings.Join(screen, "\n"), strings.Join(want, "\n"), out)
	}
}
