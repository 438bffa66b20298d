package cli

import (
	"testing"
	"time"

	"github.com/ergomake/ergomake/internal/iostreams"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// The plain live view prints one summary line per change, not the log tails (up's failure
// explanation prints those once, at the end).
func TestEnvViewPlainNoLogTail(t *testing.T) {
	ios, _, _, errOut := iostreams.Test()
	clock := time.Date(2026, 1, 2, 17, 30, 5, 0, time.UTC)
	v := newEnvView(ios, "Waiting for services", func() time.Time { return clock })
	v.Start()
	env := &v1alpha1.ErgomakeEnv{}
	env.Status.Services = []v1alpha1.ServiceStatus{{Name: "web", State: v1alpha1.StateFailed, Desired: 1,
		Reason: "CrashLoopBackOff", LogTail: []string{"panic: boom"}}}
	v.Update(env)
	v.End(false)
	want := `17:30:05 • Waiting for services ...
17:30:05 web: failed 0/1: CrashLoopBackOff
17:30:05 ✗ Waiting for services
`
	if errOut.String() != want {
		t.Errorf("plain view:\n%s\nwant:\n%s", errOut, want)
	}
}
