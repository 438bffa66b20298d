package forward

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// ErrNoReadyPod is wrapped by PodDialer.ReadyPod when no pod matching the
// selector is ready.
var ErrNoReadyPod = errors.New("no ready pod")

// ErrNoPodMatches wraps ErrNoReadyPod when no pod at all matches the selector (nothing is
// starting that a caller could wait for).
var ErrNoPodMatches = fmt.Errorf("%w: no pod matches", ErrNoReadyPod)

// PodDialer opens single connections to a port of a pod, as net.Conns, over
// the same tunnels as the Forwarder (pods/portforward through the API
// server: WebSocket first, SPDY as fallback). It is for clients that dial
// a service of the cluster themselves (BuildKit's client talking to
// buildkitd on the loopback of its pod): no local listener, no exposure.
// Each connection has its own tunnel, closed with the connection. A
// PodDialer is safe for concurrent use.
type PodDialer struct {
	client    kubernetes.Interface
	namespace string
	dial      func(ctx context.Context, pod string) (tunnel, error)
	open      time.Duration // how long a tunnel's streams may take to be accepted; 0: 3s
}

// NewPodDialer returns a PodDialer for the pods of namespace.
func NewPodDialer(cfg *rest.Config, namespace string) (*PodDialer, error) {
	client, api, err := connect(cfg, namespace)
	if err != nil {
		return nil, err
	}
	return &PodDialer{client: client, namespace: namespace, dial: api.dial}, nil
}

// ReadyPod returns the name of the pod new connections for selector (a
// label selector, "app.kubernetes.io/name=ergomake-builder") should reach:
// among the matching pods that are running, ready and not being deleted,
// the newest. When there is none the error wraps ErrNoReadyPod and says
// how many pods match and why the newest is not ready.
func (d *PodDialer) ReadyPod(ctx context.Context, selector string) (string, error) {
	sel, err := labels.Parse(selector)
	if err != nil {
		return "", fmt.Errorf("forward: selector %q: %w", selector, err)
	}
	list, err := d.client.CoreV1().Pods(d.namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return "", fmt.Errorf("forward: listing pods %s in %s: %w", selector, d.namespace, err)
	}
	pods := make([]*corev1.Pod, len(list.Items))
	for i := range list.Items {
		pods[i] = &list.Items[i]
	}
	if p := pickPod(pods, sel); p != nil {
		return p.Name, nil
	}
	if len(pods) == 0 {
		return "", fmt.Errorf("%w %s in namespace %s", ErrNoPodMatches, selector, d.namespace)
	}
	var newest *corev1.Pod
	for _, p := range pods {
		if newest == nil || newer(p, newest) {
			newest = p
		}
	}
	return "", fmt.Errorf("%w: %d pod(s) match %s in namespace %s; the newest, %s, is %s",
		ErrNoReadyPod, len(pods), selector, d.namespace, newest.Name, notReadyReason(newest))
}

// notReadyReason says in a few words why p is not ready.
func notReadyReason(p *corev1.Pod) string {
	if p.DeletionTimestamp != nil {
		return "being deleted"
	}
	for _, cs := range p.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil && w.Reason != "" {
			if w.Message != "" {
				return fmt.Sprintf("%s (%s: %s)", strings.ToLower(string(p.Status.Phase)), w.Reason, w.Message)
			}
			return fmt.Sprintf("%s (%s)", strings.ToLower(string(p.Status.Phase)), w.Reason)
		}
	}
	for _, c := range p.Status.Conditions {
		if c.Status != corev1.ConditionTrue && c.Message != "" {
			return fmt.Sprintf("%s (%s)", strings.ToLower(string(p.Status.Phase)), c.Message)
		}
	}
	return fmt.Sprintf("%s, not ready", strings.ToLower(string(p.Status.Phase)))
}

// DialPod opens one connection to port of the named pod. ctx bounds the
// dial only, not the connection. The connection is a *PodConn.
//
// The pod side's refusal (nothing listens on port) arrives after the dial:
// the first Read then fails with an error saying so.
func (d *PodDialer) DialPod(ctx context.Context, pod string, port int32) (net.Conn, error) {
	// A tunnel whose streams are not accepted within hedgeAfter (an API
	// server or kubelet that is slow or stuck) gets a second one beside it
	// (and so on, up to openAttempts): the first accepted carries the
	// connection, the others are dropped. A tunnel is given up after
	// openTimeout, except the last, which waits as long as ctx allows.
	// (About one tunnel in four to the builder used to go unaccepted: not
	// the server's doing but the reader's, held writing buildkitd's
	// greeting into this pipe ahead of the replies; see
	// frameConn.deliverEarly.)
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	type attempt struct {
		c      *PodConn
		err    error
		dialed bool // the tunnel was dialled: its streams were not accepted
	}
	results := make(chan attempt, openAttempts) // never blocks: one result per attempt
	try := func(last bool) {
		t, err := d.dial(actx, pod)
		if err != nil {
			results <- attempt{err: fmt.Errorf("forward: pod %s/%s: %w", d.namespace, pod, err)}
			return
		}
		var wg sync.WaitGroup
		t.start(&wg, func() {})
		app, local := net.Pipe()
		c := &PodConn{Conn: app, t: t, local: local, pod: pod, port: port, ended: make(chan struct{})}
		octx, ocancel := context.WithTimeout(actx, d.openTimeout())
		if last {
			ocancel()
			octx, ocancel = context.WithCancel(actx)
		}
		events, err := t.open(octx, local, port, &c.st)
		ocancel()
		if err != nil {
			t.kill()
			_ = app.Close()
			_ = local.Close()
			results <- attempt{err: err, dialed: true}
			return
		}
		go c.watch(events)
		results <- attempt{c: c}
	}
	started, pending := 0, 0
	launch := func() {
		started++
		pending++
		go try(started == openAttempts)
	}
	launch()
	hedge := time.NewTimer(d.hedgeAfter())
	defer hedge.Stop()
	var lastErr error
	for pending > 0 {
		select {
		case a := <-results:
			pending--
			if a.err == nil {
				// the others, if they are accepted after all, are closed
				go func(n int) {
					for range n {
						if o := <-results; o.c != nil {
							_ = o.c.Close()
						}
					}
				}(pending)
				return a.c, nil
			}
			lastErr = a.err
			if !a.dialed {
				if pending == 0 {
					return nil, lastErr // the tunnel could not be dialled at all
				}
				continue
			}
			if pending == 0 && started < openAttempts && ctx.Err() == nil {
				launch()
				hedge.Reset(d.hedgeAfter())
			}
		case <-hedge.C:
			if started < openAttempts {
				launch()
				hedge.Reset(d.hedgeAfter())
			}
		}
	}
	return nil, fmt.Errorf("forward: pod %s/%s port %d: %w", d.namespace, pod, port, lastErr)
}

const openAttempts = 4

func (d *PodDialer) openTimeout() time.Duration {
	if d.open > 0 {
		return d.open
	}
	return 3 * time.Second
}

// hedgeAfter is how long a tunnel's streams may go unanswered before a
// second tunnel is tried beside it: a third of openTimeout.
func (d *PodDialer) hedgeAfter() time.Duration {
	return d.openTimeout() / 3
}

// Dial opens one connection to port of the pod ReadyPod picks for
// selector.
func (d *PodDialer) Dial(ctx context.Context, selector string, port int32) (net.Conn, error) {
	pod, err := d.ReadyPod(ctx, selector)
	if err != nil {
		return nil, err
	}
	return d.DialPod(ctx, pod, port)
}

// PodConn is a connection to a port of a pod, from PodDialer.
type PodConn struct {
	net.Conn // the application's end of an in-memory pipe; the tunnel carries the other end

	t          tunnel
	local      net.Conn
	pod        string
	port       int32
	st         counters
	ended      chan struct{} // closed once the tunnel is done with the connection
	mu         sync.Mutex
	err        error // why the pod side ended the connection, when not cleanly
	closeOnce  sync.Once
	closeError error
}

// watch follows the connection's events: the pod side's end of the data,
// an error it reports, a broken stream or a dead tunnel end the pipe. Once
// the connection is over the tunnel is closed.
func (c *PodConn) watch(events <-chan event) {
	defer close(c.ended)
	var s connState
	closed := c.t.done()
	for !s.settled() && !s.abort {
		select {
		case ev := <-events:
			s.during(ev)
			c.check(&s, ev)
			if ev.kind == podEnd {
				// The error stream's end (with the pod side's error, if
				// any) can come after the data's: wait for it a little,
				// so that a refusal reads as one, not as a clean end.
				s.awaitErrEnd(events, closed, nil, func(ev event) { c.check(&s, ev) })
				if s.abort && dead(c.t) {
					c.fail(fmt.Errorf("forward: pod %s port %d: %w", c.pod, c.port, errTunnelClosed))
				}
				// No half-close on a pipe: the pod side's end is the end.
				_ = c.local.Close()
			}
		case <-closed:
			c.fail(fmt.Errorf("forward: pod %s port %d: %w", c.pod, c.port, errTunnelClosed))
			s.abort = true
			closed = nil
		}
	}
	_ = c.local.Close()
	c.t.kill()
	// The tunnel is dead: the remaining events arrive at once.
	for !s.settled() {
		ev := <-events
		s.after(ev)
	}
	c.t.release(false)
}

// check ends the connection in error on an event that says it failed: an
// error the pod side reported, a reset stream, a failed copy from the pod
// or an unreadable error stream (the tunnel died).
func (c *PodConn) check(s *connState, ev event) {
	switch {
	case s.podErr != "":
		c.fail(fmt.Errorf("forward: pod %s port %d: %s", c.pod, c.port, podErrText(s.podErr, c.port)))
	case ev.kind == broken:
		c.fail(fmt.Errorf("forward: pod %s port %d: the connection was reset", c.pod, c.port))
	case (ev.kind == podEnd || ev.kind == errEnd) && ev.err != nil:
		c.fail(fmt.Errorf("forward: pod %s port %d: %w", c.pod, c.port, ev.err))
	}
}

func (c *PodConn) fail(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
	_ = c.local.Close()
}

// Read reads what the pod side sent. When the pod side ended the
// connection in error (nothing listening on the port, a dead tunnel) the
// error says so instead of io.EOF.
func (c *PodConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if err == io.EOF || errors.Is(err, io.ErrClosedPipe) {
		c.mu.Lock()
		if c.err != nil {
			err = c.err
		}
		c.mu.Unlock()
	}
	return n, err
}

// Close closes the connection and its tunnel.
func (c *PodConn) Close() error {
	c.closeOnce.Do(func() {
		c.closeError = c.Conn.Close()
		c.t.kill()
	})
	return c.closeError
}

// RemoteAddr names the pod and port.
func (c *PodConn) RemoteAddr() net.Addr { return podAddr{c.pod, c.port} }

// Sent returns the bytes written to the pod so far; Received those read
// from it.
func (c *PodConn) Sent() int64     { return c.st.toPod.Load() }
func (c *PodConn) Received() int64 { return c.st.fromPod.Load() }

type podAddr struct {
	pod  string
	port int32
}

func (a podAddr) Network() string { return "portforward" }
func (a podAddr) String() string  { return fmt.Sprintf("pod/%s:%d", a.pod, a.port) }
