// Package iostreams carries the standard streams of a command and what is known about them: which
// are terminals, whether colour and animation are welcome. Every decision about terminal manners
// (colour, spinners, tables) asks an IOStreams, never the process directly, so tests can drive it.
package iostreams

import (
	"bytes"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// Env is the part of the environment that decides terminal manners.
type Env struct {
	// NoColor is true when NO_COLOR is set to a non-empty value (https://no-color.org).
	NoColor bool
	// Dumb is true when TERM=dumb: no colour, no cursor movement.
	Dumb bool
	// CI is true when CI is set (and not "false" or "0"): no animation even on a terminal.
	CI bool
}

// EnvFrom reads Env from KEY=VALUE pairs such as os.Environ().
func EnvFrom(environ []string) Env {
	get := func(key string) (string, bool) {
		for i := len(environ) - 1; i >= 0; i-- {
			if k, v, ok := strings.Cut(environ[i], "="); ok && k == key {
				return v, true
			}
		}
		return "", false
	}
	var e Env
	if v, _ := get("NO_COLOR"); v != "" {
		e.NoColor = true
	}
	if v, _ := get("TERM"); v == "dumb" {
		e.Dumb = true
	}
	if v, ok := get("CI"); ok && v != "" && v != "false" && v != "0" {
		e.CI = true
	}
	return e
}

// IOStreams are a command's standard streams.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer

	inTTY, outTTY, errTTY bool
	env                   Env
	width                 int
	widthFn               func() int
}

// System returns the process's streams, with terminal detection on each and manners from environ.
func System(environ []string) *IOStreams {
	s := &IOStreams{
		In:     os.Stdin,
		Out:    os.Stdout,
		ErrOut: os.Stderr,
		inTTY:  isTerminal(os.Stdin),
		outTTY: isTerminal(os.Stdout),
		errTTY: isTerminal(os.Stderr),
		env:    EnvFrom(environ),
	}
	s.widthFn = func() int {
		for _, f := range []*os.File{os.Stdout, os.Stderr} {
			if w, _, err := term.GetSize(int(f.Fd())); err == nil && w > 0 {
				return w
			}
		}
		return 0
	}
	return s
}

// Test returns streams backed by buffers: no terminals, empty environment. Use the setters to
// pretend otherwise.
func Test() (s *IOStreams, in, out, errOut *bytes.Buffer) {
	in, out, errOut = &bytes.Buffer{}, &bytes.Buffer{}, &bytes.Buffer{}
	return &IOStreams{In: in, Out: out, ErrOut: errOut}, in, out, errOut
}

func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// SetStdinTTY, SetStdoutTTY and SetStderrTTY override terminal detection (for tests).
func (s *IOStreams) SetStdinTTY(v bool)  { s.inTTY = v }
func (s *IOStreams) SetStdoutTTY(v bool) { s.outTTY = v }
func (s *IOStreams) SetStderrTTY(v bool) { s.errTTY = v }

// SetEnv overrides the environment's manners (for tests).
func (s *IOStreams) SetEnv(e Env) { s.env = e }

// Env returns the manners read from the environment.
func (s *IOStreams) Env() Env { return s.env }

// SetWidth fixes the terminal width (for tests); 0 means unknown.
func (s *IOStreams) SetWidth(w int) { s.width, s.widthFn = w, nil }

// IsStdinTTY, IsStdoutTTY and IsStderrTTY tell whether each stream is a terminal.
func (s *IOStreams) IsStdinTTY() bool  { return s.inTTY }
func (s *IOStreams) IsStdoutTTY() bool { return s.outTTY }
func (s *IOStreams) IsStderrTTY() bool { return s.errTTY }

// ColorEnabled tells whether stdout may carry colour: a terminal, NO_COLOR unset, TERM not dumb.
func (s *IOStreams) ColorEnabled() bool { return s.outTTY && !s.env.NoColor && !s.env.Dumb }

// ColorEnabledStderr is ColorEnabled for stderr.
func (s *IOStreams) ColorEnabledStderr() bool { return s.errTTY && !s.env.NoColor && !s.env.Dumb }

// CanAnimate tells whether stderr may show a spinner and rewrite lines: a terminal that is not
// dumb, outside CI.
func (s *IOStreams) CanAnimate() bool { return s.errTTY && !s.env.Dumb && !s.env.CI }

// TerminalWidth is the width of the terminal in columns, or 0 when unknown.
func (s *IOStreams) TerminalWidth() int {
	if s.widthFn != nil {
		return s.widthFn()
	}
	return s.width
}

// ErrFile returns stderr as a file when it is one (for libraries that check the descriptor).
func (s *IOStreams) ErrFile() *os.File {
	f, _ := s.ErrOut.(*os.File)
	return f
}
