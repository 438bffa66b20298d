// Command ergomake-operator runs the controller that turns ErgomakeEnvs into running environments.
package main

import (
	"os"

	"github.com/ergomake/ergomake/internal/operator"
)

func main() {
	os.Exit(operator.Main(os.Args[1:], os.Stderr))
}
