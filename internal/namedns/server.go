// Package namedns is the operator's environment DNS: a small DNS server that answers the compose
// names of an environment that cluster DNS cannot (a service called "web_app", an alias
// "db_primary") with the ClusterIP of their service's Kubernetes Service, and passes every other
// query, unchanged, to cluster DNS. Pods of such environments use it as their only nameserver
// (internal/render, Options.DNSServer); the ergomake-dns Service in the operator's namespace
// reaches it.
//
// It answers A and AAAA (and, for those names, every other type with an empty answer) for
// <name>.<namespace>.svc.<cluster domain>. and for the bare <name>. asked by a pod of
// <namespace>. It never sends a query anywhere but the one upstream it is given: cluster DNS.
package namedns

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/miekg/dns"
)

// ServiceName is the Service in the operator's namespace that pods send their queries to.
const ServiceName = "ergomake-dns"

// DefaultAddr is where the in-cluster operator serves DNS (the container runs as non-root, so not
// port 53; the Service maps 53 to it).
const DefaultAddr = ":5353"

// DefaultClusterDomain is the cluster's DNS domain unless told otherwise.
const DefaultClusterDomain = "cluster.local"

// ttl of the answers for environment names: short, so a recreated Service is seen soon.
const ttl = 5

// upstreamTimeout bounds one exchange with cluster DNS (a resolver gives up after 5s).
const upstreamTimeout = 2 * time.Second

// Target is what an environment name stands for: a Kubernetes Service.
type Target struct {
	// Namespace and Service name the Kubernetes Service.
	Namespace, Service string
	// IPs are its ClusterIPs. A headless Service has none: its own DNS name is then asked
	// upstream and the answer given for the environment name.
	IPs []netip.Addr
}

// Table is what the server knows about environments.
type Table interface {
	// Lookup returns the Service that name (compared case-insensitively) stands for in the
	// environments of namespace; ok is false when it is not such a name.
	Lookup(ctx context.Context, namespace, name string) (t Target, ok bool)
	// PodNamespace returns the namespace of the environment pod with this IP, for bare names.
	PodNamespace(ctx context.Context, ip netip.Addr) (namespace string, ok bool)
}

// Handler answers DNS queries from Table and passes the others to Upstream.
type Handler struct {
	// Table holds the environments' names.
	Table Table
	// Upstream is cluster DNS, host:port. Nothing else is ever asked.
	Upstream string
	// ClusterDomain is the cluster's DNS domain (default DefaultClusterDomain).
	ClusterDomain string
	// Log receives failures to reach Upstream (zero value: discarded).
	Log logr.Logger
	// MaxUpstream caps the exchanges with Upstream under way at once (0: DefaultMaxUpstream;
	// negative: no cap). A query past it is answered SERVFAIL at once (the resolver asks
	// again): a flood of queries for outside names cannot pile up goroutines and buffers, nor
	// slow the answers for environment names, which need no upstream.
	MaxUpstream int

	semOnce sync.Once
	sem     chan struct{}
	busy    atomic.Int64
}

// DefaultMaxUpstream is Handler.MaxUpstream's default.
const DefaultMaxUpstream = 256

// errBusy: the cap of exchanges with cluster DNS is reached.
var errBusy = errors.New("too many queries to cluster DNS under way")

// Busy is how many queries were answered SERVFAIL because MaxUpstream exchanges were under way.
func (h *Handler) Busy() int64 { return h.busy.Load() }

// acquire takes a place among the exchanges with Upstream; release gives it back.
func (h *Handler) acquire() (release func(), ok bool) {
	h.semOnce.Do(func() {
		n := h.MaxUpstream
		if n == 0 {
			n = DefaultMaxUpstream
		}
		if n > 0 {
			h.sem = make(chan struct{}, n)
		}
	})
	if h.sem == nil {
		return func() {}, true
	}
	select {
	case h.sem <- struct{}{}:
		return func() { <-h.sem }, true
	default:
		if n := h.busy.Add(1); n == 1 || n%1000 == 0 {
			h.Log.Info("too many queries to cluster DNS under way; answering SERVFAIL", "cap", cap(h.sem), "refused", n)
		}
		return nil, false
	}
}

// replyBufs are the buffers replies from Upstream are read into.
var replyBufs = sync.Pool{New: func() any { b := make([]byte, dns.MaxMsgSize); return &b }}

var _ dns.Handler = (*Handler)(nil)

// ServeDNS implements dns.Handler.
func (h *Handler) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*upstreamTimeout+time.Second)
	defer cancel()
	if t, q, ok := h.match(ctx, w.RemoteAddr(), req); ok {
		if resp := h.answer(ctx, req, q, t); resp != nil {
			writeMsg(w, req, resp)
			return
		}
	}
	h.forward(ctx, w, req)
}

func (h *Handler) domain() string {
	d := strings.Trim(strings.ToLower(h.ClusterDomain), ".")
	if d == "" {
		d = DefaultClusterDomain
	}
	return d
}

// match finds the environment name req asks about.
func (h *Handler) match(ctx context.Context, remote net.Addr, req *dns.Msg) (Target, dns.Question, bool) {
	if req.Opcode != dns.OpcodeQuery || len(req.Question) != 1 || h.Table == nil {
		return Target{}, dns.Question{}, false
	}
	q := req.Question[0]
	if q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY {
		return Target{}, q, false
	}
	name := strings.ToLower(dns.Fqdn(q.Name))
	domain := "." + h.domain() + "."
	if svc := ".svc" + domain; strings.HasSuffix(name, svc) {
		// <name>.<namespace>.svc.<domain>.
		rest := strings.TrimSuffix(name, svc)
		i := strings.LastIndexByte(rest, '.')
		if i <= 0 || i == len(rest)-1 {
			return Target{}, q, false
		}
		t, ok := h.Table.Lookup(ctx, rest[i+1:], rest[:i])
		return t, q, ok
	}
	if strings.HasSuffix(name, domain) || name == "." {
		return Target{}, q, false
	}
	// A bare name: the environment of the pod asking.
	ip, ok := addrIP(remote)
	if !ok {
		return Target{}, q, false
	}
	ns, ok := h.Table.PodNamespace(ctx, ip)
	if !ok {
		return Target{}, q, false
	}
	t, ok := h.Table.Lookup(ctx, ns, strings.TrimSuffix(name, "."))
	return t, q, ok
}

func addrIP(a net.Addr) (netip.Addr, bool) {
	var ip net.IP
	switch a := a.(type) {
	case *net.UDPAddr:
		ip = a.IP
	case *net.TCPAddr:
		ip = a.IP
	default:
		return netip.Addr{}, false
	}
	addr, ok := netip.AddrFromSlice(ip)
	return addr.Unmap(), ok
}

// answer builds the reply for an environment name, or returns nil to let cluster DNS answer.
func (h *Handler) answer(ctx context.Context, req *dns.Msg, q dns.Question, t Target) *dns.Msg {
	resp := new(dns.Msg)
	resp.SetReply(req)
	resp.Authoritative = true
	resp.RecursionAvailable = true
	if len(t.IPs) == 0 {
		// Headless: the Service's own name, asked upstream, answered for this name.
		up := new(dns.Msg)
		up.SetQuestion(t.Service+"."+t.Namespace+".svc."+h.domain()+".", q.Qtype)
		up.RecursionDesired = true
		raw, err := up.Pack()
		if err != nil {
			return nil
		}
		reply, err := h.exchange(ctx, raw, up.Id, "udp")
		if err == nil && isTruncated(reply) {
			reply, err = h.exchange(ctx, raw, up.Id, "tcp")
		}
		if err != nil {
			if !errors.Is(err, errBusy) {
				h.Log.Info("cluster DNS did not answer", "name", up.Question[0].Name, "error", err.Error())
			}
			resp.Rcode = dns.RcodeServerFailure
			return resp
		}
		m := new(dns.Msg)
		if err := m.Unpack(reply); err != nil {
			resp.Rcode = dns.RcodeServerFailure
			return resp
		}
		resp.Rcode = m.Rcode
		for _, rr := range m.Answer {
			if rr.Header().Name == up.Question[0].Name {
				rr = dns.Copy(rr)
				rr.Header().Name = q.Name
				resp.Answer = append(resp.Answer, rr)
			}
		}
		return resp
	}
	for _, ip := range t.IPs {
		hdr := dns.RR_Header{Name: q.Name, Class: dns.ClassINET, Ttl: ttl}
		switch {
		case ip.Is4() && (q.Qtype == dns.TypeA || q.Qtype == dns.TypeANY):
			hdr.Rrtype = dns.TypeA
			resp.Answer = append(resp.Answer, &dns.A{Hdr: hdr, A: net.IP(ip.AsSlice())})
		case ip.Is6() && (q.Qtype == dns.TypeAAAA || q.Qtype == dns.TypeANY):
			hdr.Rrtype = dns.TypeAAAA
			resp.Answer = append(resp.Answer, &dns.AAAA{Hdr: hdr, AAAA: net.IP(ip.AsSlice())})
		}
	}
	// Any other type: the name exists, with no such record (NOERROR, empty answer).
	return resp
}

// writeMsg sends resp, with an OPT record when req had one, truncated to what the client takes.
func writeMsg(w dns.ResponseWriter, req, resp *dns.Msg) {
	size := dns.MinMsgSize
	if opt := req.IsEdns0(); opt != nil {
		resp.SetEdns0(opt.UDPSize(), false)
		if int(opt.UDPSize()) > size {
			size = int(opt.UDPSize())
		}
	}
	if isUDP(w) {
		resp.Truncate(size)
	} else {
		resp.Compress = true
	}
	_ = w.WriteMsg(resp)
}

func isUDP(w dns.ResponseWriter) bool {
	_, ok := w.RemoteAddr().(*net.UDPAddr)
	return ok
}

// forward passes req to cluster DNS over the transport it came on and its answer back unchanged.
// A UDP query that cluster DNS does not answer over UDP is tried over TCP, and the answer
// truncated to what the client takes over UDP (it then asks again over TCP).
func (h *Handler) forward(ctx context.Context, w dns.ResponseWriter, req *dns.Msg) {
	raw, err := req.Pack()
	if err != nil {
		fail(w, req, dns.RcodeFormatError)
		return
	}
	udp := isUDP(w)
	network := "tcp"
	if udp {
		network = "udp"
	}
	reply, err := h.exchange(ctx, raw, req.Id, network)
	if errors.Is(err, errBusy) {
		fail(w, req, dns.RcodeServerFailure)
		return
	}
	if err != nil && udp {
		h.Log.V(1).Info("cluster DNS did not answer over UDP, trying TCP", "error", err.Error())
		reply, err = h.exchange(ctx, raw, req.Id, "tcp")
		if err == nil {
			reply, err = fitUDP(req, reply)
		}
	}
	if err != nil {
		h.Log.Info("cluster DNS did not answer", "error", err.Error())
		fail(w, req, dns.RcodeServerFailure)
		return
	}
	_, _ = w.Write(reply)
}

// fitUDP truncates a reply got over TCP to the client's UDP size.
func fitUDP(req *dns.Msg, reply []byte) ([]byte, error) {
	size := dns.MinMsgSize
	if opt := req.IsEdns0(); opt != nil && int(opt.UDPSize()) > size {
		size = int(opt.UDPSize())
	}
	if len(reply) <= size {
		return reply, nil
	}
	m := new(dns.Msg)
	if err := m.Unpack(reply); err != nil {
		return nil, fmt.Errorf("truncating a reply for UDP: %w", err)
	}
	m.Truncate(size)
	return m.Pack()
}

func fail(w dns.ResponseWriter, req *dns.Msg, rcode int) {
	m := new(dns.Msg)
	m.SetRcode(req, rcode)
	m.RecursionAvailable = true
	_ = w.WriteMsg(m)
}

func isTruncated(reply []byte) bool {
	return len(reply) > 2 && reply[2]&0x02 != 0
}

// exchange sends one raw query to Upstream and returns its raw reply.
func (h *Handler) exchange(ctx context.Context, query []byte, id uint16, network string) ([]byte, error) {
	if h.Upstream == "" {
		return nil, errors.New("no upstream DNS server")
	}
	release, ok := h.acquire()
	if !ok {
		return nil, errBusy
	}
	defer release()
	ctx, cancel := context.WithTimeout(ctx, upstreamTimeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, network, h.Upstream)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if deadline, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(deadline)
	}
	co := &dns.Conn{Conn: c}
	if _, err := co.Write(query); err != nil {
		return nil, err
	}
	bp := replyBufs.Get().(*[]byte)
	defer replyBufs.Put(bp)
	buf := *bp
	for {
		n, err := co.Read(buf)
		if err != nil {
			return nil, err
		}
		if n < 12 {
			if network == "udp" {
				continue
			}
			return nil, fmt.Errorf("short reply from %s", h.Upstream)
		}
		if binary.BigEndian.Uint16(buf[:2]) != id || buf[2]&0x80 == 0 {
			if network == "udp" {
				continue // not the reply to this query
			}
			return nil, fmt.Errorf("reply from %s does not match the query", h.Upstream)
		}
		return append([]byte(nil), buf[:n]...), nil
	}
}
