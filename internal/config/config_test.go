package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/ergomake/ergomake/internal/testutil/tree"
)

type settings struct {
	namespace   string
	context     string
	waitTimeout time.Duration
	file        []string
}

func newFlags(s *settings) *pflag.FlagSet {
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	fs.StringVarP(&s.namespace, "namespace", "n", "", "")
	fs.StringVar(&s.context, "context", "", "")
	fs.DurationVar(&s.waitTimeout, "wait-timeout", 10*time.Minute, "")
	fs.StringArrayVarP(&s.file, "file", "f", nil, "")
	MarkSetting(fs, "namespace", "context", "wait-timeout")
	return fs
}

// load is Load for a command with the flags fs (and --config, set to path when not empty), in a
// process environment of exactly environ as far as settings go: HOME, XDG_CONFIG_HOME and every
// ERGOMAKE_* variable of the real environment are cleared first.
func load(t *testing.T, fs *pflag.FlagSet, path string, environ []string) (*Config, error) {
	t.Helper()
	setEnviron(t, environ)
	if fs == nil {
		fs = pflag.NewFlagSet("test", pflag.ContinueOnError)
	}
	if fs.Lookup(FileFlag) == nil {
		fs.String(FileFlag, "", "")
	}
	if path != "" {
		if err := fs.Set(FileFlag, path); err != nil {
			t.Fatal(err)
		}
	}
	return Load(fs)
}

func setEnviron(t *testing.T, environ []string) {
	t.Helper()
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, EnvPrefix) || k == "HOME" || k == "XDG_CONFIG_HOME" {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	tree.File(t, path, content, 0o644)
}

func TestPrecedence(t *testing.T) {
	home := t.TempDir()
	writeFile(t, filepath.Join(home, ".config", "ergomake", "config.yaml"),
		"namespace: from-file\ncontext: file-ctx\nwait-timeout: 3m\n")

	tests := []struct {
		name    string
		args    []string
		environ []string
		want    settings
	}{
		{
			name: "file over default",
			want: settings{namespace: "from-file", context: "file-ctx", waitTimeout: 3 * time.Minute},
		},
		{
			name:    "env over file",
			environ: []string{"ERGOMAKE_NAMESPACE=from-env", "ERGOMAKE_WAIT_TIMEOUT=90s"},
			want:    settings{namespace: "from-env", context: "file-ctx", waitTimeout: 90 * time.Second},
		},
		{
			name:    "flag over env",
			args:    []string{"-n", "from-flag", "--wait-timeout=1s"},
			environ: []string{"ERGOMAKE_NAMESPACE=from-env", "ERGOMAKE_WAIT_TIMEOUT=90s"},
			want:    settings{namespace: "from-flag", context: "file-ctx", waitTimeout: time.Second},
		},
		{
			name:    "empty env var does not apply",
			environ: []string{"ERGOMAKE_NAMESPACE="},
			want:    settings{namespace: "from-file", context: "file-ctx", waitTimeout: 3 * time.Minute},
		},
		{
			name:    "non-settings are never filled",
			environ: []string{"ERGOMAKE_FILE=x.yaml"},
			want:    settings{namespace: "from-file", context: "file-ctx", waitTimeout: 3 * time.Minute},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got settings
			fs := newFlags(&got)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			c, err := load(t, fs, "", append([]string{"HOME=" + home}, tt.environ...))
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Apply(); err != nil {
				t.Fatal(err)
			}
			if got.namespace != tt.want.namespace || got.context != tt.want.context ||
				got.waitTimeout != tt.want.waitTimeout || len(got.file) != 0 {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			if fs.Changed("namespace") != contains(tt.args, "-n") {
				t.Errorf("Changed(namespace) = %v: only the command line changes a flag", fs.Changed("namespace"))
			}
		})
	}
}

func TestUnmarkedFlagsAreLeftAlone(t *testing.T) {
	var ns string
	fs := pflag.NewFlagSet("install", pflag.ContinueOnError)
	fs.StringVarP(&ns, "namespace", "n", "ergomake-system", "namespace the operator runs in")
	c, err := load(t, fs, "", []string{"ERGOMAKE_NAMESPACE=team"})
	if err != nil {
		t.Fatal(err)
	}
	if Wants(fs) {
		t.Error("Wants = true without a marked setting")
	}
	if err := c.Apply(); err != nil || ns != "ergomake-system" {
		t.Errorf("unmarked --namespace = %q (err %v), want its default", ns, err)
	}
}

func TestMarkSettingRejectsUnknownKeys(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("MarkSetting accepted a flag that is not a setting")
		}
	}()
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	fs.String("file", "", "")
	MarkSetting(fs, "file")
}

func TestDefaultWhenNothingSet(t *testing.T) {
	var got settings
	fs := newFlags(&got)
	c, err := load(t, fs, "", []string{"HOME=" + t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Apply(); err != nil {
		t.Fatal(err)
	}
	if got.waitTimeout != 10*time.Minute || got.namespace != "" || c.Path() != "" {
		t.Errorf("got %+v (config %q), want defaults and no file", got, c.Path())
	}
}

func TestDefaultPath(t *testing.T) {
	tests := []struct {
		environ []string
		want    string
	}{
		{[]string{"HOME=/home/me"}, "/home/me/.config/ergomake/config.yaml"},
		{[]string{"HOME=/home/me", "XDG_CONFIG_HOME=/xdg"}, "/xdg/ergomake/config.yaml"},
		{[]string{"HOME=/home/me", "XDG_CONFIG_HOME=relative"}, "/home/me/.config/ergomake/config.yaml"},
		{nil, ""},
	}
	for _, tt := range tests {
		if got := DefaultPath(tt.environ); got != tt.want {
			t.Errorf("DefaultPath(%q) = %q, want %q", tt.environ, got, tt.want)
		}
	}
}

func TestXDGAndExplicitFiles(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "xdg", "ergomake", "config.yaml"), "namespace: xdg\n")
	writeFile(t, filepath.Join(dir, "other.yaml"), "namespace: other\n")
	writeFile(t, filepath.Join(dir, "env.yaml"), "namespace: env\n")

	tests := []struct {
		name    string
		path    string
		environ []string
		want    string
	}{
		{"xdg", "", []string{"XDG_CONFIG_HOME=" + filepath.Join(dir, "xdg")}, "xdg"},
		{"ERGOMAKE_CONFIG", "", []string{"XDG_CONFIG_HOME=" + filepath.Join(dir, "xdg"), "ERGOMAKE_CONFIG=" + filepath.Join(dir, "env.yaml")}, "env"},
		{"--config", filepath.Join(dir, "other.yaml"), []string{"ERGOMAKE_CONFIG=" + filepath.Join(dir, "env.yaml")}, "other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s settings
			c, err := load(t, newFlags(&s), tt.path, tt.environ)
			if err != nil {
				t.Fatal(err)
			}
			if v, _, _ := c.Lookup("namespace"); v != tt.want {
				t.Errorf("namespace = %q, want %q", v, tt.want)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	writeFile(t, bad, "namespace: [unclosed\n")
	unknown := filepath.Join(dir, "unknown.yaml")
	writeFile(t, unknown, "namespace: a\nnamespcae: b\n")
	nested := filepath.Join(dir, "nested.yaml")
	writeFile(t, nested, "context:\n  name: x\n")
	selfRef := filepath.Join(dir, "self.yaml")
	writeFile(t, selfRef, "config: other.yaml\n") // --config is a flag, not a key of the file
	badValue := filepath.Join(dir, "badvalue.yaml")
	writeFile(t, badValue, "wait-timeout: soon\n")

	tests := []struct {
		name    string
		path    string
		environ []string
		want    string
	}{
		{"missing explicit file", filepath.Join(dir, "nope.yaml"), nil,
			"config file " + filepath.Join(dir, "nope.yaml") + ": no such file or directory"},
		{"missing ERGOMAKE_CONFIG file", "", []string{"ERGOMAKE_CONFIG=" + filepath.Join(dir, "nope.yaml")},
			"config file " + filepath.Join(dir, "nope.yaml") + ": no such file or directory"},
		{"invalid yaml", bad, nil, "config file " + bad + ": yaml:"},
		{"unknown key", unknown, nil, `config file ` + unknown + `: unknown key "namespcae" (known keys: kubeconfig, context, namespace, wait-timeout, ttl, registry, server)`},
		{"config key", selfRef, nil, `config file ` + selfRef + `: unknown key "config"`},
		{"mapping", nested, nil, "config file " + nested + ": context: must be a single value, not a mapping"},
		{"bad value in file", badValue, nil, "config file " + badValue + `: wait-timeout: time: invalid duration "soon"`},
		{"bad value in env", "", []string{"ERGOMAKE_WAIT_TIMEOUT=soon"}, `ERGOMAKE_WAIT_TIMEOUT: time: invalid duration "soon"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s settings
			c, err := load(t, newFlags(&s), tt.path, tt.environ)
			if err == nil {
				err = c.Apply()
			}
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error = %v, want prefix %q", err, tt.want)
			}
		})
	}
}

func TestEnvVarAndWants(t *testing.T) {
	if got := EnvVar("wait-timeout"); got != "ERGOMAKE_WAIT_TIMEOUT" {
		t.Errorf("EnvVar = %q", got)
	}
	var s settings
	if !Wants(newFlags(&s)) {
		t.Error("Wants = false for a flag set with settings")
	}
	if Wants(pflag.NewFlagSet("x", pflag.ContinueOnError)) {
		t.Error("Wants = true for an empty flag set")
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
