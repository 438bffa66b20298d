package forward

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"

	constants "k8s.io/apimachinery/pkg/util/portforward"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/websocket"
	"k8s.io/streaming/pkg/httpstream"
)

// DialFunc opens one tunnel: an upgraded pods/portforward connection to the
// named pod, speaking the "portforward.k8s.io" protocol. The forwarder
// creates its streams itself. ctx bounds the dial only, not the tunnel.
type DialFunc func(ctx context.Context, pod string) (httpstream.Connection, error)

// apiDialer dials pods/portforward through the API server the way client-go
// (and kubectl port-forward) does: WebSocket first (SPDY tunnelled over
// WebSocket: client-go's WebSocket round tripper, negotiation and tunnelling
// connection, as in portforward.NewSPDYOverWebsocketDialer), plain SPDY
// (spdy.NewDialerForStreaming) when the WebSocket upgrade is refused or a
// proxy cannot carry it — the fallback rule of kubectl. On the WebSocket
// tunnel the forwarder speaks the port-forward protocol itself (frameTunnel);
// and on a SPDY one too (the upgrade itself: spdyupgrade.go), so that
// both get the same liveness checks and flow control.
//
// client-go's round trippers keep the connection of their last round trip
// in themselves, so one must not serve two dials at once: they are kept in
// a free list, one dial at a time each.
type apiDialer struct {
	cfg  *rest.Config
	base *url.URL // .../namespaces/NS/pods

	mu   sync.Mutex
	free []*dialerSet
}

type dialerSet struct {
	ctx    atomic.Pointer[context.Context] // the context of the dial in progress
	cfg    *rest.Config
	ws     http.RoundTripper
	holder websocket.ConnectionHolder
	spdy   *http.Client // upgrades to SPDY through up
	up     *spdyUpgrade
}

// connect checks cfg and namespace and returns a client of the cluster and
// a dialer of the namespace's pods through its API server: what New and
// NewPodDialer start from.
func connect(cfg *rest.Config, namespace string) (kubernetes.Interface, *apiDialer, error) {
	if cfg == nil {
		return nil, nil, errors.New("forward: no cluster configuration")
	}
	if namespace == "" {
		return nil, nil, errors.New("forward: no namespace")
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("forward: %w", err)
	}
	base, err := url.Parse(client.CoreV1().RESTClient().Get().Namespace(namespace).Resource("pods").URL().String())
	if err != nil {
		return nil, nil, fmt.Errorf("forward: %w", err)
	}
	return client, newAPIDialer(cfg, base), nil
}

func newAPIDialer(cfg *rest.Config, base *url.URL) *apiDialer {
	return &apiDialer{cfg: cfg, base: base}
}

func (d *apiDialer) get() (*dialerSet, error) {
	d.mu.Lock()
	if n := len(d.free); n > 0 {
		s := d.free[n-1]
		d.free = d.free[:n-1]
		d.mu.Unlock()
		return s, nil
	}
	d.mu.Unlock()
	s := &dialerSet{}
	cfg := rest.CopyConfig(d.cfg)
	prev := cfg.WrapTransport
	// client-go's SPDY dialer builds its request without a context: give
	// each round trip the context of the dial in progress so that it is
	// bounded and cancellable.
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		if prev != nil {
			rt = prev(rt)
		}
		return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
			if c := s.ctx.Load(); c != nil {
				req = req.WithContext(*c)
			}
			return rt.RoundTrip(req)
		})
	}
	s.cfg = cfg
	var err error
	if s.ws, s.holder, err = websocket.RoundTripperFor(cfg); err != nil {
		return nil, err
	}
	if s.up, err = newSPDYUpgrade(d.cfg); err != nil {
		return nil, err
	}
	rt, err := rest.HTTPWrappersForConfig(d.cfg, s.up) // credentials, impersonation, user agent
	if err != nil {
		return nil, err
	}
	s.spdy = &http.Client{Transport: rt}
	return s, nil
}

func (d *apiDialer) put(s *dialerSet) {
	s.ctx.Store(nil)
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.free) < 8 {
		d.free = append(d.free, s)
	}
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// dial opens a tunnel to the pod: WebSocket, else SPDY.
func (d *apiDialer) dial(ctx context.Context, pod string) (tunnel, error) {
	s, err := d.get()
	if err != nil {
		return nil, err
	}
	defer d.put(s)
	s.ctx.Store(&ctx)
	u := *d.base
	u.Path = d.base.Path + "/" + url.PathEscape(pod) + "/portforward"

	t, err := s.dialWebSocket(ctx, &u)
	if err == nil {
		return t, nil
	}
	if !httpstream.IsUpgradeFailure(err) && !httpstream.IsHTTPSProxyError(err) {
		return nil, err
	}
	return s.dialSPDY(ctx, &u)
}

func (s *dialerSet) dialWebSocket(ctx context.Context, u *url.URL) (tunnel, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	ws, err := websocket.Negotiate(s.ws, s.holder, req, constants.WebsocketsSPDYTunnelingPortForwardV1)
	if err != nil {
		return nil, err
	}
	if ws == nil {
		return nil, fmt.Errorf("negotiated websocket connection is nil")
	}
	return newFrameTunnel(portforward.NewTunnelingConnection("client", ws), ws.NetConn()), nil
}
