package server

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// RateLimiter is a token bucket per key (a token's ID): Rate requests a second on average, bursts
// of Burst. Each replica keeps its own buckets: with N replicas behind a Service a client gets at
// most N times the rate, which is what a limit against runaway clients needs (it is not billing).
type RateLimiter struct {
	Rate  rate.Limit
	Burst int
	// Now is the clock (time.Now when nil).
	Now func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

// idleAfter is how long an unused bucket is kept (it is full again by then anyway).
const idleAfter = 10 * time.Minute

// Allow takes one request from key's bucket and says whether it may go ahead; when not, retry is
// how long until it would.
func (r *RateLimiter) Allow(key string) (ok bool, retry time.Duration) {
	now := time.Now()
	if r.Now != nil {
		now = r.Now()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.buckets == nil {
		r.buckets = map[string]*bucket{}
	}
	if now.Sub(r.swept) > idleAfter {
		for k, b := range r.buckets {
			if now.Sub(b.seen) > idleAfter {
				delete(r.buckets, k)
			}
		}
		r.swept = now
	}
	b := r.buckets[key]
	if b == nil {
		b = &bucket{lim: rate.NewLimiter(r.Rate, r.Burst)}
		r.buckets[key] = b
	}
	b.seen = now
	res := b.lim.ReserveN(now, 1)
	if !res.OK() {
		return false, time.Second
	}
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return false, d
	}
	return true, 0
}
