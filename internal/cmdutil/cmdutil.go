// Package cmdutil is the frame the commands of the ergomake-operator binary share (the operator
// itself, `ergomake-operator dns` and `ergomake-operator server`): their flags with --kubeconfig,
// the cluster configuration, and a run until SIGINT or SIGTERM with its errors on stderr.
package cmdutil

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/client/config"
)

// Command is one command of the binary: its name as typed, its flags and its stderr.
type Command struct {
	Name   string        // "ergomake-operator dns"
	Flags  *flag.FlagSet // the command's own flags go here, before Parse
	Stderr io.Writer

	kubeconfig string
}

// New returns the command name, its flag set (with --kubeconfig) writing to stderr.
func New(name string, stderr io.Writer) *Command {
	c := &Command{Name: name, Flags: flag.NewFlagSet(name, flag.ContinueOnError), Stderr: stderr}
	c.Flags.SetOutput(stderr)
	c.Flags.StringVar(&c.kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, else the in-cluster config, else ~/.kube/config)")
	return c
}

// Parse parses args. When ok is false the command is over, with exit code code: 0 after -h, 2 on
// bad flags (the flag set said why on stderr).
func (c *Command) Parse(args []string) (code int, ok bool) {
	if err := c.Flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, false
		}
		return 2, false
	}
	return 0, true
}

// Config is the cluster's configuration: the --kubeconfig file, else controller-runtime's choice
// ($KUBECONFIG, else the in-cluster configuration, else ~/.kube/config). Client-side rate limiting
// is off unless the file sets it, as controller-runtime has it (the API server's priority and
// fairness limits instead).
func (c *Command) Config() (*rest.Config, error) {
	if c.kubeconfig == "" {
		return ctrlconfig.GetConfig()
	}
	rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: c.kubeconfig}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil).ClientConfig()
	if err != nil {
		return nil, err
	}
	if cfg.QPS == 0 {
		cfg.QPS = -1
	}
	return cfg, nil
}

// Serve runs run with the cluster's configuration (Config) and a context that SIGINT or SIGTERM
// ends, and returns the command's exit code: 0; or, once the error is said on stderr after the
// command's name, 1 (the code of an error from Exit).
func (c *Command) Serve(run func(ctx context.Context, cfg *rest.Config) error) int {
	cfg, err := c.Config()
	if err != nil {
		return c.fail(1, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		var e exitError
		if errors.As(err, &e) {
			return c.fail(e.code, e.err)
		}
		return c.fail(1, err)
	}
	return 0
}

// Exit is err, for Serve to end the command with exit code code.
func Exit(code int, err error) error { return exitError{code, err} }

type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }

// fail says err on stderr, after the command's name, and returns code.
func (c *Command) fail(code int, err error) int {
	fmt.Fprintf(c.Stderr, "%s: %v\n", c.Name, err)
	return code
}
