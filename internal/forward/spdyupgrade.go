package forward

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/streaming/pkg/httpstream"
	httpstreamspdy "k8s.io/streaming/pkg/httpstream/spdy"
)

// spdyUpgrade upgrades a pods/portforward request to SPDY/3.1 and keeps
// the upgraded network connection for a frame tunnel. client-go's SPDY
// round tripper hands its connection only to spdystream; its Dial (proxy,
// TLS, then the request written) is used, and the response is read here.
// One upgrade at a time (the dialerSet's rule).
type spdyUpgrade struct {
	rt   *httpstreamspdy.SpdyRoundTripper
	conn net.Conn // of the last round trip
}

func newSPDYUpgrade(cfg *rest.Config) (*spdyUpgrade, error) {
	tlsConfig, err := rest.TLSConfigFor(cfg)
	if err != nil {
		return nil, err
	}
	proxy := http.ProxyFromEnvironment
	if cfg.Proxy != nil {
		proxy = cfg.Proxy
	}
	rt, err := httpstreamspdy.NewRoundTripperWithConfig(httpstreamspdy.RoundTripperConfig{TLS: tlsConfig, Proxier: proxy})
	if err != nil {
		return nil, err
	}
	return &spdyUpgrade{rt: rt}, nil
}

func (u *spdyUpgrade) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Add(httpstream.HeaderConnection, httpstream.HeaderUpgrade)
	req.Header.Add(httpstream.HeaderUpgrade, httpstreamspdy.HeaderSpdy31)
	conn, err := u.rt.Dial(req)
	if err != nil {
		return nil, err
	}
	// The response is read within the dial's deadline.
	if dl, ok := req.Context().Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(req.Context(), func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if !stop() || err != nil {
		_ = conn.Close()
		if err == nil {
			err = req.Context().Err()
		}
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	u.conn = &bufferedConn{Conn: conn, r: br}
	return resp, nil
}

// bufferedConn reads what the response's reader already took first.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(b []byte) (int, error) { return c.r.Read(b) }

// dialSPDY opens a tunnel to u upgraded to SPDY: the port-forward protocol
// spoken on it by a frame tunnel.
func (s *dialerSet) dialSPDY(ctx context.Context, u *url.URL) (tunnel, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Add(httpstream.HeaderProtocolVersion, portforward.PortForwardProtocolV1Name)
	s.up.conn = nil
	resp, err := s.spdy.Do(req)
	if err != nil {
		return nil, err
	}
	conn := s.up.conn
	s.up.conn = nil
	upgraded := resp.StatusCode == http.StatusSwitchingProtocols &&
		strings.Contains(strings.ToLower(resp.Header.Get(httpstream.HeaderConnection)), "upgrade") &&
		strings.Contains(strings.ToLower(resp.Header.Get(httpstream.HeaderUpgrade)), strings.ToLower(httpstreamspdy.HeaderSpdy31))
	if !upgraded {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
		if conn != nil {
			_ = conn.Close()
		}
		return nil, fmt.Errorf("unable to upgrade connection: %s", upgradeMessage(resp.StatusCode, msg))
	}
	if conn == nil {
		return nil, fmt.Errorf("unable to upgrade connection: no connection")
	}
	if proto := resp.Header.Get(httpstream.HeaderProtocolVersion); proto != portforward.PortForwardProtocolV1Name {
		_ = conn.Close()
		return nil, fmt.Errorf("unable to negotiate protocol: client supports %q, server returned %q",
			portforward.PortForwardProtocolV1Name, proto)
	}
	raw := conn.(*bufferedConn).Conn
	return newFrameTunnel(conn, raw), nil
}

// upgradeMessage is what a refused upgrade says: the API server's Status
// message when it sent one.
func upgradeMessage(code int, body []byte) string {
	var st struct{ Message string }
	if json.Unmarshal(body, &st) == nil && st.Message != "" {
		return st.Message
	}
	if text := strings.TrimSpace(string(body)); text != "" {
		return text
	}
	return http.StatusText(code)
}
