package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/ergomake/ergomake/internal/build"
	"github.com/ergomake/ergomake/internal/cmdutil"
)

// Command is the ergomake-operator subcommand that runs the server.
const Command = "server"

// DefaultPort is the port the server listens on in its pod (its Service serves 443).
const DefaultPort = 8443

// Timeouts against slow clients (the future streaming endpoints extend their own deadlines with
// http.ResponseController).
const (
	ReadHeaderTimeout = 10 * time.Second
	ReadTimeout       = 30 * time.Second
	WriteTimeout      = 60 * time.Second
	IdleTimeout       = 2 * time.Minute
	MaxHeaderBytes    = 64 << 10
)

// DefaultShutdownGrace is how long open requests and streams (forwarded connections, exec, logs)
// may go on once the server is asked to stop: shorter than its pod's terminationGracePeriodSeconds
// (config/server/deployment.yaml), so that it ends them itself, cleanly, before the kubelet kills
// it.
const DefaultShutdownGrace = 25 * time.Second

// The server's default rate limits per token and replica: requests (Rate, Burst) and, apart,
// dials, one per forwarded connection (DialRate, DialBurst).
const (
	DefaultRate      = 10
	DefaultBurst     = 40
	DefaultDialRate  = 200
	DefaultDialBurst = 400
)

// Options of Run.
type Options struct {
	Addr              string
	CertFile, KeyFile string
	Namespace         string
	Config            *rest.Config
	Rate              float64
	Burst             int
	DialRate          float64
	DialBurst         int
	MaxBody           int64
	MaxApplyBody      int64
	TokenCache        time.Duration
	// ShutdownGrace bounds how long open requests and streams may go on once the server is
	// asked to stop (0: DefaultShutdownGrace).
	ShutdownGrace time.Duration
	Log           io.Writer
	// Listener, when set, is served instead of listening on Addr (tests).
	Listener net.Listener
	// Ready, when set, is called once the server listens.
	Ready func(addr net.Addr)
}

// Main runs `ergomake-operator server` with its arguments and returns its exit code.
func Main(args []string, stderr io.Writer) int {
	cmd := cmdutil.New("ergomake-operator "+Command, stderr)
	fs := cmd.Flags
	ns := os.Getenv("POD_NAMESPACE")
	if ns == "" {
		ns = "ergomake-system"
	}
	opts := Options{Log: stderr}
	fs.StringVar(&opts.Addr, "addr", fmt.Sprintf(":%d", DefaultPort), "address to serve HTTPS on")
	fs.StringVar(&opts.CertFile, "tls-cert", "/etc/ergomake/tls/tls.crt", "serving certificate chain (PEM); re-read when it changes")
	fs.StringVar(&opts.KeyFile, "tls-key", "/etc/ergomake/tls/tls.key", "serving certificate's key (PEM)")
	fs.StringVar(&opts.Namespace, "namespace", ns, "the server's namespace: its tokens, configuration and the cluster settings (default: $POD_NAMESPACE)")
	fs.Float64Var(&opts.Rate, "rate", DefaultRate, "requests per second allowed per token (each replica)")
	fs.IntVar(&opts.Burst, "burst", DefaultBurst, "burst of requests allowed per token")
	fs.Float64Var(&opts.DialRate, "dial-rate", DefaultDialRate, "forwarded connections (dials) per second allowed per token (each replica), apart from --rate")
	fs.IntVar(&opts.DialBurst, "dial-burst", DefaultDialBurst, "burst of forwarded connections allowed per token")
	fs.Int64Var(&opts.MaxBody, "max-body", DefaultMaxBody, "largest request body accepted, in bytes")
	fs.Int64Var(&opts.MaxApplyBody, "max-apply-body", DefaultMaxApplyBody, "largest `up` request body (the project and the files it ships) accepted, in bytes")
	fs.DurationVar(&opts.ShutdownGrace, "shutdown-grace", DefaultShutdownGrace, "how long open forwarded connections, exec and logs streams and requests may go on once the server is asked to stop (keep it below the pod's terminationGracePeriodSeconds)")
	fs.DurationVar(&opts.TokenCache, "token-cache", 5*time.Second, "how long a checked token is trusted before it is read again (the delay of a revocation)")
	if code, ok := cmd.Parse(args); !ok {
		return code
	}
	return cmd.Serve(func(ctx context.Context, cfg *rest.Config) error {
		opts.Config = cfg
		return Run(ctx, opts)
	})
}

// Run serves the API until ctx ends, then shuts down gracefully.
func Run(ctx context.Context, opts Options) error {
	if opts.Log == nil {
		opts.Log = os.Stderr
	}
	cfg := rest.CopyConfig(opts.Config)
	cfg.UserAgent = "ergomake-server"
	cfg.QPS, cfg.Burst = 50, 100
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	certs := &certLoader{certFile: opts.CertFile, keyFile: opts.KeyFile}
	if _, err := certs.get(nil); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(opts.Log, nil))
	tenancy := &Tenancy{Kube: cs, Dynamic: dyn, Rest: cfg, Namespace: opts.Namespace, EnvRole: ClusterScopedName(EnvRoleName, opts.Namespace)}
	h := NewHandler(HandlerOptions{
		Auth:         &TokenStore{Client: cs, Namespace: opts.Namespace, CacheTTL: opts.TokenCache},
		Tenancy:      tenancy,
		Limiter:      &RateLimiter{Rate: rate.Limit(opts.Rate), Burst: opts.Burst},
		DialLimiter:  &RateLimiter{Rate: rate.Limit(opts.DialRate), Burst: opts.DialBurst},
		MaxBody:      opts.MaxBody,
		MaxApplyBody: opts.MaxApplyBody,
		Audit:        log,
		Version:      build.Get().Version,
		BuilderDial:  BuilderDialer(cfg, tenancy, opts.Namespace, 0),
	})
	srv := NewHTTPServer(h, certs.get)
	srv.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	ln := opts.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", opts.Addr); err != nil {
			return err
		}
	}
	log.Info("serving", "addr", ln.Addr().String(), "namespace", opts.Namespace, "version", build.Get().Version)
	if opts.Ready != nil {
		opts.Ready(ln.Addr())
	}
	return Serve(ctx, srv, h, ln, opts.ShutdownGrace, log)
}

// Serve serves h with srv on ln (TLS) until ctx ends, then shuts down gracefully: it stops
// accepting connections, fails readiness and ends watches (h.Drain; their clients go on with the
// other replica), and lets every other request, forwarded connections, exec and logs streams
// included, finish for up to grace (0: DefaultShutdownGrace). Then it ends what is left.
func Serve(ctx context.Context, srv *http.Server, h *Handler, ln net.Listener, grace time.Duration, log *slog.Logger) error {
	if grace <= 0 {
		grace = DefaultShutdownGrace
	}
	// Requests' contexts end with base, which ends when the grace is over.
	base, endAll := context.WithCancel(context.Background())
	defer endAll()
	srv.BaseContext = func(net.Listener) context.Context { return base }
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: no new connections; open requests and streams have up to " + grace.String() + " to end")
	h.Drain()
	graceCtx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(graceCtx) }() // closes the listener at once
	left, _ := h.WaitRequests(graceCtx)
	if err := <-shut; err != nil && left == 0 {
		left = -1 // connections without a request (yet) were still open
	}
	if left != 0 {
		if left > 0 {
			log.Warn("shutdown grace over: ending the requests and streams still open", "open", left)
		}
		endAll()
		_ = srv.Close()
		wctx, wcancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer wcancel()
		_, _ = h.WaitRequests(wctx) // their audit lines
	}
	log.Info("shut down")
	return nil
}

// NewHTTPServer is the server's http.Server: TLS 1.2+, with the timeouts and header limit against
// slow or greedy clients.
func NewHTTPServer(h http.Handler, getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error)) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: getCert},
	}
}

// certLoader serves the certificate of two files, re-read when they change (a renewed Secret
// reaches the pod's volume without a restart).
type certLoader struct {
	certFile, keyFile string
	mu                sync.Mutex
	cert              *tls.Certificate
	mod               time.Time
	checked           time.Time
}

func (l *certLoader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cert != nil && time.Since(l.checked) < 30*time.Second {
		return l.cert, nil
	}
	l.checked = time.Now()
	st, err := os.Stat(l.certFile)
	if err == nil && l.cert != nil && st.ModTime().Equal(l.mod) {
		return l.cert, nil
	}
	c, lerr := tls.LoadX509KeyPair(l.certFile, l.keyFile)
	if lerr != nil {
		if l.cert != nil {
			return l.cert, nil // keep serving the last good one
		}
		return nil, fmt.Errorf("serving certificate: %w", lerr)
	}
	l.cert = &c
	if err == nil {
		l.mod = st.ModTime()
	}
	return l.cert, nil
}
