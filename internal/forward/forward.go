// Package forward is ergomake's port-forward supervisor: local listeners
// that stay bound for the whole session, each new local connection going to
// a currently ready pod of its service through the API server's
// pods/portforward (WebSocket first, SPDY as fallback, as client-go does).
//
// Design, in short:
//   - a pod informer in the namespace decides "which pod" (Ready, not
//     terminating, newest first); a connection arriving while no pod is
//     ready waits for one (bounded by Options.PodWaitTimeout);
//   - every local connection gets its own tunnel (upgraded connection) to the
//     pod, so flow control, a slow reader, a reset or an error from the pod
//     stay within that connection; a few tunnels per target pod are dialled
//     ahead of need and tunnels of cleanly finished connections are reused,
//     so a new connection usually costs two stream creations, not a dial;
//   - when a pod stops being ready its idle tunnels are dropped; when it is
//     gone its tunnels are closed, which ends its in-flight connections, and
//     the next connections reach its replacement;
//   - on a WebSocket tunnel (the usual case) the forwarder speaks the
//     port-forward protocol itself (frametunnel.go, framing in
//     spdyframe.go): one reader per tunnel writing each frame straight to
//     the local connection, one write per frame. A SPDY tunnel (fallback)
//     or one from Options.Dialer is driven through client-go's stream
//     connection (streamtunnel.go). One set of rules carries a connection
//     over either (pipe, conn.go).
//
// An error the pod side reports for one connection (connection refused in
// the pod) is logged and ends that connection with a reset; nothing else.
package forward

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Port is one published port to forward.
type Port struct {
	Service    string            // compose service name, for display
	Selector   map[string]string // pod labels (ergomake.dev/env, ergomake.dev/service)
	RemotePort int32             // container port
	HostIP     string            // "" → 127.0.0.1 and ::1 (::1 only when available); else that address only
	LocalPort  int               // wanted local port; 0 → any free port
	LocalRange [2]int            // optional published range (8000-8010): any free port in it
	Protocol   string            // "TCP"/"UDP"; UDP is not forwarded, Binding.Note explains
}

// Binding is where a Port was bound.
type Binding struct {
	Port      Port
	Addrs     []string // listener addresses, e.g. 127.0.0.1:8080 and [::1]:8080; none for UDP
	LocalPort int      // 0 when nothing is bound (UDP)
	Note      string   // why the local port differs from the wanted one, or why nothing is forwarded
}

// Options tune a Forwarder. The zero value is fine.
type Options struct {
	// Logf receives one line per event worth telling the user (a connection
	// refused inside the pod, a pod gone, dialling trouble). nil: silent.
	Logf func(format string, args ...any)
	// Dialer opens tunnels; nil: through the API server of the rest.Config,
	// WebSocket first with SPDY fallback. Tunnels from a Dialer are driven
	// through client-go's stream connection.
	Dialer DialFunc
	// PrewarmTunnels is how many idle tunnels are kept dialled per target
	// pod. 0: 2. Negative: none (every connection without a reusable tunnel
	// dials one).
	PrewarmTunnels int
	// MaxTunnelsPerPod caps the tunnels (so the connections carried at
	// once) to one pod; a connection beyond it waits for one to free up,
	// within PodWaitTimeout. Each tunnel is a connection to the API server
	// and a stream pair on the kubelet: the cap keeps a client opening
	// connections in a loop from exhausting either. 0: 128; negative: no
	// cap.
	MaxTunnelsPerPod int
	// PodWaitTimeout bounds how long a new connection waits for a ready pod
	// (or for a working tunnel). 0: 30s.
	PodWaitTimeout time.Duration
}

// DefaultMaxTunnelsPerPod is Options.MaxTunnelsPerPod's default.
const DefaultMaxTunnelsPerPod = 128

// Stats are the forwarder's counters.
type Stats struct {
	Accepted     int64 // local connections accepted
	Succeeded    int64 // connections forwarded and ended cleanly
	Failed       int64 // connections ended in error (no ready pod, dial failure, error from the pod, reset)
	Active       int64 // connections in progress
	Dials        int64 // tunnels dialled
	DialFailures int64 // dials that failed
	Redials      int64 // dials or stream set-ups repeated after a failure or a dead tunnel
	Reused       int64 // connections carried by a tunnel dialled ahead or reused
	PodsLost     int64 // connections ended because their pod went away
	HalfOpen     int64 // tunnels found half-open when taken for a connection (the connection went to another)
	BytesToPod   int64
	BytesFromPod int64
}

type counters struct {
	accepted, succeeded, failed, active        atomic.Int64
	dials, dialFailures, redials, reused, lost atomic.Int64
	halfOpen                                   atomic.Int64
	toPod, fromPod                             atomic.Int64
}

// Forwarder forwards local ports to the pods of one namespace.
type Forwarder struct {
	client      kubernetes.Interface
	namespace   string
	logf        func(format string, args ...any)
	dial        func(ctx context.Context, pod string) (tunnel, error)
	listen      listenFunc
	prewarm     int
	maxIdle     int
	maxTunnels  int // per pod; 0: no cap
	podWait     time.Duration
	dialTimeout time.Duration
	route       FirstRouteFunc // NewRouted: connections go through it, no pods watched here

	mu      sync.Mutex
	ports   []*boundPort
	pools   map[types.UID]*pool
	serving bool
	closing bool
	closed  bool

	warmSem chan struct{} // bounds the dials made ahead of need
	quiet   repeats       // rate limit of repeated per-connection log lines

	wg    sync.WaitGroup // every goroutine Serve started, directly or not
	stats counters
}

type boundPort struct {
	port      Port
	sel       labels.Selector
	local     int
	listeners []net.Listener
}

// New returns a Forwarder for the pods of namespace.
func New(cfg *rest.Config, namespace string, opts Options) (*Forwarder, error) {
	client, api, err := connect(cfg, namespace)
	if err != nil {
		return nil, err
	}
	f := &Forwarder{
		client:      client,
		namespace:   namespace,
		logf:        opts.Logf,
		listen:      net.Listen,
		prewarm:     opts.PrewarmTunnels,
		podWait:     opts.PodWaitTimeout,
		dialTimeout: 15 * time.Second,
		pools:       map[types.UID]*pool{},
		warmSem:     make(chan struct{}, 4),
		quiet:       repeats{window: 5 * time.Second},
	}
	if f.logf == nil {
		f.logf = func(string, ...any) {}
	}
	if f.prewarm == 0 {
		f.prewarm = 2
	}
	if f.prewarm < 0 {
		f.prewarm = 0
	}
	f.maxIdle = f.prewarm + 2
	switch {
	case opts.MaxTunnelsPerPod == 0:
		f.maxTunnels = DefaultMaxTunnelsPerPod
	case opts.MaxTunnelsPerPod > 0:
		f.maxTunnels = opts.MaxTunnelsPerPod
	}
	if f.podWait <= 0 {
		f.podWait = 30 * time.Second
	}
	if opts.Dialer != nil {
		f.dial = func(ctx context.Context, pod string) (tunnel, error) {
			conn, err := opts.Dialer(ctx, pod)
			if err != nil {
				return nil, err
			}
			return newStreamTunnel(conn), nil
		}
	} else {
		f.dial = api.dial
	}
	return f, nil
}

// Bind opens the listeners of ports now; they stay bound until Serve
// returns (or Close). A UDP port, a taken or privileged port get a Binding
// whose Note says so. Bind fails, binding nothing, when an address cannot be
// listened on at all (a host IP that is not on this machine) or a port has no
// selector.
func (f *Forwarder) Bind(ports []Port) ([]Binding, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.serving || f.closed {
		return nil, errors.New("forward: Bind after Serve")
	}
	var bound []*boundPort
	fail := func(err error) ([]Binding, error) {
		for _, bp := range bound {
			for _, l := range bp.listeners {
				_ = l.Close()
			}
		}
		return nil, err
	}
	out := make([]Binding, 0, len(ports))
	for _, p := range ports {
		b := Binding{Port: p}
		if isUDP(p) {
			b.Note = NoteUDP
			out = append(out, b)
			continue
		}
		if len(p.Selector) == 0 && f.route == nil {
			return fail(fmt.Errorf("forward: service %q port %d: no pod selector", p.Service, p.RemotePort))
		}
		if p.RemotePort <= 0 || p.RemotePort > 65535 {
			return fail(fmt.Errorf("forward: service %q: invalid container port %d", p.Service, p.RemotePort))
		}
		ls, port, note, err := bindPort(f.listen, p)
		if err != nil {
			return fail(fmt.Errorf("forward: service %q port %d: %w", p.Service, p.RemotePort, err))
		}
		b.LocalPort, b.Note = port, note
		for _, l := range ls {
			b.Addrs = append(b.Addrs, l.Addr().String())
		}
		bound = append(bound, &boundPort{port: p, sel: labels.SelectorFromSet(p.Selector), local: port, listeners: ls})
		out = append(out, b)
	}
	f.ports = append(f.ports, bound...)
	return out, nil
}

// Close releases the listeners of a Forwarder that will not Serve.
func (f *Forwarder) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.serving {
		return nil // Serve closes them when its context ends
	}
	f.closed = true
	for _, bp := range f.ports {
		for _, l := range bp.listeners {
			_ = l.Close()
		}
	}
	return nil
}

// Serve accepts and forwards connections until ctx is done, then closes the
// listeners, ends every connection and returns once every goroutine it
// started has ended.
func (f *Forwarder) Serve(ctx context.Context) error {
	f.mu.Lock()
	if f.serving || f.closed {
		f.mu.Unlock()
		return errors.New("forward: Serve called twice")
	}
	f.serving = true
	ports := f.ports
	f.mu.Unlock()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if len(ports) == 0 { // nothing bound (UDP only): nothing to watch
		<-ctx.Done()
		return nil
	}
	if f.route != nil {
		f.serveRouted(ctx, ports)
		return nil
	}

	sels := make([]map[string]string, 0, len(ports))
	for _, bp := range ports {
		sels = append(sels, bp.port.Selector)
	}
	common := labels.SelectorFromSet(commonSelector(sels)).String()
	factory := informers.NewSharedInformerFactoryWithOptions(f.client, 0,
		informers.WithNamespace(f.namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = common }))
	podInformer := factory.Core().V1().Pods()
	informer := podInformer.Informer()
	_ = informer.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
		if ctx.Err() == nil {
			f.logf("forward: watching pods in %s: %v", f.namespace, err)
		}
	})
	tr := newTracker(podInformer.Lister().Pods(f.namespace))
	kick := make(chan struct{}, 1)
	onEvent := func() {
		tr.notify()
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	_, _ = informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { onEvent() },
		UpdateFunc: func(any, any) { onEvent() },
		DeleteFunc: func(any) { onEvent() },
	})
	factory.Start(ctx.Done())

	f.wg.Add(1)
	go f.supervise(ctx, tr, kick, ports)
	f.acceptUntilDone(ctx, tr, ports)
	f.mu.Lock()
	f.closing = true
	pools := f.pools
	f.pools = map[types.UID]*pool{}
	f.mu.Unlock()
	for _, p := range pools {
		p.retire()
	}
	f.wg.Wait()
	factory.Shutdown()
	return nil
}

// acceptUntilDone runs an accept loop on every listener of ports until ctx ends, then closes the
// listeners (the loops end; the connections they started go on until the caller ends them).
func (f *Forwarder) acceptUntilDone(ctx context.Context, tr *tracker, ports []*boundPort) {
	for _, bp := range ports {
		for _, l := range bp.listeners {
			f.wg.Add(1)
			go f.accept(ctx, tr, bp, l)
		}
	}
	<-ctx.Done()
	for _, bp := range ports {
		for _, l := range bp.listeners {
			_ = l.Close()
		}
	}
}

// Stats returns the current counters.
func (f *Forwarder) Stats() Stats {
	c := &f.stats
	return Stats{
		Accepted: c.accepted.Load(), Succeeded: c.succeeded.Load(), Failed: c.failed.Load(),
		Active: c.active.Load(), Dials: c.dials.Load(), DialFailures: c.dialFailures.Load(),
		Redials: c.redials.Load(), Reused: c.reused.Load(), PodsLost: c.lost.Load(), HalfOpen: c.halfOpen.Load(),
		BytesToPod: c.toPod.Load(), BytesFromPod: c.fromPod.Load(),
	}
}

// supervise keeps the tunnel pools in line with the pods: pre-dialled
// tunnels for the pods new connections go to, no idle tunnel to a pod that is
// not ready, no tunnel at all to a pod that is gone.
func (f *Forwarder) supervise(ctx context.Context, tr *tracker, kick <-chan struct{}, ports []*boundPort) {
	defer f.wg.Done()
	seen := map[string]bool{}
	var sels []labels.Selector
	for _, bp := range ports {
		if s := bp.sel.String(); !seen[s] {
			seen[s] = true
			sels = append(sels, bp.sel)
		}
	}
	everReady := map[types.UID]bool{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-kick:
		}
		pods := tr.pods()
		present := map[types.UID]bool{}
		for _, p := range pods {
			if !finished(p) {
				present[p.UID] = true
			}
			if usable(p) {
				everReady[p.UID] = true
			}
		}
		for uid := range everReady {
			if !present[uid] {
				delete(everReady, uid)
			}
		}
		// Tunnels are kept dialled for the pod each selector picks and for
		// the replacement coming up beside it, so that the first connections
		// after it becomes ready need no dial.
		targets := map[types.UID]string{}
		for _, sel := range sels {
			pick := pickPod(pods, sel)
			if pick != nil {
				targets[pick.UID] = pick.Name
			}
			if c := pickComing(pods, sel, pick, everReady); c != nil {
				targets[c.UID] = c.Name
			}
		}
		f.mu.Lock()
		if f.closing {
			f.mu.Unlock()
			return
		}
		for uid, name := range targets {
			if _, ok := f.pools[uid]; !ok {
				f.pools[uid] = f.startPool(ctx, name, uid)
			}
		}
		var retired []*pool
		for uid, p := range f.pools {
			switch {
			case !present[uid]:
				retired = append(retired, p)
				delete(f.pools, uid)
			case targets[uid] == "" && p.empty():
				retired = append(retired, p)
				delete(f.pools, uid)
			default:
				p.setWarm(targets[uid] != "")
			}
		}
		f.mu.Unlock()
		for _, p := range retired {
			if n := p.retire(); n > 0 {
				f.stats.lost.Add(int64(n))
				f.logf("forward: pod %s is gone; ended %d connection(s), new ones go to its replacement", p.pod, n)
			}
		}
	}
}

// startPool creates the pool of a pod and its pre-dialler. f.mu is held.
func (f *Forwarder) startPool(ctx context.Context, name string, uid types.UID) *pool {
	p := newPool(f, name, uid)
	p.warm = true
	if f.prewarm > 0 {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			p.prewarm(ctx)
		}()
		p.poke()
	}
	return p
}

// poolFor returns the pool of the pod a connection is going to.
func (f *Forwarder) poolFor(ctx context.Context, name string, uid types.UID) *pool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closing {
		return nil
	}
	p, ok := f.pools[uid]
	if !ok {
		p = f.startPool(ctx, name, uid)
		f.pools[uid] = p
	}
	return p
}

func (f *Forwarder) accept(ctx context.Context, tr *tracker, bp *boundPort, l net.Listener) {
	defer f.wg.Done()
	var delay time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait a little, keep the
			// listener.
			delay = min(max(5*time.Millisecond, 2*delay), time.Second)
			f.logf("forward: %s: accepting on %s: %v", bp.port.Service, l.Addr(), err)
			if !sleepCtx(ctx, nil, delay) {
				return
			}
			continue
		}
		delay = 0
		f.wg.Add(1)
		go f.handle(ctx, tr, bp, c)
	}
}
