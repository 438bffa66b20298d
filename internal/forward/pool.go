package forward

import (
	"context"
	"errors"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

var (
	errRetired = errors.New("pod gone")
	errTooMany = errors.New("no tunnel freed up in time (the pod has the most tunnels allowed)")
)

// pool holds the tunnels of one pod: idle ones dialled ahead of need and the
// ones in use.
type pool struct {
	f    *Forwarder
	pod  string
	uid  types.UID
	kick chan struct{} // wakes the pre-dialler
	done chan struct{} // closed when the pool is retired
	room chan struct{} // a tunnel left: a connection waiting for room may dial

	mu       sync.Mutex
	idle     []tunnel
	active   map[tunnel]struct{}
	dialing  int  // by the pre-dialler
	reserved int  // dials of connections under way
	warm     bool // keep f.prewarm idle tunnels dialled
	retired  bool
}

func newPool(f *Forwarder, pod string, uid types.UID) *pool {
	return &pool{
		f:      f,
		pod:    pod,
		uid:    uid,
		kick:   make(chan struct{}, 1),
		done:   make(chan struct{}),
		room:   make(chan struct{}, 1),
		active: map[tunnel]struct{}{},
	}
}

func (p *pool) poke() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// tunnels is how many tunnels the pod has or is getting. p.mu is held.
func (p *pool) tunnels() int { return len(p.idle) + len(p.active) + p.dialing + p.reserved }

func (p *pool) freed() {
	select {
	case p.room <- struct{}{}:
	default:
	}
}

// take returns an idle live tunnel, marked active; or, when there is none,
// room for one more (dial: the caller dials it and adopts it, or calls
// unreserve). A pod at the cap of tunnels (f.maxTunnels) has no room:
// take waits for a tunnel to come back or go, until ctx is done or
// deadline.
func (p *pool) take(ctx context.Context, deadline time.Time) (t tunnel, dial bool, err error) {
	var timer *time.Timer
	logged := false
	for {
		if t := p.get(); t != nil {
			return t, false, nil
		}
		p.mu.Lock()
		switch {
		case p.retired:
			p.mu.Unlock()
			return nil, false, errRetired
		case p.f.maxTunnels <= 0 || p.tunnels() < p.f.maxTunnels:
			p.reserved++
			p.mu.Unlock()
			return nil, true, nil
		}
		p.mu.Unlock()
		if !logged {
			logged = true
			p.f.logf("forward: pod %s: %d tunnels open, the most per pod; the connection waits for one to free up",
				p.pod, p.f.maxTunnels)
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			return nil, false, errTooMany
		}
		if timer == nil {
			timer = time.NewTimer(min(wait, time.Second))
			defer timer.Stop()
		} else {
			timer.Reset(min(wait, time.Second)) // look again now and then: one signal wakes one waiter
		}
		select {
		case <-p.room:
		case <-timer.C:
		case <-p.done:
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
}

// unreserve gives back the room take made for a dial that failed.
func (p *pool) unreserve() {
	p.mu.Lock()
	p.reserved--
	p.mu.Unlock()
	p.freed()
}

// get returns an idle live tunnel, marked active, or nil.
func (p *pool) get() tunnel {
	var got tunnel
	var lost []tunnel
	p.mu.Lock()
	for len(p.idle) > 0 {
		n := len(p.idle)
		t := p.idle[n-1] // most recently used first: its connection is warm
		p.idle = p.idle[:n-1]
		if dead(t) {
			lost = append(lost, t)
			continue
		}
		p.active[t] = struct{}{}
		got = t
		break
	}
	p.mu.Unlock()
	for _, t := range lost {
		t.kill()
	}
	if len(lost) > 0 {
		p.freed()
	}
	p.poke()
	return got
}

// adopt registers a freshly dialled tunnel as active, in the room take
// made for it (reserved: false for a tunnel dialled otherwise). It returns
// false when the pool was retired in the meantime (the caller closes the
// tunnel).
func (p *pool) adopt(t tunnel, reserved bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if reserved {
		p.reserved--
	}
	if p.retired {
		return false
	}
	p.active[t] = struct{}{}
	return true
}

// put returns a tunnel after its connection ended; reusable tunnels are kept
// idle while the pod still takes new connections and the pool has room.
func (p *pool) put(t tunnel, reusable bool) {
	p.mu.Lock()
	delete(p.active, t)
	keep := reusable && p.warm && !p.retired && len(p.idle) < p.f.maxIdle && !dead(t)
	if keep {
		p.idle = append(p.idle, t)
	}
	p.mu.Unlock()
	if !keep {
		t.kill()
	}
	p.freed()
}

// setWarm says whether this pod takes new connections. A pod that does not
// loses its idle tunnels at once.
func (p *pool) setWarm(warm bool) {
	p.mu.Lock()
	p.warm = warm
	var drop []tunnel
	if !warm {
		drop, p.idle = p.idle, nil
	}
	p.mu.Unlock()
	for _, t := range drop {
		t.kill()
	}
	if warm {
		p.poke()
	}
}

// retire closes every tunnel of the pool, ending the connections they carry
// (the pod is gone). It returns how many connections were ended.
func (p *pool) retire() int {
	p.mu.Lock()
	if p.retired {
		p.mu.Unlock()
		return 0
	}
	p.retired = true
	p.warm = false
	close(p.done) // wakes the connections waiting for room too
	drop := p.idle
	p.idle = nil
	n := len(p.active)
	for t := range p.active {
		drop = append(drop, t)
	}
	p.mu.Unlock()
	for _, t := range drop {
		t.kill()
	}
	return n
}

// empty reports whether a cold pool holds nothing and can be dropped.
func (p *pool) empty() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.warm && p.tunnels() == 0
}

// dial opens a new tunnel to the pod.
func (p *pool) dial(ctx context.Context) (tunnel, error) {
	dctx, cancel := context.WithTimeout(ctx, p.f.dialTimeout)
	defer cancel()
	t, err := p.f.dial(dctx, p.pod)
	p.f.stats.dials.Add(1)
	if err != nil {
		p.f.stats.dialFailures.Add(1)
		return nil, err
	}
	t.start(&p.f.wg, func() { p.forget(t) })
	return t, nil
}

// dropQuiet closes the idle tunnels the server has sent nothing on since
// at: one tunnel of the pod was found half-open, and the others that went
// as quiet meanwhile most likely share its fate (an API server that went
// away). Connections then dial fresh tunnels instead of probing each.
func (p *pool) dropQuiet(at time.Time) {
	p.mu.Lock()
	var drop []tunnel
	keep := p.idle[:0]
	for _, t := range p.idle {
		if t.quietSince(at) {
			drop = append(drop, t)
		} else {
			keep = append(keep, t)
		}
	}
	p.idle = keep
	p.mu.Unlock()
	for _, t := range drop {
		t.kill()
	}
	if len(drop) > 0 {
		p.poke()
	}
}

// forget drops a dead tunnel from the idle ones (it died while idle).
func (p *pool) forget(t tunnel) {
	p.mu.Lock()
	for i, it := range p.idle {
		if it == t {
			p.idle = append(p.idle[:i], p.idle[i+1:]...)
			break
		}
	}
	p.mu.Unlock()
	p.freed()
	p.poke()
}

// prewarm keeps f.prewarm idle tunnels dialled while the pool is warm,
// backing off when dialling fails. It ends when the pool is retired or ctx
// is done.
func (p *pool) prewarm(ctx context.Context) {
	bo := newBackoff(100*time.Millisecond, 10*time.Second, 30*time.Second)
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.done:
			return
		case <-p.kick:
		}
		for {
			p.mu.Lock()
			need := p.warm && !p.retired && len(p.idle)+p.dialing < p.f.prewarm &&
				(p.f.maxTunnels <= 0 || p.tunnels() < p.f.maxTunnels)
			if need {
				p.dialing++
			}
			p.mu.Unlock()
			if !need {
				break
			}
			// Dialling ahead of need is bounded across pods, so that an
			// environment of many services does not dial them all at once
			// when it becomes ready (connections waiting for a tunnel dial
			// without waiting for this).
			var t tunnel
			var err error
			select {
			case p.f.warmSem <- struct{}{}:
				t, err = p.dial(ctx)
				<-p.f.warmSem
			case <-ctx.Done():
				err = ctx.Err()
			case <-p.done:
				err = errRetired
			}
			p.mu.Lock()
			p.dialing--
			keep := err == nil && p.warm && !p.retired
			if keep {
				p.idle = append(p.idle, t)
			}
			p.mu.Unlock()
			if err != nil {
				if ctx.Err() != nil || errors.Is(err, errRetired) {
					return
				}
				d := bo.next()
				p.f.logf("forward: pod %s: dialling a tunnel failed (retrying in %s): %v", p.pod, d.Round(time.Millisecond), err)
				p.f.stats.redials.Add(1)
				if !sleepCtx(ctx, p.done, d) {
					return
				}
				continue
			}
			bo.success()
			if !keep {
				t.kill()
				break
			}
		}
	}
}

func sleepCtx(ctx context.Context, done <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-done:
		return false
	case <-t.C:
		return true
	}
}

// backoff is a capped exponential backoff that starts over once things have
// gone well for a while.
type backoff struct {
	min, max, healthy time.Duration
	cur               time.Duration
	lastFail          time.Time
	now               func() time.Time
}

func newBackoff(min, max, healthy time.Duration) *backoff {
	return &backoff{min: min, max: max, healthy: healthy, now: time.Now}
}

// next returns how long to wait after a failure.
func (b *backoff) next() time.Duration {
	now := b.now()
	if b.cur == 0 || (!b.lastFail.IsZero() && now.Sub(b.lastFail) > b.healthy) {
		b.cur = b.min
	} else {
		b.cur *= 2
		if b.cur > b.max {
			b.cur = b.max
		}
	}
	b.lastFail = now
	return b.cur
}

// success notes that an attempt worked; the delay is reset only after a
// healthy period, so a flapping target still backs off.
func (b *backoff) success() {
	if !b.lastFail.IsZero() && b.now().Sub(b.lastFail) > b.healthy {
		b.cur = 0
	}
}
