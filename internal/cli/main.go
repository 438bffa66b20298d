// Package cli is the ergomake command: the root command, one file per verb, and Main, which turns
// what happened into an exit code. Every verb is NewCmdX(f, runF) with an XOptions struct that
// cobra fills from the command line and a plain xRun(opts) that does the work; tests pass their
// own runF to check how argv parses, and call xRun directly to check what it does.
package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// Main runs ergomake with the process's arguments and streams and returns the exit code.
// The first Ctrl-C (or SIGTERM) cancels the command's context, so it can clean up; a second one
// kills the process the usual way.
func Main() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // restore default handling: the next signal ends the process
	}()
	return Run(ctx, NewFactory(), os.Args[1:])
}

// Run executes the command line args and returns the exit code. Errors are printed on the
// Factory's stderr.
func Run(ctx context.Context, f *Factory, args []string) int {
	root := NewCmdRoot(f)
	root.SetArgs(hoistFlags(root, args))
	root.SetIn(f.IOStreams.In)
	root.SetOut(f.IOStreams.Out)
	root.SetErr(f.IOStreams.ErrOut)
	cmd, err := root.ExecuteContextC(ctx)
	return exitCode(ctx, f, cmd, err)
}

// exitCode prints err as it deserves and maps it to an exit code.
func exitCode(ctx context.Context, f *Factory, cmd *cobra.Command, err error) int {
	stderr := f.IOStreams.ErrOut
	var flagErr *FlagError
	var exitErr *ExitError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &exitErr):
		if exitErr.Err != nil && !errors.Is(exitErr.Err, ErrSilent) {
			fmt.Fprintln(stderr, "error: "+exitErr.Err.Error())
		}
		return exitErr.Code
	case errors.Is(err, ErrSilent):
		return ExitFailure
	case errors.Is(err, ErrCancel), errors.Is(err, context.Canceled) && ctx.Err() != nil:
		if !errors.Is(err, ErrCancel) {
			fmt.Fprintln(stderr, "interrupted")
		}
		return ExitCancel
	case errors.As(err, &flagErr), isCobraUsageError(err):
		fmt.Fprintln(stderr, "error: "+strings.TrimRight(err.Error(), "\n"))
		if cmd != nil {
			fmt.Fprint(stderr, "\n"+cmd.UsageString())
		}
		return ExitUsage
	default:
		fmt.Fprintln(stderr, "error: "+err.Error())
		return ExitFailure
	}
}

// isCobraUsageError recognises the command-line errors cobra makes itself and does not type.
func isCobraUsageError(err error) bool {
	msg := err.Error()
	for _, prefix := range []string{"unknown command ", "unknown flag: ", "unknown shorthand flag: ", "flag needs an argument: ", "invalid argument "} {
		if strings.HasPrefix(msg, prefix) {
			return true
		}
	}
	return false
}
