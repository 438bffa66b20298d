package forward

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"sync"
	"sync/atomic"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
	"k8s.io/streaming/pkg/httpstream"
)

// DialFunc opens one tunnel: an upgraded pods/portforward connection to the
// named pod, speaking the "portforward.k8s.io" protocol. The forwarder
// creates its streams itself. ctx bounds the dial only, not the tunnel.
type DialFunc func(ctx context.Context, pod string) (httpstream.Connection, error)

// apiDialer dials pods/portforward through the API server the way client-go
// (and kubectl) does: WebSocket (SPDY tunnelled over WebSocket) first, plain
// SPDY when the upgrade to WebSocket is refused.
//
// client-go's dialers keep the connection of their last round trip in
// themselves, so one dialer must not be used by two dials at once; the
// dialers are kept in a free list and reused one dial at a time.
type apiDialer struct {
	cfg  *rest.Config
	base *url.URL // .../namespaces/NS/pods, the pod name and /portforward are appended

	mu   sync.Mutex
	free []*dialerSet
}

type dialerSet struct {
	ctx   atomic.Pointer[context.Context] // the context of the dial in progress
	cfg   *rest.Config
	byPod map[string]httpstream.Dialer
}

func newAPIDialer(cfg *rest.Config, base *url.URL) *apiDialer {
	return &apiDialer{cfg: cfg, base: base}
}

func (d *apiDialer) get() *dialerSet {
	d.mu.Lock()
	defer d.mu.Unlock()
	if n := len(d.free); n > 0 {
		s := d.free[n-1]
		d.free = d.free[:n-1]
		return s
	}
	s := &dialerSet{byPod: map[string]httpstream.Dialer{}}
	cfg := rest.CopyConfig(d.cfg)
	prev := cfg.WrapTransport
	// The upgrade round trippers take their context from the request, and
	// client-go's Dial has none: give each round trip the context of the
	// dial in progress so that it is bounded and cancellable.
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
	return s
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

// dialer returns the set's WebSocket-then-SPDY dialer for one pod, built as
// kubectl port-forward builds it.
func (s *dialerSet) dialer(base *url.URL, pod string) (httpstream.Dialer, error) {
	if dl, ok := s.byPod[pod]; ok {
		return dl, nil
	}
	if len(s.byPod) > 16 { // pods come and go; keep the cache small
		clear(s.byPod)
	}
	u := *base
	u.Path = base.Path + "/" + url.PathEscape(pod) + "/portforward"
	transport, upgrader, err := spdy.RoundTripperFor(s.cfg)
	if err != nil {
		return nil, err
	}
	spdyDialer := spdy.NewDialerForStreaming(upgrader, &http.Client{Transport: transport}, http.MethodPost, &u)
	wsDialer, err := portforward.NewSPDYOverWebsocketDialerForStreaming(&u, s.cfg)
	if err != nil {
		return nil, err
	}
	dl := portforward.NewFallbackDialerForStreaming(wsDialer, spdyDialer, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
	s.byPod[pod] = dl
	return dl, nil
}

func (d *apiDialer) Dial(ctx context.Context, pod string) (httpstream.Connection, error) {
	s := d.get()
	defer d.put(s)
	dl, err := s.dialer(d.base, pod)
	if err != nil {
		return nil, err
	}
	// The WebSocket dialer reports the network connection it upgrades
	// through httptrace: keep it, so that a tunnel whose writer is blocked
	// (a pod that does not read) can still be closed at once.
	var raw net.Conn
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) { raw = info.Conn },
	})
	s.ctx.Store(&ctx)
	conn, proto, err := dl.Dial(portforward.PortForwardProtocolV1Name)
	if err != nil {
		return nil, err
	}
	if proto != portforward.PortForwardProtocolV1Name {
		_ = conn.Close()
		return nil, fmt.Errorf("unable to negotiate protocol: client supports %q, server returned %q",
			portforward.PortForwardProtocolV1Name, proto)
	}
	if raw != nil {
		return &rawConn{Connection: conn, raw: raw}, nil
	}
	return conn, nil
}

// rawConn is a tunnel that also knows its network connection.
type rawConn struct {
	httpstream.Connection
	raw net.Conn
}

// hardClose closes a tunnel without waiting for anything: its network
// connection first (which unblocks every reader and writer), then the
// stream connection.
func hardClose(c httpstream.Connection) {
	if rc, ok := c.(*rawConn); ok {
		_ = rc.raw.Close()
	}
	_ = c.Close()
}
