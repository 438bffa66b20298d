package cli

import (
	"reflect"
	"strings"
	"testing"
)

func TestExecOptions(t *testing.T) {
	testOptions(t, NewCmdExec, []optionsCase[ExecOptions]{
		{
			name: "service and command",
			argv: "web ls -l /",
			want: ExecOptions{Service: "web", Command: []string{"ls", "-l", "/"}},
		},
		{
			name: "flags after SERVICE belong to the command",
			argv: "web sh -c exit -T --index 2 -n x",
			want: ExecOptions{Service: "web", Command: []string{"sh", "-c", "exit", "-T", "--index", "2", "-n", "x"}},
		},
		{
			name: "every flag",
			argv: "-T --index 2 -e A=1 --env B -w /srv -p shop -f a.yaml --context ctx -n ns worker env",
			want: ExecOptions{
				Service: "worker", Command: []string{"env"}, NoTTY: true, Index: 2,
				Env: []string{"A=1", "B"}, Workdir: "/srv",
				Project: ProjectOptions{ProjectName: "shop", Files: []string{"a.yaml"}},
				Cluster: ClusterOptions{Context: "ctx", Namespace: "ns"},
			},
		},
		{
			name: "docker compose's -it is the default",
			argv: "-it web sh",
			want: ExecOptions{Service: "web", Command: []string{"sh"}},
		},
		{
			name: "--interactive=false leaves stdin unattached",
			argv: "--interactive=false web true",
			want: ExecOptions{Service: "web", Command: []string{"true"}, NoStdin: true},
		},
		{
			name: "kubectl's -- before the command",
			argv: "web -- ls --all",
			want: ExecOptions{Service: "web", Command: []string{"ls", "--all"}},
		},
		{
			name: "-- before SERVICE",
			argv: "-T -- web ls",
			want: ExecOptions{Service: "web", Command: []string{"ls"}, NoTTY: true},
		},
		{
			name: "--tty=false is -T",
			argv: "--tty=false web sh",
			want: ExecOptions{Service: "web", Command: []string{"sh"}, NoTTY: true},
		},
		{
			name:    "settings from the environment",
			argv:    "web true",
			environ: []string{"ERGOMAKE_NAMESPACE=env-ns"},
			want:    ExecOptions{Service: "web", Command: []string{"true"}, Cluster: ClusterOptions{Namespace: "env-ns"}},
		},
		{name: "no command", argv: "web", wantErr: "exec needs a SERVICE and a COMMAND"},
		{name: "no command after --", argv: "web --", wantErr: "exec needs a SERVICE and a COMMAND"},
		{name: "nothing", argv: "", wantErr: "exec needs a SERVICE and a COMMAND"},
		{name: "index zero", argv: "--index 0 web true", wantErr: "--index must be 1 or more, got 0"},
		{name: "relative workdir", argv: "-w app web true", wantErr: `--workdir must be an absolute path, got "app"`},
		{name: "bad variable name", argv: "-e 1A=x web true", wantErr: `--env "1A=x": the variable name must be letters`},
		{name: "empty variable name", argv: "-e =x web true", wantErr: `--env "=x": the variable name`},
		{name: "user", argv: "-u root web id", wantErr: "--user root: Kubernetes exec runs commands as the container's user"},
		{name: "unknown flag", argv: "--nope web true", wantErr: "unknown flag: --nope"},
	})
}

// TestExecUsageErrors: a missing COMMAND is a usage error (exit 2, usage shown); --user is a
// plain failure that says why.
func TestExecUsageErrors(t *testing.T) {
	f, _, stderr := testFactory(t)
	if code := Run(t.Context(), f, []string{"exec", "web"}); code != ExitUsage {
		t.Errorf("exec web: exit %d, want %d", code, ExitUsage)
	}
	if !strings.Contains(stderr.String(), "Usage:") {
		t.Errorf("no usage on stderr:\n%s", stderr)
	}
	f, _, stderr = testFactory(t)
	if code := Run(t.Context(), f, []string{"exec", "-u", "root", "web", "id"}); code != ExitFailure {
		t.Errorf("exec -u: exit %d, want %d", code, ExitFailure)
	}
	if strings.Contains(stderr.String(), "Usage:") || !strings.Contains(stderr.String(), "cannot run them as another") {
		t.Errorf("stderr:\n%s", stderr)
	}
}

func TestRemoteCommand(t *testing.T) {
	tests := []struct {
		name    string
		command []string
		env     []string
		workdir string
		want    []string
	}{
		{name: "as is", command: []string{"ls", "-l"}, want: []string{"ls", "-l"}},
		{
			name: "variables", command: []string{"printenv", "A"}, env: []string{"A=1 2", "B="},
			want: []string{"/bin/sh", "-c", `while [ "$1" != -- ]; do export "$1" || exit 126; shift; done; shift; exec "$@"`,
				"sh", "A=1 2", "B=", "--", "printenv", "A"},
		},
		{
			name: "directory", command: []string{"pwd"}, workdir: "/tmp/a b",
			want: []string{"/bin/sh", "-c", `cd "$1" || exit 126; shift; exec "$@"`, "sh", "/tmp/a b", "pwd"},
		},
		{
			name: "both, and a command that looks like an assignment or a flag", command: []string{"X=1", "-n"},
			env: []string{"A=1"}, workdir: "/",
			want: []string{"/bin/sh", "-c",
				`while [ "$1" != -- ]; do export "$1" || exit 126; shift; done; shift; cd "$1" || exit 126; shift; exec "$@"`,
				"sh", "A=1", "--", "/", "X=1", "-n"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := remoteCommand(tt.command, tt.env, tt.workdir); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("remoteCommand = %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestResolveEnv(t *testing.T) {
	environ := []string{"HOME=/h", "TOKEN=old", "TOKEN=new", "EMPTY="}
	got := resolveEnv([]string{"A=1", "TOKEN", "UNSET", "EMPTY", "B=x=y"}, environ)
	want := []string{"A=1", "TOKEN=new", "EMPTY=", "B=x=y"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("resolveEnv = %q, want %q", got, want)
	}
}

// TestTerminalSizesStop: the size queue ends (Next returns nil) once stopped, so the executor's
// resize loop ends with the command; on a stream that is no terminal it ends at once.
func TestTerminalSizesStop(t *testing.T) {
	q := newTerminalSizes(&strings.Builder{})
	if s := q.Next(); s != nil {
		t.Errorf("Next on a non-terminal = %+v, want nil", s)
	}
	q.stop()
}
