package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ergomake/ergomake/internal/compose"
	"github.com/ergomake/ergomake/internal/config"
)

// ProjectOptions select the compose project, with docker compose's flags and environment
// variables (COMPOSE_FILE, COMPOSE_PROJECT_NAME, COMPOSE_PROFILES, applied by internal/compose
// where the flag is not given).
type ProjectOptions struct {
	Files            []string
	ProjectName      string
	ProjectDirectory string
	Profiles         []string
	EnvFiles         []string
}

// addProjectFlags registers -f/--file, -p/--project-name, --project-directory, --profile and
// --env-file. A command that already uses -f (logs: --follow, as in docker compose) keeps it and
// gets --file without the shorthand.
func addProjectFlags(cmd *cobra.Command, p *ProjectOptions) {
	fs := cmd.Flags()
	short := "f"
	if fs.ShorthandLookup("f") != nil {
		short = ""
	}
	defer groupNewFlags(fs, groupProject)()
	fs.StringArrayVarP(&p.Files, "file", short, nil, "compose configuration file (repeatable; default: compose.yaml and its override, found in the current directory or its parents; $COMPOSE_FILE)")
	fs.StringVarP(&p.ProjectName, "project-name", "p", "", "project name (default: $COMPOSE_PROJECT_NAME, the top-level name:, or the project directory's name)")
	fs.StringVar(&p.ProjectDirectory, "project-directory", "", "alternate working directory (default: the directory of the first compose file)")
	fs.StringArrayVar(&p.Profiles, "profile", nil, "profile to enable (repeatable; default: $COMPOSE_PROFILES)")
	fs.StringArrayVar(&p.EnvFiles, "env-file", nil, "alternate environment file (repeatable; default: .env in the project directory)")
	_ = cmd.MarkFlagFilename("file", "yaml", "yml")
	_ = cmd.MarkFlagDirname("project-directory")
	_ = cmd.MarkFlagFilename("env-file")
}

// composeOptions are the compose loader's options for these flags, in f's environment. compose-go's
// own warnings (unset variables, obsolete "version") become "warning: " lines on stderr.
func (p ProjectOptions) composeOptions(f *Factory) (compose.Options, error) {
	wd, err := f.WorkingDir()
	if err != nil {
		return compose.Options{}, fmt.Errorf("cannot find the working directory: %w", err)
	}
	return compose.Options{
		Files:            p.Files,
		ProjectName:      p.ProjectName,
		ProjectDirectory: p.ProjectDirectory,
		Profiles:         p.Profiles,
		EnvFiles:         p.EnvFiles,
		WorkingDir:       wd,
		Environ:          f.Environ(),
		Warn: func(msg string) {
			fmt.Fprintln(f.IOStreams.ErrOut, "warning: "+strings.TrimSpace(msg))
		},
	}, nil
}

// ClusterOptions select the cluster, with kubectl's flags. Each is also a setting (ERGOMAKE_*
// environment variable, config file key: see internal/config); $KUBECONFIG is honoured by the
// kubeconfig loader when --kubeconfig is not set. A command whose -n/--namespace means something
// else (install: the operator's namespace) registers its own flag instead.
type ClusterOptions struct {
	Kubeconfig string
	Context    string
	Namespace  string
	// Server is the ergomake server to go through (--server, where the command has it).
	Server string
}

// addClusterFlags registers --kubeconfig, --context and -n/--namespace.
func addClusterFlags(cmd *cobra.Command, c *ClusterOptions) {
	fs := cmd.Flags()
	defer groupNewFlags(fs, groupCluster)()
	fs.StringVar(&c.Kubeconfig, "kubeconfig", "", "path to the kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
	fs.StringVar(&c.Context, "context", "", "kubeconfig context to use (default: the current context)")
	_ = cmd.MarkFlagFilename("kubeconfig")
	config.MarkSetting(fs, "kubeconfig", "context")
	addNamespaceFlag(cmd, &c.Namespace)
}

// addNamespaceFlag registers -n/--namespace alone (for commands that need no cluster).
func addNamespaceFlag(cmd *cobra.Command, ns *string) {
	defer groupNewFlags(cmd.Flags(), groupCluster)()
	cmd.Flags().StringVarP(ns, "namespace", "n", "", "namespace of the environment (default: ergomake-<project>)")
	config.MarkSetting(cmd.Flags(), "namespace")
}

// Flag groups, shown as sections in help.
const (
	groupAnnotation = "ergomake_group"
	groupProject    = "Project"
	groupCluster    = "Cluster"
)

func setGroup(fs *pflag.FlagSet, name, group string) {
	_ = fs.SetAnnotation(name, groupAnnotation, []string{group})
}

// groupNewFlags puts every flag registered on fs between the call and the call of the function it
// returns in group: "defer groupNewFlags(fs, groupProject)()". The group decides the help section
// and which flags may come before the verb (hoistFlags).
func groupNewFlags(fs *pflag.FlagSet, group string) func() {
	before := map[string]bool{}
	fs.VisitAll(func(f *pflag.Flag) { before[f.Name] = true })
	return func() {
		fs.VisitAll(func(f *pflag.Flag) {
			if !before[f.Name] && len(f.Annotations[groupAnnotation]) == 0 {
				setGroup(fs, f.Name, group)
			}
		})
	}
}

// Output formats.
const (
	outputTable = "table"
	outputJSON  = "json"
	outputYAML  = "yaml"
	outputText  = "text"
)

// addOutputFlag registers -o/--output with the given formats; the first is the default. This is
// the one way a command offers machine-readable output.
func addOutputFlag(cmd *cobra.Command, target *string, formats ...string) {
	*target = formats[0]
	cmd.Flags().VarP(&enumValue{target: target, allowed: formats}, "output", "o",
		"output format: "+strings.Join(formats, " or "))
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(formats, cobra.ShellCompDirectiveNoFileComp))
}

// enumValue is a string flag that accepts only some values.
type enumValue struct {
	target  *string
	allowed []string
}

func (e *enumValue) String() string { return *e.target }
func (e *enumValue) Type() string   { return "format" }
func (e *enumValue) Set(v string) error {
	for _, a := range e.allowed {
		if v == a {
			*e.target = v
			return nil
		}
	}
	return fmt.Errorf("must be one of: %s", strings.Join(e.allowed, ", "))
}

// printJSON writes v as indented JSON, the one JSON layout of every command.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// wrapArgs makes a positional-arguments check answer with a FlagError (usage, exit 2).
func wrapArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		return FlagErrorWrap(check(cmd, args))
	}
}

// checkWaitTimeout refuses a --wait-timeout that is not positive (up, down and restart take one).
func checkWaitTimeout(d time.Duration) error {
	if d <= 0 {
		return FlagErrorf("--wait-timeout must be positive, got %s", d)
	}
	return nil
}
