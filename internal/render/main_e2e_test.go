//go:build e2e

package render

import (
	"os"
	"testing"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

// TestMain quiets controller-runtime's global logger, which the e2e tests' clients log through:
// never set, it prints a warning with a goroutine stack into the test output.
func TestMain(m *testing.M) {
	ctrllog.SetLogger(logr.Discard())
	os.Exit(m.Run())
}
