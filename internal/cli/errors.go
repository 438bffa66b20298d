package cli

import (
	"errors"
	"fmt"

	"github.com/ergomake/ergomake/internal/session"
)

// Exit codes of the ergomake command.
const (
	// ExitOK: the command did what was asked.
	ExitOK = 0
	// ExitFailure: the command failed; the error was printed on stderr.
	ExitFailure = 1
	// ExitUsage: the command line was wrong (unknown command or flag, bad flag value, wrong
	// arguments); the error and the command's usage were printed on stderr.
	ExitUsage = 2
	// ExitInUse: the environment belongs to someone else: `up` of an environment another live
	// session is attached to, `down` of one another identity created (without --force).
	ExitInUse = 3
	// ExitCancel: interrupted (Ctrl-C, SIGTERM) before the command could finish.
	ExitCancel = 130
)

// ErrSilent makes the command exit 1 without printing anything more: it has already said what
// went wrong.
var ErrSilent = errors.New("SilentError")

// ErrCancel makes the command exit 130 without printing anything more: the user interrupted it
// and was told what was left undone. It is the session's ErrCancel: one value, wherever it
// comes from.
var ErrCancel = session.ErrCancel

// FlagError is a command-line mistake: it is printed with the command's usage and exits 2.
type FlagError struct{ err error }

func (e *FlagError) Error() string { return e.err.Error() }
func (e *FlagError) Unwrap() error { return e.err }

// FlagErrorf returns a FlagError with a formatted message.
func FlagErrorf(format string, args ...any) error {
	return &FlagError{err: fmt.Errorf(format, args...)}
}

// FlagErrorWrap makes err a FlagError (nil stays nil).
func FlagErrorWrap(err error) error {
	if err == nil {
		return nil
	}
	return &FlagError{err: err}
}

// ExitError carries a specific exit code. Err is printed unless it is nil or ErrSilent.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}
func (e *ExitError) Unwrap() error { return e.Err }
