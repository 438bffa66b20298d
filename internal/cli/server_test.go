package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes/fake"

	"github.com/ergomake/ergomake/internal/install"
	"github.com/ergomake/ergomake/internal/kube"
	"github.com/ergomake/ergomake/internal/server"
)

// run executes argv on the root command of f and returns the error.
func run(t *testing.T, f *Factory, argv ...string) error {
	t.Helper()
	root := NewCmdRoot(f)
	root.SetArgs(argv)
	root.SetOut(&bytes.Buffer{})
	root.SetErr(&bytes.Buffer{})
	_, err := root.ExecuteC()
	return err
}

// fakeCluster makes f's KubeClient a fake clientset.
func fakeCluster(f *Factory) *fake.Clientset {
	cs := fake.NewClientset()
	f.KubeClient = func(ClusterOptions) (*kube.Client, error) { return &kube.Client{Kube: cs, ClusterName: "test"}, nil }
	return cs
}

func TestServerTokenCommands(t *testing.T) {
	f, out, errOut := testFactory(t, "ERGOMAKE_NAMESPACE=envs")
	cs := fakeCluster(f)
	if err := run(t, f, "server", "token", "create", "alice@example.com", "--ttl", "1h"); err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(out.String())
	if !strings.HasPrefix(token, server.TokenPrefix) || strings.Contains(token, "\n") {
		t.Fatalf("stdout %q: want the token alone", out.String())
	}
	if strings.Contains(errOut.String(), token) || !strings.Contains(errOut.String(), "shown once") {
		t.Errorf("stderr %q", errOut.String())
	}
	// Stored in the operator's namespace, never ERGOMAKE_NAMESPACE's.
	store := &server.TokenStore{Client: cs, Namespace: "ergomake-system", Now: f.Now}
	if who, err := store.Authenticate(context.Background(), token); err != nil || who.User != "alice@example.com" {
		t.Fatalf("the created token: %+v, %v", who, err)
	}

	out.Reset()
	if err := run(t, f, "server", "token", "create", "bob", "--ttl", "0"); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := run(t, f, "server", "token", "ls"); err != nil {
		t.Fatal(err)
	}
	id := server.TokenID(token)
	if !strings.Contains(out.String(), id+"  alice@example.com") || !strings.Contains(out.String(), "never") || strings.Contains(out.String(), token) {
		t.Errorf("token ls:\n%s", out.String())
	}

	out.Reset()
	if err := run(t, f, "server", "token", "revoke", "--user", "alice@example.com"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "revoked token "+id+" of alice@example.com") {
		t.Errorf("revoke: %q", out.String())
	}
	out.Reset()
	if err := run(t, f, "server", "token", "ls", "-o", "json"); err != nil {
		t.Fatal(err)
	}
	var list []struct {
		ID, User, State string
	}
	if err := json.Unmarshal(out.Bytes(), &list); err != nil || len(list) != 2 {
		t.Fatalf("ls -o json: %v\n%s", err, out.String())
	}
	for _, e := range list {
		if want := map[string]string{"alice@example.com": "revoked", "bob": "active"}[e.User]; e.State != want {
			t.Errorf("%s: state %s, want %s", e.User, e.State, want)
		}
	}

	for _, bad := range [][]string{
		{"server", "token", "create", "not a name"},
		{"server", "token", "create", "a", "--ttl", "-1h"},
		{"server", "token", "create"},
		{"server", "token", "revoke"},
		{"server", "token", "revoke", "abc", "--user", "bob"},
	} {
		err := run(t, f, bad...)
		var fe *FlagError
		if err == nil || !errors.As(err, &fe) {
			t.Errorf("%v: %v, want a usage error", bad, err)
		}
	}
	if err := run(t, f, "server", "token", "revoke", "0123456789ab"); err == nil || !strings.Contains(err.Error(), "0123456789ab") {
		t.Errorf("revoking an unknown ID: %v", err)
	}
}

func TestInstallServerFlags(t *testing.T) {
	f, _, _ := testFactory(t)
	var got *InstallOptions
	capture := func(o *InstallOptions) error { got = o; return nil }
	if err := parse(t, f, NewCmdInstall(f, capture), "--server --server-expose nodeport --server-image srv:1"); err != nil {
		t.Fatal(err)
	}
	if !got.Server.Enabled || got.Server.Expose != "nodeport" || got.Server.Image != "srv:1" {
		t.Errorf("got %+v", got.Server)
	}
	if err := parse(t, f, NewCmdInstall(f, capture), ""); err != nil || got.Server.Enabled || got.Server.Expose != "none" {
		t.Errorf("defaults: %v %+v", err, got.Server)
	}
	for _, bad := range []string{"--server --server-expose ingress", "--server-expose nodeport", "--server-tls-secret x"} {
		if err := parse(t, f, NewCmdInstall(f, capture), bad); err == nil {
			t.Errorf("install accepted %s", bad)
		}
	}
}

// loginServer serves the API over TLS with a generated CA, on a fake cluster; it returns its URL,
// the CA, and a store to make tokens with.
func loginServer(t *testing.T) (string, *server.CA, *server.TokenStore) {
	t.Helper()
	cs := fake.NewClientset()
	store := &server.TokenStore{Client: cs, Namespace: "ergomake-system"}
	ca, err := server.NewCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	chain, key, err := ca.Issue(server.ServingHosts("ergomake-system"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(chain, key)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(server.NewHandler(server.HandlerOptions{Auth: store, Tenancy: &server.Tenancy{Kube: cs}}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL, ca, store
}

func TestLoginLogout(t *testing.T) {
	url, ca, store := loginServer(t)
	ctx := context.Background()
	token, _, err := store.Create(ctx, "alice", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	fp := server.Fingerprint(ca.Cert)
	f, out, errOut := testFactory(t)
	f.Now = time.Now
	home := f.Getenv("HOME")
	path := filepath.Join(home, ".config", "ergomake", "login.json")

	// Not trusted by the system, no fingerprint, no terminal: refused, naming the fingerprint.
	err = run(t, f, "login", url, "--token", token)
	if err == nil || !strings.Contains(err.Error(), "--ca-fingerprint") || !strings.Contains(err.Error(), fp) {
		t.Errorf("login without a fingerprint: %v", err)
	}
	// A wrong fingerprint: refused.
	other, _ := server.NewCA(time.Now())
	if err := run(t, f, "login", url, "--token", token, "--ca-fingerprint", server.Fingerprint(other.Cert)); err == nil || !strings.Contains(err.Error(), "not the one you expect") {
		t.Errorf("login with another CA's fingerprint: %v", err)
	}
	// A revoked token: refused with the server's reason, nothing saved.
	revoked, info, _ := store.Create(ctx, "alice", time.Hour)
	if _, err := store.Revoke(ctx, info.ID); err != nil {
		t.Fatal(err)
	}
	if err := run(t, f, "login", url, "--token", revoked, "--ca-fingerprint", fp); err == nil || !strings.Contains(err.Error(), "token revoked: log in again") {
		t.Errorf("login with a revoked token: %v", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("credentials saved after failed logins: %v", err)
	}

	// The right fingerprint (bare hex, upper case is fine).
	bare := strings.ToUpper(strings.TrimPrefix(fp, "sha256:"))
	if err := run(t, f, "login", url, "--token", token, "--ca-fingerprint", bare); err != nil {
		t.Fatalf("login: %v\n%s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "logged in to "+url+" as alice until ") {
		t.Errorf("stdout %q", out.String())
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file: %v, mode %v", err, st)
	}
	creds, err := server.LoadCredentials(path)
	if err != nil || creds.Token != token || creds.User != "alice" || creds.CAFingerprint != fp || creds.URL != url {
		t.Fatalf("credentials %+v, %v", creds, err)
	}
	if strings.Contains(out.String()+errOut.String(), token) {
		t.Error("login printed the token")
	}
	// The stored credentials reach the server.
	c, err := server.NewClient(creds)
	if err != nil {
		t.Fatal(err)
	}
	if who, err := c.WhoAmI(ctx); err != nil || who.User != "alice" {
		t.Errorf("whoami with stored credentials: %+v, %v", who, err)
	}

	out.Reset()
	if err := run(t, f, "logout"); err != nil || !strings.Contains(out.String(), "logged out of "+url) {
		t.Errorf("logout: %v %q", err, out.String())
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("credentials kept after logout: %v", err)
	}
	if err := run(t, f, "logout"); err != nil {
		t.Errorf("logout when logged out: %v", err)
	}
}

func TestLoginPromptOnTerminal(t *testing.T) {
	url, ca, store := loginServer(t)
	token, _, err := store.Create(context.Background(), "bob", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		answer string
		ok     bool
	}{{"n\n", false}, {"\n", false}, {"yes\n", true}} {
		f, out, errOut := testFactory(t)
		f.Now = time.Now
		f.IOStreams.SetStdinTTY(true)
		f.IOStreams.SetStderrTTY(true)
		f.IOStreams.In = strings.NewReader(tc.answer)
		err := run(t, f, "login", url, "--token", token)
		if !strings.Contains(errOut.String(), server.Fingerprint(ca.Cert)) || !strings.Contains(errOut.String(), "[y/N]") {
			t.Errorf("prompt %q", errOut.String())
		}
		if tc.ok != (err == nil) {
			t.Errorf("answer %q: %v", tc.answer, err)
		}
		if tc.ok && !strings.Contains(out.String(), "as bob") {
			t.Errorf("stdout %q", out.String())
		}
	}
	// The token from stdin.
	f, out, _ := testFactory(t)
	f.Now = time.Now
	f.IOStreams.In = strings.NewReader(token + "\n")
	if err := run(t, f, "login", url, "--token", "-", "--ca-fingerprint", server.Fingerprint(ca.Cert)); err != nil || !strings.Contains(out.String(), "as bob") {
		t.Errorf("token from stdin: %v %q", err, out.String())
	}
}

func TestPrintServerInfo(t *testing.T) {
	var b bytes.Buffer
	printServerInfo(&b, &install.ServerInfo{URLs: []string{"https://10.0.0.1:31443", "https://10.0.0.2:31443"}, Fingerprint: "sha256:ab", Generated: true})
	want := `ergomake server installed:
  URL:            https://10.0.0.1:31443
  URL:            https://10.0.0.2:31443
  CA fingerprint: sha256:ab
Create a token for each user (ergomake server token create USER); they log in with:
  ergomake login https://10.0.0.1:31443 --token TOKEN --ca-fingerprint sha256:ab
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	printServerInfo(&b, &install.ServerInfo{URLs: []string{"https://ergomake.example.com:443"}, Fingerprint: "sha256:cd"})
	if !strings.HasSuffix(b.String(), "  ergomake login https://ergomake.example.com:443 --token TOKEN\n") {
		t.Errorf("with the admin's certificate:\n%s", b.String())
	}
}
