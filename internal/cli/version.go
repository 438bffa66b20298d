package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ergomake/ergomake/internal/build"
	"github.com/ergomake/ergomake/internal/iostreams"
)

// VersionOptions are the options of `ergomake version`.
type VersionOptions struct {
	IO     *iostreams.IOStreams
	Output string
	// Info is the build information to print (build.Get() for real).
	Info build.Info
}

// NewCmdVersion returns `ergomake version`.
func NewCmdVersion(f *Factory, runF func(*VersionOptions) error) *cobra.Command {
	opts := &VersionOptions{IO: f.IOStreams}
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version of ergomake",
		Long:  "Print the version of ergomake, the commit and date it was built from, and its Go version and platform.",
		Example: `  ergomake version
  ergomake version -o json`,
		Args: wrapArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Info = build.Get()
			if runF != nil {
				return runF(opts)
			}
			return versionRun(opts)
		},
	}
	addOutputFlag(cmd, &opts.Output, outputText, outputJSON)
	return cmd
}

func versionRun(opts *VersionOptions) error {
	if opts.Output == outputJSON {
		return printJSON(opts.IO.Out, opts.Info)
	}
	i := opts.Info
	line := "ergomake version " + i.Version
	if i.Commit != "" {
		commit := i.Commit
		if len(commit) > 12 {
			commit = commit[:12]
		}
		line += " (commit " + commit
		if i.Date != "" {
			line += ", built " + i.Date
		}
		line += ")"
	}
	_, err := fmt.Fprintf(opts.IO.Out, "%s\n%s %s\n", line, i.GoVersion, i.Platform)
	return err
}
