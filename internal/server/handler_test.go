package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/ergomake/ergomake/internal/testutil/syncbuf"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

type fixture struct {
	store   *TokenStore
	tenancy *Tenancy
	audit   *syncbuf.Buffer
	srv     *httptest.Server
	ca      *CA
	kube    *fake.Clientset // newFixture's: the fake the handler acts on
}

func envObject(ns, name string, phase v1alpha1.Phase) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": v1alpha1.GroupVersion.String(), "kind": v1alpha1.Kind,
		"metadata": map[string]any{"name": name, "namespace": ns},
		"status":   map[string]any{"phase": string(phase), "summary": "1/1"},
	}}
	return u
}

// newFixture serves the API over TLS with a generated CA, on fake clients.
func newFixture(t *testing.T, opts HandlerOptions, tweak ...func(*http.Server)) *fixture {
	t.Helper()
	cs := fake.NewClientset()
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{v1alpha1.GroupVersionResource: "ErgomakeEnvList"})
	f := serveFixture(t, cs, &Tenancy{Kube: cs, Dynamic: dyn, Namespace: "ergomake-system"}, opts, tweak...)
	f.kube = cs
	return f
}

// serveFixture serves the handler of opts over TLS with a generated CA, with the server's own
// timeouts (as Run does, but for what tweak changes). The handler authenticates and acts with the
// clients of server (its Auth a token store in server's namespace); the fixture's store, for the
// test's own tokens, uses kube; its tenancy is server.
func serveFixture(t *testing.T, kube kubernetes.Interface, server *Tenancy, opts HandlerOptions, tweak ...func(*http.Server)) *fixture {
	t.Helper()
	f := &fixture{
		store:   &TokenStore{Client: kube, Namespace: server.Namespace},
		tenancy: server,
		audit:   &syncbuf.Buffer{},
	}
	opts.Auth, opts.Tenancy, opts.Audit = f.store, f.tenancy, slog.New(slog.NewTextHandler(f.audit, nil))
	if server.Kube != kube {
		opts.Auth = &TokenStore{Client: server.Kube, Namespace: server.Namespace}
	}
	ca, err := NewCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	chain, key, err := ca.Issue(ServingHosts("ergomake-system"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(chain, key)
	if err != nil {
		t.Fatal(err)
	}
	f.ca = ca
	srv := httptest.NewUnstartedServer(NewHandler(opts))
	hs := NewHTTPServer(srv.Config.Handler, func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil })
	for _, fn := range tweak {
		fn(hs)
	}
	srv.Config = hs
	srv.TLS = hs.TLSConfig.Clone()
	srv.TLS.Certificates = []tls.Certificate{cert} // httptest would add its own
	srv.StartTLS()
	t.Cleanup(srv.Close)
	f.srv = srv
	return f
}

func (f *fixture) client(t *testing.T, token string) *Client {
	t.Helper()
	c, err := NewClient(&Credentials{URL: f.srv.URL, Token: token, CA: string(f.ca.CertPEM)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (f *fixture) token(t *testing.T, user string) string {
	t.Helper()
	tok, _, err := f.store.Create(context.Background(), user, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func apiStatus(err error) int {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

func TestWhoAmIAndRefusals(t *testing.T) {
	f := newFixture(t, HandlerOptions{})
	ctx := context.Background()
	tok := f.token(t, "alice")
	w, err := f.client(t, tok).WhoAmI(ctx)
	if err != nil || w.User != "alice" || w.TokenID != TokenID(tok) {
		t.Fatalf("WhoAmI = %+v, %v", w, err)
	}

	revoked := f.token(t, "alice")
	if _, err := f.store.Revoke(ctx, TokenID(revoked)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		token, want string
	}{
		{"", "no token"},
		{"ergomake_bogus", "unknown token"},
		{revoked, "token revoked: log in again"},
	} {
		_, err := f.client(t, tc.token).WhoAmI(ctx)
		if apiStatus(err) != http.StatusUnauthorized || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("WhoAmI with %q = %v (status %d), want 401 %q on one line", tc.token, err, apiStatus(err), tc.want)
		}
	}

	log := f.audit.String()
	if !strings.Contains(log, "user=alice action=whoami env=- status=200") {
		t.Errorf("no audit line for alice's whoami:\n%s", log)
	}
	if !strings.Contains(log, "action=whoami env=- status=401") || !strings.Contains(log, "token revoked") {
		t.Errorf("no audit line for the refusals:\n%s", log)
	}
	for _, secret := range []string{tok, revoked, strings.TrimPrefix(tok, TokenPrefix), HashToken(tok)} {
		if strings.Contains(log, secret) {
			t.Errorf("the audit log holds a token or its hash:\n%s", log)
		}
	}
	if n := strings.Count(log, "msg=audit"); n != 4 {
		t.Errorf("%d audit lines for 4 requests:\n%s", n, log)
	}
}

func TestUnknownEndpoint(t *testing.T) {
	f := newFixture(t, HandlerOptions{})
	c := f.client(t, f.token(t, "alice"))
	err := c.do(context.Background(), http.MethodGet, "/v2/whoami", nil, nil)
	if apiStatus(err) != http.StatusNotFound || !strings.Contains(err.Error(), "/v1") {
		t.Errorf("GET /v2/whoami = %v", err)
	}
}

func TestRateLimitPerToken(t *testing.T) {
	f := newFixture(t, HandlerOptions{Limiter: &RateLimiter{Rate: 0.001, Burst: 2}})
	ctx := context.Background()
	a, b := f.client(t, f.token(t, "alice")), f.client(t, f.token(t, "bob"))
	for range 2 {
		if _, err := a.WhoAmI(ctx); err != nil {
			t.Fatal(err)
		}
	}
	_, err := a.WhoAmI(ctx)
	if apiStatus(err) != http.StatusTooManyRequests || !strings.Contains(err.Error(), "too many requests") {
		t.Fatalf("third request = %v, want 429", err)
	}
	if _, err := b.WhoAmI(ctx); err != nil {
		t.Errorf("bob limited by alice's requests: %v", err)
	}
	if !strings.Contains(f.audit.String(), "status=429") {
		t.Errorf("no audit line for the refusal:\n%s", f.audit.String())
	}
}

// TestDialBudgetApart: dials (one per forwarded connection) spend a budget of their own, so a
// page opening many connections does not starve the session's heartbeat and watch, nor the
// other way round; each budget still ends in 429.
func TestDialBudgetApart(t *testing.T) {
	f := newFixture(t, HandlerOptions{Limiter: &RateLimiter{Rate: 0.001, Burst: 2}, DialLimiter: &RateLimiter{Rate: 0.001, Burst: 3}})
	ctx := context.Background()
	a := f.client(t, f.token(t, "alice"))
	for range 2 {
		if _, err := a.WhoAmI(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.WhoAmI(ctx); apiStatus(err) != http.StatusTooManyRequests {
		t.Fatalf("third whoami = %v, want 429", err)
	}
	for i := range 3 {
		err := a.do(ctx, http.MethodGet, "/v1/envs/shop/dial?service=web&port=80", nil, nil)
		if st := apiStatus(err); st == http.StatusTooManyRequests || st == 0 {
			t.Fatalf("dial %d = %v: want the dial's own answer, not the general budget's 429", i+1, err)
		}
	}
	err := a.do(ctx, http.MethodGet, "/v1/envs/shop/dial?service=web&port=80", nil, nil)
	if apiStatus(err) != http.StatusTooManyRequests {
		t.Fatalf("fourth dial = %v, want 429 from the dial budget", err)
	}
}

func TestBodySizeLimit(t *testing.T) {
	f := newFixture(t, HandlerOptions{MaxBody: 1024})
	c := f.client(t, f.token(t, "alice"))
	ctx := context.Background()
	err := c.do(ctx, http.MethodDelete, "/v1/envs/shop", bytes.NewReader(make([]byte, 2048)), nil)
	if apiStatus(err) != http.StatusRequestEntityTooLarge || !strings.Contains(err.Error(), "limit of 1024 bytes") {
		t.Errorf("2 KiB body = %v, want 413", err)
	}
	// Under the limit it goes through (and finds nothing to delete).
	err = c.do(ctx, http.MethodDelete, "/v1/envs/shop", bytes.NewReader(make([]byte, 512)), nil)
	if apiStatus(err) != http.StatusNotFound {
		t.Errorf("512 B body = %v, want 404", err)
	}
}

func TestSlowClientCutOff(t *testing.T) {
	hs := NewHTTPServer(http.NotFoundHandler(), nil)
	if hs.ReadHeaderTimeout == 0 || hs.ReadTimeout == 0 || hs.WriteTimeout == 0 || hs.IdleTimeout == 0 || hs.MaxHeaderBytes == 0 {
		t.Errorf("server without slow-client limits: %+v", hs)
	}
	// A client that opens TLS and never sends a request is cut off after ReadHeaderTimeout.
	f := newFixture(t, HandlerOptions{}, func(hs *http.Server) { hs.ReadHeaderTimeout = 200 * time.Millisecond })
	conn, err := tls.Dial("tcp", f.srv.Listener.Addr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	buf := make([]byte, 1)
	_, err = conn.Read(buf)
	if err == nil {
		t.Fatal("the server sent something to a silent client")
	}
	if time.Since(start) > 4*time.Second {
		t.Errorf("silent client not cut off: %v after %s", err, time.Since(start))
	}
}

func TestEnvsOfEachUserOnly(t *testing.T) {
	f := newFixture(t, HandlerOptions{})
	ctx := context.Background()
	a, b := f.client(t, f.token(t, "alice")), f.client(t, f.token(t, "bob"))
	var nsA, nsB string
	var err error
	if nsA, err = f.tenancy.EnsureNamespace(ctx, "alice", "shop"); err != nil {
		t.Fatal(err)
	}
	if nsB, err = f.tenancy.EnsureNamespace(ctx, "bob", "shop"); err != nil {
		t.Fatal(err)
	}
	if nsA == nsB {
		t.Fatalf("alice and bob share namespace %s", nsA)
	}
	if _, err := f.tenancy.Dynamic.Resource(v1alpha1.GroupVersionResource).Namespace(nsA).Create(ctx, envObject(nsA, "shop", v1alpha1.PhaseReady), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	envs, err := a.ListEnvs(ctx)
	if err != nil || len(envs) != 1 || envs[0].Name != "shop" || envs[0].Namespace != nsA || envs[0].Phase != "Ready" {
		t.Fatalf("alice's envs = %+v, %v", envs, err)
	}
	envs, err = b.ListEnvs(ctx)
	if err != nil || len(envs) != 1 || envs[0].Namespace != nsB || envs[0].Phase != "Empty" {
		t.Fatalf("bob's envs = %+v, %v", envs, err)
	}
	c := f.client(t, f.token(t, "carol"))
	if envs, err := c.ListEnvs(ctx); err != nil || len(envs) != 0 {
		t.Errorf("carol's envs = %+v, %v", envs, err)
	}

	// carol cannot delete alice's "shop" (she has none: 404, alice's untouched).
	if _, err := c.DeleteEnv(ctx, "shop"); apiStatus(err) != http.StatusNotFound {
		t.Errorf("carol deleting shop = %v, want 404", err)
	}
	if _, err := f.kube.CoreV1().Namespaces().Get(ctx, nsA, metav1.GetOptions{}); err != nil {
		t.Fatalf("alice's namespace after carol's delete: %v", err)
	}
	// A namespace carrying alice's label but another user's annotation is not hers.
	forged := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace("alice", "blog"),
		Labels: map[string]string{LabelUser: UserHash("alice")}, Annotations: map[string]string{AnnotationUser: "mallory"}}}
	if _, err := f.kube.CoreV1().Namespaces().Create(ctx, forged, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.DeleteEnv(ctx, "blog"); apiStatus(err) != http.StatusNotFound {
		t.Errorf("alice deleting a namespace that is not hers = %v, want 404", err)
	}
	if envs, _ := a.ListEnvs(ctx); len(envs) != 1 {
		t.Errorf("alice lists a namespace that is not hers: %+v", envs)
	}

	// bob deletes his own.
	d, err := b.DeleteEnv(ctx, "shop")
	if err != nil || d.Namespace != nsB {
		t.Fatalf("bob deleting shop = %+v, %v", d, err)
	}
	if _, err := f.kube.CoreV1().Namespaces().Get(ctx, nsB, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("bob's namespace after delete: %v", err)
	}
	if _, err := f.kube.CoreV1().Namespaces().Get(ctx, nsA, metav1.GetOptions{}); err != nil {
		t.Errorf("alice's namespace after bob's delete: %v", err)
	}
	log := f.audit.String()
	if !strings.Contains(log, "user=bob action=envs.delete env=shop status=200") || !strings.Contains(log, "user=carol action=envs.delete env=shop status=404") {
		t.Errorf("audit lines:\n%s", log)
	}
}

func TestEnsureNamespaceLimits(t *testing.T) {
	f := newFixture(t, HandlerOptions{})
	ctx := context.Background()
	cfg := DefaultConfig()
	cfg.EnvironmentsPerUser = 2
	data := cfg.Data()
	data[KeyQuotaMemory] = "3Gi"
	if _, err := f.kube.CoreV1().ConfigMaps("ergomake-system").Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: ConfigName, Namespace: "ergomake-system"}, Data: data}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"one", "two"} {
		ns, err := f.tenancy.EnsureNamespace(ctx, "alice", p)
		if err != nil {
			t.Fatal(err)
		}
		n, err := f.kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if n.Labels["pod-security.kubernetes.io/enforce"] != "baseline" || n.Annotations[AnnotationUser] != "alice" || n.Annotations[AnnotationProject] != p {
			t.Errorf("namespace %s: labels %v annotations %v", ns, n.Labels, n.Annotations)
		}
		q, err := f.kube.CoreV1().ResourceQuotas(ns).Get(ctx, QuotaName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if m := q.Spec.Hard[corev1.ResourceRequestsMemory]; m.String() != "3Gi" {
			t.Errorf("quota requests.memory = %s, want 3Gi", m.String())
		}
		if _, err := f.kube.CoreV1().LimitRanges(ns).Get(ctx, LimitRangeName, metav1.GetOptions{}); err != nil {
			t.Errorf("LimitRange: %v", err)
		}
	}
	// Again for an existing one: fine. A third: over the limit, named.
	if _, err := f.tenancy.EnsureNamespace(ctx, "alice", "one"); err != nil {
		t.Errorf("existing environment: %v", err)
	}
	_, err := f.tenancy.EnsureNamespace(ctx, "alice", "three")
	var qe *QuotaError
	if !errors.As(err, &qe) || qe.Limit != KeyEnvironmentsPerUser || !strings.Contains(err.Error(), "the limit is 2") {
		t.Errorf("third environment: %v", err)
	}
	// bob has his own count.
	if _, err := f.tenancy.EnsureNamespace(ctx, "bob", "three"); err != nil {
		t.Errorf("bob's first environment: %v", err)
	}
	// A bad configuration is reported, naming the key.
	bad := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: ConfigName, Namespace: "ergomake-system"}, Data: map[string]string{KeyQuotaCPU: "lots"}}
	if _, err := f.kube.CoreV1().ConfigMaps("ergomake-system").Update(ctx, bad, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.tenancy.EnsureNamespace(ctx, "bob", "four"); err == nil || !strings.Contains(err.Error(), KeyQuotaCPU) {
		t.Errorf("bad configuration: %v", err)
	}
}

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig(DefaultConfig().Data())
	if err != nil || fmt.Sprint(c) != fmt.Sprint(DefaultConfig()) {
		t.Errorf("round trip: %+v, %v", c, err)
	}
	for _, data := range []map[string]string{
		{KeyEnvironmentsPerUser: "-1"}, {KeyEnvironmentsPerUser: "x"}, {KeyQuotaMemory: "-1Gi"}, {"quota.gpu": "1"},
	} {
		if _, err := ParseConfig(data); err == nil {
			t.Errorf("ParseConfig(%v): no error", data)
		}
	}
}
