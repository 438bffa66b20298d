// Package config resolves ergomake's settings. It is the only user of viper in the project.
//
// A setting is a command-line flag whose name is listed in Keys and that its command marked with
// MarkSetting (a flag of the same name that means something else, such as the operator's own
// --namespace of `ergomake install`, is left alone). viper layers its value, in order: the flag
// itself when given on the command line; the environment variable ERGOMAKE_<NAME> (upper case,
// dashes as underscores, read from the process environment); the config file; the flag's
// default. An environment variable applies only where the flag was not set.
//
// The config file is YAML, ~/.config/ergomake/config.yaml ($XDG_CONFIG_HOME/ergomake/config.yaml
// when XDG_CONFIG_HOME is set), or the file named by --config or ERGOMAKE_CONFIG (the same
// layering: the flag, then the environment). Its keys are the flag names:
//
//	namespace: my-team
//	context: staging
//	wait-timeout: 15m
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// EnvPrefix prefixes every setting's environment variable.
const EnvPrefix = "ERGOMAKE_"

// FileFlag is the flag (and, through EnvPrefix, the environment variable ERGOMAKE_CONFIG) that
// names the config file.
const FileFlag = "config"

// ConfigEnv names the config file when --config is not given.
const ConfigEnv = EnvPrefix + "CONFIG"

// Key is a setting that a flag, an environment variable and the config file can all give.
type Key struct {
	// Name is the flag name and the config file key.
	Name string
	// Help says what it sets, for `ergomake --help`.
	Help string
}

// Keys are the settings that the environment and the config file can give. A flag of the same
// name on any command picks them up.
var Keys = []Key{
	{Name: "kubeconfig", Help: "path to the kubeconfig file"},
	{Name: "context", Help: "kubeconfig context to use"},
	{Name: "namespace", Help: "namespace of the environment"},
	{Name: "wait-timeout", Help: "how long `up` waits for the environment to become ready"},
	{Name: "ttl", Help: "how long an environment lives without the CLI attached"},
	{Name: "registry", Help: "registry that built images are pushed to and pulled from"},
	{Name: "server", Help: "URL of the ergomake server to go through (logged in with `ergomake login`)"},
}

// SettingAnnotation marks the flags the environment and the config file may fill.
const SettingAnnotation = "ergomake_setting"

// MarkSetting marks flags of fs as settings. Each must be a Key.
func MarkSetting(fs *pflag.FlagSet, names ...string) {
	for _, name := range names {
		if !isKey(name) {
			panic(fmt.Sprintf("config.MarkSetting: %q is not a setting (add it to config.Keys)", name))
		}
		if err := fs.SetAnnotation(name, SettingAnnotation, []string{"true"}); err != nil {
			panic(fmt.Sprintf("config.MarkSetting: %v", err))
		}
	}
}

func isSetting(f *pflag.Flag) bool {
	return isKey(f.Name) && len(f.Annotations[SettingAnnotation]) > 0
}

func isKey(name string) bool {
	for _, k := range Keys {
		if k.Name == name {
			return true
		}
	}
	return false
}

// EnvVar is the environment variable of a setting: "wait-timeout" -> "ERGOMAKE_WAIT_TIMEOUT".
func EnvVar(name string) string {
	return EnvPrefix + strings.ToUpper(envReplacer.Replace(name))
}

var envReplacer = strings.NewReplacer("-", "_")

// DefaultPath is where the config file lives when none is named: $XDG_CONFIG_HOME/ergomake/config.yaml,
// else $HOME/.config/ergomake/config.yaml. Empty when neither variable is set.
func DefaultPath(environ []string) string {
	env := toMap(environ)
	if x := env["XDG_CONFIG_HOME"]; x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "ergomake", "config.yaml")
	}
	if h := env["HOME"]; h != "" {
		return filepath.Join(h, ".config", "ergomake", "config.yaml")
	}
	return ""
}

// Config is viper's layering of the flags of one command, the environment and the config file.
type Config struct {
	v    *viper.Viper
	fs   *pflag.FlagSet
	path string // the config file read, "" when none
}

// Load reads the settings of the flags fs for a command: it finds the config file (--config when
// fs has it and it was given, else $ERGOMAKE_CONFIG, else DefaultPath), checks it, and binds every
// marked setting of fs. A file that was named explicitly must exist; the default one may be
// missing.
func Load(fs *pflag.FlagSet) (*Config, error) {
	v := viper.New()
	v.SetEnvPrefix(strings.TrimSuffix(EnvPrefix, "_"))
	v.SetEnvKeyReplacer(envReplacer)
	v.AutomaticEnv() // ERGOMAKE_<KEY>, empty values ignored
	c := &Config{v: v, fs: fs}

	if f := fs.Lookup(FileFlag); f != nil {
		if err := v.BindPFlag(FileFlag, f); err != nil {
			return nil, err
		}
	}
	path, explicit := v.GetString(FileFlag), v.IsSet(FileFlag)
	if !explicit {
		path = DefaultPath(os.Environ())
	}
	if path != "" {
		if err := c.read(path, explicit); err != nil {
			return nil, err
		}
	}

	// Bound after the file is checked, so that only the file's own keys are checked.
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if err == nil && isSetting(f) {
			err = v.BindPFlag(f.Name, f)
		}
	})
	return c, err
}

// read reads and checks the config file: YAML, known keys only, each a single value.
func (c *Config) read(path string, explicit bool) error {
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) && !explicit {
			return nil
		}
		return fmt.Errorf("config file %s: %w", path, errors.Unwrap(err))
	}
	c.v.SetConfigFile(path)
	c.v.SetConfigType("yaml")
	if err := c.v.ReadInConfig(); err != nil {
		return fmt.Errorf("config file %s: %v", path, unwrapAll(err))
	}
	var unknown []string
	for _, k := range c.v.AllKeys() {
		if !c.v.InConfig(k) {
			continue // the --config flag
		}
		top, _, _ := strings.Cut(k, ".")
		if !isKey(top) {
			unknown = append(unknown, top)
		} else if _, nested := c.v.Get(top).(map[string]any); nested {
			return fmt.Errorf("config file %s: %s: must be a single value, not a mapping", path, top)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("config file %s: unknown key %q (known keys: %s)", path, unknown[0], knownKeys())
	}
	c.path = path
	return nil
}

// Path is the config file that was read, or "".
func (c *Config) Path() string { return c.path }

// Lookup returns a setting's value from the environment or the config file, and where it came from
// ("ERGOMAKE_NAMESPACE", "/home/me/.config/ergomake/config.yaml"). A flag given on the command
// line, or a default, is not looked up here.
func (c *Config) Lookup(name string) (value, source string, ok bool) {
	if f := c.fs.Lookup(name); f != nil && f.Changed {
		return "", "", false
	}
	if !c.v.IsSet(name) { // IsSet ignores flag defaults
		return "", "", false
	}
	source = c.path
	if v, set := os.LookupEnv(EnvVar(name)); set && v != "" {
		source = EnvVar(name)
	}
	switch v := c.v.Get(name).(type) {
	case nil:
		return "", "", false
	case []any:
		parts := make([]string, len(v))
		for i, p := range v {
			parts[i] = fmt.Sprint(p)
		}
		return strings.Join(parts, ","), source, true
	default:
		return fmt.Sprint(v), source, true
	}
}

// Apply fills every marked setting of the flags that was not given on the command line with its
// value from the environment, then the config file. Flags given on the command line are left
// alone, so the order is flag > environment > config file > default.
func (c *Config) Apply() error {
	var err error
	c.fs.VisitAll(func(f *pflag.Flag) {
		if err != nil || !isSetting(f) {
			return
		}
		v, source, ok := c.Lookup(f.Name)
		if !ok {
			return
		}
		// Value.Set, not fs.Set: the flag stays "not changed", it was not given on the command line.
		if serr := f.Value.Set(v); serr != nil {
			if source == c.path {
				source = "config file " + source + ": " + f.Name
			}
			err = fmt.Errorf("%s: %v", source, serr)
		}
	})
	return err
}

// Wants tells whether any flag in fs is a setting, that is whether Load is worth its cost.
func Wants(fs *pflag.FlagSet) bool {
	found := false
	fs.VisitAll(func(f *pflag.Flag) { found = found || isSetting(f) })
	return found
}

func knownKeys() string {
	names := make([]string, len(Keys))
	for i, k := range Keys {
		names[i] = k.Name
	}
	return strings.Join(names, ", ")
}

func toMap(environ []string) map[string]string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// unwrapAll strips wrappers that repeat the file name or add Go-ish noise.
func unwrapAll(err error) error {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err
		}
		err = u
	}
}
