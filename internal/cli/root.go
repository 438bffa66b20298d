package cli

import (
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ergomake/ergomake/internal/build"
	"github.com/ergomake/ergomake/internal/config"
)

const rootLong = `ergomake brings a docker compose project up on a Kubernetes cluster.

Run "ergomake up" in a folder that holds a compose file: every service starts on the cluster,
ergomake waits until they are ready and forwards every published port to localhost, exactly as
"docker compose up" would; services with build: are built in the cluster first. Ctrl-C tears
it all down. "ergomake render" prints the Kubernetes objects a project becomes, without a
cluster.

Configuration:
  Settings come from, in order: command-line flags; ERGOMAKE_<FLAG> environment variables
  (ERGOMAKE_NAMESPACE, ERGOMAKE_CONTEXT, ERGOMAKE_KUBECONFIG, ERGOMAKE_WAIT_TIMEOUT,
  ERGOMAKE_TTL, ERGOMAKE_REGISTRY); the config file ($XDG_CONFIG_HOME/ergomake/config.yaml,
  default ~/.config/ergomake/config.yaml, or --config / $ERGOMAKE_CONFIG) whose keys are the flag
  names (namespace, context, kubeconfig, wait-timeout, ttl, registry); then the defaults. The
  compose project honours COMPOSE_FILE, COMPOSE_PROJECT_NAME and COMPOSE_PROFILES as docker
  compose does.
  Colour and spinners appear only on a terminal; NO_COLOR, TERM=dumb and CI turn them off.

Exit codes:
  0    success
  1    failure (the error is printed on stderr)
  2    command-line usage error (unknown command or flag, bad value, wrong arguments)
  3    the environment is someone else's: another live session is attached to it (up), or
       another identity created it (down without --force)
  130  interrupted (Ctrl-C)`

// NewCmdRoot returns the ergomake command with every verb registered.
func NewCmdRoot(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:           "ergomake <command> [flags]",
		Short:         "Run docker compose projects on Kubernetes",
		Long:          rootLong,
		Version:       build.Get().Version,
		SilenceErrors: true,
		SilenceUsage:  true,
		// Settings the environment and the config file give fill the flags the command line left
		// unset (internal/config), before any command runs.
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if !config.Wants(cmd.Flags()) {
				return nil
			}
			c, err := config.Load(cmd.Flags())
			if err != nil {
				return err
			}
			return c.Apply()
		},
	}
	cmd.SetVersionTemplate("ergomake version {{.Version}}\n")
	cmd.Flags().Bool("version", false, "print the version of ergomake") // no -v: that reads as --verbose
	cmd.PersistentFlags().String(config.FileFlag, "", "config file (default: $ERGOMAKE_CONFIG or $XDG_CONFIG_HOME/ergomake/config.yaml)")
	_ = cmd.MarkPersistentFlagFilename(config.FileFlag, "yaml", "yml")
	cmd.CompletionOptions.DisableDefaultCmd = true
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return FlagErrorWrap(err) })
	cmd.SetUsageTemplate(usageTemplate)
	cobra.AddTemplateFunc("flagGroups", flagGroups)
	cobra.EnableCommandSorting = false  // help lists verbs in registration order: up first
	cobra.EnableTraverseRunHooks = true // a verb's own PersistentPreRun never skips the settings

	cmd.AddGroup(
		&cobra.Group{ID: "env", Title: "Environment commands:"},
		&cobra.Group{ID: "cluster", Title: "Cluster commands:"},
		&cobra.Group{ID: "other", Title: "Other commands:"},
	)
	// Registration: one line per verb, in the list of its help group.
	for _, c := range []*cobra.Command{
		NewCmdUp(f, nil),
		NewCmdBuild(f, nil),
		NewCmdDown(f, nil),
		NewCmdPs(f, nil),
		NewCmdLogs(f, nil),
		NewCmdExec(f, nil),
		NewCmdRestart(f, nil),
		NewCmdForward(f, nil),
		NewCmdLs(f, nil),
		NewCmdRender(f, nil),
	} {
		c.GroupID = "env"
		cmd.AddCommand(c)
	}
	for _, c := range []*cobra.Command{
		NewCmdInstall(f, nil),
		NewCmdUninstall(f, nil),
		NewCmdOperator(f, nil),
		NewCmdServer(f),
		NewCmdLogin(f, nil),
		NewCmdLogout(f, nil),
	} {
		c.GroupID = "cluster"
		cmd.AddCommand(c)
	}
	for _, c := range []*cobra.Command{
		NewCmdCompletion(f),
		NewCmdVersion(f, nil),
	} {
		c.GroupID = "other"
		cmd.AddCommand(c)
	}
	cmd.SetHelpCommandGroupID("other")
	return cmd
}

// usageTemplate is cobra's, with the local flags split into their groups (Project flags,
// Cluster flags, Flags).
const usageTemplate = `Usage:{{if .Runnable}}
  {{.UseLine}}{{end}}{{if .HasAvailableSubCommands}}
  {{.CommandPath}} [command]{{end}}{{if gt (len .Aliases) 0}}

Aliases:
  {{.NameAndAliases}}{{end}}{{if .HasExample}}

Examples:
{{.Example}}{{end}}{{if .HasAvailableSubCommands}}{{$cmds := .Commands}}{{if eq (len .Groups) 0}}

Available Commands:{{range $cmds}}{{if (or .IsAvailableCommand (eq .Name "help"))}}
  {{rpad .Name .NamePadding }} {{.Short}}{{end}}{{end}}{{else}}{{range $group := .Groups}}

{{.Title}}{{range $cmds}}{{if (and (eq .GroupID $group.ID) (or .IsAvailableCommand (eq .Name "help")))}}
  {{rpad .Name .NamePadding }} {{.Short}}{{end}}{{end}}{{end}}{{if not .AllChildCommandsHaveGroup}}

Additional Commands:{{range $cmds}}{{if (and (eq .GroupID "") (or .IsAvailableCommand (eq .Name "help")))}}
  {{rpad .Name .NamePadding }} {{.Short}}{{end}}{{end}}{{end}}{{end}}{{end}}{{if .HasAvailableLocalFlags}}{{flagGroups .LocalFlags}}{{end}}{{if .HasAvailableInheritedFlags}}

Global Flags:
{{.InheritedFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}{{if .HasHelpSubCommands}}

Additional help topics:{{range .Commands}}{{if .IsAdditionalHelpTopicCommand}}
  {{rpad .CommandPath .CommandPathPadding}} {{.Short}}{{end}}{{end}}{{end}}{{if .HasAvailableSubCommands}}

Use "{{.CommandPath}} [command] --help" for more information about a command.{{end}}
`

// flagGroups renders local flags in sections: the command's own "Flags", then "Project flags"
// and "Cluster flags".
func flagGroups(fs *pflag.FlagSet) string {
	groups := map[string]*pflag.FlagSet{}
	order := []string{"", groupProject, groupCluster}
	fs.VisitAll(func(fl *pflag.Flag) {
		g := ""
		if v := fl.Annotations[groupAnnotation]; len(v) > 0 {
			g = v[0]
		}
		if groups[g] == nil {
			groups[g] = pflag.NewFlagSet(g, pflag.ContinueOnError)
			groups[g].SortFlags = fs.SortFlags
		}
		groups[g].AddFlag(fl)
	})
	var b strings.Builder
	for _, g := range order {
		set := groups[g]
		if set == nil || !set.HasAvailableFlags() {
			continue
		}
		title := "Flags"
		if g != "" {
			title = g + " Flags"
		}
		b.WriteString("\n\n" + title + ":\n")
		b.WriteString(strings.TrimRight(set.FlagUsages(), " \n"))
	}
	return b.String()
}
