package namedns

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"

	"github.com/ergomake/ergomake/internal/cmdutil"
)

// Command is the ergomake-operator subcommand that runs the environment DNS on its own
// (`ergomake-operator dns`): the ergomake-dns Deployment, apart from the operator, so that an
// operator restart never interrupts name resolution in environments.
const Command = "dns"

// Main runs `ergomake-operator dns` with its arguments and returns its exit code: the environment
// DNS, its names learnt from the cluster (ErgomakeEnvs, and the Services and pods of
// environments), with /healthz and /readyz (ready once the names are known and the server
// answers). On SIGTERM it stops being ready and answers for Drain more, while its pod leaves the
// Service.
func Main(args []string, stderr io.Writer) int {
	cmd := cmdutil.New("ergomake-operator "+Command, stderr)
	fs := cmd.Flags
	clusterDomain := DefaultClusterDomain
	if os.Getenv("KUBERNETES_SERVICE_HOST") != "" { // in a pod
		clusterDomain = DetectClusterDomain()
	}
	var (
		opts   Options
		health string
	)
	fs.StringVar(&opts.Addr, "addr", DefaultAddr, "address served, UDP and TCP")
	fs.StringVar(&opts.Upstream, "upstream", "", "cluster DNS, IP or IP:port (default: the kube-dns Service in kube-system)")
	fs.StringVar(&opts.ClusterDomain, "cluster-domain", clusterDomain, "the cluster's DNS domain (default in a pod: the one its /etc/resolv.conf searches)")
	fs.IntVar(&opts.MaxUpstream, "max-upstream", DefaultMaxUpstream, "queries to cluster DNS under way at once; past it a query is answered SERVFAIL")
	fs.DurationVar(&opts.Drain, "drain", DefaultDrain, "how long a stopping server keeps answering")
	fs.StringVar(&health, "health-probe-bind-address", ":8081", `address of /healthz and /readyz ("0": none)`)
	if code, ok := cmd.Parse(args); !ok {
		return code
	}
	return cmd.Serve(func(ctx context.Context, cfg *rest.Config) error {
		opts.Config = cfg
		opts.Log = logr.FromSlogHandler(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).WithName("dns")
		srv, err := New(opts)
		if err != nil {
			return cmdutil.Exit(2, err)
		}
		if health != "0" && health != "" {
			hs, err := serveHealth(health, srv)
			if err != nil {
				return err
			}
			defer hs.Close()
		}
		return srv.Start(ctx)
	})
}

// serveHealth serves /healthz (the process runs) and /readyz (srv answers queries) on addr.
func serveHealth(addr string, srv *Server) (*http.Server, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("health endpoint: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := srv.Ready(r); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok")
	})
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(l) }()
	return hs, nil
}
