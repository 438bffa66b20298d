package namedns

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"k8s.io/client-go/rest"
)

// fakeTable: names per namespace, and pods by IP.
type fakeTable struct {
	names map[string]map[string]Target // namespace -> lowercase name -> target
	mu    sync.Mutex
	pods  map[netip.Addr]string
}

func (f *fakeTable) setPod(ip, ns string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pods[netip.MustParseAddr(ip)] = ns
}

func (f *fakeTable) Lookup(_ context.Context, namespace, name string) (Target, bool) {
	t, ok := f.names[namespace][strings.ToLower(name)]
	return t, ok
}

func (f *fakeTable) PodNamespace(_ context.Context, ip netip.Addr) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ns, ok := f.pods[ip]
	return ns, ok
}

// upstream is a fake cluster DNS on loopback: it answers from records, NXDOMAIN otherwise,
// truncates UDP replies to the client's size, and records every query and the raw replies.
type upstream struct {
	t       *testing.T
	records map[string][]dns.RR // lowercase qname + "/" + type -> answer

	mu      sync.Mutex
	queries []string // "udp|tcp name type"
	replies [][]byte
	addr    string
}

func (u *upstream) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	q := req.Question[0]
	network := "tcp"
	if _, ok := w.RemoteAddr().(*net.UDPAddr); ok {
		network = "udp"
	}
	resp := new(dns.Msg)
	resp.SetReply(req)
	resp.RecursionAvailable = true
	rrs, ok := u.records[strings.ToLower(q.Name)+"/"+dns.TypeToString[q.Qtype]]
	if !ok && !u.hasName(q.Name) {
		resp.Rcode = dns.RcodeNameError
		resp.Ns = []dns.RR{mustRR(u.t, "cluster.local. 30 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 30")}
	}
	resp.Answer = rrs
	if opt := req.IsEdns0(); opt != nil {
		resp.SetEdns0(opt.UDPSize(), false)
	}
	if network == "udp" {
		size := dns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
		}
		resp.Truncate(size)
	}
	raw, err := resp.Pack()
	if err != nil {
		u.t.Errorf("upstream pack: %v", err)
		return
	}
	u.mu.Lock()
	u.queries = append(u.queries, fmt.Sprintf("%s %s %s", network, strings.ToLower(q.Name), dns.TypeToString[q.Qtype]))
	u.replies = append(u.replies, raw)
	u.mu.Unlock()
	_, _ = w.Write(raw)
}

func (u *upstream) hasName(name string) bool {
	for k := range u.records {
		if strings.HasPrefix(k, strings.ToLower(name)+"/") {
			return true
		}
	}
	return false
}

func (u *upstream) seen() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.queries...)
}

func (u *upstream) lastReply() []byte {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.replies) == 0 {
		return nil
	}
	return u.replies[len(u.replies)-1]
}

func mustRR(t *testing.T, s string) dns.RR {
	t.Helper()
	rr, err := dns.NewRR(s)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return rr
}

func startUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{t: t, records: map[string][]dns.RR{}}
	u.records["db.shop.svc.cluster.local./A"] = []dns.RR{mustRR(t, "db.shop.svc.cluster.local. 30 IN A 10.96.1.1")}
	u.records["db.shop.svc.cluster.local./AAAA"] = nil
	u.records["cache.shop.svc.cluster.local./A"] = []dns.RR{
		mustRR(t, "cache.shop.svc.cluster.local. 30 IN A 10.244.0.7"),
		mustRR(t, "cache.shop.svc.cluster.local. 30 IN A 10.244.0.8"),
	}
	var big []dns.RR
	for i := 0; i < 60; i++ {
		big = append(big, mustRR(t, fmt.Sprintf("big.shop.svc.cluster.local. 30 IN A 10.244.1.%d", i)))
	}
	u.records["big.shop.svc.cluster.local./A"] = big
	l, err := Listen("127.0.0.1:0", u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	u.addr = l.Addr.String()
	return u
}

func startServer(t *testing.T, h *Handler) string {
	t.Helper()
	l, err := Listen("127.0.0.1:0", h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l.Addr.String()
}

func query(t *testing.T, server, network, name string, qtype uint16, edns uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	if edns > 0 {
		m.SetEdns0(edns, false)
	}
	c := &dns.Client{Net: network, Timeout: 5 * time.Second}
	r, _, err := c.Exchange(m, server)
	if err != nil {
		t.Fatalf("%s %s %s: %v", network, name, dns.TypeToString[qtype], err)
	}
	return r
}

func table() *fakeTable {
	return &fakeTable{
		names: map[string]map[string]Target{
			"shop": {
				"web_app":     {Namespace: "shop", Service: "web-app", IPs: []netip.Addr{netip.MustParseAddr("10.96.0.30")}},
				"db_primary":  {Namespace: "shop", Service: "db", IPs: []netip.Addr{netip.MustParseAddr("10.96.1.1"), netip.MustParseAddr("fd00::1")}},
				"cache_local": {Namespace: "shop", Service: "cache"}, // headless
			},
			"other": {
				"web_app": {Namespace: "other", Service: "web-app", IPs: []netip.Addr{netip.MustParseAddr("10.96.9.9")}},
			},
		},
		pods: map[netip.Addr]string{},
	}
}

func aRecords(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		switch rr := rr.(type) {
		case *dns.A:
			out = append(out, rr.Hdr.Name+" A "+rr.A.String())
		case *dns.AAAA:
			out = append(out, rr.Hdr.Name+" AAAA "+rr.AAAA.String())
		default:
			out = append(out, rr.String())
		}
	}
	return out
}

func TestEnvironmentNames(t *testing.T) {
	up := startUpstream(t)
	srv := startServer(t, &Handler{Table: table(), Upstream: up.addr})

	for _, network := range []string{"udp", "tcp"} {
		r := query(t, srv, network, "web_app.shop.svc.cluster.local.", dns.TypeA, 0)
		if r.Rcode != dns.RcodeSuccess || !r.Authoritative || fmt.Sprint(aRecords(r)) != "[web_app.shop.svc.cluster.local. A 10.96.0.30]" {
			t.Errorf("%s: %s", network, r)
		}
		if r.Answer[0].Header().Ttl != ttl {
			t.Errorf("ttl %d", r.Answer[0].Header().Ttl)
		}
	}
	// Case-insensitive, answered with the name as asked.
	r := query(t, srv, "udp", "WEB_APP.Shop.SVC.cluster.local.", dns.TypeA, 1232)
	if got := fmt.Sprint(aRecords(r)); got != "[WEB_APP.Shop.SVC.cluster.local. A 10.96.0.30]" {
		t.Errorf("mixed case: %s", got)
	}
	if r.IsEdns0() == nil {
		t.Error("no OPT record in the reply to an EDNS query")
	}
	// Namespaces are separate.
	r = query(t, srv, "udp", "web_app.other.svc.cluster.local.", dns.TypeA, 0)
	if got := fmt.Sprint(aRecords(r)); got != "[web_app.other.svc.cluster.local. A 10.96.9.9]" {
		t.Errorf("other namespace: %s", got)
	}
	// AAAA of an IPv4-only Service: the name exists, no record.
	r = query(t, srv, "udp", "web_app.shop.svc.cluster.local.", dns.TypeAAAA, 0)
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 {
		t.Errorf("AAAA: %s", r)
	}
	// A dual-stack Service: A and AAAA each get theirs; other types are empty.
	r = query(t, srv, "udp", "db_primary.shop.svc.cluster.local.", dns.TypeAAAA, 0)
	if got := fmt.Sprint(aRecords(r)); got != "[db_primary.shop.svc.cluster.local. AAAA fd00::1]" {
		t.Errorf("AAAA dual stack: %s", got)
	}
	r = query(t, srv, "udp", "db_primary.shop.svc.cluster.local.", dns.TypeMX, 0)
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 {
		t.Errorf("MX: %s", r)
	}
	if seen := up.seen(); len(seen) != 0 {
		t.Errorf("environment names were sent upstream: %v", seen)
	}

	// A headless Service: its own name asked upstream, answered for the environment name.
	r = query(t, srv, "udp", "cache_local.shop.svc.cluster.local.", dns.TypeA, 0)
	want := "[cache_local.shop.svc.cluster.local. A 10.244.0.7 cache_local.shop.svc.cluster.local. A 10.244.0.8]"
	if got := fmt.Sprint(aRecords(r)); got != want || r.Rcode != dns.RcodeSuccess {
		t.Errorf("headless: %s", r)
	}
	if seen := up.seen(); fmt.Sprint(seen) != "[udp cache.shop.svc.cluster.local. A]" {
		t.Errorf("headless upstream queries: %v", seen)
	}
}

func TestBareNames(t *testing.T) {
	up := startUpstream(t)
	tab := table()
	srv := startServer(t, &Handler{Table: tab, Upstream: up.addr})

	// An unknown client: a bare name is not ours to answer; cluster DNS says NXDOMAIN.
	r := query(t, srv, "udp", "web_app.", dns.TypeA, 0)
	if r.Rcode != dns.RcodeNameError || len(up.seen()) != 1 {
		t.Errorf("unknown client: %s (upstream %v)", r, up.seen())
	}
	// A pod of shop (loopback stands for its IP).
	tab.setPod("127.0.0.1", "shop")
	for _, network := range []string{"udp", "tcp"} {
		r = query(t, srv, network, "web_app.", dns.TypeA, 0)
		if got := fmt.Sprint(aRecords(r)); got != "[web_app. A 10.96.0.30]" {
			t.Errorf("%s bare name: %s", network, r)
		}
	}
	// Other search suffixes and names of the cluster domain go to cluster DNS.
	for _, n := range []string{"web_app.svc.cluster.local.", "web_app.cluster.local.", "svc.cluster.local.", "shop.svc.cluster.local."} {
		before := len(up.seen())
		query(t, srv, "udp", n, dns.TypeA, 0)
		if len(up.seen()) != before+1 {
			t.Errorf("%s not forwarded", n)
		}
	}
}

func TestForwardUnchanged(t *testing.T) {
	up := startUpstream(t)
	srv := startServer(t, &Handler{Table: table(), Upstream: up.addr})

	for _, network := range []string{"udp", "tcp"} {
		m := new(dns.Msg)
		m.SetQuestion("db.shop.svc.cluster.local.", dns.TypeA)
		m.SetEdns0(1232, true)
		raw, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		got := rawExchange(t, network, srv, raw)
		if !bytes.Equal(got, up.lastReply()) {
			t.Errorf("%s: the reply differs from cluster DNS's", network)
		}
	}
	// NXDOMAIN comes back as it is, with its SOA.
	r := query(t, srv, "udp", "nothing.shop.svc.cluster.local.", dns.TypeA, 0)
	if r.Rcode != dns.RcodeNameError || len(r.Ns) != 1 {
		t.Errorf("NXDOMAIN: %s", r)
	}
	// A name that is not an environment's, in a namespace that has some.
	r = query(t, srv, "udp", "db.shop.svc.cluster.local.", dns.TypeA, 0)
	if got := fmt.Sprint(aRecords(r)); got != "[db.shop.svc.cluster.local. A 10.96.1.1]" || r.Authoritative {
		t.Errorf("db: %s", r)
	}
}

func rawExchange(t *testing.T, network, server string, query []byte) []byte {
	t.Helper()
	c, err := net.DialTimeout(network, server, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	co := &dns.Conn{Conn: c}
	if _, err := co.Write(query); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, dns.MaxMsgSize)
	n, err := co.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return buf[:n]
}

func TestTruncation(t *testing.T) {
	up := startUpstream(t)
	srv := startServer(t, &Handler{Table: table(), Upstream: up.addr})

	// Over UDP the truncated reply comes back truncated; over TCP, whole.
	r := query(t, srv, "udp", "big.shop.svc.cluster.local.", dns.TypeA, 0)
	if !r.Truncated || len(r.Answer) >= 60 {
		t.Errorf("udp: truncated %v, %d answers", r.Truncated, len(r.Answer))
	}
	r = query(t, srv, "tcp", "big.shop.svc.cluster.local.", dns.TypeA, 0)
	if r.Truncated || len(r.Answer) != 60 {
		t.Errorf("tcp: truncated %v, %d answers", r.Truncated, len(r.Answer))
	}
	if seen := up.seen(); fmt.Sprint(seen) != "[udp big.shop.svc.cluster.local. A tcp big.shop.svc.cluster.local. A]" {
		t.Errorf("upstream queries %v", seen)
	}
}

func TestTCPFallback(t *testing.T) {
	// Cluster DNS that answers only over TCP (its UDP port is closed).
	up := startUpstream(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tcpOnly := &dns.Server{Listener: l, Handler: up}
	go func() { _ = tcpOnly.ActivateAndServe() }()
	t.Cleanup(func() { _ = tcpOnly.Shutdown() })
	srv := startServer(t, &Handler{Table: table(), Upstream: l.Addr().String()})

	r := query(t, srv, "udp", "db.shop.svc.cluster.local.", dns.TypeA, 0)
	if got := fmt.Sprint(aRecords(r)); got != "[db.shop.svc.cluster.local. A 10.96.1.1]" {
		t.Errorf("fallback: %s", r)
	}
	// Too big for the client's UDP size: truncated, so that it asks again over TCP.
	r = query(t, srv, "udp", "big.shop.svc.cluster.local.", dns.TypeA, 0)
	if !r.Truncated {
		t.Errorf("big over UDP via TCP: not truncated (%d answers)", len(r.Answer))
	}
	r = query(t, srv, "tcp", "big.shop.svc.cluster.local.", dns.TypeA, 0)
	if r.Truncated || len(r.Answer) != 60 {
		t.Errorf("tcp: truncated %v, %d answers", r.Truncated, len(r.Answer))
	}
}

func TestUpstreamDown(t *testing.T) {
	// A port nothing listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	srv := startServer(t, &Handler{Table: table(), Upstream: dead})
	r := query(t, srv, "udp", "db.shop.svc.cluster.local.", dns.TypeA, 0)
	if r.Rcode != dns.RcodeServerFailure {
		t.Errorf("dead upstream: %s", r)
	}
	// Environment names need no upstream.
	r = query(t, srv, "udp", "web_app.shop.svc.cluster.local.", dns.TypeA, 0)
	if fmt.Sprint(aRecords(r)) != "[web_app.shop.svc.cluster.local. A 10.96.0.30]" {
		t.Errorf("web_app with a dead upstream: %s", r)
	}
	// A headless environment name: SERVFAIL, not a made-up answer.
	r = query(t, srv, "udp", "cache_local.shop.svc.cluster.local.", dns.TypeA, 0)
	if r.Rcode != dns.RcodeServerFailure {
		t.Errorf("headless with a dead upstream: %s", r)
	}
}

func TestClusterDomain(t *testing.T) {
	up := startUpstream(t)
	srv := startServer(t, &Handler{Table: table(), Upstream: up.addr, ClusterDomain: "corp.example."})
	r := query(t, srv, "udp", "web_app.shop.svc.corp.example.", dns.TypeA, 0)
	if fmt.Sprint(aRecords(r)) != "[web_app.shop.svc.corp.example. A 10.96.0.30]" {
		t.Errorf("corp.example: %s", r)
	}
	r = query(t, srv, "udp", "web_app.shop.svc.cluster.local.", dns.TypeA, 0)
	if r.Rcode != dns.RcodeNameError {
		t.Errorf("cluster.local under corp.example was answered: %s", r)
	}
}

func TestUpstreamAddr(t *testing.T) {
	for in, want := range map[string]string{"10.96.0.10": "10.96.0.10:53", "10.96.0.10:1053": "10.96.0.10:1053", "fd00::10": "[fd00::10]:53"} {
		if got, err := upstreamAddr(in); err != nil || got != want {
			t.Errorf("%s: %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"kube-dns", "kube-dns:53", ""} {
		if _, err := upstreamAddr(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

func TestNewChecksOptions(t *testing.T) {
	cfg := &rest.Config{Host: "https://127.0.0.1:1"}
	for _, o := range []Options{
		{Addr: ":5353"}, // no config
		{Config: cfg, Addr: "5353"},
		{Config: cfg, Addr: ":5353", Upstream: "kube-dns.kube-system"},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	s, err := New(Options{Config: cfg, Addr: ":5353", Upstream: "10.96.0.10"})
	if err != nil || s.opts.Upstream != "10.96.0.10:53" || s.NeedLeaderElection() || s.Ready(nil) == nil {
		t.Errorf("New: %v %+v", err, s)
	}
}
