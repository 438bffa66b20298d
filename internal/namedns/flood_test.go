package namedns

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// A flood of queries for outside names against a slow cluster DNS: no more than MaxUpstream of
// them are sent upstream at once, the rest are answered SERVFAIL at once, and environment names
// keep resolving, promptly, all along.
func TestQueryFlood(t *testing.T) {
	const limit, flood = 8, 300
	var inFlight, most, seen atomic.Int64
	slow, err := Listen("127.0.0.1:0", dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		seen.Add(1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(300 * time.Millisecond)
		resp := new(dns.Msg)
		resp.SetRcode(req, dns.RcodeNameError)
		_ = w.WriteMsg(resp)
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { slow.Close() })
	h := &Handler{Table: table(), Upstream: slow.Addr.String(), MaxUpstream: limit}
	srv := startServer(t, h)

	var wg sync.WaitGroup
	var servfail, answered atomic.Int64
	for i := range flood {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := new(dns.Msg)
			m.SetQuestion(fmt.Sprintf("host%d.example.com.", i), dns.TypeA)
			c := &dns.Client{Net: "udp", Timeout: 5 * time.Second}
			r, _, err := c.Exchange(m, srv)
			switch {
			case err != nil:
			case r.Rcode == dns.RcodeServerFailure:
				servfail.Add(1)
			default:
				answered.Add(1)
			}
		}()
	}
	// Meanwhile, environment names.
	for i := range 30 {
		start := time.Now()
		network := []string{"udp", "tcp"}[i%2]
		r := query(t, srv, network, "web_app.shop.svc.cluster.local.", dns.TypeA, 0)
		if r.Rcode != dns.RcodeSuccess || fmt.Sprint(aRecords(r)) != "[web_app.shop.svc.cluster.local. A 10.96.0.30]" {
			t.Fatalf("during the flood: %v", r)
		}
		if took := time.Since(start); took > time.Second {
			t.Errorf("an environment name took %s during the flood", took)
		}
		time.Sleep(5 * time.Millisecond)
	}
	wg.Wait()
	if m := most.Load(); m > limit {
		t.Errorf("%d queries upstream at once, cap %d", m, limit)
	}
	if servfail.Load() == 0 || h.Busy() != servfail.Load() {
		t.Errorf("%d SERVFAIL, %d counted busy: the cap never held anything back", servfail.Load(), h.Busy())
	}
	if answered.Load() == 0 || answered.Load() != seen.Load() {
		t.Errorf("%d answered from upstream, %d seen upstream", answered.Load(), seen.Load())
	}
	t.Logf("flood of %d: %d passed upstream (at most %d at once), %d SERVFAIL", flood, seen.Load(), most.Load(), servfail.Load())
}
