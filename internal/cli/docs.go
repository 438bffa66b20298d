package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/ergomake/ergomake/internal/iostreams"
)

// manDate is the date in the generated man pages' header. It is fixed so that regenerating the
// docs is deterministic; bump it when the commands change a lot.
var manDate = time.Date(2026, time.November, 1, 0, 0, 0, 0, time.UTC)

// CompletionFiles are the completion scripts GenerateCompletions writes, by shell, named as the
// shells (and Homebrew) expect them.
var CompletionFiles = map[string]string{
	"bash":       "ergomake.bash",
	"zsh":        "_ergomake",
	"fish":       "ergomake.fish",
	"powershell": "ergomake.ps1",
}

// DocsRoot returns the command tree as documentation sees it: independent of the environment
// and the terminal it is generated in, with cobra's "auto generated on <date>" lines turned off.
func DocsRoot() *cobra.Command {
	ios, _, _, _ := iostreams.Test()
	f := &Factory{
		IOStreams:  ios,
		Environ:    func() []string { return nil },
		WorkingDir: func() (string, error) { return "/", nil },
		Now:        func() time.Time { return manDate },
	}
	root := NewCmdRoot(f)
	var disable func(*cobra.Command)
	disable = func(c *cobra.Command) {
		c.DisableAutoGenTag = true
		for _, sub := range c.Commands() {
			disable(sub)
		}
	}
	disable(root)
	return root
}

// GenerateDocs writes the markdown reference (one file per command) into markdownDir and the
// man pages (section 1) into manDir. Both directories are emptied first, so files of commands
// that no longer exist disappear.
func GenerateDocs(root *cobra.Command, markdownDir, manDir string) error {
	for _, dir := range []string{markdownDir, manDir} {
		if err := resetDir(dir); err != nil {
			return err
		}
	}
	if err := doc.GenMarkdownTree(root, markdownDir); err != nil {
		return fmt.Errorf("markdown docs: %w", err)
	}
	header := &doc.GenManHeader{
		Title:   "ERGOMAKE",
		Section: "1",
		Source:  "ergomake",
		Manual:  "ergomake manual",
		Date:    &manDate,
	}
	if err := doc.GenManTree(root, header, manDir); err != nil {
		return fmt.Errorf("man pages: %w", err)
	}
	return nil
}

// GenerateCompletions writes the completion script of every shell into dir.
func GenerateCompletions(root *cobra.Command, dir string) error {
	if err := resetDir(dir); err != nil {
		return err
	}
	for _, shell := range completionShells {
		f, err := os.Create(filepath.Join(dir, CompletionFiles[shell]))
		if err != nil {
			return err
		}
		err = writeCompletion(root, shell, f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("%s completion: %w", shell, err)
		}
	}
	return nil
}

// resetDir makes dir an empty directory.
func resetDir(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return os.MkdirAll(dir, 0o755)
}
