// Command ergomake brings docker compose projects up on Kubernetes.
package main

import (
	"os"

	"github.com/ergomake/ergomake/internal/cli"
)

func main() {
	os.Exit(cli.Main())
}
