package cluster

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
)

// PortForward forwards a free port on 127.0.0.1 to remotePort of the pod through the API server's
// pods/portforward subresource (WebSocket, falling back to SPDY, as kubectl does) and returns the
// local port. The forward stops when the test ends.
func PortForward(t testing.TB, cfg *rest.Config, ns, pod string, remotePort int) int {
	t.Helper()
	cs := Clientset(t, cfg)
	u := cs.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name(pod).SubResource("portforward").URL()
	dialer, err := Dialer(cfg, u)
	if err != nil {
		t.Fatalf("port-forward dialer: %v", err)
	}
	stop := make(chan struct{})
	ready := make(chan struct{})
	out := &syncBuffer{}
	fw, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{fmt.Sprintf("0:%d", remotePort)}, stop, ready, out, out)
	if err != nil {
		t.Fatalf("port-forward: %v", err)
	}
	errc := make(chan error, 1)
	go func() { errc <- fw.ForwardPorts() }()
	t.Cleanup(func() {
		close(stop)
		select {
		case <-errc:
		case <-time.After(5 * time.Second):
		}
	})
	select {
	case <-ready:
	case err := <-errc:
		t.Fatalf("port-forward to %s/%s:%d: %v (%s)", ns, pod, remotePort, err, out.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("port-forward to %s/%s:%d not ready after 30s (%s)", ns, pod, remotePort, out.String())
	}
	ports, err := fw.GetPorts()
	if err != nil || len(ports) != 1 {
		t.Fatalf("port-forward ports: %v %v", ports, err)
	}
	return int(ports[0].Local)
}

// Dialer returns a dialer for a streaming subresource URL (pods/portforward): WebSocket tunnelling
// first, SPDY when the server refuses the upgrade.
func Dialer(cfg *rest.Config, u *url.URL) (httpstream.Dialer, error) {
	transport, upgrader, err := spdy.RoundTripperFor(cfg)
	if err != nil {
		return nil, err
	}
	spdyDialer := spdy.NewDialer(upgrader, &http.Client{Transport: transport}, http.MethodPost, u)
	wsDialer, err := portforward.NewSPDYOverWebsocketDialer(u, cfg)
	if err != nil {
		return nil, err
	}
	return portforward.NewFallbackDialer(wsDialer, spdyDialer, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	}), nil
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
