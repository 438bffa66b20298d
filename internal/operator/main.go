package operator

import (
	"context"
	"fmt"
	"io"
	"os"

	"k8s.io/client-go/rest"

	"github.com/ergomake/ergomake/internal/build"
	"github.com/ergomake/ergomake/internal/cmdutil"
	"github.com/ergomake/ergomake/internal/namedns"
)

// Main runs the ergomake-operator binary with its command-line arguments and returns its exit code.
func Main(args []string, stderr io.Writer) int {
	cmd := cmdutil.New("ergomake-operator", stderr)
	fs := cmd.Flags
	var (
		opts    Options
		version bool
	)
	fs.StringVar(&opts.MetricsAddr, "metrics-bind-address", "127.0.0.1:8080", `loopback address the metrics endpoint binds to, reached with kubectl port-forward ("0" turns it off)`)
	fs.StringVar(&opts.HealthAddr, "health-probe-bind-address", ":8081", "address the /healthz and /readyz endpoints bind to")
	fs.BoolVar(&opts.LeaderElection, "leader-elect", false, "elect a leader among replicas, so that only one reconciles")
	fs.StringVar(&opts.LeaderElectionNamespace, "leader-election-namespace", "", "namespace of the leader election Lease (default: the operator's own)")
	fs.StringVar(&opts.Instance, "instance", "", "handle only ErgomakeEnvs labelled "+LabelInstance+"=<instance> (default: those without the label)")
	clusterDomain := namedns.DefaultClusterDomain
	if os.Getenv("KUBERNETES_SERVICE_HOST") != "" { // in a pod
		clusterDomain = namedns.DetectClusterDomain()
	}
	// The installed environment DNS is a Deployment of its own (`ergomake-operator dns`), so that
	// an operator restart never interrupts name resolution; an operator serves it too only when
	// told to.
	fs.StringVar(&opts.DNSAddr, "dns-addr", "", `serve the environment DNS in this process on this address, UDP and TCP (default: off; the installed one is the ergomake-dns Deployment, "ergomake-operator `+namedns.Command+`")`)
	fs.StringVar(&opts.DNSUpstream, "dns-upstream", "", "cluster DNS the environment DNS passes queries to, IP or IP:port (default: the kube-dns Service in kube-system)")
	fs.StringVar(&opts.ClusterDomain, "cluster-domain", clusterDomain, "the cluster's DNS domain (default in a pod: the one its /etc/resolv.conf searches)")
	fs.BoolVar(&version, "version", false, "print the version and exit")
	if code, ok := cmd.Parse(args); !ok {
		return code
	}
	if version {
		fmt.Fprintln(stderr, "ergomake-operator", build.Get().Version)
		return 0
	}
	return cmd.Serve(func(ctx context.Context, cfg *rest.Config) error {
		opts.Config = cfg
		return Run(ctx, opts)
	})
}
