package namedns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// Options configure a Server.
type Options struct {
	// Config reaches the cluster.
	Config *rest.Config
	// Addr is the address served over UDP and TCP, e.g. DefaultAddr.
	Addr string
	// Upstream is cluster DNS as host:port or an IP (port 53); "" finds the kube-dns Service in
	// kube-system (see DiscoverUpstream).
	Upstream string
	// ClusterDomain is the cluster's DNS domain (default DefaultClusterDomain).
	ClusterDomain string
	// Namespaces restricts the names served to environments in these namespaces (nil: all).
	Namespaces []string
	// Log receives what the server does (zero value: discarded).
	Log logr.Logger
	// Drain is how long the server keeps answering once told to stop (0: DefaultDrain; negative:
	// none).
	Drain time.Duration
	// MaxUpstream caps the queries to cluster DNS under way at once (see Handler.MaxUpstream).
	MaxUpstream int
}

// DefaultDrain: a stopping server answers for this long, while its pod leaves the Service.
const DefaultDrain = 3 * time.Second

// Server runs the environment DNS: on its own in the ergomake-dns Deployment (`ergomake-operator
// dns`, Main), or inside an operator's manager (it is a manager.Runnable that every replica runs,
// leader or not; `--dns-addr`). It keeps its own read-only cache of every ErgomakeEnv (whichever
// operator instance handles it) and of the environments' Services and pods, and a Listener.
type Server struct {
	opts  Options
	ready atomic.Bool
	addr  atomic.Value // net.Addr
}

// New checks opts and returns a Server to start.
func New(opts Options) (*Server, error) {
	if opts.Config == nil {
		return nil, errors.New("dns: no cluster configuration")
	}
	if _, _, err := net.SplitHostPort(opts.Addr); err != nil {
		return nil, fmt.Errorf("dns address %q: %w", opts.Addr, err)
	}
	if opts.Upstream != "" {
		up, err := upstreamAddr(opts.Upstream)
		if err != nil {
			return nil, err
		}
		opts.Upstream = up
	}
	return &Server{opts: opts}, nil
}

// NeedLeaderElection: every replica answers DNS.
func (s *Server) NeedLeaderElection() bool { return false }

// Ready is a healthz.Checker: nil once the server answers queries.
func (s *Server) Ready(*http.Request) error {
	if !s.ready.Load() {
		return errors.New("environment DNS not serving yet")
	}
	return nil
}

// Addr is the UDP address served, once Ready.
func (s *Server) Addr() net.Addr {
	a, _ := s.addr.Load().(net.Addr)
	return a
}

func newScheme() (*runtime.Scheme, error) {
	sch := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(sch); err != nil {
		return nil, err
	}
	if err := v1alpha1.AddToScheme(sch); err != nil {
		return nil, err
	}
	return sch, nil
}

// Start fills the cache, finds cluster DNS and serves until ctx ends.
func (s *Server) Start(ctx context.Context) error {
	sch, err := newScheme()
	if err != nil {
		return err
	}
	hasEnv, err := labels.NewRequirement(v1alpha1.LabelEnv, selection.Exists, nil)
	if err != nil {
		return err
	}
	children := labels.NewSelector().Add(*hasEnv)
	copts := cache.Options{
		Scheme:           sch,
		DefaultTransform: cache.TransformStripManagedFields(), // memory: managed fields are never read
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Pod{}:     {Label: children},
			&corev1.Service{}: {Label: children},
		},
	}
	if len(s.opts.Namespaces) > 0 {
		copts.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range s.opts.Namespaces {
			copts.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	c, err := cache.New(s.opts.Config, copts)
	if err != nil {
		return fmt.Errorf("dns: %w", err)
	}
	if err := c.IndexField(ctx, &corev1.Pod{}, PodIPField, PodIPs); err != nil {
		return fmt.Errorf("dns: %w", err)
	}
	for _, obj := range []client.Object{&v1alpha1.ErgomakeEnv{}, &corev1.Service{}, &corev1.Pod{}} {
		if _, err := c.GetInformer(ctx, obj); err != nil {
			return fmt.Errorf("dns: %w", err)
		}
	}
	// The cache outlives ctx by the drain time, so that answers keep coming while the Service
	// stops sending queries here.
	cacheCtx, stopCache := context.WithCancel(context.WithoutCancel(ctx))
	defer stopCache()
	cacheDone := make(chan error, 1)
	go func() { cacheDone <- c.Start(cacheCtx) }()
	if !c.WaitForCacheSync(ctx) {
		if ctx.Err() != nil {
			return nil
		}
		return errors.New("dns: the cache did not sync")
	}

	upstream := s.opts.Upstream
	if upstream == "" {
		direct, err := client.New(s.opts.Config, client.Options{Scheme: sch})
		if err != nil {
			return fmt.Errorf("dns: %w", err)
		}
		if upstream, err = DiscoverUpstream(ctx, direct); err != nil {
			return err
		}
	}
	h := &Handler{Table: &CacheTable{Reader: c}, Upstream: upstream, ClusterDomain: s.opts.ClusterDomain, Log: s.opts.Log,
		MaxUpstream: s.opts.MaxUpstream}
	l, err := Listen(s.opts.Addr, h)
	if err != nil {
		return err
	}
	s.addr.Store(l.Addr)
	s.ready.Store(true)
	s.opts.Log.Info("serving the environment DNS", "address", l.Addr.String(), "clusterDNS", upstream, "clusterDomain", h.domain())
	defer s.ready.Store(false)
	select {
	case <-ctx.Done():
		// Stopping (a rollout, a deleted pod): the endpoint is being taken out of the Service;
		// queries already on their way are still answered.
		s.ready.Store(false)
		drain := s.opts.Drain
		if drain == 0 {
			drain = DefaultDrain
		}
		if drain > 0 {
			t := time.NewTimer(drain)
			defer t.Stop()
			select {
			case <-t.C:
			case <-l.Wait():
			}
		}
		return l.Close()
	case err := <-l.Wait():
		l.Close()
		if err == nil {
			err = errors.New("stopped")
		}
		return fmt.Errorf("dns: %w", err)
	case err := <-cacheDone:
		l.Close()
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("dns: cache stopped: %v", err)
	}
}

// KubeDNSNamespace and KubeDNSService are where cluster DNS is found.
const (
	KubeDNSNamespace = "kube-system"
	KubeDNSService   = "kube-dns"
	kubeDNSLabel     = "k8s-app"
)

// DiscoverUpstream returns cluster DNS as host:port: the ClusterIP of the kube-dns Service in
// kube-system, or else of the Service there labelled k8s-app=kube-dns.
func DiscoverUpstream(ctx context.Context, c client.Reader) (string, error) {
	var svc corev1.Service
	err := c.Get(ctx, client.ObjectKey{Namespace: KubeDNSNamespace, Name: KubeDNSService}, &svc)
	if err != nil {
		var list corev1.ServiceList
		if lerr := c.List(ctx, &list, client.InNamespace(KubeDNSNamespace), client.MatchingLabels{kubeDNSLabel: KubeDNSService}); lerr != nil || len(list.Items) != 1 {
			return "", fmt.Errorf("dns: finding cluster DNS (Service %s/%s): %v; pass its address with --dns-upstream", KubeDNSNamespace, KubeDNSService, err)
		}
		svc = list.Items[0]
	}
	ip := svc.Spec.ClusterIP
	if net.ParseIP(ip) == nil {
		return "", fmt.Errorf("dns: Service %s/%s has no ClusterIP (%q); pass cluster DNS with --dns-upstream", svc.Namespace, svc.Name, ip)
	}
	return net.JoinHostPort(ip, "53"), nil
}

// upstreamAddr turns "10.96.0.10" or "10.96.0.10:53" into host:port.
func upstreamAddr(s string) (string, error) {
	if ip := net.ParseIP(s); ip != nil {
		return net.JoinHostPort(s, "53"), nil
	}
	host, _, err := net.SplitHostPort(s)
	if err != nil || net.ParseIP(host) == nil {
		return "", fmt.Errorf("dns upstream %q: not an IP address or IP:port", s)
	}
	return s, nil
}
