package namedns

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// FuzzHandler passes arbitrary DNS messages (every one that unpacks: the DNS server answers the
// others itself) to the environment DNS handler, over UDP or TCP, from a pod of an environment or
// from elsewhere, while a fake cluster DNS on loopback answers every query with reply (its ID and
// QR bit set to match). The handler must answer exactly once and never panic; what it forwards is
// the query as received and what it passes back is cluster DNS's reply unchanged; what it answers
// itself is a reply to the query that packs, and over UDP fits the client's size.
func FuzzHandler(f *testing.F) {
	up := startRawUpstream(f)
	tbl := table()
	tbl.setPod("10.244.0.5", "shop")
	h := &Handler{Table: tbl, Upstream: up.addr}
	for _, s := range dnsSeeds(f) {
		f.Add(s.query, s.reply, false, true)
		f.Add(s.query, s.reply, true, false)
	}
	f.Fuzz(func(t *testing.T, query, reply []byte, tcp, fromPod bool) {
		req := new(dns.Msg)
		if err := req.Unpack(query); err != nil {
			return
		}
		up.reset(reply)
		w := &recorder{remote: remoteAddr(tcp, fromPod)}
		h.ServeDNS(w, req)

		if n := len(w.msgs) + len(w.raws); n != 1 {
			t.Fatalf("%d replies written", n)
		}
		sent, got := up.exchanged()
		if len(w.raws) == 1 { // forwarded
			want, err := req.Pack()
			if err != nil {
				t.Fatalf("forwarded a query that does not pack: %v", err)
			}
			if len(got) == 0 || !bytes.Equal(got[len(got)-1], want) {
				t.Errorf("cluster DNS was asked %x, want the query %x", got, want)
			}
			if len(sent) == 0 || !bytes.Equal(w.raws[0], sent[len(sent)-1]) {
				t.Errorf("passed back %x, want cluster DNS's reply %x", w.raws[0], sent)
			}
			return
		}
		m := w.msgs[0]
		if m.Id != req.Id || !m.Response || m.Opcode != req.Opcode {
			t.Errorf("reply id %d response %v opcode %d to query id %d opcode %d", m.Id, m.Response, m.Opcode, req.Id, req.Opcode)
		}
		raw, err := m.Pack()
		if err != nil {
			t.Fatalf("reply does not pack: %v\n%v", err, m)
		}
		if m.Rcode == dns.RcodeSuccess && len(m.Question) == 1 {
			for _, rr := range m.Answer {
				if rr.Header().Name != m.Question[0].Name {
					t.Errorf("answer %v for question %v", rr, m.Question[0])
				}
			}
		}
		if !tcp {
			size := dns.MinMsgSize
			if opt := req.IsEdns0(); opt != nil && int(opt.UDPSize()) > size {
				size = int(opt.UDPSize())
			}
			if len(raw) > size && len(m.Answer) > 0 {
				t.Errorf("UDP reply of %d bytes with %d answers, client takes %d", len(raw), len(m.Answer), size)
			}
		}
	})
}

func remoteAddr(tcp, fromPod bool) net.Addr {
	ip := net.ParseIP("10.0.0.1")
	if fromPod {
		ip = net.ParseIP("10.244.0.5")
	}
	if tcp {
		return &net.TCPAddr{IP: ip, Port: 40000}
	}
	return &net.UDPAddr{IP: ip, Port: 40000}
}

// recorder is a dns.ResponseWriter that keeps what is written.
type recorder struct {
	remote net.Addr
	msgs   []*dns.Msg
	raws   [][]byte
}

func (r *recorder) LocalAddr() net.Addr  { return &net.UDPAddr{IP: net.IPv4(10, 96, 0, 10), Port: 53} }
func (r *recorder) RemoteAddr() net.Addr { return r.remote }
func (r *recorder) WriteMsg(m *dns.Msg) error {
	r.msgs = append(r.msgs, m.Copy())
	return nil
}
func (r *recorder) Write(b []byte) (int, error) {
	r.raws = append(r.raws, append([]byte(nil), b...))
	return len(b), nil
}
func (r *recorder) Close() error        { return nil }
func (r *recorder) TsigStatus() error   { return nil }
func (r *recorder) TsigTimersOnly(bool) {}
func (r *recorder) Hijack()             {}

// rawUpstream is a fake cluster DNS on loopback, UDP and TCP on one port, that answers every
// query with the bytes it is given (at least a header; the query's ID, the QR bit set).
type rawUpstream struct {
	addr string

	mu          sync.Mutex
	reply       []byte
	sent, asked [][]byte
}

func (u *rawUpstream) reset(reply []byte) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.reply, u.sent, u.asked = reply, nil, nil
}

func (u *rawUpstream) exchanged() (sent, asked [][]byte) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.sent, u.asked
}

func (u *rawUpstream) answer(q []byte) []byte {
	u.mu.Lock()
	defer u.mu.Unlock()
	r := append([]byte(nil), u.reply...)
	if len(r) > dns.MaxMsgSize-100 {
		r = r[:dns.MaxMsgSize-100]
	}
	for len(r) < 12 {
		r = append(r, 0)
	}
	if len(q) >= 2 {
		copy(r, q[:2])
	}
	r[2] |= 0x80
	u.asked = append(u.asked, append([]byte(nil), q...))
	u.sent = append(u.sent, r)
	return r
}

func startRawUpstream(tb testing.TB) *rawUpstream {
	tb.Helper()
	var pc net.PacketConn
	var l net.Listener
	var err error
	for attempt := 0; ; attempt++ {
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			tb.Fatal(err)
		}
		if l, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
		if attempt == 10 {
			tb.Fatal(err)
		}
	}
	tb.Cleanup(func() { pc.Close(); l.Close() })
	u := &rawUpstream{addr: pc.LocalAddr().String()}
	go func() {
		buf := make([]byte, dns.MaxMsgSize)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(u.answer(buf[:n]), from)
		}
	}()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				for {
					var n [2]byte
					if _, err := io.ReadFull(c, n[:]); err != nil {
						return
					}
					q := make([]byte, binary.BigEndian.Uint16(n[:]))
					if _, err := io.ReadFull(c, q); err != nil {
						return
					}
					r := u.answer(q)
					if _, err := c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(r))), r...)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return u
}

type dnsSeed struct{ query, reply []byte }

// dnsSeeds are queries as resolvers send them (stub resolvers: RD, EDNS0 with a 1232 or 4096
// buffer, the DO bit, cookies) and the replies cluster DNS gives.
func dnsSeeds(tb testing.TB) []dnsSeed {
	pack := func(m *dns.Msg) []byte {
		b, err := m.Pack()
		if err != nil {
			tb.Fatal(err)
		}
		return b
	}
	q := func(name string, qtype uint16, edns uint16, do bool) *dns.Msg {
		m := new(dns.Msg)
		m.Id = 0x1234
		m.SetQuestion(name, qtype)
		if edns > 0 {
			m.SetEdns0(edns, do)
		}
		return m
	}
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			tb.Fatal(err)
		}
		return r
	}
	reply := func(req *dns.Msg, rcode int, answers ...dns.RR) []byte {
		m := new(dns.Msg)
		m.SetRcode(req, rcode)
		m.RecursionAvailable = true
		m.Answer = answers
		if rcode == dns.RcodeNameError {
			m.Ns = []dns.RR{rr("cluster.local. 30 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 30")}
		}
		return pack(m)
	}
	headless := q("cache.shop.svc.cluster.local.", dns.TypeA, 0, false)
	cacheA := reply(headless, dns.RcodeSuccess, rr("cache.shop.svc.cluster.local. 30 IN A 10.244.0.7"), rr("cache.shop.svc.cluster.local. 30 IN A 10.244.0.8"))
	var big []dns.RR
	for i := 0; i < 40; i++ {
		big = append(big, rr("cache.shop.svc.cluster.local. 30 IN AAAA fd00::"+string(rune('a'+i%6))))
	}
	cacheBig := reply(q("cache.shop.svc.cluster.local.", dns.TypeAAAA, 0, false), dns.RcodeSuccess, big...)
	truncated := append([]byte(nil), cacheA...)
	truncated[2] |= 0x02
	withCookie := q("kubernetes.default.svc.cluster.local.", dns.TypeA, 1232, false)
	withCookie.IsEdns0().Option = append(withCookie.IsEdns0().Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"})
	ptr := q("10.0.96.10.in-addr.arpa.", dns.TypePTR, 0, false)
	var seeds []dnsSeed
	for _, s := range []struct {
		q     *dns.Msg
		reply []byte
	}{
		{q("web_app.shop.svc.cluster.local.", dns.TypeA, 0, false), nil},
		{q("DB_Primary.shop.svc.cluster.local.", dns.TypeAAAA, 1232, false), nil},
		{q("db_primary.", dns.TypeANY, 4096, true), nil},
		{q("web_app.", dns.TypeMX, 0, false), nil},
		{q("web_app.shop.svc.cluster.local.", dns.TypeA, 0, false), nil},
		{q("cache_local.shop.svc.cluster.local.", dns.TypeA, 1232, false), cacheA},
		{q("cache_local.", dns.TypeAAAA, 0, false), cacheBig},
		{q("cache_local.", dns.TypeA, 0, false), truncated},
		{q("cache_local.shop.svc.cluster.local.", dns.TypeA, 0, false), reply(headless, dns.RcodeNameError)},
		{withCookie, reply(withCookie, dns.RcodeSuccess, rr("kubernetes.default.svc.cluster.local. 5 IN A 10.96.0.1"))},
		{q("example.com.", dns.TypeMX, 1232, true), reply(q("example.com.", dns.TypeMX, 0, false), dns.RcodeServerFailure)},
		{q("nothing.shop.svc.cluster.local.", dns.TypeA, 0, false), reply(q("nothing.shop.svc.cluster.local.", dns.TypeA, 0, false), dns.RcodeNameError)},
		{ptr, reply(ptr, dns.RcodeSuccess, rr("10.0.96.10.in-addr.arpa. 5 IN PTR kube-dns.kube-system.svc.cluster.local."))},
		{q(".", dns.TypeNS, 0, false), cacheBig},
	} {
		seeds = append(seeds, dnsSeed{pack(s.q), s.reply})
	}
	// A query with two questions, an update, a query from a resolver that sets AD.
	two := q("web_app.", dns.TypeA, 0, false)
	two.Question = append(two.Question, dns.Question{Name: "db_primary.", Qtype: dns.TypeA, Qclass: dns.ClassINET})
	upd := q("shop.svc.cluster.local.", dns.TypeSOA, 0, false)
	upd.Opcode = dns.OpcodeUpdate
	ad := q("web_app.shop.svc.cluster.local.", dns.TypeA, 1232, false)
	ad.AuthenticatedData = true
	chaos := q("version.bind.", dns.TypeTXT, 0, false)
	chaos.Question[0].Qclass = dns.ClassCHAOS
	for _, m := range []*dns.Msg{two, upd, ad, chaos} {
		seeds = append(seeds, dnsSeed{pack(m), cacheA})
	}
	return seeds
}
