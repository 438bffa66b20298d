package cli

import (
	"os"
	"strings"
	"time"

	"github.com/ergomake/ergomake/internal/iostreams"
	"github.com/ergomake/ergomake/internal/kube"
	"github.com/ergomake/ergomake/internal/server"
)

// Factory holds what every command needs from the outside world. Main builds the real one;
// tests build one around buffers, a chosen environment and a chosen working directory.
type Factory struct {
	// IOStreams are the standard streams and their terminal manners.
	IOStreams *iostreams.IOStreams
	// Environ is the user's environment as KEY=VALUE pairs (os.Environ() for real). Commands read
	// the environment only through it (COMPOSE_*, KUBECONFIG, HOME, ...), except the settings:
	// viper layers ERGOMAKE_* and the config file from the process environment (internal/config).
	Environ func() []string
	// WorkingDir is the directory compose files are discovered from (os.Getwd() for real).
	WorkingDir func() (string, error)
	// Now is the clock (time.Now for real).
	Now func() time.Time
	// KubeClient opens the cluster the cluster flags name (kube.New for real). Every command
	// that talks to the cluster gets its client here.
	KubeClient func(ClusterOptions) (*kube.Client, error)
	// ServerClient opens the ergomake server of stored credentials (server.NewClient for real).
	ServerClient func(*server.Credentials) (*server.Client, error)
}

// NewFactory returns the Factory of the running process.
func NewFactory() *Factory {
	environ := os.Environ()
	return &Factory{
		IOStreams:    iostreams.System(environ),
		Environ:      func() []string { return environ },
		WorkingDir:   os.Getwd,
		Now:          time.Now,
		KubeClient:   newKubeClient,
		ServerClient: server.NewClient,
	}
}

// newKubeClient builds the cluster client of the cluster flags.
func newKubeClient(c ClusterOptions) (*kube.Client, error) {
	return kube.New(kube.Options{Kubeconfig: c.Kubeconfig, Context: c.Context, Namespace: c.Namespace})
}

// Getenv returns the value of key in the Factory's environment, "" when unset.
func (f *Factory) Getenv(key string) string {
	env := f.Environ()
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == key {
			return v
		}
	}
	return ""
}
