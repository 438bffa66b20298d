package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/ergomake/ergomake/internal/clustersettings"
	"github.com/ergomake/ergomake/internal/forward"
	"github.com/ergomake/ergomake/internal/kube"
	"github.com/ergomake/ergomake/internal/render"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// UpgradeProtocol is the HTTP/1.1 Upgrade token of the dial routes: after the 101 answer the
// connection carries the raw bytes of one TCP connection both ways, each side's end passed on as
// a half-close (TLS close_notify).
const UpgradeProtocol = "ergomake-tcp"

// Defaults of the streaming routes.
const (
	// DefaultPodWait bounds how long a dial waits for a ready pod of the service.
	DefaultPodWait = 30 * time.Second
	// watchLinger keeps a namespace's pod watch after its last connection ended, so that the next
	// dials find it synced.
	watchLinger = time.Minute
	// ownerRecheck is how old a namespace's ownership check may get before a dial checks again.
	ownerRecheck   = 30 * time.Second
	podDialTimeout = 10 * time.Second
)

// streams is the state of the streaming routes: one watch of pods and environments per
// namespace, shared by every dial into it, which ends the connections of a pod that went away.
type streams struct {
	t           *Tenancy
	builderDial func(ctx context.Context) (net.Conn, error)
	podWait     time.Duration
	linger      time.Duration

	mu      sync.Mutex
	watches map[string]*nsWatch
}

func newStreams(t *Tenancy, builder func(ctx context.Context) (net.Conn, error), podWait time.Duration) *streams {
	if podWait <= 0 {
		podWait = DefaultPodWait
	}
	return &streams{t: t, builderDial: builder, podWait: podWait, linger: watchLinger, watches: map[string]*nsWatch{}}
}

// streamRoutes adds the streaming routes (docs/server-api.md, "Streams").
func (h *Handler) streamRoutes(mux *http.ServeMux) {
	mux.Handle("GET /v1/envs/{name}/dial", h.action("envs.dial", h.dial))
	mux.Handle("GET /v1/envs/{name}/logs", h.action("envs.logs", h.logs))
	mux.Handle("GET /v1/builder/dial", h.action("builder.dial", h.dialBuilder))
}

// nsWatch watches the pods and the environment of one user namespace.
type nsWatch struct {
	s      *streams
	ns     string
	user   string
	cancel context.CancelFunc
	synced chan struct{} // closed once both caches synced (or the watch stopped)
	pods   corelisters.PodNamespaceLister
	envs   cache.GenericNamespaceLister

	// guarded by s.mu
	refs    int
	idle    *time.Timer
	checked time.Time

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every pod event
	conns   map[types.UID]map[*carried]struct{}
	envKey  string // UID and resourceVersion of envLast
	envLast *v1alpha1.ErgomakeEnv
}

// carried is one dialled connection: both ends, closed with a reset when its pod goes away.
type carried struct {
	client net.Conn
	pod    net.Conn
	once   sync.Once
	lost   bool
}

func (c *carried) abort(lost bool) {
	c.once.Do(func() {
		c.lost = lost
		resetConn(c.client)
		resetConn(c.pod)
	})
}

// acquire returns the watch of user's namespace ns, starting it when there is none, once it is
// synced. ErrNotFound when the namespace is not user's. release it when done.
func (s *streams) acquire(ctx context.Context, user, ns string) (*nsWatch, error) {
	s.mu.Lock()
	w := s.watches[ns]
	if w != nil && w.user != user {
		s.mu.Unlock()
		return nil, ErrNotFound
	}
	recheck := w == nil || time.Since(w.checked) > ownerRecheck
	s.mu.Unlock()
	if recheck {
		n, err := s.t.Kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if apierrors.IsNotFound(err) || (err == nil && !ownedBy(n, user)) {
			return nil, ErrNotFound
		}
		if err != nil {
			return nil, fmt.Errorf("reading namespace %s: %w", ns, err)
		}
	}
	s.mu.Lock()
	w = s.watches[ns]
	if w == nil {
		w = s.start(ns, user)
		s.watches[ns] = w
	}
	if recheck {
		w.checked = time.Now()
	}
	w.refs++
	if w.idle != nil {
		w.idle.Stop()
		w.idle = nil
	}
	s.mu.Unlock()
	select {
	case <-w.synced:
		return w, nil
	case <-ctx.Done():
		s.release(w)
		return nil, ctx.Err()
	}
}

// release drops a reference; the last one stops the watch after the linger time.
// acquireEnv is acquire of the namespace of user's environment name, and that environment
// (ErrNotFound when user has none of that name). The caller releases the watch.
func (s *streams) acquireEnv(ctx context.Context, user, name string) (*nsWatch, *v1alpha1.ErgomakeEnv, error) {
	w, err := s.acquire(ctx, user, Namespace(user, name))
	if err != nil {
		return nil, nil, err
	}
	env, err := w.env(name)
	if err == nil && env == nil {
		err = ErrNotFound
	}
	if err != nil {
		s.release(w)
		return nil, nil, err
	}
	return w, env, nil
}

func (s *streams) release(w *nsWatch) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w.refs--
	if w.refs > 0 {
		return
	}
	w.idle = time.AfterFunc(s.linger, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if w.refs == 0 && s.watches[w.ns] == w {
			delete(s.watches, w.ns)
			w.cancel()
		}
	})
}

// start begins watching ns. s.mu is held.
func (s *streams) start(ns, user string) *nsWatch {
	ctx, cancel := context.WithCancel(context.Background())
	w := &nsWatch{s: s, ns: ns, user: user, cancel: cancel, synced: make(chan struct{}),
		changed: make(chan struct{}), conns: map[types.UID]map[*carried]struct{}{}}
	pf := informers.NewSharedInformerFactoryWithOptions(s.t.Kube, 0, informers.WithNamespace(ns),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = v1alpha1.LabelEnv }))
	podInf := pf.Core().V1().Pods()
	w.pods = podInf.Lister().Pods(ns)
	_, _ = podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { w.notify() },
		UpdateFunc: func(_, obj any) { w.podEvent(obj, false) },
		DeleteFunc: func(obj any) { w.podEvent(obj, true) },
	})
	df := dynamicinformer.NewFilteredDynamicSharedInformerFactory(s.t.Dynamic, 0, ns, nil)
	envInf := df.ForResource(v1alpha1.GroupVersionResource)
	w.envs = envInf.Lister().ByNamespace(ns)
	envSynced := envInf.Informer().HasSynced
	pf.Start(ctx.Done())
	df.Start(ctx.Done())
	go func() {
		cache.WaitForCacheSync(ctx.Done(), podInf.Informer().HasSynced, envSynced)
		close(w.synced)
		<-ctx.Done()
		pf.Shutdown()
		df.Shutdown()
		w.mu.Lock()
		var all []*carried
		for _, m := range w.conns {
			for c := range m {
				all = append(all, c)
			}
		}
		w.mu.Unlock()
		for _, c := range all {
			c.abort(false)
		}
	}()
	return w
}

func (w *nsWatch) notify() {
	w.mu.Lock()
	close(w.changed)
	w.changed = make(chan struct{})
	w.mu.Unlock()
}

// podEvent ends the connections of a pod that is gone (deleted, or finished).
func (w *nsWatch) podEvent(obj any, deleted bool) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if ok && (deleted || forward.PodFinished(pod)) {
		w.mu.Lock()
		m := w.conns[pod.UID]
		delete(w.conns, pod.UID)
		w.mu.Unlock()
		for c := range m {
			c.abort(true)
		}
	}
	w.notify()
}

// add registers a connection to pod, unless the pod is gone already.
func (w *nsWatch) add(pod *corev1.Pod, c *carried) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if p, err := w.pods.Get(pod.Name); err != nil || p.UID != pod.UID || forward.PodFinished(p) {
		return false
	}
	if w.conns[pod.UID] == nil {
		w.conns[pod.UID] = map[*carried]struct{}{}
	}
	w.conns[pod.UID][c] = struct{}{}
	return true
}

func (w *nsWatch) remove(uid types.UID, c *carried) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.conns[uid], c)
	if len(w.conns[uid]) == 0 {
		delete(w.conns, uid)
	}
}

// env returns the environment of project name in the namespace (nil when there is none).
func (w *nsWatch) env(name string) (*v1alpha1.ErgomakeEnv, error) {
	objs, err := w.envs.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	var pick *unstructured.Unstructured
	for _, o := range objs {
		u, ok := o.(*unstructured.Unstructured)
		if !ok {
			continue
		}
		if u.GetName() == kube.EnvName(name) || pick == nil {
			pick = u
		}
	}
	if pick == nil {
		return nil, nil
	}
	key := string(pick.GetUID()) + "/" + pick.GetResourceVersion()
	w.mu.Lock()
	if w.envKey == key {
		env := w.envLast
		w.mu.Unlock()
		return env, nil
	}
	w.mu.Unlock()
	env, err := kube.EnvFromUnstructured(pick) // read only by the callers: shared until it changes
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	w.envKey, w.envLast = key, env
	w.mu.Unlock()
	return env, nil
}

// waitPod returns the pod a new connection of sel should reach, waiting up to timeout for one to be
// ready; nil when none was.
func (w *nsWatch) waitPod(ctx context.Context, sel labels.Selector, timeout time.Duration) *corev1.Pod {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		w.mu.Lock()
		ch := w.changed
		w.mu.Unlock()
		pods, _ := w.pods.List(sel)
		if p := forward.PickPod(pods, sel); p != nil {
			return p
		}
		select {
		case <-ch:
		case <-timer.C:
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}

// noPodReason says why sel has no ready pod.
func (w *nsWatch) noPodReason(sel labels.Selector, service string) string {
	pods, _ := w.pods.List(sel)
	if len(pods) == 0 {
		return fmt.Sprintf("service %s has no pod", service)
	}
	sort.Slice(pods, func(i, j int) bool { return pods[i].CreationTimestamp.After(pods[j].CreationTimestamp.Time) })
	return fmt.Sprintf("service %s has %d pod(s), none ready; the newest, %s, is %s", service, len(pods), pods[0].Name, forward.NotReadyReason(pods[0]))
}

// servicePort checks that port is a TCP port env declares for service (compose ports or expose)
// and returns the service's compose name.
func servicePort(env *v1alpha1.ErgomakeEnv, service string, port int32) (string, error) {
	for _, s := range env.Spec.Services {
		if s.Name != service {
			continue
		}
		var declared []string
		for _, p := range append(append([]v1alpha1.PortSpec{}, s.Ports...), s.Expose...) {
			if p.Protocol != "" && !strings.EqualFold(p.Protocol, "TCP") {
				continue
			}
			if p.Target == port {
				return s.Name, nil
			}
			declared = append(declared, strconv.Itoa(int(p.Target)))
		}
		if len(declared) == 0 {
			return "", errorf(http.StatusForbidden, "service %s declares no TCP port: only declared ports (compose ports and expose) can be dialled", service)
		}
		return "", errorf(http.StatusForbidden, "port %d is not a port of service %s (declared: %s): only declared ports can be dialled", port, service, strings.Join(declared, ", "))
	}
	return "", errorf(http.StatusNotFound, "environment %s has no service %q", env.Spec.Project, service)
}

func (h *Handler) dial(c *call) (any, error) {
	name := c.r.PathValue("name")
	c.env = name
	if err := checkName(name); err != nil {
		return nil, err
	}
	q := c.r.URL.Query()
	service := q.Get("service")
	port, err := strconv.Atoi(q.Get("port"))
	if service == "" || err != nil || port < 1 || port > 65535 {
		return nil, errorf(http.StatusBadRequest, "dial wants ?service=NAME&port=N (a TCP port, 1-65535)")
	}
	if err := wantUpgrade(c.r); err != nil {
		return nil, err
	}
	ctx := c.r.Context()
	w, env, err := h.streams.acquireEnv(ctx, c.who.User, name)
	if err != nil {
		return nil, err
	}
	defer h.streams.release(w)
	if _, err := servicePort(env, service, int32(port)); err != nil {
		return nil, err
	}
	sel := labels.SelectorFromSet(render.SelectorLabels(env, service))
	pod := w.waitPod(ctx, sel, h.streams.podWait)
	if pod == nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, errorf(http.StatusServiceUnavailable, "no ready pod after %s: %s", h.streams.podWait, w.noPodReason(sel, service))
	}
	d := net.Dialer{Timeout: podDialTimeout}
	pc, err := d.DialContext(ctx, "tcp", net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(port)))
	if err != nil {
		msg := err.Error()
		if errors.Is(err, syscall.ECONNREFUSED) {
			msg = fmt.Sprintf("connection refused: nothing listens on port %d inside the pod", port)
		}
		return nil, errorf(http.StatusBadGateway, "service %s: pod %s port %d: %s", service, pod.Name, port, msg)
	}
	conn, rest, err := upgrade(c)
	if err != nil {
		_ = pc.Close()
		return nil, err
	}
	cr := &carried{client: conn, pod: pc}
	if !w.add(pod, cr) { // gone meanwhile
		cr.abort(true)
		c.note = "pod " + pod.Name + " went away"
		return streamed{}, nil
	}
	defer w.remove(pod.UID, cr)
	ok := splice(ctx, conn, rest, pc, cr.abort)
	if cr.lost {
		c.note = "pod " + pod.Name + " went away: connection ended"
	} else if !ok {
		c.note = "pod " + pod.Name + ": connection ended in error"
	}
	return streamed{}, nil
}

func (h *Handler) dialBuilder(c *call) (any, error) {
	if err := wantUpgrade(c.r); err != nil {
		return nil, err
	}
	if h.streams.builderDial == nil {
		return nil, errorf(http.StatusServiceUnavailable, "this server has no builder configured: install the builder (ergomake install) or build images elsewhere")
	}
	ctx := c.r.Context()
	bc, err := h.streams.builderDial(ctx)
	if err != nil {
		var ae *apiError
		if errors.As(err, &ae) {
			return nil, err
		}
		status := http.StatusBadGateway
		if errors.Is(err, forward.ErrNoReadyPod) {
			status = http.StatusServiceUnavailable
		}
		return nil, errorf(status, "the builder: %v", err)
	}
	conn, rest, err := upgrade(c)
	if err != nil {
		_ = bc.Close()
		return nil, err
	}
	once := sync.Once{}
	if !splice(ctx, conn, rest, bc, func(bool) { once.Do(func() { resetConn(conn); _ = bc.Close() }) }) {
		c.note = "builder connection ended in error"
	}
	return streamed{}, nil
}

// wantUpgrade checks that r asks for the ergomake-tcp upgrade over HTTP/1.1.
func wantUpgrade(r *http.Request) error { return wantUpgradeTo(r, "dial", UpgradeProtocol) }

// wantUpgradeTo checks that r (of the route what) asks for the upgrade to proto over HTTP/1.1.
func wantUpgradeTo(r *http.Request, what, proto string) error {
	if r.ProtoMajor != 1 {
		return errorf(http.StatusHTTPVersionNotSupported, "%s needs HTTP/1.1 (Upgrade: %s)", what, proto)
	}
	if !headerHas(r.Header, "Connection", "upgrade") || !headerHas(r.Header, "Upgrade", proto) {
		return errorf(http.StatusUpgradeRequired, "%s needs Connection: Upgrade and Upgrade: %s", what, proto)
	}
	return nil
}

func headerHas(h http.Header, key, token string) bool {
	for _, v := range h.Values(key) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// upgrade answers 101 and takes the connection over, without the server's deadlines. rest holds
// bytes the client sent after its request (none, normally).
func upgrade(c *call) (net.Conn, []byte, error) { return upgradeTo(c, UpgradeProtocol, nil) }

// upgradeTo is upgrade to proto, with the extra headers of the 101 answer.
func upgradeTo(c *call, proto string, header http.Header) (net.Conn, []byte, error) {
	conn, brw, err := http.NewResponseController(c.w).Hijack()
	if err != nil {
		return nil, nil, fmt.Errorf("taking the connection over: %w", err)
	}
	if sr, ok := c.w.(*statusRecorder); ok {
		sr.code = http.StatusSwitchingProtocols
	}
	_ = conn.SetDeadline(time.Time{}) // the server's read/write timeouts are for requests, not streams
	var rest []byte
	if n := brw.Reader.Buffered(); n > 0 {
		rest, _ = brw.Reader.Peek(n)
		rest = append([]byte(nil), rest...)
	}
	var extra strings.Builder
	_ = header.Write(&extra)
	_, err = io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: "+proto+"\r\n"+extra.String()+"\r\n")
	if err != nil {
		_ = conn.Close()
		return nil, nil, err
	}
	return conn, rest, nil
}

// splice copies between the client's upgraded connection and the far side until both directions
// ended, passing each side's end on as a half-close. A failed copy or ctx's end calls abort. It
// returns whether both directions ended cleanly; both are closed on return.
func splice(ctx context.Context, client net.Conn, rest []byte, far net.Conn, abort func(lost bool)) bool {
	type end struct {
		up  bool
		err error
	}
	ends := make(chan end, 2)
	go func() {
		var err error
		if len(rest) > 0 {
			_, err = far.Write(rest)
		}
		if err == nil {
			_, err = io.CopyBuffer(far, onlyReader{client}, make([]byte, 64<<10))
		}
		ends <- end{true, err}
	}()
	go func() {
		_, err := io.CopyBuffer(onlyWriter{client}, onlyReader{far}, make([]byte, 64<<10))
		ends <- end{false, err}
	}()
	stop := context.AfterFunc(ctx, func() { abort(false) })
	defer stop()
	clean := true
	for range 2 {
		e := <-ends
		switch {
		case e.err != nil:
			clean = false
			abort(false)
		case e.up:
			closeWrite(far)
		default:
			closeWrite(client)
		}
	}
	_ = client.Close()
	_ = far.Close()
	return clean
}

// onlyReader and onlyWriter hide ReadFrom/WriteTo, so that io.CopyBuffer uses its buffer (a TLS
// connection's ReadFrom would read in small pieces).
type onlyReader struct{ io.Reader }
type onlyWriter struct{ io.Writer }

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}

// resetConn closes c so that the peer sees a reset (RST), not a clean end.
func resetConn(c net.Conn) {
	if c == nil {
		return
	}
	raw := c
	if nc, ok := c.(interface{ NetConn() net.Conn }); ok {
		raw = nc.NetConn()
	}
	if tc, ok := raw.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
		_ = tc.Close()
	}
	_ = c.Close()
}

// BuilderDialer returns the dial function of GET /v1/builder/dial: a connection to BuildKit's port
// on the newest ready builder pod, through pods/portforward (buildkitd listens on its pod's
// loopback only, so no pod of the cluster reaches it). The builder's selector and port come from
// the cluster settings in namespace, read again at most every 30 seconds.
func BuilderDialer(cfg *rest.Config, t *Tenancy, namespace string, podWait time.Duration) func(ctx context.Context) (net.Conn, error) {
	if podWait <= 0 {
		podWait = DefaultPodWait
	}
	var (
		mu      sync.Mutex
		read    time.Time
		set     clustersettings.Settings
		dialers = map[string]*forward.PodDialer{}
	)
	return func(ctx context.Context) (net.Conn, error) {
		mu.Lock()
		if time.Since(read) > 30*time.Second {
			s, err := clustersettings.Read(ctx, t.Kube, namespace)
			if err != nil {
				mu.Unlock()
				return nil, err
			}
			set, read = s, time.Now()
		}
		s := set
		d := dialers[s.Namespace]
		if d == nil && s.BuilderSelector != "" {
			var err error
			if d, err = forward.NewPodDialer(cfg, s.Namespace); err != nil {
				mu.Unlock()
				return nil, err
			}
			dialers[s.Namespace] = d
		}
		mu.Unlock()
		if s.BuilderSelector == "" || s.BuilderPort == 0 {
			return nil, errorf(http.StatusServiceUnavailable, "this cluster has no builder (installed with --builder-mode none): build images elsewhere and push them to your registry")
		}
		deadline := time.Now().Add(podWait)
		for {
			pod, err := d.ReadyPod(ctx, s.BuilderSelector)
			if err == nil {
				return d.DialPod(ctx, pod, int32(s.BuilderPort))
			}
			if !errors.Is(err, forward.ErrNoReadyPod) || time.Now().After(deadline) {
				return nil, err
			}
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
}
