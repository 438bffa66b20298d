package ui

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ergomake/ergomake/internal/iostreams"
	"github.com/ergomake/ergomake/internal/iostreams/termtest"
)

// ptyStreams are streams whose stderr is a real (pseudo-)terminal of this width, without colour.
func ptyStreams(t *testing.T, width int) (*iostreams.IOStreams, *termtest.PTY) {
	pty := termtest.OpenPTY(t)
	ios, _, _, _ := iostreams.Test()
	ios.ErrOut = pty.Slave
	ios.SetStderrTTY(true)
	ios.SetEnv(iostreams.Env{NoColor: true})
	ios.SetWidth(width)
	return ios, pty
}

// TestStatusSpinnerPTY drives the real spinner on a real terminal: frames are drawn, a log line
// interrupts them cleanly (erase, line, newline) and End leaves the ✓ line.
func TestStatusSpinnerPTY(t *testing.T) {
	ios, pty := ptyStreams(t, 0)
	st := NewStatus(ios, StatusOptions{})
	st.Start("Applying")
	time.Sleep(350 * time.Millisecond)
	st.Logf("created namespace")
	st.Update("3 objects")
	time.Sleep(350 * time.Millisecond)
	st.End(true)
	got := pty.Output(t)

	for _, want := range []string{
		"\r ⠋ Applying",
		"\r\x1b[Kcreated namespace\n",
		" Applying: 3 objects",
		" ✓ Applying\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("terminal output lacks %q:\n%q", want, got)
		}
	}
	if strings.Contains(got, "\x1b[3") {
		t.Errorf("NO_COLOR terminal got colour codes: %q", got)
	}
	if !strings.HasSuffix(got, " ✓ Applying\n") {
		t.Errorf("terminal output does not end with the ✓ line: %q", got)
	}
	if screen, want := termtest.Screen(got), []string{"created namespace", " ✓ Applying"}; !reflect.DeepEqual(screen, want) {
		t.Errorf("screen:\n%s\nwant:\n%s", strings.Join(screen, "\n"), strings.Join(want, "\n"))
	}
}

// TestStatusBodyPTY: a table under the spinner is redrawn in place, frame after frame, with lines
// printed above it; what stays on screen is the lines, then the last frame under the ✓ line.
func TestStatusBodyPTY(t *testing.T) {
	ios, pty := ptyStreams(t, 60)
	st := NewStatus(ios, StatusOptions{})
	st.Start("Waiting for services")
	table := func(state string) string {
		tb := NewStderrTable(ios, "SERVICE", "STATE", "DETAILS")
		tb.AddRow("db", "healthy")
		tb.AddRow("web", state, strings.Repeat("a long explanation ", 5))
		return strings.TrimSuffix(tb.String(), "\n")
	}
	st.SetBody("1/2 ready", table("starting"))
	time.Sleep(350 * time.Millisecond) // frames
	st.Logf("db: healthy")
	time.Sleep(250 * time.Millisecond)
	st.Logf("web: running")
	st.SetBody("2/2 ready", table("running"))
	time.Sleep(250 * time.Millisecond)
	st.End(true)
	got := pty.Output(t)

	if n := strings.Count(got, "╭"); n < 3 {
		t.Errorf("the table was drawn %d times, want a frame after frame:\n%q", n, got)
	}
	want := []string{
		"db: healthy",
		"web: running",
		" ✓ Waiting for services: 2/2 ready",
		"╭─────────┬─────────┬─────────────────────────────────────╮", // 59 columns: under 60
		"│ SERVICE │ STATE   │ DETAILS                             │",
		"├─────────┼─────────┼─────────────────────────────────────┤",
		"│ db      │ healthy │                                     │",
		"│ web     │ running │ a long explanation a long explanat… │",
		"╰─────────┴─────────┴─────────────────────────────────────╯",
	}
	if screen := termtest.Screen(got); !reflect.DeepEqual(screen, want) {
		t.Errorf("screen:\n%s\nwant:\n%s\noutput: %q", strings.Join(screen, "\n"), strings.Join(want, "\n"), got)
	}
}

// TestStatusStopClearsBodyPTY: Stop without End (an error, say) leaves no table behind.
func TestStatusStopClearsBodyPTY(t *testing.T) {
	ios, pty := ptyStreams(t, 60)
	st := NewStatus(ios, StatusOptions{})
	st.Start("Waiting")
	st.SetBody("", "line one\nline two")
	time.Sleep(250 * time.Millisecond)
	st.Stop()
	got := pty.Output(t)
	if !strings.Contains(got, "line two") {
		t.Errorf("the body was never drawn: %q", got)
	}
	if screen := termtest.Screen(got); len(screen) != 0 {
		t.Errorf("left on screen after Stop: %q (output %q)", screen, got)
	}
}
