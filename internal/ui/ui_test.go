package ui

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/charmbracelet/lipgloss"

	"github.com/ergomake/ergomake/internal/iostreams"
)

func fixedClock() func() time.Time {
	t := time.Date(2026, 11, 24, 17, 30, 0, 0, time.UTC)
	return func() time.Time {
		t = t.Add(time.Second)
		return t
	}
}

func TestStatusPlain(t *testing.T) {
	ios, _, _, stderr := iostreams.Test()
	st := NewStatus(ios, StatusOptions{Now: fixedClock()})
	st.Start("Loading compose project")
	st.End(true)
	st.Start("Waiting for services")
	st.Update("0/2 ready")
	st.Update("0/2 ready") // unchanged: not repeated
	st.Logf("web: %s", "healthy")
	st.Warnf("db has no healthcheck")
	st.Update("1/2 ready")
	st.SetBody("2/2 ready", "a table") // only on a terminal that animates
	st.End(false)
	st.End(true) // no phase: nothing
	st.Update("ignored without a phase")

	want := `17:30:01 • Loading compose project ...
17:30:02 ✓ Loading compose project
17:30:03 • Waiting for services ...
17:30:04   0/2 ready
17:30:05 web: healthy
17:30:06 warning: db has no healthcheck
17:30:07   1/2 ready
17:30:08 ✗ Waiting for services
`
	if got := stderr.String(); got != want {
		t.Errorf("plain status:\n%s\nwant:\n%s", got, want)
	}
}

func TestStatusPlainNoTimestamps(t *testing.T) {
	ios, _, _, stderr := iostreams.Test()
	// A terminal that cannot animate (TERM=dumb) gets the plain lines too.
	ios.SetStderrTTY(true)
	ios.SetEnv(iostreams.Env{Dumb: true})
	st := NewStatus(ios, StatusOptions{NoTimestamps: true})
	st.Start("Applying")
	st.End(true)
	if got, want := stderr.String(), "• Applying ...\n✓ Applying\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// On a terminal the spinner draws the phase; what is printed around it is asserted here (the
// streams are buffers, so the spinner library itself draws no frames: see TestStatusSpinnerPTY).
func TestStatusTTY(t *testing.T) {
	for _, color := range []bool{false, true} {
		ios, _, _, stderr := iostreams.Test()
		ios.SetStderrTTY(true)
		ios.SetEnv(iostreams.Env{NoColor: !color})
		st := NewStatus(ios, StatusOptions{Now: fixedClock()})
		st.Start("Applying")
		st.Logf("created namespace %s", "ergomake-shop")
		st.Warnf("careful")
		st.End(true)
		st.Start("Waiting")
		st.End(false)

		want := "created namespace ergomake-shop\n ! careful\n ✓ Applying\n ✗ Waiting\n"
		if color {
			want = "created namespace ergomake-shop\n \x1b[33m!\x1b[0m careful\n \x1b[32m✓\x1b[0m Applying\n \x1b[31m✗\x1b[0m Waiting\n"
		}
		if got := stderr.String(); got != want {
			t.Errorf("color=%v: got %q, want %q", color, got, want)
		}
	}
}

func TestStatusSuffixFitsTerminal(t *testing.T) {
	ios, _, _, _ := iostreams.Test()
	ios.SetStderrTTY(true)
	ios.SetWidth(30)
	st := NewStatus(ios, StatusOptions{})
	st.Start("Waiting for services")
	st.Update("elasticsearch: starting, kibana: waiting")
	st.spin.Lock()
	suffix := st.spin.Suffix
	st.spin.Unlock()
	if want := " Waiting for services:..."; suffix != want {
		t.Errorf("suffix = %q, want %q", suffix, want)
	}
	st.Stop()
}

func TestStatusConcurrent(t *testing.T) {
	for _, tty := range []bool{false, true} {
		ios, _, _, stderr := iostreams.Test()
		ios.SetStderrTTY(tty)
		st := NewStatus(ios, StatusOptions{NoTimestamps: true})
		st.Start("Waiting")
		var wg sync.WaitGroup
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := 0; j < 20; j++ {
					st.Logf("line")
					st.Update(strings.Repeat("x", j))
				}
			}()
		}
		wg.Wait()
		st.End(true)
		if n := strings.Count(stderr.String(), "line\n"); n != 160 {
			t.Errorf("tty=%v: %d whole log lines, want 160", tty, n)
		}
	}
}

func TestTablePlain(t *testing.T) {
	ios, _, stdout, _ := iostreams.Test()
	tb := NewTable(ios, "NAME", "STATE", "PORTS")
	tb.AddRow("web", "healthy", "localhost:8080->80")
	tb.AddRow("postgres-primary", "starting")
	tb.AddRow("multi\nline", "x\ty", "", "dropped")
	if err := tb.Print(); err != nil {
		t.Fatal(err)
	}
	want := `NAME               STATE      PORTS
web                healthy    localhost:8080->80
postgres-primary   starting
multi line         x y
`
	if got := stdout.String(); got != want {
		t.Errorf("plain table:\n%s\nwant:\n%s", got, want)
	}
}

func TestTableTTY(t *testing.T) {
	ios, _, stdout, _ := iostreams.Test()
	ios.SetStdoutTTY(true)
	ios.SetEnv(iostreams.Env{NoColor: true})
	tb := NewTable(ios, "NAME", "STATE")
	tb.AddRow("web", "healthy")
	tb.AddRow("db", "starting")
	if err := tb.Print(); err != nil {
		t.Fatal(err)
	}
	want := `╭──────┬──────────╮
│ NAME │ STATE    │
├──────┼──────────┤
│ web  │ healthy  │
│ db   │ starting │
╰──────┴──────────╯
`
	if got := stdout.String(); got != want {
		t.Errorf("tty table:\n%s\nwant:\n%s", got, want)
	}
}

func TestTableTTYColor(t *testing.T) {
	ios, _, stdout, _ := iostreams.Test()
	ios.SetStdoutTTY(true)
	tb := NewTable(ios, "NAME", "STATE")
	tb.CellStyle = func(row, col int, value string) lipgloss.Style {
		if col == 1 && value == "healthy" {
			return tb.Styles().Success
		}
		return tb.Styles().NewStyle()
	}
	tb.AddRow("web", "healthy")
	if err := tb.Print(); err != nil {
		t.Fatal(err)
	}
	got := stdout.String()
	for _, want := range []string{"\x1b[1m", "\x1b[32m", "healthy", "\x1b[90m"} {
		if !strings.Contains(got, want) {
			t.Errorf("coloured table lacks %q:\n%q", want, got)
		}
	}
	if plain := sgr.ReplaceAllString(got, ""); !strings.Contains(plain, "│ web  │ healthy │") {
		t.Errorf("coloured table without colour codes:\n%s", plain)
	}
}

func TestStylesPlain(t *testing.T) {
	s := NewStyles(false)
	if got := s.Success.Render("ok") + s.Bold.Render("b") + s.FailureIcon(); got != "okb✗" {
		t.Errorf("plain styles render %q", got)
	}
}

func TestTableFitsTerminal(t *testing.T) {
	ios, _, stdout, _ := iostreams.Test()
	ios.SetStdoutTTY(true)
	ios.SetEnv(iostreams.Env{NoColor: true})
	ios.SetWidth(40)
	tb := NewTable(ios, "NAME", "STATE", "REASON")
	tb.AddRow("web", "failed", "CrashLoopBackOff: back-off restarting the failed container")
	tb.AddRow("db", "healthy")
	if err := tb.Print(); err != nil {
		t.Fatal(err)
	}
	// The last column is cut so that every line stays under the terminal's width.
	want := `╭──────┬─────────┬────────────────────╮
│ NAME │ STATE   │ REASON             │
├──────┼─────────┼────────────────────┤
│ web  │ failed  │ CrashLoopBackOff:… │
│ db   │ healthy │                    │
╰──────┴─────────┴────────────────────╯
`
	if got := stdout.String(); got != want {
		t.Errorf("fitted table:\n%s\nwant:\n%s", got, want)
	}

	// Another column may be the one cut.
	stdout.Reset()
	tb.Fit = 0
	tb.AddRow("a-service-with-a-very-long-name", "running")
	_ = tb.Print()
	for _, line := range strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n") {
		if w := lipgloss.Width(line); w >= 40 {
			t.Errorf("line as wide as the terminal (%d): %q", w, line)
		}
	}
}

func TestTableNarrowTerminal(t *testing.T) {
	ios, _, _, _ := iostreams.Test()
	ios.SetStderrTTY(true)
	ios.SetEnv(iostreams.Env{NoColor: true})
	ios.SetWidth(24)
	tb := NewStderrTable(ios, "SERVICE", "STATE", "READY", "DETAILS")
	tb.AddRow("elasticsearch", "starting", "0/1", "ContainerCreating")
	tb.AddRow("db", "healthy", "1/1")
	// Too narrow for the borders: one short line per row, cut to the width.
	want := "  elasticsearch starti…\n  db healthy 1/1\n"
	if got := tb.String(); got != want {
		t.Errorf("narrow table = %q, want %q", got, want)
	}
	// Not a terminal: the plain layout, whatever the width.
	ios.SetStderrTTY(false)
	tb = NewStderrTable(ios, "SERVICE", "STATE", "READY", "DETAILS")
	tb.AddRow("elasticsearch", "starting", "0/1", "ContainerCreating")
	if got := tb.String(); !strings.HasPrefix(got, "SERVICE         STATE      READY   DETAILS\n") {
		t.Errorf("plain table = %q", got)
	}
}

func TestTableNoColor(t *testing.T) {
	for _, env := range []iostreams.Env{{NoColor: true}, {Dumb: true}} {
		ios, _, stdout, _ := iostreams.Test()
		ios.SetStdoutTTY(true)
		ios.SetEnv(env)
		tb := NewTable(ios, "NAME", "STATE")
		tb.CellStyle = func(_, _ int, _ string) lipgloss.Style { return tb.Styles().Success }
		tb.AddRow("web", "healthy")
		_ = tb.Print()
		if sgr.MatchString(stdout.String()) {
			t.Errorf("%+v: colour codes in %q", env, stdout)
		}
		if !strings.Contains(stdout.String(), "│ web  │ healthy │") {
			t.Errorf("%+v: no bordered table: %q", env, stdout)
		}
	}
}

// After SetBody, End leaves the last frame: the phase with its detail, then the body.
func TestStatusEndLeavesFrame(t *testing.T) {
	ios, _, _, stderr := iostreams.Test()
	ios.SetStderrTTY(true)
	ios.SetEnv(iostreams.Env{NoColor: true})
	st := NewStatus(ios, StatusOptions{})
	st.Start("Waiting")
	st.SetBody("0/2 ready", "") // nothing reported yet
	st.End(false)
	st.Start("Waiting")
	st.SetBody("1/2 ready", "table line 1\ntable line 2")
	st.End(true)
	st.Start("Deleting")
	st.Update("3 objects left")
	st.End(true) // no body: the phase alone
	want := " ✗ Waiting: 0/2 ready\n ✓ Waiting: 1/2 ready\ntable line 1\ntable line 2\n ✓ Deleting\n"
	if got := stderr.String(); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
