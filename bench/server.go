package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/dynamic"

	"github.com/ergomake/ergomake/internal/forward"
	"github.com/ergomake/ergomake/internal/kube"
	"github.com/ergomake/ergomake/internal/render"
	"github.com/ergomake/ergomake/internal/server"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// The paths of the server group: the ergomake server (its handler in this process, on the host,
// which reaches pod IPs on the cluster bridge, as a server pod reaches them inside the cluster),
// ergomake's forwarder through the API server, kubectl port-forward and direct TCP.
const (
	sServer = iota
	sAPI
	sKube
	sDirect
	nServerPaths
)

var serverPathNames = [nServerPaths]string{"server", "API server", "kubectl", "direct"}

// serverEnv is the environment of the server group: a server user's namespace holding an
// ErgomakeEnv of one service of the test image that the operator runs.
type serverEnv struct {
	ns     string
	pod    *corev1.Pod
	routed map[int]string // local addresses of the routed forwarder (through the server)
	api    map[int]string // of the forwarder through the API server
	kube   *kubeFwd
}

func (s *serverEnv) addr(p, port int) string {
	switch p {
	case sServer:
		return s.routed[port]
	case sAPI:
		return s.api[port]
	case sKube:
		return s.kube.addr(port)
	default:
		return net.JoinHostPort(s.pod.Status.PodIP, strconv.Itoa(port))
	}
}

// serverPath measures the server path (issue 12) beside the API-server path, kubectl and direct
// TCP, in the same runs, rotating the order: one-connection download and upload, and new
// connection + GET latency.
func (b *bench) serverPath(ctx context.Context, res *results) error {
	s, err := b.setupServer(ctx)
	if err != nil {
		return err
	}
	c := b.c
	sz := fmtSize(c.size)
	rows := func(name, unit string, prec int, tgt target) [2]*row {
		return [2]*row{
			res.row("server path (in-process): "+name, unit, prec, tgt),
			res.row("API-server path, same run: "+name, unit, prec, target{}),
		}
	}
	down := rows("1 conn download "+sz, "MiB/s", 1, target{ratioAtLeast, 2, "≥ 2× kubectl"})
	up := rows("1 conn upload "+sz, "MiB/s", 1, target{ratioAtLeast, 2, "≥ 2× kubectl"})
	conn50 := rows(fmt.Sprintf("new conn + GET p50 (n=%d)", c.connN), "ms", 2, target{ratioAtMost, 0.5, "≤ 0.5× kubectl"})
	conn99 := rows(fmt.Sprintf("new conn + GET p99 (n=%d)", c.connN), "ms", 2, target{})
	// A measure of the server or API-server path goes to its row's ergomake column; kubectl's and
	// direct's go to both rows.
	add := func(r [2]*row, p int, v float64) {
		switch p {
		case sServer:
			r[0].add(pErgo, v)
		case sAPI:
			r[1].add(pErgo, v)
		case sKube:
			r[0].add(pKube, v)
			r[1].add(pKube, v)
		default:
			r[0].add(pDirect, v)
			r[1].add(pDirect, v)
		}
	}
	ensureKube := func() error {
		if s.kube != nil && s.kube.alive() {
			return nil
		}
		s.kube.stop()
		k, err := startKubeFwd(ctx, c.kubectl, c.kubeconfig, s.ns, "pod/"+s.pod.Name, []int{httpPort})
		if err != nil {
			return err
		}
		s.kube = k
		return nil
	}
	b.cleanups = append(b.cleanups, func() { s.kube.stop() })
	if err := ensureKube(); err != nil {
		return err
	}
	for p := range nServerPaths {
		if err := waitHTTP(ctx, s.addr(p, httpPort), 60*time.Second); err != nil {
			return fmt.Errorf("%s path: %w", serverPathNames[p], err)
		}
	}
	for r := range c.runs {
		var ord [nServerPaths]int
		for i := range ord {
			ord[i] = (r + i) % nServerPaths
		}
		b.logf("server run %d/%d (order %s, %s, %s, %s)", r+1, c.runs, serverPathNames[ord[0]], serverPathNames[ord[1]], serverPathNames[ord[2]], serverPathNames[ord[3]])
		for _, dir := range []string{"download", "upload"} {
			for _, p := range ord {
				if err := ensureKube(); err != nil {
					return err
				}
				start := time.Now()
				var err error
				if dir == "download" {
					err = download(ctx, s.addr(p, httpPort), c.size, nil, nil)
				} else {
					err = upload(ctx, s.addr(p, httpPort), c.size)
				}
				if err != nil {
					return fmt.Errorf("%s path %s: %w", serverPathNames[p], dir, err)
				}
				rate := float64(c.size) / mib / time.Since(start).Seconds()
				if dir == "download" {
					add(down, p, rate)
				} else {
					add(up, p, rate)
				}
				if c.verbose {
					b.logf("  %s %s: %.1f MiB/s", serverPathNames[p], dir, rate)
				}
			}
		}
		for _, p := range ord {
			if err := ensureKube(); err != nil {
				return err
			}
			lat, err := connLatency(ctx, s.addr(p, httpPort), c.connN)
			if err != nil {
				return fmt.Errorf("%s path new connections: %w", serverPathNames[p], err)
			}
			add(conn50, p, percentile(lat, 50))
			add(conn99, p, percentile(lat, 99))
		}
	}
	res.notef("server path: `ergomake server`'s handler (internal/server) run in the benchmark's process on the host, over TLS on loopback with the generated CA pinned, with the installed server's default per-token limits (each new connection is one dial request, in a budget of 200 dials/s, burst 400, apart from the other requests' 10/s, burst 40); the host reaches the pod's IP on the cluster bridge as a server pod reaches it inside the cluster. The local side is forward.NewRouted, each connection one `GET /v1/envs/{name}/dial` upgrade on a new TLS connection resuming the session. The API-server path is ergomake's forwarder through pods/portforward (forward.New) to the same pod, measured in the same runs (its rows' ergomake column); kubectl and direct are shared by both rows")
	return nil
}

// setupServer creates the server group's environment and the three forwards to its pod.
func (b *bench) setupServer(ctx context.Context) (*serverEnv, error) {
	dyn, err := dynamic.NewForConfig(b.cfg)
	if err != nil {
		return nil, err
	}
	kc, err := kube.New(kube.Options{Kubeconfig: b.c.kubeconfig})
	if err != nil {
		return nil, err
	}
	srvNS := "ergomake-bench-srv-" + randSuffix()
	b.logf("setting up the server path: tokens in %s", srvNS)
	if _, err := b.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: srvNS,
		Labels: map[string]string{"ergomake.dev/bench": "true"}}}, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("creating namespace %s: %w", srvNS, err)
	}
	b.cleanups = append(b.cleanups, func() {
		dctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		_ = deleteNamespaceWait(dctx, b.cs, srvNS)
	})
	tenancy := &server.Tenancy{Kube: b.cs, Dynamic: dyn, Namespace: srvNS}
	store := &server.TokenStore{Client: b.cs, Namespace: srvNS, CacheTTL: 5 * time.Second}
	user, project := "bench"+randSuffix(), "bench"
	ns, err := tenancy.EnsureNamespace(ctx, user, project)
	if err != nil {
		return nil, err
	}
	b.cleanups = append(b.cleanups, func() {
		dctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		_, _ = tenancy.DeleteEnv(dctx, user, project)
		_ = deleteNamespaceWait(dctx, b.cs, ns)
	})
	env := &v1alpha1.ErgomakeEnv{
		ObjectMeta: metav1.ObjectMeta{Name: kube.EnvName(project), Namespace: ns},
		Spec: v1alpha1.EnvSpec{Project: project, Services: []v1alpha1.ServiceSpec{{
			Name: "app", ServiceName: "app", Image: testImage, ImagePullPolicy: "IfNotPresent",
			Environment: []v1alpha1.EnvVar{{Name: "SERVICE", Value: "app"}, {Name: "PORTS", Value: strconv.Itoa(httpPort)}},
			Ports:       []v1alpha1.PortSpec{{Name: "http", Target: httpPort, Protocol: "TCP", Publish: true}},
		}}},
	}
	if _, err := kc.ApplyEnv(ctx, env); err != nil {
		return nil, fmt.Errorf("applying the server path's environment: %w", err)
	}
	sel := render.SelectorLabels(env, "app")
	s := &serverEnv{ns: ns}
	if s.pod, err = waitReadyPod(ctx, b, ns, sel); err != nil {
		return nil, err
	}

	// The server, in this process, over TLS with a generated CA.
	ca, err := server.NewCA(time.Now())
	if err != nil {
		return nil, err
	}
	chain, key, err := ca.Issue(server.ServingHosts(srvNS), time.Now())
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(chain, key)
	if err != nil {
		return nil, err
	}
	h := server.NewHandler(server.HandlerOptions{Auth: store, Tenancy: tenancy, Audit: slog.New(slog.DiscardHandler),
		// The installed server's limits: each new connection is one dial request.
		Limiter:     &server.RateLimiter{Rate: server.DefaultRate, Burst: server.DefaultBurst},
		DialLimiter: &server.RateLimiter{Rate: server.DefaultDialRate, Burst: server.DefaultDialBurst}})
	hs := server.NewHTTPServer(h, func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil })
	hs.ErrorLog = slog.NewLogLogger(slog.DiscardHandler, slog.LevelWarn)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go func() { _ = hs.ServeTLS(ln, "", "") }()
	b.cleanups = append(b.cleanups, func() { _ = hs.Close() })
	tok, _, err := store.Create(ctx, user, time.Hour)
	if err != nil {
		return nil, err
	}
	client, err := server.NewClient(&server.Credentials{URL: "https://" + ln.Addr().String(), Token: tok, CA: string(ca.CertPEM)})
	if err != nil {
		return nil, err
	}
	logf := func(format string, args ...any) {
		if b.c.verbose {
			b.logf(format, args...)
		}
	}
	routed := forward.NewRouted(func(ctx context.Context, p forward.Port) (net.Conn, error) {
		return client.Dial(ctx, project, p.Service, p.RemotePort)
	}, forward.Options{Logf: logf})
	api, err := forward.New(b.cfg, ns, forward.Options{Logf: logf})
	if err != nil {
		return nil, err
	}
	s.routed, s.api = map[int]string{}, map[int]string{}
	for _, f := range []struct {
		fwd   *forward.Forwarder
		addrs map[int]string
	}{{routed, s.routed}, {api, s.api}} {
		bs, err := f.fwd.Bind([]forward.Port{{Service: "app", Selector: sel, RemotePort: httpPort, HostIP: "127.0.0.1"}})
		if err != nil {
			return nil, err
		}
		f.addrs[httpPort] = bs[0].Addrs[0]
		fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		done := make(chan struct{})
		go func() {
			_ = f.fwd.Serve(fctx)
			close(done)
		}()
		b.cleanups = append(b.cleanups, func() {
			cancel()
			<-done
		})
	}
	return s, nil
}

// waitReadyPod waits (up to 3 minutes) for a ready pod matching sel in ns.
func waitReadyPod(ctx context.Context, b *bench, ns string, sel map[string]string) (*corev1.Pod, error) {
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		pods, err := b.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(sel).String()})
		if err == nil {
			for i := range pods.Items {
				if p := &pods.Items[i]; podReady(p) {
					return p, nil
				}
			}
		}
		if !sleepCtx(ctx, 200*time.Millisecond) {
			return nil, ctx.Err()
		}
	}
	return nil, errors.New("no ready pod of the server path's environment after 3m")
}
