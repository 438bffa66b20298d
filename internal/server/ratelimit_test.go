package server

import (
	"testing"
	"time"
)

func TestRateLimiter(t *testing.T) {
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	r := &RateLimiter{Rate: 2, Burst: 3, Now: clk.now}
	for i := range 3 {
		if ok, _ := r.Allow("a"); !ok {
			t.Fatalf("request %d of the burst refused", i+1)
		}
	}
	ok, retry := r.Allow("a")
	if ok || retry <= 0 || retry > time.Second {
		t.Fatalf("over the burst: ok=%v retry=%s, want refused with 0 < retry <= 0.5s", ok, retry)
	}
	// Another key has its own bucket.
	if ok, _ := r.Allow("b"); !ok {
		t.Error("key b refused because of key a")
	}
	// A refused request takes nothing: half a second later (rate 2/s) one more goes through.
	clk.advance(500 * time.Millisecond)
	if ok, _ := r.Allow("a"); !ok {
		t.Error("after refill: refused")
	}
	if ok, _ := r.Allow("a"); ok {
		t.Error("right after: allowed")
	}
	// Idle buckets are dropped, and come back full.
	clk.advance(time.Hour)
	r.Allow("c")
	r.mu.Lock()
	_, kept := r.buckets["a"]
	r.mu.Unlock()
	if kept {
		t.Error("idle bucket a kept")
	}
	for range 3 {
		if ok, _ := r.Allow("a"); !ok {
			t.Error("a fresh bucket refused within its burst")
		}
	}
}
