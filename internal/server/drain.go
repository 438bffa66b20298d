package server

import (
	"context"
	"net/http"
	"sync"
)

// drainer is the handler's side of a graceful shutdown: it counts the requests in flight (the
// upgraded ones too, which http.Server.Shutdown does not wait for: forwarded connections, exec,
// builder dials) and says when draining began (readiness fails, watches end: their clients watch
// again through the other replica).
type drainer struct {
	ctx   context.Context // ends when draining begins
	begin context.CancelFunc

	mu   sync.Mutex
	n    int
	idle chan struct{} // closed while n is 0
}

func newDrainer() *drainer {
	d := &drainer{idle: make(chan struct{})}
	close(d.idle)
	d.ctx, d.begin = context.WithCancel(context.Background())
	return d
}

// start counts a request in; call the function returned when it ended.
func (d *drainer) start() func() {
	d.mu.Lock()
	if d.n == 0 {
		d.idle = make(chan struct{})
	}
	d.n++
	d.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			d.mu.Lock()
			d.n--
			if d.n == 0 {
				close(d.idle)
			}
			d.mu.Unlock()
		})
	}
}

// wait waits until no request is in flight (nil) or ctx ends (the number still in flight and
// ctx's error).
func (d *drainer) wait(ctx context.Context) (int, error) {
	for {
		d.mu.Lock()
		n, idle := d.n, d.idle
		d.mu.Unlock()
		if n == 0 {
			return 0, nil
		}
		select {
		case <-idle:
		case <-ctx.Done():
			d.mu.Lock()
			n = d.n
			d.mu.Unlock()
			return n, ctx.Err()
		}
	}
}

func (d *drainer) draining() bool { return d.ctx.Err() != nil }

// Drain begins a graceful shutdown: GET /readyz answers 503 and watches end; every other request,
// upgraded connections included, goes on. Requests that come after still get served (a client's
// connection may reach this replica until the Service stops sending them).
func (h *Handler) Drain() { h.drain.begin() }

// WaitRequests waits until no request is in flight (nil) or ctx ends: it returns how many were
// still in flight and ctx's error.
func (h *Handler) WaitRequests(ctx context.Context) (int, error) { return h.drain.wait(ctx) }

// untilDrain is ctx, ended when draining begins too (for requests the client makes again through
// another replica: watches).
func (h *Handler) untilDrain(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(h.drain.ctx, cancel)
	return ctx, func() { stop(); cancel() }
}

func (h *Handler) readyz(w http.ResponseWriter, _ *http.Request) {
	if h.drain.draining() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("shutting down\n"))
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}
