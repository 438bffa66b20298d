// Package compose loads compose projects with compose-go, exactly as `docker compose` finds and
// reads them: file discovery, COMPOSE_* variables, .env and env files, profiles, interpolation,
// extends, include and validation. Every failure is returned as an *Error naming the file (and
// line when it can be found), the service and the key.
package compose

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/dotenv"
	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// Environment variables docker compose reads.
const (
	EnvComposeFile          = "COMPOSE_FILE"
	EnvComposePathSeparator = "COMPOSE_PATH_SEPARATOR"
	EnvComposeProjectName   = "COMPOSE_PROJECT_NAME"
	EnvComposeProfiles      = "COMPOSE_PROFILES"
	EnvComposeDisableEnv    = "COMPOSE_DISABLE_ENV_FILE"
)

// DefaultFileNames are the compose files discovered in the working directory and its parents, in
// order of preference; DefaultOverrideFileNames the override file loaded beside the one found.
var (
	DefaultFileNames         = cli.DefaultFileNames
	DefaultOverrideFileNames = cli.DefaultOverrideFileNames
)

// Options select and configure the compose project, as docker compose's flags do.
type Options struct {
	// Files are the -f/--file flags, relative to WorkingDir. Empty: COMPOSE_FILE, then discovery.
	Files []string
	// ProjectName is -p/--project-name. Empty: COMPOSE_PROJECT_NAME, the top-level `name`, then
	// the project directory's base name.
	ProjectName string
	// ProjectDirectory is --project-directory. Empty: the directory of the first compose file.
	ProjectDirectory string
	// Profiles are the --profile flags. Empty: COMPOSE_PROFILES.
	Profiles []string
	// EnvFiles are the --env-file flags, relative to WorkingDir. Empty: <project dir>/.env when present.
	EnvFiles []string
	// WorkingDir is the directory relative paths and discovery start from. Empty: os.Getwd().
	WorkingDir string
	// Environ is the user's environment as KEY=VALUE. Nil: os.Environ().
	Environ []string
	// Warn, when set, receives compose-go's warnings ("The \"X\" variable is not set. Defaulting
	// to a blank string.", obsolete `version`, ...) instead of compose-go printing them to stderr
	// through logrus.
	Warn func(msg string)
}

// Load finds, reads, interpolates and validates the compose project. The returned project has
// absolute paths and its services' environments resolved (env_file folded into environment).
func Load(ctx context.Context, opts Options) (p *types.Project, err error) {
	defer func() {
		// compose-go is not expected to panic, but bad input must never show a stack trace.
		if r := recover(); r != nil {
			p, err = nil, &Error{Msg: fmt.Sprintf("cannot load the compose project: %v", r)}
		}
	}()
	wd := opts.WorkingDir
	if wd == "" {
		if wd, err = os.Getwd(); err != nil {
			return nil, &Error{Msg: err.Error()}
		}
	}
	if wd, err = filepath.Abs(wd); err != nil {
		return nil, &Error{Msg: err.Error()}
	}
	environ := opts.Environ
	if environ == nil {
		environ = os.Environ()
	}
	env := types.Mapping{}
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		if k != "" {
			env[k] = v
		}
	}
	abs := func(p string) string {
		if p == "-" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(wd, p)
	}

	projectDir := ""
	if opts.ProjectDirectory != "" {
		projectDir = abs(opts.ProjectDirectory)
	}
	var envFiles []string
	for _, f := range opts.EnvFiles {
		envFiles = append(envFiles, abs(f))
	}

	var files []string
	for _, f := range opts.Files {
		files = append(files, abs(f))
	}
	if len(files) > 0 {
		for _, f := range files {
			if err := checkFile(f); err != nil {
				return nil, &Error{File: f, Msg: err.Error(), Err: err}
			}
		}
	}

	// docker compose reads the .env of the project directory (or the working directory) first: it
	// may set COMPOSE_FILE, COMPOSE_PROJECT_NAME and COMPOSE_PROFILES.
	firstDir := projectDir
	if firstDir == "" && len(files) > 0 && files[0] != "-" {
		firstDir = filepath.Dir(files[0])
	}
	if firstDir == "" {
		firstDir = wd
	}
	if err := readDotEnv(env, firstDir, envFiles); err != nil {
		return nil, err
	}

	if len(files) == 0 {
		if v, ok := env[EnvComposeFile]; ok && v != "" {
			sep := env[EnvComposePathSeparator]
			if sep == "" {
				sep = string(os.PathListSeparator)
			}
			for _, f := range strings.Split(v, sep) {
				if f == "" {
					continue
				}
				f = abs(f)
				if err := checkFile(f); err != nil {
					return nil, &Error{File: f, Msg: fmt.Sprintf("set by %s: %v", EnvComposeFile, err), Err: err}
				}
				files = append(files, f)
			}
		}
	}
	if len(files) == 0 {
		start := projectDir
		if start == "" {
			start = wd
		}
		files = discover(start)
		if len(files) == 0 {
			return nil, &Error{Msg: fmt.Sprintf("no compose file found in %s or its parents (looked for %s)",
				start, strings.Join(DefaultFileNames, ", "))}
		}
	}
	if projectDir == "" {
		if files[0] == "-" {
			projectDir = wd
		} else {
			projectDir = filepath.Dir(files[0])
		}
	}
	if projectDir != firstDir {
		if err := readDotEnv(env, projectDir, envFiles); err != nil {
			return nil, err
		}
	}

	profiles := opts.Profiles
	if len(profiles) == 0 {
		for _, s := range strings.Split(env[EnvComposeProfiles], ",") {
			if s = strings.TrimSpace(s); s != "" {
				profiles = append(profiles, s)
			}
		}
	}

	var envList []string
	for k, v := range env {
		envList = append(envList, k+"="+v)
	}
	po, err := cli.NewProjectOptions(files,
		cli.WithWorkingDirectory(projectDir),
		cli.WithEnv(envList),
		cli.WithProfiles(profiles),
		cli.WithName(opts.ProjectName),
		cli.WithResolvedPaths(true),
		// env_file and label_file are read below, once checkEnvFiles has made sure they can be
		cli.WithoutEnvironmentResolution,
		cli.WithoutLabelsResolution,
	)
	if err != nil {
		if opts.ProjectName != "" && opts.ProjectName != loader.NormalizeProjectName(opts.ProjectName) {
			return nil, &Error{Msg: fmt.Sprintf("invalid project name %q (-p/--project-name): it must contain only lowercase letters, digits, dashes and underscores, and start with a letter or digit", opts.ProjectName), Err: err}
		}
		return nil, &Error{Msg: err.Error(), Err: err}
	}
	if opts.Warn != nil {
		defer captureWarnings(opts.Warn)()
	}
	p, err = po.LoadProject(ctx)
	if err != nil {
		return nil, locate(err, files, env)
	}
	if err := checkEnvFiles(p, files); err != nil {
		return nil, err
	}
	if p, err = p.WithServicesEnvironmentResolved(false); err != nil {
		return nil, locate(err, files, env)
	}
	if p, err = p.WithServicesLabelsResolved(false); err != nil {
		return nil, locate(err, files, env)
	}
	return p, nil
}

func checkFile(f string) error {
	if f == "-" {
		return nil
	}
	fi, err := os.Stat(f)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return errors.New("no such file")
		}
		return err
	}
	if fi.IsDir() {
		return errors.New("is a directory, not a compose file")
	}
	return nil
}

// discover walks from dir up to the root and returns the first compose file found, with its
// override file, as docker compose does.
func discover(dir string) []string {
	for {
		if f := firstExisting(dir, DefaultFileNames); f != "" {
			files := []string{f}
			if o := firstExisting(dir, DefaultOverrideFileNames); o != "" {
				files = append(files, o)
			}
			return files
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return nil
		}
		dir = parent
	}
}

func firstExisting(dir string, names []string) string {
	for _, n := range names {
		f := filepath.Join(dir, n)
		if fi, err := os.Stat(f); err == nil && !fi.IsDir() {
			return f
		}
	}
	return ""
}

// readDotEnv adds the variables of the env files (or dir/.env) to env; variables already set (the
// user's environment) win, as in docker compose.
func readDotEnv(env types.Mapping, dir string, envFiles []string) error {
	files := envFiles
	if len(files) == 0 {
		if v, ok := env[EnvComposeDisableEnv]; ok {
			if b, err := strconv.ParseBool(v); err == nil && b {
				return nil
			}
		}
		f := filepath.Join(dir, ".env")
		if fi, err := os.Stat(f); err != nil || fi.IsDir() {
			return nil
		}
		files = []string{f}
	}
	for _, f := range files {
		if _, err := os.Stat(f); err != nil {
			return &Error{File: f, Key: "env file", Msg: "env file not found", Err: err}
		}
	}
	vars, err := dotenv.GetEnvFromFile(env, files)
	if err != nil {
		e := &Error{Key: "env file", Msg: err.Error(), Err: err}
		if len(files) == 1 {
			e.File = files[0]
			e.Msg = strings.TrimPrefix(e.Msg, "failed to read "+files[0]+": ")
		}
		return e
	}
	env.Merge(vars)
	return nil
}
