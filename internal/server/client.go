package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Credentials are what `ergomake login` stores (mode 0600): the server, the token, and the CA
// trusted for it (none: the system's roots).
type Credentials struct {
	URL   string `json:"url"`
	Token string `json:"token"`
	User  string `json:"user,omitempty"`
	// CA is the PEM of the pinned CA, CAFingerprint its Fingerprint; both empty when the server's
	// certificate is trusted by the system's roots.
	CA            string `json:"ca,omitempty"`
	CAFingerprint string `json:"caFingerprint,omitempty"`
}

// CredentialsFile is the file `ergomake login` writes, in the config directory.
const CredentialsFile = "login.json"

// ErrNotLoggedIn is returned by LoadCredentials when there are none.
var ErrNotLoggedIn = errors.New("not logged in to an ergomake server: run `ergomake login URL --token TOKEN`")

// LoadCredentials reads the credentials at path.
func LoadCredentials(path string) (*Credentials, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotLoggedIn
	}
	if err != nil {
		return nil, err
	}
	var c Credentials
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("%s: %w (log in again)", path, err)
	}
	return &c, nil
}

// SaveCredentials writes c to path, mode 0600 (its folder 0700 when created), atomically.
func SaveCredentials(path string, c *Credentials) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".login-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// NormalizeURL checks a server URL: https only (a bare host gets https://), no query or fragment.
func NormalizeURL(raw string) (*url.URL, error) {
	s := strings.TrimSpace(raw)
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("server URL %q: %w", raw, err)
	}
	if u.Scheme != "https" {
		return nil, fmt.Errorf("server URL %q: the server speaks HTTPS only (https://HOST:PORT)", raw)
	}
	if u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("server URL %q: want https://HOST[:PORT]", raw)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	return u, nil
}

// Probe connects to the server and returns the certificate chain it presents, with the result of
// verifying it against the system's roots for its host name (nil: publicly trusted).
func Probe(ctx context.Context, u *url.URL) (chain []*x509.Certificate, systemErr error, err error) {
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "443")
	}
	d := &tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}} // inspected below, nothing sent
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	conn, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, nil, fmt.Errorf("connecting to %s: %w", u.Host, err)
	}
	defer conn.Close()
	chain = conn.(*tls.Conn).ConnectionState().PeerCertificates
	if len(chain) == 0 {
		return nil, nil, fmt.Errorf("%s presented no certificate", u.Host)
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, systemErr = chain[0].Verify(x509.VerifyOptions{DNSName: u.Hostname(), Intermediates: inter})
	return chain, systemErr, nil
}

// Client calls the server's API with stored credentials.
type Client struct {
	base    *url.URL
	token   string
	http    *http.Client
	dialTLS *tls.Config // Dial's: the same trust, HTTP/1.1 only, sharing the session cache
	spares  spares      // Dial's spare connections (client_stream.go)
}

// NewClient builds a client for c: TLS pinned to c.CA when set, else the system's roots.
func NewClient(c *Credentials) (*Client, error) {
	u, err := NormalizeURL(c.URL)
	if err != nil {
		return nil, err
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CA != "" {
		ca, err := ParseCert([]byte(c.CA))
		if err != nil {
			return nil, fmt.Errorf("stored CA: %w (log in again)", err)
		}
		tc = PinnedTLSConfig(ca)
	}
	tc.ClientSessionCache = tls.NewLRUClientSessionCache(32) // a new dial resumes the TLS session: one round trip
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	tr.Proxy = http.ProxyFromEnvironment
	dialTLS := tc.Clone()
	dialTLS.NextProtos = []string{"http/1.1"} // the dial routes upgrade an HTTP/1.1 connection
	dialTLS.ServerName = u.Hostname()
	return &Client{base: u, token: c.Token, http: &http.Client{Transport: tr, Timeout: time.Minute}, dialTLS: dialTLS}, nil
}

// APIError is an error answer of the server.
type APIError struct {
	Status  int
	Message string
}

func (e *APIError) Error() string { return e.Message }

// do sends a request and decodes the JSON answer into out.
func (c *Client) do(ctx context.Context, method, path string, body io.Reader, out any) error {
	return c.doWith(ctx, c.http, method, path, body, out)
}

// doWith is do with another http.Client (one without the minute's timeout, for long requests).
func (c *Client) doWith(ctx context.Context, hc *http.Client, method, path string, body io.Reader, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base.String()+path, body)
	if err != nil {
		return err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("reaching the ergomake server %s: %w", c.base.Host, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("reading the server's answer: %w", err)
	}
	if resp.StatusCode >= 300 {
		var eb ErrorBody
		if json.Unmarshal(b, &eb) == nil && eb.Error != "" {
			return &APIError{Status: resp.StatusCode, Message: eb.Error}
		}
		return &APIError{Status: resp.StatusCode, Message: fmt.Sprintf("the server answered %s", resp.Status)}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("the server's answer to %s %s: %w", method, path, err)
	}
	return nil
}

// WhoAmI asks who the token belongs to.
func (c *Client) WhoAmI(ctx context.Context) (WhoAmI, error) {
	var w WhoAmI
	return w, c.do(ctx, http.MethodGet, "/v1/whoami", nil, &w)
}

// ListEnvs lists the caller's environments.
func (c *Client) ListEnvs(ctx context.Context) ([]Env, error) {
	var l EnvList
	return l.Environments, c.do(ctx, http.MethodGet, "/v1/envs", nil, &l)
}

// DeleteEnv deletes the caller's environment name.
func (c *Client) DeleteEnv(ctx context.Context, name string) (Deleted, error) {
	var d Deleted
	return d, c.do(ctx, http.MethodDelete, "/v1/envs/"+url.PathEscape(name), nil, &d)
}
