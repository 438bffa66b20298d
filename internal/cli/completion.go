package cli

import (
	"io"

	"github.com/spf13/cobra"
)

// Shells that `ergomake completion` writes scripts for.
var completionShells = []string{"bash", "zsh", "fish", "powershell"}

// NewCmdCompletion returns `ergomake completion SHELL`.
func NewCmdCompletion(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "completion {bash|zsh|fish|powershell}",
		Short: "Print the shell completion script",
		Long: `Print the completion script of ergomake for a shell.

Load it in the current shell, or install it where your shell looks for completions:

  bash:        source <(ergomake completion bash)
               ergomake completion bash > /etc/bash_completion.d/ergomake
  zsh:         ergomake completion zsh > "${fpath[1]}/_ergomake"
  fish:        ergomake completion fish > ~/.config/fish/completions/ergomake.fish
  powershell:  ergomake completion powershell | Out-String | Invoke-Expression

Release archives and the Homebrew formula ship these scripts already.`,
		ValidArgs: completionShells,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return FlagErrorf("name one shell: bash, zsh, fish or powershell")
			}
			return FlagErrorWrap(cobra.OnlyValidArgs(cmd, args))
		},
		DisableFlagsInUseLine: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return writeCompletion(cmd.Root(), args[0], f.IOStreams.Out)
		},
	}
	return cmd
}

// writeCompletion writes the completion script of root for shell.
func writeCompletion(root *cobra.Command, shell string, w io.Writer) error {
	switch shell {
	case "bash":
		return root.GenBashCompletionV2(w, true)
	case "zsh":
		return root.GenZshCompletion(w)
	case "fish":
		return root.GenFishCompletion(w, true)
	case "powershell":
		return root.GenPowerShellCompletionWithDesc(w)
	}
	return FlagErrorf("unsupported shell %q (supported: bash, zsh, fish, powershell)", shell)
}
