package ui

import (
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/briandowns/spinner"

	"github.com/ergomake/ergomake/internal/iostreams"
)

// StatusOptions tune a Status.
type StatusOptions struct {
	// Now gives the time of plain lines; nil means time.Now.
	Now func() time.Time
	// NoTimestamps drops the "15:04:05 " prefix of plain lines.
	NoTimestamps bool
}

// Status reports the phases of a long operation on stderr.
//
// On a terminal that can animate, the current phase is a spinner line (" ⠋ Waiting for services:
// 2/5 ready") that log lines interrupt cleanly: the line is erased, the log line printed, and the
// spinner carries on below it. End replaces the spinner with " ✓ phase" or " ✗ phase".
//
// Elsewhere (a pipe, a file, TERM=dumb, CI) every event is one stable, timestamped line:
//
//	17:30:01 • Waiting for services ...
//	17:30:04   2/5 ready
//	17:30:05 web: healthy
//	17:30:09 ✓ Waiting for services
//
// A body (SetBody: the live table of `up`) can hang under the spinner line on a terminal: it is
// redrawn in place with every frame, and End leaves the last one on screen under the ✓ line.
//
// A Status is safe for concurrent use.
type Status struct {
	mu      sync.Mutex
	w       io.Writer
	styles  *Styles
	animate bool
	spin    *spinner.Spinner
	now     func() time.Time
	stamps  bool
	width   int

	phase    string
	detail   string
	inPhase  bool
	spinning bool
	framed   bool // SetBody was called in this phase: End leaves the last frame

	// body and drawn belong to the spinner's lock (its frames draw them): the text under the
	// spinner line, and how many of its lines are on screen below the spinner's line.
	body  string
	drawn int
}

// NewStatus returns a Status writing to ios.ErrOut.
func NewStatus(ios *iostreams.IOStreams, opts StatusOptions) *Status {
	s := &Status{
		w:       ios.ErrOut,
		styles:  NewStyles(ios.ColorEnabledStderr()),
		animate: ios.CanAnimate(),
		now:     opts.Now,
		stamps:  !opts.NoTimestamps,
		width:   ios.TerminalWidth(),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.animate {
		sw := io.Writer(ios.ErrOut)
		if !s.styles.Color() {
			sw = sgrStripper{ios.ErrOut}
		}
		sp := spinner.New(spinner.CharSets[14], 100*time.Millisecond,
			spinner.WithWriter(sw), spinner.WithHiddenCursor(false))
		// The spinner animates only when this descriptor is a terminal: the real stderr, never a
		// buffer (a nil *os.File is no terminal).
		sp.WriterFile = ios.ErrFile()
		if s.styles.Color() {
			_ = sp.Color("cyan")
		}
		sp.Prefix = " "
		// The spinner draws its line; the body goes under it. Before a frame the spinner erases its
		// own line (the cursor's, the body's last when one is drawn): go up to its line and clear
		// the rest; after the frame, draw the body again.
		sp.PreUpdate = func(*spinner.Spinner) { s.clearBody() }
		sp.PostUpdate = func(*spinner.Spinner) { s.drawBody() }
		s.spin = sp
	}
	return s
}

// Styles returns the styles of the status's stream, to colour log lines.
func (s *Status) Styles() *Styles { return s.styles }

// Start begins a phase. A phase still running is replaced without a mark.
func (s *Status) Start(phase string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.phase, s.detail, s.inPhase, s.framed = phase, "", true, false
	if s.animate {
		s.setBody("")
		s.setSuffix()
		if !s.spinning {
			s.spin.Start()
			s.spinning = s.spin.Active()
		}
		return
	}
	s.plainf("%s %s ...", IconPhase, phase)
}

// Update shows progress within the current phase ("2/5 ready"). On a terminal it follows the
// phase on the spinner line; elsewhere it is printed as an indented line when it changes.
func (s *Status) Update(detail string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.inPhase || detail == s.detail {
		return
	}
	s.detail = detail
	if s.animate {
		s.setSuffix()
		return
	}
	s.plainf("  %s", detail)
}

// Logf prints a line; on a terminal it appears above the spinner.
func (s *Status) Logf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	line := fmt.Sprintf(format, args...)
	if !s.animate {
		s.plainf("%s", line)
		return
	}
	s.printAbove(line)
}

// Warnf prints a warning line ("! message" on a terminal, "warning: message" elsewhere).
func (s *Status) Warnf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	msg := fmt.Sprintf(format, args...)
	if !s.animate {
		s.plainf("warning: %s", msg)
		return
	}
	s.printAbove(" " + s.styles.WarningIcon() + " " + msg)
}

// End finishes the current phase with ✓ (ok) or ✗. Without a phase it does nothing. On a
// terminal, after SetBody, the last frame stays: the phase with its detail, the body under it.
func (s *Status) End(ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.inPhase {
		return
	}
	s.inPhase = false
	icon, plainIcon := s.styles.SuccessIcon(), IconSuccess
	if !ok {
		icon, plainIcon = s.styles.FailureIcon(), IconFailure
	}
	if !s.animate {
		s.plainf("%s %s", plainIcon, s.phase)
		return
	}
	s.stopSpinner()
	s.spin.Lock()
	body := s.body
	s.body = ""
	s.spin.Unlock()
	if !s.framed {
		fmt.Fprintf(s.w, " %s %s\n", icon, s.phase)
		return
	}
	line := s.phase
	if s.detail != "" {
		line += ": " + s.detail
	}
	if body != "" {
		body += "\n"
	}
	fmt.Fprintf(s.w, " %s %s\n%s", icon, line, body)
}

// SetBody shows text under the spinner line (lines without a final newline, each narrower than
// the terminal), redrawn in place with the spinner, and the detail on the spinner line, both in the
// same frame. Only on a terminal that animates: elsewhere it shows nothing, and the caller prints
// what changed with Logf.
func (s *Status) SetBody(detail, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.animate || !s.inPhase {
		return
	}
	s.detail, s.framed = detail, true
	s.spin.Lock()
	s.spin.Suffix = s.suffix()
	s.body = body
	s.spin.Unlock()
}

func (s *Status) setBody(body string) {
	s.spin.Lock()
	s.body = body
	s.spin.Unlock()
}

// clearBody moves from the last line of the body to the spinner's line and clears the lines
// below; the spinner's lock is held.
func (s *Status) clearBody() {
	if s.drawn > 0 {
		fmt.Fprintf(s.w, "\r\033[%dA\033[J", s.drawn)
		s.drawn = 0
	}
}

// drawBody draws the body under the spinner's line; the spinner's lock is held.
func (s *Status) drawBody() {
	if s.body != "" {
		fmt.Fprint(s.w, "\n"+s.body)
		s.drawn = strings.Count(s.body, "\n") + 1
	}
}

// Stop ends the current phase without a mark and stops the spinner. Call it (deferred) before
// anything else writes to the terminal.
func (s *Status) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inPhase = false
	if s.animate {
		s.stopSpinner()
	}
}

func (s *Status) stopSpinner() {
	if s.spinning {
		s.spin.Stop() // erases the cursor's line
		s.spinning = false
		s.spin.Lock()
		s.clearBody()
		s.spin.Unlock()
	}
}

// printAbove prints a line above the spinner: erase the spinner's line (and the body), print, and
// draw the last frame again below. The spinner's lock keeps frames and lines from interleaving.
func (s *Status) printAbove(line string) {
	if !s.spinning {
		fmt.Fprintln(s.w, line)
		return
	}
	s.spin.Lock()
	defer s.spin.Unlock()
	s.clearBody()
	fmt.Fprint(s.w, "\r\033[K"+line+"\n")
	if s.body != "" && s.spin.LastOutput != "" {
		// Without waiting for the next frame, so that a table does not blink at every line.
		fmt.Fprint(s.spin.Writer, s.spin.LastOutput)
		s.drawBody()
	}
}

// setSuffix sets the text after the spinner, cut to the terminal's width so the line never wraps
// (a wrapped spinner line could not be erased cleanly).
func (s *Status) setSuffix() {
	if s.spin == nil {
		return
	}
	s.spin.Lock()
	s.spin.Suffix = s.suffix()
	s.spin.Unlock()
}

func (s *Status) suffix() string {
	text := s.phase
	if s.detail != "" {
		text += ": " + s.detail
	}
	width := s.width
	if width <= 0 {
		width = 80
	}
	// The spinner measures bytes, not columns: keep the byte length under the width.
	if max := width - 6; len(text) > max && max > 0 {
		text = truncateBytes(text, max-3) + "..."
	}
	return " " + text
}

func (s *Status) plainf(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	if s.stamps {
		line = s.now().Format("15:04:05") + " " + line
	}
	fmt.Fprintln(s.w, line)
}

func truncateBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !isRuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// sgrStripper drops colour escapes (SGR) that the spinner library writes on its own, so that a
// terminal without colour (NO_COLOR) gets none. Cursor movement passes through.
type sgrStripper struct{ w io.Writer }

var sgr = regexp.MustCompile("\x1b\\[[0-9;]*m")

func (s sgrStripper) Write(p []byte) (int, error) {
	if _, err := s.w.Write(sgr.ReplaceAll(p, nil)); err != nil {
		return 0, err
	}
	return len(p), nil
}
