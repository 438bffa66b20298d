package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ergomake/ergomake/internal/iostreams"
	"github.com/ergomake/ergomake/internal/kube"
)

// testFactory is a Factory around buffers, with a chosen environment and working directory.
// HOME points at an empty directory so no real config file is read. The settings (internal/config)
// read the process environment, as viper does: it is set to the same variables for the test, with
// HOME, XDG_CONFIG_HOME and any ERGOMAKE_* variable of the real one cleared.
func testFactory(t *testing.T, environ ...string) (*Factory, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	ios, _, stdout, stderr := iostreams.Test()
	env := append([]string{"HOME=" + t.TempDir()}, environ...)
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "ERGOMAKE_") || k == "HOME" || k == "XDG_CONFIG_HOME" {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return &Factory{
		IOStreams:  ios,
		Environ:    func() []string { return env },
		WorkingDir: func() (string, error) { return wd, nil },
		Now:        func() time.Time { return time.Date(2026, 11, 24, 17, 0, 0, 0, time.UTC) },
		KubeClient: newKubeClient,
	}, stdout, stderr
}

// parse runs argv through a command built by newCmd, with root's persistent behaviour (config
// settings), and returns the error of parsing; the command's runF captures the options.
func parse(t *testing.T, f *Factory, cmd *cobra.Command, argv string) error {
	t.Helper()
	root := NewCmdRoot(f)
	// Replace the registered verb of the same name by the one under test.
	for _, c := range root.Commands() {
		if c.Name() == cmd.Name() {
			root.RemoveCommand(c)
		}
	}
	root.AddCommand(cmd)
	args := strings.Fields(argv)
	root.SetArgs(hoistFlags(root, append([]string{cmd.Name()}, args...)))
	root.SetOut(&bytes.Buffer{})
	root.SetErr(&bytes.Buffer{})
	_, err := root.ExecuteC()
	return err
}

// optionsCase is one case of a verb's argv parsing: the options its runF gets (Context, IO and
// Factory aside), or the error.
type optionsCase[O any] struct {
	name    string
	argv    string
	environ []string // the process environment (testFactory)
	want    O
	wantErr string
}

// testOptions parses each case's argv with the verb newCmd makes and checks the error (runF not
// called) or the options runF got.
func testOptions[O any](t *testing.T, newCmd func(*Factory, func(*O) error) *cobra.Command, tests []optionsCase[O]) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, _, _ := testFactory(t, tt.environ...)
			var got *O
			err := parse(t, f, newCmd(f, func(o *O) error { got = o; return nil }), tt.argv)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				if got != nil {
					t.Error("runF was called")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkOptions(t, f, got, tt.want)
		})
	}
}

// checkOptions checks that got, options a verb's runF received, has Context, IO and Factory (f) set
// and otherwise equals want.
func checkOptions[O any](t *testing.T, f *Factory, got *O, want O) {
	t.Helper()
	v := reflect.ValueOf(got).Elem()
	ctx, io, factory := v.FieldByName("Context"), v.FieldByName("IO"), v.FieldByName("Factory")
	if ctx.IsNil() || io.IsNil() || factory.Interface() != f {
		t.Error("runF got options without Context, IO or Factory")
	}
	for _, field := range []reflect.Value{ctx, io, factory} {
		field.SetZero()
	}
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("options:\n got %+v\nwant %+v", *got, want)
	}
}

func TestUpOptions(t *testing.T) {
	testOptions(t, NewCmdUp, []optionsCase[UpOptions]{
		{
			name: "defaults",
			argv: "",
			want: UpOptions{WaitTimeout: 10 * time.Minute},
		},
		{
			name: "every flag",
			argv: "-d --keep --wait-timeout 3m --ttl 1h -f a.yaml --file b.yaml -p shop --project-directory dir --profile debug --profile tools --env-file .env.dev --kubeconfig kc --context ctx -n ns",
			want: UpOptions{
				Detach: true, Keep: true, WaitTimeout: 3 * time.Minute, TTL: time.Hour,
				Project: ProjectOptions{
					Files: []string{"a.yaml", "b.yaml"}, ProjectName: "shop", ProjectDirectory: "dir",
					Profiles: []string{"debug", "tools"}, EnvFiles: []string{".env.dev"},
				},
				Cluster: ClusterOptions{Kubeconfig: "kc", Context: "ctx", Namespace: "ns"},
			},
		},
		{
			name:    "settings from the environment where flags are unset",
			argv:    "--context flag-ctx",
			environ: []string{"ERGOMAKE_CONTEXT=env-ctx", "ERGOMAKE_NAMESPACE=env-ns", "ERGOMAKE_WAIT_TIMEOUT=2m", "ERGOMAKE_TTL=30m"},
			want: UpOptions{
				WaitTimeout: 2 * time.Minute, TTL: 30 * time.Minute,
				Cluster: ClusterOptions{Context: "flag-ctx", Namespace: "env-ns"},
			},
		},
		{
			name: "compose file flags may come before the verb, as in docker compose",
			argv: "-d",
			want: UpOptions{Detach: true, WaitTimeout: 10 * time.Minute},
		},
		{
			name: "image flags",
			argv: "--build --no-cache --registry registry.example.com/team",
			want: UpOptions{WaitTimeout: 10 * time.Minute, Images: ImageOptions{Force: true, NoCache: true, Registry: "registry.example.com/team"}},
		},
		{
			name:    "no build, registry from the environment",
			argv:    "--no-build",
			environ: []string{"ERGOMAKE_REGISTRY=registry.example.com"},
			want:    UpOptions{WaitTimeout: 10 * time.Minute, Images: ImageOptions{NoBuild: true, Registry: "registry.example.com"}},
		},
		{name: "build and no build", argv: "--build --no-build", wantErr: "--build and --no-build cannot be used together"},
		{name: "no cache and no build", argv: "--no-cache --no-build", wantErr: "--no-cache and --no-build cannot be used together"},
		{name: "unknown flag", argv: "--nope", wantErr: "unknown flag: --nope"},
		{name: "bad duration", argv: "--wait-timeout soon", wantErr: `invalid argument "soon" for "--wait-timeout" flag`},
		{name: "zero wait timeout", argv: "--wait-timeout 0s", wantErr: "--wait-timeout must be positive, got 0s"},
		{name: "negative ttl", argv: "--ttl -1m", wantErr: "--ttl must not be negative, got -1m0s"},
		{name: "ttl below three heartbeats", argv: "--ttl 59s",
			wantErr: "--ttl 59s is shorter than three heartbeats (1m0s): the environment would be deleted whenever a heartbeat or two came late; use --ttl 1m0s or more"},
		{name: "ttl below three of the heartbeat interval given", argv: "--ttl 5s --heartbeat-interval 2s", wantErr: "use --ttl 6s or more"},
		{
			name: "short ttl with a short heartbeat interval",
			argv: "--ttl 6s --heartbeat-interval 2s",
			want: UpOptions{WaitTimeout: 10 * time.Minute, TTL: 6 * time.Second, HeartbeatInterval: 2 * time.Second},
		},
		{name: "arguments", argv: "web", wantErr: `unknown command "web" for "ergomake up"`},
	})
}

func TestProjectFlagsBeforeVerb(t *testing.T) {
	f, _, _ := testFactory(t)
	root := NewCmdRoot(f)
	var got *LogsOptions
	for _, c := range root.Commands() {
		if c.Name() == "logs" {
			root.RemoveCommand(c)
		}
	}
	root.AddCommand(NewCmdLogs(f, func(o *LogsOptions) error { got = o; return nil }))
	root.SetArgs(hoistFlags(root, []string{"-f", "a.yaml", "--project-name=shop", "logs", "-f", "web"}))
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	if !got.Follow || !reflect.DeepEqual(got.Project.Files, []string{"a.yaml"}) || got.Project.ProjectName != "shop" ||
		!reflect.DeepEqual(got.Services, []string{"web"}) {
		t.Errorf("got %+v", got)
	}
}

func TestHoistProjectFlags(t *testing.T) {
	tests := []struct{ in, want string }{
		{"up -f a.yaml", "up -f a.yaml"},
		{"-f a.yaml up -d", "up --file=a.yaml -d"},
		{"-fa.yaml -p=shop --profile x --env-file=e up", "up --file=a.yaml --project-name=shop --profile=x --env-file=e"},
		{"--config c.yaml -f a.yaml logs -f", "--config c.yaml logs --file=a.yaml -f"},
		{"--project-directory d ps web", "ps --project-directory=d web"},
		{"-n ns --context=c --kubeconfig k ls", "ls --namespace=ns --context=c --kubeconfig=k"},
		{"-f", "-f"},
		{"-f a.yaml", "-f a.yaml"},
		{"--version", "--version"},
		{"-- -f a.yaml up", "-- -f a.yaml up"},
	}
	f, _, _ := testFactory(t)
	root := NewCmdRoot(f)
	for _, tt := range tests {
		got := strings.Join(hoistFlags(root, strings.Fields(tt.in)), " ")
		if got != tt.want {
			t.Errorf("hoist(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestDownOptions(t *testing.T) {
	f, _, _ := testFactory(t)
	var got *DownOptions
	if err := parse(t, f, NewCmdDown(f, func(o *DownOptions) error { got = o; return nil }), "-p shop -n ns --wait-timeout 1m"); err != nil {
		t.Fatal(err)
	}
	if got.Project.ProjectName != "shop" || got.Cluster.Namespace != "ns" || got.WaitTimeout != time.Minute {
		t.Errorf("got %+v", got)
	}
	if err := parse(t, f, NewCmdDown(f, nil), "extra"); err == nil {
		t.Error("down accepted an argument")
	}
}

func TestLsOptions(t *testing.T) {
	tests := []struct {
		argv, output, namespace, wantErr string
	}{
		{argv: "", output: "table"},
		{argv: "-o json -n team", output: "json", namespace: "team"},
		{argv: "--output=table", output: "table"},
		{argv: "-o yaml", wantErr: `invalid argument "yaml" for "-o, --output" flag: must be one of: table, json`},
	}
	for _, tt := range tests {
		f, _, _ := testFactory(t)
		var got *LsOptions
		err := parse(t, f, NewCmdLs(f, func(o *LsOptions) error { got = o; return nil }), tt.argv)
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("%q: error = %v, want %q", tt.argv, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if got.Output != tt.output || got.Cluster.Namespace != tt.namespace {
			t.Errorf("%q: got %+v", tt.argv, got)
		}
	}
}

func TestPsOptions(t *testing.T) {
	f, _, _ := testFactory(t)
	var got *PsOptions
	if err := parse(t, f, NewCmdPs(f, func(o *PsOptions) error { got = o; return nil }), "web db -o json -f c.yaml"); err != nil {
		t.Fatal(err)
	}
	if got.Output != "json" || !reflect.DeepEqual(got.Services, []string{"web", "db"}) || got.Project.Files[0] != "c.yaml" {
		t.Errorf("got %+v", got)
	}
}

func TestLogsOptions(t *testing.T) {
	tests := []struct {
		argv string
		want LogsOptions
	}{
		{"", LogsOptions{Tail: -1}},
		{"-f --tail 20 -t web worker --file c.yaml", LogsOptions{
			Follow: true, Tail: 20, Timestamps: true, Services: []string{"web", "worker"},
			Project: ProjectOptions{Files: []string{"c.yaml"}},
		}},
	}
	for _, tt := range tests {
		f, _, _ := testFactory(t)
		var got *LogsOptions
		if err := parse(t, f, NewCmdLogs(f, func(o *LogsOptions) error { got = o; return nil }), tt.argv); err != nil {
			t.Fatal(err)
		}
		checkOptions(t, f, got, tt.want)
	}
}

func TestForwardOptions(t *testing.T) {
	f, _, _ := testFactory(t)
	var got *ForwardOptions
	if err := parse(t, f, NewCmdForward(f, func(o *ForwardOptions) error { got = o; return nil }), "kibana --context c"); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Services, []string{"kibana"}) || got.Cluster.Context != "c" {
		t.Errorf("got %+v", got)
	}
}

func TestRenderOptions(t *testing.T) {
	f, _, _ := testFactory(t, "ERGOMAKE_NAMESPACE=from-env")
	var got *RenderOptions
	if err := parse(t, f, NewCmdRender(f, func(o *RenderOptions) error { got = o; return nil }), "-o json --profile p"); err != nil {
		t.Fatal(err)
	}
	if got.Output != "json" || got.Namespace != "from-env" || got.Project.Profiles[0] != "p" {
		t.Errorf("got %+v", got)
	}
	// render needs no cluster: it has no cluster flags.
	if err := parse(t, f, NewCmdRender(f, nil), "--kubeconfig x"); err == nil {
		t.Error("render accepted --kubeconfig")
	}
}

func TestBuildOptions(t *testing.T) {
	f, _, _ := testFactory(t, "ERGOMAKE_REGISTRY=from-env.example.com")
	var got *BuildOptions
	if err := parse(t, f, NewCmdBuild(f, func(o *BuildOptions) error { got = o; return nil }), "web api --no-cache -o json -f c.yaml -n ns"); err != nil {
		t.Fatal(err)
	}
	want := BuildOptions{
		Project:  ProjectOptions{Files: []string{"c.yaml"}},
		Cluster:  ClusterOptions{Namespace: "ns"},
		Images:   ImageOptions{NoCache: true, Registry: "from-env.example.com"},
		Services: []string{"web", "api"},
		Output:   "json",
	}
	checkOptions(t, f, got, want)
	for _, argv := range []string{"--build", "--no-build", "-o yaml"} {
		if err := parse(t, f, NewCmdBuild(f, nil), argv); err == nil {
			t.Errorf("build accepted %s", argv)
		}
	}
}

func TestBuildWithoutBuiltServices(t *testing.T) {
	f, stdout, stderr := testFactory(t)
	f.KubeClient = func(ClusterOptions) (*kube.Client, error) { return nil, errors.New("no cluster needed") }
	if code := Run(context.Background(), f, []string{"build", "-f", filepath.Join("testdata", "project", "compose.yaml"), "-o", "json"}); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if stdout.String() != "[]\n" || !strings.Contains(stderr.String(), "nothing to build") {
		t.Errorf("stdout %q, stderr %q", stdout, stderr)
	}
	code := Run(context.Background(), f, []string{"build", "-f", filepath.Join("testdata", "project", "compose.yaml"), "nope"})
	if code != 1 || !strings.Contains(stderr.String(), `no service "nope"`) {
		t.Errorf("unknown service: exit %d, stderr %q", code, stderr)
	}
}

func TestConfigFilePrecedence(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "ergomake", "config.yaml")
	if err := os.MkdirAll(filepath.Dir(cfg), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, []byte("namespace: from-file\ncontext: file-ctx\nwait-timeout: 7m\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		argv    string
		environ []string
		ns, ctx string
		wait    time.Duration
	}{
		{"file over defaults", "", nil, "from-file", "file-ctx", 7 * time.Minute},
		{"env over file", "", []string{"ERGOMAKE_NAMESPACE=from-env"}, "from-env", "file-ctx", 7 * time.Minute},
		{"flag over env", "-n from-flag --wait-timeout 1m", []string{"ERGOMAKE_NAMESPACE=from-env"}, "from-flag", "file-ctx", time.Minute},
		{"--config names another file", "--config " + filepath.Join(dir, "none.yaml"), nil, "", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, _, _ := testFactory(t, append([]string{"XDG_CONFIG_HOME=" + dir}, tt.environ...)...)
			var got *UpOptions
			err := parse(t, f, NewCmdUp(f, func(o *UpOptions) error { got = o; return nil }), tt.argv)
			if tt.wait == 0 {
				if err == nil || !strings.Contains(err.Error(), "none.yaml: no such file or directory") {
					t.Fatalf("error = %v, want a missing config file", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Cluster.Namespace != tt.ns || got.Cluster.Context != tt.ctx || got.WaitTimeout != tt.wait {
				t.Errorf("got namespace %q context %q wait %s", got.Cluster.Namespace, got.Cluster.Context, got.WaitTimeout)
			}
		})
	}
}

func TestConfigNotReadByCommandsWithoutSettings(t *testing.T) {
	// A broken config file must not break `ergomake version` or completion scripts.
	f, stdout, stderr := testFactory(t, "ERGOMAKE_CONFIG=/nonexistent/config.yaml")
	if code := Run(context.Background(), f, []string{"version"}); code != 0 {
		t.Fatalf("version exited %d: %s", code, stderr)
	}
	if !strings.HasPrefix(stdout.String(), "ergomake version ") {
		t.Errorf("version printed %q", stdout)
	}
	f, _, stderr = testFactory(t, "ERGOMAKE_CONFIG=/nonexistent/config.yaml")
	if code := Run(context.Background(), f, []string{"up"}); code != 1 ||
		stderr.String() != "error: config file /nonexistent/config.yaml: no such file or directory\n" {
		t.Errorf("up with a missing config file: exit %d, stderr %q", code, stderr)
	}
}

func TestExitCodes(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		code       int
		stderr     string // prefix
		wantUsage  bool
		emptyStdio bool
	}{
		{name: "help", args: []string{"--help"}, code: 0},
		{name: "version flag", args: []string{"--version"}, code: 0},
		{name: "unknown command", args: []string{"nope"}, code: 2, stderr: `error: unknown command "nope" for "ergomake"`, wantUsage: true},
		{name: "unknown flag", args: []string{"render", "--nope"}, code: 2, stderr: "error: unknown flag: --nope\n\nUsage:\n  ergomake render [flags]", wantUsage: true},
		{name: "bad flag value", args: []string{"version", "-o", "xml"}, code: 2, stderr: `error: invalid argument "xml" for "-o, --output" flag: must be one of: text, json`, wantUsage: true},
		{name: "missing flag value", args: []string{"up", "--wait-timeout"}, code: 2, stderr: "error: flag needs an argument: --wait-timeout", wantUsage: true},
		{name: "bad arguments", args: []string{"version", "extra"}, code: 2, stderr: `error: unknown command "extra" for "ergomake version"`, wantUsage: true},
		{name: "completion without shell", args: []string{"completion"}, code: 2, stderr: "error: name one shell: bash, zsh, fish or powershell", wantUsage: true},
		{name: "render failure", args: []string{"render", "-f", "does-not-exist.yaml"}, code: 1, stderr: "error: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, _, stderr := testFactory(t)
			code := Run(context.Background(), f, tt.args)
			if code != tt.code {
				t.Errorf("exit code %d, want %d (stderr %q)", code, tt.code, stderr)
			}
			if !strings.HasPrefix(stderr.String(), tt.stderr) {
				t.Errorf("stderr %q, want prefix %q", stderr, tt.stderr)
			}
			if got := strings.Contains(stderr.String(), "Usage:"); got != tt.wantUsage {
				t.Errorf("usage printed = %v, want %v", got, tt.wantUsage)
			}
			if tt.code == 1 && strings.Count(stderr.String(), "\n") != 1 {
				t.Errorf("a failure should be one line, got %q", stderr)
			}
		})
	}
}

func TestExitCodeMapping(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name   string
		ctx    context.Context
		err    error
		code   int
		stderr string
	}{
		{"nil", context.Background(), nil, 0, ""},
		{"plain", context.Background(), errors.New("boom"), 1, "error: boom\n"},
		{"silent", context.Background(), fmt.Errorf("wrapped: %w", ErrSilent), 1, ""},
		{"cancel", context.Background(), ErrCancel, 130, ""},
		{"context cancelled by a signal", cancelled, fmt.Errorf("waiting: %w", context.Canceled), 130, "interrupted\n"},
		{"context.Canceled from elsewhere", context.Background(), context.Canceled, 1, "error: context canceled\n"},
		{"exit error", context.Background(), &ExitError{Code: 3, Err: errors.New("degraded")}, 3, "error: degraded\n"},
		{"silent exit error", context.Background(), &ExitError{Code: 4, Err: ErrSilent}, 4, ""},
		{"flag error", context.Background(), FlagErrorf("bad"), 2, "error: bad\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, _, stderr := testFactory(t)
			if code := exitCode(tt.ctx, f, nil, tt.err); code != tt.code {
				t.Errorf("code %d, want %d", code, tt.code)
			}
			if stderr.String() != tt.stderr {
				t.Errorf("stderr %q, want %q", stderr, tt.stderr)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	f, stdout, _ := testFactory(t)
	opts := &VersionOptions{IO: f.IOStreams, Output: "text"}
	opts.Info.Version, opts.Info.Commit, opts.Info.Date = "v1.2.3", "0123456789abcdef0123", "2026-11-24T17:00:00Z"
	opts.Info.GoVersion, opts.Info.Platform = "go1.26.8", "linux/amd64"
	if err := versionRun(opts); err != nil {
		t.Fatal(err)
	}
	if want := "ergomake version v1.2.3 (commit 0123456789ab, built 2026-11-24T17:00:00Z)\ngo1.26.8 linux/amd64\n"; stdout.String() != want {
		t.Errorf("got %q, want %q", stdout, want)
	}
	stdout.Reset()
	opts.Output = "json"
	if err := versionRun(opts); err != nil {
		t.Fatal(err)
	}
	want := `{
  "version": "v1.2.3",
  "commit": "0123456789abcdef0123",
  "date": "2026-11-24T17:00:00Z",
  "goVersion": "go1.26.8",
  "platform": "linux/amd64"
}
`
	if stdout.String() != want {
		t.Errorf("got %s, want %s", stdout, want)
	}
}

func TestCompletionScripts(t *testing.T) {
	for shell, marker := range map[string]string{
		"bash":       "# bash completion V2 for ergomake",
		"zsh":        "#compdef ergomake",
		"fish":       "# fish completion for ergomake",
		"powershell": "# powershell completion for ergomake",
	} {
		f, stdout, stderr := testFactory(t)
		if code := Run(context.Background(), f, []string{"completion", shell}); code != 0 {
			t.Fatalf("%s: exit %d: %s", shell, code, stderr)
		}
		if !strings.HasPrefix(stdout.String(), marker) {
			t.Errorf("%s script starts %q", shell, scriptHead(stdout.String()))
		}
	}
}

func scriptHead(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// TestCommandsOpenTheClusterThroughTheFactory: every command that talks to the cluster gets its
// client from Factory.KubeClient, with the cluster flags.
func TestCommandsOpenTheClusterThroughTheFactory(t *testing.T) {
	for _, argv := range [][]string{
		{"up", "-f", "testdata/project/compose.yaml"},
		{"build", "-f", "../../testdata/build/compose.yaml"},
		{"forward", "-p", "shop"},
		{"ps", "-p", "shop"},
		{"logs", "-p", "shop"},
		{"ls"},
		{"down", "-p", "shop"},
		{"install"},
		{"uninstall"},
		{"operator"},
	} {
		t.Run(argv[0], func(t *testing.T) {
			f, _, stderr := testFactory(t)
			var got ClusterOptions
			f.KubeClient = func(c ClusterOptions) (*kube.Client, error) {
				got = c
				return nil, errors.New("no cluster here")
			}
			args := append(argv, "--context", "ctx", "--kubeconfig", "/k")
			if code := Run(context.Background(), f, args); code != 1 || stderr.String() != "error: no cluster here\n" {
				t.Errorf("exit %d, stderr %q", code, stderr)
			}
			if got.Context != "ctx" || got.Kubeconfig != "/k" {
				t.Errorf("KubeClient got %+v", got)
			}
		})
	}
}

// TestEveryProjectAndClusterFlagBeforeVerb: each flag that addProjectFlags and addClusterFlags
// register is accepted before the verb, by its long name and its shorthand, for every verb that
// has it. A flag added there is hoisted without being listed anywhere else.
func TestEveryProjectAndClusterFlagBeforeVerb(t *testing.T) {
	scratch := &cobra.Command{Use: "scratch"}
	addProjectFlags(scratch, &ProjectOptions{})
	addClusterFlags(scratch, &ClusterOptions{})
	f, _, _ := testFactory(t)
	checked := map[string]int{}
	scratch.Flags().VisitAll(func(def *pflag.Flag) {
		for _, verb := range NewCmdRoot(f).Commands() {
			vf := verb.LocalFlags().Lookup(def.Name)
			if vf == nil || len(vf.Annotations[groupAnnotation]) == 0 {
				continue // the verb has no such flag, or one that means something else
			}
			value := map[string]string{"duration": "1m", "bool": ""}[vf.Value.Type()]
			if value == "" && vf.Value.Type() != "bool" {
				value = "x"
			}
			spellings := [][]string{{"--" + def.Name}}
			if vf.Shorthand != "" {
				spellings = append(spellings, []string{"-" + vf.Shorthand})
			}
			for _, flag := range spellings {
				if value != "" {
					flag = append(flag, value)
				}
				// Moved after the verb under its long name (cobra alone would find the verb but
				// parse "-f" with the verb's meaning, or not at all before it).
				root := NewCmdRoot(f)
				args := hoistFlags(root, append(flag, verb.Name()))
				want := []string{verb.Name(), "--" + def.Name + "=" + value}
				if value == "" {
					want[1] = "--" + def.Name
				}
				if !reflect.DeepEqual(args, want) {
					t.Errorf("ergomake %s %s: hoisted to %q, want %q", strings.Join(flag, " "), verb.Name(), args, want)
					continue
				}
				cmd, rest, err := root.Find(args)
				if err == nil {
					err = cmd.ParseFlags(rest)
				}
				if err != nil || cmd.Name() != verb.Name() || !cmd.Flags().Changed(def.Name) {
					t.Errorf("ergomake %s %s: verb %s, err %v, --%s not given", strings.Join(flag, " "), verb.Name(), cmd.Name(), err, def.Name)
				}
				checked[def.Name]++
			}
		}
		if checked[def.Name] == 0 {
			t.Errorf("no verb has --%s", def.Name)
		}
	})
	if len(checked) < 8 {
		t.Errorf("checked only %v", checked)
	}
}
