package cli

import (
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
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

func TestServiceSpec(t *testing.T) {
	env := &v1alpha1.ErgomakeEnv{Spec: v1alpha1.EnvSpec{Project: "shop",
		Services: []v1alpha1.ServiceSpec{{Name: "db"}, {Name: "web"}}}}
	if s, err := serviceSpec(env, "web"); err != nil || s.Name != "web" {
		t.Errorf("serviceSpec(web) = %v, %v", s, err)
	}
	_, err := serviceSpec(env, "api")
	if err == nil || err.Error() != "no such service: api (the services of project shop: db, web)" {
		t.Errorf("serviceSpec(api) error = %v", err)
	}
}

// testPod is a pod created at minute min, with its main container in the given state.
func testPod(name string, min int, state corev1.ContainerState, mods ...func(*corev1.Pod)) corev1.Pod {
	p := corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(time.Date(2026, 1, 1, 0, min, 0, 0, time.UTC))},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main"}, {Name: "sidecar"}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{
			{Name: "sidecar", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}},
			{Name: "main", State: state},
		}},
	}
	for _, m := range mods {
		m(&p)
	}
	return p
}

func TestPickReplica(t *testing.T) {
	running := corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	crashing := corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}
	exited := corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 3}}
	terminating := func(p *corev1.Pod) { p.DeletionTimestamp = &metav1.Time{Time: time.Now()} }
	succeeded := func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }
	pending := func(p *corev1.Pod) { p.Status.Phase = corev1.PodPending; p.Status.ContainerStatuses = nil }
	unschedulable := func(p *corev1.Pod) {
		pending(p)
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
			Reason: "Unschedulable", Message: "0/1 nodes are available"}}
	}

	env := &v1alpha1.ErgomakeEnv{Status: v1alpha1.EnvStatus{Services: []v1alpha1.ServiceStatus{
		{Name: "web", State: v1alpha1.StateFailed, Reason: "CrashLoopBackOff"},
		{Name: "api", State: v1alpha1.StateWaiting, Reason: "WaitingForDependencies", WaitingFor: []string{"db"}},
	}}}
	// ServicePods' order: oldest first.
	pods := []corev1.Pod{
		testPod("old", 0, running, terminating),
		testPod("a", 1, crashing),
		testPod("b", 2, running),
		testPod("done", 3, exited, succeeded),
		testPod("c", 4, exited),
		testPod("d", 5, running, pending),
	}
	tests := []struct {
		name    string
		service string
		pods    []corev1.Pod
		index   int
		want    string
		wantErr string
	}{
		{name: "first running", service: "web", pods: pods, want: "b"},
		{name: "index counts replicas only", service: "web", pods: pods, index: 2, want: "b"},
		{name: "index of a crashing replica", service: "web", pods: pods, index: 1,
			wantErr: "replica 1 of service web (pod a) is not running: CrashLoopBackOff"},
		{name: "index of an exited container", service: "web", pods: pods, index: 3,
			wantErr: "replica 3 of service web (pod c) is not running: exited with code 3"},
		{name: "index of a pending pod", service: "web", pods: pods, index: 4,
			wantErr: "replica 4 of service web (pod d) is not running: pending"},
		{name: "index too large", service: "web", pods: pods, index: 5,
			wantErr: "service web has 4 replicas: --index must be between 1 and 4"},
		{name: "one replica", service: "web", pods: pods[2:3], index: 2,
			wantErr: "service web has 1 replica: --index must be between 1 and 1"},
		{name: "index of an unschedulable pod", service: "web", pods: []corev1.Pod{testPod("e", 0, running, unschedulable)}, index: 1,
			wantErr: "replica 1 of service web (pod e) is not running: Unschedulable: 0/1 nodes are available"},
		{name: "none running: the operator's view", service: "web", pods: pods[1:2],
			wantErr: "service web is not running (failed, CrashLoopBackOff): see `ergomake ps` and `ergomake logs web`"},
		{name: "no pods yet", service: "api", index: 1,
			wantErr: "service api is not running (waiting, WaitingForDependencies, waiting for db)"},
		{name: "not in the status yet", service: "new",
			wantErr: "service new is not running: see"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := pickReplica(env, tt.service, tt.pods, tt.index)
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Name != tt.want {
				t.Errorf("picked %s, want %s", got.Name, tt.want)
			}
		})
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
