// Command gen-docs regenerates ergomake's reference docs (markdown and man pages) and shell
// completion scripts from the command tree. `make docs` runs it; a test in internal/cli fails
// when the committed files are stale.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/ergomake/ergomake/internal/cli"
)

func main() {
	markdown := flag.String("markdown", "docs/cli", "directory of the markdown reference")
	man := flag.String("man", "docs/man", "directory of the man pages")
	completions := flag.String("completions", "completions", "directory of the shell completion scripts")
	flag.Parse()

	if err := cli.GenerateDocs(cli.DocsRoot(), *markdown, *man); err != nil {
		fmt.Fprintln(os.Stderr, "gen-docs:", err)
		os.Exit(1)
	}
	if err := cli.GenerateCompletions(cli.DocsRoot(), *completions); err != nil {
		fmt.Fprintln(os.Stderr, "gen-docs:", err)
		os.Exit(1)
	}
}
