// Command ergomake-operator runs the controller that turns ErgomakeEnvs into running environments.
// `ergomake-operator registry-relay` runs the node relay of the in-cluster registry instead
// (internal/registryrelay), `ergomake-operator dns` the environment DNS (internal/namedns), and
// `ergomake-operator server` the ergomake server (internal/server): the same image serves them all.
package main

import (
	"os"

	"github.com/ergomake/ergomake/internal/namedns"
	"github.com/ergomake/ergomake/internal/operator"
	"github.com/ergomake/ergomake/internal/registryrelay"
	"github.com/ergomake/ergomake/internal/server"
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case registryrelay.Command:
			os.Exit(registryrelay.Main(os.Args[2:], os.Stderr))
		case namedns.Command:
			os.Exit(namedns.Main(os.Args[2:], os.Stderr))
		case server.Command:
			os.Exit(server.Main(os.Args[2:], os.Stderr))
		}
	}
	os.Exit(operator.Main(os.Args[1:], os.Stderr))
}
