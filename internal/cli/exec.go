package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path"
	"regexp"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/remotecommand"

	"github.com/ergomake/ergomake/internal/iostreams"
	"github.com/ergomake/ergomake/internal/kube"
	"github.com/ergomake/ergomake/internal/render"
	"github.com/ergomake/ergomake/internal/server"
	"github.com/ergomake/ergomake/internal/workload"
)

// ExecOptions are the options of `ergomake exec`.
type ExecOptions struct {
	IO      *iostreams.IOStreams
	Factory *Factory
	Context context.Context

	Project ProjectOptions
	Cluster ClusterOptions
	// Service is the compose service whose container runs the command.
	Service string
	// Command is the command and its arguments.
	Command []string
	// NoTTY disables the terminal that is otherwise allocated when stdin and stdout are terminals.
	NoTTY bool
	// NoStdin leaves the command's stdin unattached (--interactive=false).
	NoStdin bool
	// Index picks the replica (1-based); 0 picks the first running one.
	Index int
	// Env are KEY=VALUE (or KEY, taken from ergomake's own environment) variables to set.
	Env []string
	// Workdir is the directory the command runs in.
	Workdir string
}

// NewCmdExec returns `ergomake exec`.
func NewCmdExec(f *Factory, runF func(*ExecOptions) error) *cobra.Command {
	opts := &ExecOptions{IO: f.IOStreams, Factory: f}
	var user string
	var interactive, tty bool
	cmd := &cobra.Command{
		Use:   "exec [flags] SERVICE COMMAND [ARGS...]",
		Short: "Run a command in a running service container",
		Long: `Run a command in a running container of a service of the compose project's environment, as
"docker compose exec" does. Its standard input is attached; its output and its exit code are
ergomake's.

A terminal is allocated when ergomake's standard input and output are both terminals (a shell
works as at a terminal, and resizing the window resizes it); -T/--no-TTY disables it, so the
command's stdout and stderr stay apart. Without a terminal, standard input is streamed to the
command and closed at its end, so "ergomake exec -T db psql < dump.sql" works.

A service with several replicas runs the command in the first running one, or in the one
--index names (1-based, in the order the replicas were created).

Kubernetes runs the command as the container's user, in its working directory, with its
environment: it cannot set them. -e/--env and -w/--workdir are honoured by starting the command
through /bin/sh in the container (which then replaces itself with the command), so they need an
image with /bin/sh. -u/--user cannot be honoured and is refused.`,
		Example: `  ergomake exec web sh
  ergomake exec -T db pg_dump -U postgres app > dump.sql
  ergomake exec --index 2 -e DEBUG=1 -w /app worker ls -l`,
		Args: func(cmd *cobra.Command, args []string) error {
			// kubectl's habit, "exec web -- ls", works too.
			if len(args) < 2 || len(args) == 2 && args[1] == "--" {
				return FlagErrorf("exec needs a SERVICE and a COMMAND")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Context = cmd.Context()
			opts.Service, opts.Command = args[0], args[1:]
			if opts.Command[0] == "--" {
				opts.Command = opts.Command[1:]
			}
			opts.NoStdin = !interactive
			opts.NoTTY = opts.NoTTY || !tty
			if user != "" {
				return fmt.Errorf("--user %s: Kubernetes exec runs commands as the container's user and cannot run them as another", user)
			}
			if cmd.Flags().Changed("index") && opts.Index < 1 {
				return FlagErrorf("--index must be 1 or more, got %d", opts.Index)
			}
			if opts.Workdir != "" && !path.IsAbs(opts.Workdir) {
				return FlagErrorf("--workdir must be an absolute path, got %q", opts.Workdir)
			}
			for _, e := range opts.Env {
				if name, _, _ := strings.Cut(e, "="); !envName.MatchString(name) {
					return FlagErrorf("--env %q: the variable name must be letters, digits and _, not starting with a digit (the command is started through /bin/sh)", e)
				}
			}
			if runF != nil {
				return runF(opts)
			}
			return execRun(opts)
		},
	}
	fs := cmd.Flags()
	fs.SetInterspersed(false) // flags after SERVICE belong to the command
	fs.BoolVarP(&opts.NoTTY, "no-TTY", "T", false, "do not allocate a terminal (default: one when stdin and stdout are terminals)")
	fs.IntVar(&opts.Index, "index", 0, "replica to run the command in, 1-based (default: the first running one)")
	fs.StringArrayVarP(&opts.Env, "env", "e", nil, "set an environment variable, KEY=VALUE or KEY to pass ergomake's own (repeatable; runs the command through /bin/sh)")
	fs.StringVarP(&opts.Workdir, "workdir", "w", "", "run the command in this directory (absolute; runs the command through /bin/sh)")
	fs.StringVarP(&user, "user", "u", "", "not supported: Kubernetes exec runs commands as the container's user")
	// docker compose's own -i and -t, so "exec -it web sh" works: both are its default already.
	fs.BoolVarP(&interactive, "interactive", "i", true, "attach standard input")
	fs.BoolVarP(&tty, "tty", "t", true, "allocate a terminal when stdin and stdout are terminals (the default)")
	_ = fs.MarkHidden("interactive")
	_ = fs.MarkHidden("tty")
	addProjectFlags(cmd, &opts.Project)
	addClusterFlags(cmd, &opts.Cluster)
	addServerFlag(cmd, &opts.Cluster)
	complete := completeServices(f, &opts.Project)
	cmd.ValidArgsFunction = func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveDefault // the command's own arguments
		}
		return complete(cmd, args, toComplete)
	}
	return cmd
}

// envName is a variable name /bin/sh can export.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func execRun(opts *ExecOptions) error {
	ctx := opts.Context
	argv := remoteCommand(opts.Command, resolveEnv(opts.Env, opts.Factory.Environ()), opts.Workdir)
	target, err := openEnvVia(ctx, opts.Factory, opts.Project, opts.Cluster, nil, true)
	if err != nil {
		return err
	}
	env := target.env
	if _, err := workload.ServiceSpec(env, opts.Service); err != nil {
		return err
	}
	var pod *corev1.Pod
	if target.client != nil {
		pods, err := target.client.ServicePods(ctx, env.Namespace, env.Name, render.LabelValue(opts.Service))
		if err != nil {
			return err
		}
		if pod, err = workload.PickReplica(env, opts.Service, pods, opts.Index); err != nil {
			return err
		}
	}

	ios := opts.IO
	tty := !opts.NoTTY && ios.IsStdinTTY() && ios.IsStdoutTTY()
	var stdin io.Reader
	if !opts.NoStdin {
		stdin = ios.In
	}
	var sizes *terminalSizes
	if tty {
		restore, err := rawTerminal(ios.In)
		if err != nil {
			return err
		}
		defer restore()
		sizes = newTerminalSizes(ios.Out)
		defer sizes.stop()
	}
	var code int
	podName := ""
	if target.srv != nil {
		// Through the ergomake server: it picks the replica as above, and runs the command.
		streams := server.ExecStreams{Stdin: stdin, Stdout: ios.Out, Stderr: ios.ErrOut}
		if sizes != nil {
			streams.Sizes = sizes
		}
		var res server.ExecResult
		res, err = target.srv.Exec(ctx, env.Spec.Project, server.ExecRequest{Service: opts.Service, Index: opts.Index,
			Command: argv, Stdin: stdin != nil, TTY: tty}, streams)
		code, podName = res.Code, res.Pod
		if server.IsStatus(err, http.StatusNotFound) {
			return &notFoundError{msg: fmt.Sprintf("you have no environment of project %q on the ergomake server %s", env.Spec.Project, target.srv.Host())}
		}
		err = serverError(target.srv, err)
	} else {
		eo := kube.ExecOptions{Pod: pod, Container: kube.MainContainer(pod), Command: argv,
			Stdin: stdin, Stdout: ios.Out, Stderr: ios.ErrOut, TTY: tty}
		if sizes != nil {
			eo.Sizes = sizes
		}
		podName = pod.Name
		code, err = target.client.Exec(ctx, eo)
	}
	var notStarted *kube.ExecStartError
	if errors.As(err, &notStarted) {
		// As docker: 126, the command could not be invoked.
		msg := fmt.Sprintf("cannot run %s in service %s (pod %s): %s", opts.Command[0], opts.Service, podName, notStarted.Reason)
		if len(argv) != len(opts.Command) {
			msg += " (with -e or -w the command is started through /bin/sh, which the image must have)"
		}
		return &ExitError{Code: 126, Err: errors.New(msg)}
	}
	if err != nil {
		return err
	}
	if code != 0 {
		return &ExitError{Code: code}
	}
	return nil
}

// remoteCommand is the argv the container runs: command itself, or, to set variables or a
// directory that Kubernetes exec cannot set, command started through /bin/sh, which exports the
// variables, changes directory, and replaces itself with command (same PATH lookup, same
// process for signals and the terminal). Its arguments are passed as the shell's positional
// parameters, never parsed by it.
func remoteCommand(command, env []string, workdir string) []string {
	if len(env) == 0 && workdir == "" {
		return command
	}
	script := ""
	args := []string{}
	if len(env) > 0 {
		script += `while [ "$1" != -- ]; do export "$1" || exit 126; shift; done; shift; `
		args = append(append(args, env...), "--")
	}
	if workdir != "" {
		// A directory that does not exist fails as docker's does: exit 126, the command unstarted.
		script += `cd "$1" || exit 126; shift; `
		args = append(args, workdir)
	}
	script += `exec "$@"`
	return append(append([]string{"/bin/sh", "-c", script, "sh"}, args...), command...)
}

// resolveEnv turns -e values into KEY=VALUE pairs: KEY alone takes ergomake's own value, and is
// left out when ergomake has none, as docker does.
func resolveEnv(vars, environ []string) []string {
	var out []string
	for _, v := range vars {
		if strings.Contains(v, "=") {
			out = append(out, v)
			continue
		}
		for i := len(environ) - 1; i >= 0; i-- {
			if k, _, ok := strings.Cut(environ[i], "="); ok && k == v {
				out = append(out, environ[i])
				break
			}
		}
	}
	return out
}

// rawTerminal puts the terminal of in into raw mode, so that every key reaches the remote
// terminal (Ctrl-C included); restore puts it back. Streams that are not a real terminal are
// left alone.
func rawTerminal(in io.Reader) (restore func(), err error) {
	f, ok := in.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return func() {}, nil
	}
	state, err := term.MakeRaw(int(f.Fd()))
	if err != nil {
		return nil, fmt.Errorf("setting the terminal to raw mode: %w", err)
	}
	return func() { _ = term.Restore(int(f.Fd()), state) }, nil
}

// terminalSizes is the size of the local terminal and each change of it (SIGWINCH), for the
// remote one.
type terminalSizes struct {
	ch   chan remotecommand.TerminalSize
	done chan struct{}
}

func newTerminalSizes(out io.Writer) *terminalSizes {
	q := &terminalSizes{ch: make(chan remotecommand.TerminalSize), done: make(chan struct{})}
	f, ok := out.(*os.File)
	if !ok {
		close(q.ch)
		return q
	}
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	go func() {
		defer close(q.ch)
		defer signal.Stop(winch)
		for {
			if w, h, err := term.GetSize(int(f.Fd())); err == nil {
				select {
				case q.ch <- remotecommand.TerminalSize{Width: uint16(w), Height: uint16(h)}:
				case <-q.done:
					return
				}
			}
			select {
			case <-winch:
			case <-q.done:
				return
			}
		}
	}()
	return q
}

// Next returns the next size, or nil once the command has ended.
func (q *terminalSizes) Next() *remotecommand.TerminalSize {
	s, ok := <-q.ch
	if !ok {
		return nil
	}
	return &s
}

func (q *terminalSizes) stop() { close(q.done) }
