// Command ergomake-operator runs the controller that turns ErgomakeEnvs into running environments.
// `ergomake-operator registry-relay` runs the node relay of the in-cluster registry instead
// (internal/registryrelay), and `ergomake-operator dns` the environment DNS (internal/namedns):
// the same image serves all three.
package main

import (
	"os"

	"github.com/ergomake/ergomake/internal/namedns"
	"github.com/ergomake/ergomake/internal/operator"
	"github.com/ergomake/ergomake/internal/registryrelay"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == registryrelay.Command {
		os.Exit(registryrelay.Main(os.Args[2:], os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == namedns.Command {
		os.Exit(namedns.Main(os.Args[2:], os.Stderr))
	}
	os.Exit(operator.Main(os.Args[1:], os.Stderr))
}
