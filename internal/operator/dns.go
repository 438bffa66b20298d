package operator

import (
	"context"
	"net"
	"os"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/ergomake/ergomake/internal/namedns"
)

// The environment DNS (internal/namedns) runs in every operator replica that is given a DNS
// address; its cache reads ErgomakeEnvs, and the Services and pods of environments:
// +kubebuilder:rbac:groups=ergomake.dev,resources=ergomakeenvs,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=services;pods,verbs=get;list;watch

// DefaultDNSNamespace is where the ergomake-dns Service is looked for when the operator does not
// run in a pod (POD_NAMESPACE unset): the namespace `ergomake install` uses by default.
const DefaultDNSNamespace = "ergomake-system"

// dnsServiceRefresh is how long a looked-up ergomake-dns ClusterIP is trusted.
const dnsServiceRefresh = time.Minute

// setupDNS adds the environment DNS server to mgr when opts.DNSAddr is set.
func setupDNS(mgr manager.Manager, opts Options, logger logr.Logger) error {
	if opts.DNSAddr == "" {
		return nil
	}
	srv, err := namedns.New(namedns.Options{
		Config:        opts.Config,
		Addr:          opts.DNSAddr,
		Upstream:      opts.DNSUpstream,
		ClusterDomain: opts.ClusterDomain,
		Namespaces:    opts.Namespaces,
		Log:           logger.WithName("dns"),
	})
	if err != nil {
		return err
	}
	if err := mgr.Add(srv); err != nil {
		return err
	}
	if opts.HealthAddr != "" {
		return mgr.AddReadyzCheck("dns", srv.Ready)
	}
	return nil
}

// dnsServiceKey is the ergomake-dns Service pods of environments resolve through: in
// opts.DNSNamespace, else the operator's own namespace (POD_NAMESPACE), else
// DefaultDNSNamespace. An operator run outside the cluster so uses the installed one's.
func dnsServiceKey(opts Options) types.NamespacedName {
	ns := opts.DNSNamespace
	if ns == "" {
		ns = os.Getenv("POD_NAMESPACE")
	}
	if ns == "" {
		ns = DefaultDNSNamespace
	}
	return types.NamespacedName{Namespace: ns, Name: namedns.ServiceName}
}

// DNSServerLookup finds the ClusterIP of the ergomake-dns Service, remembering it for a minute.
// A nil *DNSServerLookup knows no server.
type DNSServerLookup struct {
	Reader client.Reader
	Key    types.NamespacedName
	Clock  clock.PassiveClock

	mu sync.Mutex
	ip string
	at time.Time
}

// ServerIP is the ergomake-dns ClusterIP, or "" when there is no such Service.
func (d *DNSServerLookup) ServerIP(ctx context.Context) string {
	if d == nil {
		return ""
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.Clock.Now()
	if !d.at.IsZero() && now.Sub(d.at) < dnsServiceRefresh && now.Sub(d.at) >= 0 {
		return d.ip
	}
	var svc corev1.Service
	if err := d.Reader.Get(ctx, d.Key, &svc); err != nil {
		if client.IgnoreNotFound(err) != nil {
			return d.ip // keep the last answer through an API hiccup
		}
		d.ip = ""
	} else if net.ParseIP(svc.Spec.ClusterIP) != nil {
		d.ip = svc.Spec.ClusterIP
	} else {
		d.ip = ""
	}
	d.at = now
	return d.ip
}

// dnsUpToDate: the pod template resolves as rendered (the environment DNS is not in the spec hash).
func dnsUpToDate(existing, rendered *corev1.PodSpec) bool {
	return existing.DNSPolicy == rendered.DNSPolicy && equality.Semantic.DeepEqual(existing.DNSConfig, rendered.DNSConfig)
}
