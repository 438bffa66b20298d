package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/dynamic"

	"github.com/ergomake/ergomake/internal/forward"
	"github.com/ergomake/ergomake/internal/install"
	"github.com/ergomake/ergomake/internal/kube"
	"github.com/ergomake/ergomake/internal/render"
	"github.com/ergomake/ergomake/internal/server"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// The paths of the server group: the ergomake server installed from this tree (`ergomake
// server` pods, 2 replicas, reached at a NodePort on the node's address as a developer reaches
// it), the same server's handler run in this process on the host (context: the server's own cost
// without the NodePort hop and the pods' CPU limits), ergomake's forwarder through the API server,
// kubectl port-forward and direct TCP.
const (
	sInstalled = iota
	sInProc
	sAPI
	sKube
	sDirect
	nServerPaths
)

var serverPathNames = [nServerPaths]string{"installed server", "in-process server", "API server", "kubectl", "direct"}

// serverImage is the operator image built from this tree under a tag of the benchmark's own, so
// that the installed server runs this tree's code without replacing the cluster's other images.
const serverImage = "ergomake.test/ergomake-server:bench"

// serverEnv is the environment of the server group: a server installed in a namespace of its own,
// a server user's namespace holding an ErgomakeEnv of one service of the test image that the
// operator runs, and the forwards to its pod.
type serverEnv struct {
	ns        string
	sel       map[string]string // the pod's labels
	pod       *corev1.Pod
	installed map[int]string // local addresses of the routed forwarder through the installed server
	routed    map[int]string // through the in-process server
	api       map[int]string // of the forwarder through the API server
	kube      *kubeFwd
	cleanups  []func() // run in reverse order at the end of the group
}

func (s *serverEnv) close() {
	for i := len(s.cleanups) - 1; i >= 0; i-- {
		s.cleanups[i]()
	}
	s.cleanups = nil
}

func (s *serverEnv) addr(p, port int) string {
	switch p {
	case sInstalled:
		return s.installed[port]
	case sInProc:
		return s.routed[port]
	case sAPI:
		return s.api[port]
	case sKube:
		return s.kube.addr(port)
	default:
		return net.JoinHostPort(s.pod.Status.PodIP, strconv.Itoa(port))
	}
}

// serverRows are the rows of one measure of the server group: the installed server's (with the
// target), the in-process server's and the API-server path's (context).
type serverRows [3]*row

// add records a measure of path p: the installed, in-process and API-server paths go to their
// row's ergomake column; kubectl's and direct's to every row.
func (r serverRows) add(p int, v float64) {
	switch p {
	case sInstalled, sInProc, sAPI:
		r[p].add(pErgo, v)
	case sKube:
		for _, x := range r {
			x.add(pKube, v)
		}
	default:
		for _, x := range r {
			x.add(pDirect, v)
		}
	}
}

// serverPath measures the server path (issue 12) beside the API-server path, kubectl and direct
// TCP, in the same runs, rotating the order: one-connection download and upload, and new
// connection + GET latency.
func (b *bench) serverPath(ctx context.Context, res *results) error {
	s := &serverEnv{}
	defer s.close() // the installed server is uninstalled at the end of the group
	if err := b.setupServer(ctx, s); err != nil {
		return err
	}
	c := b.c
	sz := fmtSize(c.size)
	rows := func(name, unit string, prec int, tgt target) serverRows {
		return serverRows{
			res.row("server (installed, NodePort): "+name, unit, prec, tgt),
			res.row("server path (in-process): "+name, unit, prec, target{}),
			res.row("API-server path, same run: "+name, unit, prec, target{}),
		}
	}
	down := rows("1 conn download "+sz, "MiB/s", 1, target{ratioAtLeast, 2, "≥ 2× kubectl"})
	up := rows("1 conn upload "+sz, "MiB/s", 1, target{ratioAtLeast, 2, "≥ 2× kubectl"})
	conn50 := rows(fmt.Sprintf("new conn + GET p50 (n=%d)", c.connN), "ms", 2, target{ratioAtMost, 0.5, "≤ 0.5× kubectl"})
	conn99 := rows(fmt.Sprintf("new conn + GET p99 (n=%d)", c.connN), "ms", 2, target{})
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
	s.cleanups = append(s.cleanups, func() { s.kube.stop() })
	if err := ensureKube(); err != nil {
		return err
	}
	for p := range nServerPaths {
		if err := waitHTTP(ctx, s.addr(p, httpPort), 60*time.Second); err != nil {
			return fmt.Errorf("%s path: %w", serverPathNames[p], err)
		}
	}
	retried := map[int]int{} // transfers tried again after an error, by path
	for r := range c.runs {
		var ord [nServerPaths]int
		for i := range ord {
			ord[i] = (r + i) % nServerPaths
		}
		var names []string
		for _, p := range ord {
			names = append(names, serverPathNames[p])
		}
		b.logf("server run %d/%d (order %s)", r+1, c.runs, strings.Join(names, ", "))
		for _, dir := range []string{"download", "upload"} {
			for _, p := range ord {
				if err := ensureKube(); err != nil {
					return err
				}
				var start time.Time
				var err error
				// A transfer that fails is tried once more (the cluster's relay, under load,
				// sometimes drops a port-forward: containerd's "failed to execute portforward");
				// the retries are counted in a note, a second failure ends the group.
				for try := 0; try < 2; try++ {
					if try > 0 {
						retried[p]++
						b.logf("  %s %s failed (%v): trying once more", serverPathNames[p], dir, err)
						// the pod may have been replaced meanwhile (an operator upgrade rolls it)
						if s.pod, err = waitReadyPod(ctx, b, s.ns, s.sel); err != nil {
							return err
						}
						if err := ensureKube(); err != nil {
							return err
						}
						if err := waitHTTP(ctx, s.addr(p, httpPort), 60*time.Second); err != nil {
							return fmt.Errorf("%s path: %w", serverPathNames[p], err)
						}
					}
					start = time.Now()
					if dir == "download" {
						err = download(ctx, s.addr(p, httpPort), c.size, nil, nil)
					} else {
						err = upload(ctx, s.addr(p, httpPort), c.size)
					}
					if err == nil || ctx.Err() != nil {
						break
					}
				}
				if err != nil {
					return fmt.Errorf("%s path %s: %w", serverPathNames[p], dir, err)
				}
				rate := float64(c.size) / mib / time.Since(start).Seconds()
				if dir == "download" {
					down.add(p, rate)
				} else {
					up.add(p, rate)
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
			conn50.add(p, percentile(lat, 50))
			conn99.add(p, percentile(lat, 99))
		}
	}
	if n := retriedNote(retried); n != "" {
		res.notef("server group retries: %s", n)
	}
	res.notef("server (installed, NodePort): `ergomake server` as `ergomake install --server --server-expose nodeport` installs it (2 replicas, the default limits: a dial budget of 200/s per token, burst 400), from this tree's operator image (%s), in a namespace of its own; reached from the host at the NodePort on the node's address, through kube-proxy, over TLS with the CA fingerprint pinned by `ergomake login` (the user's token from `ergomake server token create`); the local side is forward.NewRoutedFirst with the logged-in client's DialFirst (the CLI's forwarder), each connection one `GET /v1/envs/{name}/dial` upgrade on a new TLS connection resuming the session, carrying the connection's first bytes when they come before the answer, and the server pod dials the pod's IP", serverImage)
	res.notef("server path (in-process): the same server's handler (internal/server) run in the benchmark's process on the host, over TLS on loopback with its CA pinned, with the same limits and the same token; the host reaches the pod's IP on the cluster bridge as a server pod reaches it inside the cluster (no NodePort hop, no pod CPU limit, but the server's CPU is the benchmark's). The API-server path is ergomake's forwarder through pods/portforward (forward.New) to the same pod; all three are measured in the same runs (each row's ergomake column), kubectl and direct are shared by the three rows")
	return nil
}

// setupServer installs the server in a namespace of its own, creates a user's environment and
// the four forwards to its pod; s.cleanups undo it all.
func (b *bench) setupServer(ctx context.Context, s *serverEnv) error {
	dyn, err := dynamic.NewForConfig(b.cfg)
	if err != nil {
		return err
	}
	kc, err := kube.New(kube.Options{Kubeconfig: b.c.kubeconfig})
	if err != nil {
		return err
	}
	// The server's own namespace, never ergomake-system (whose server others may be using): its
	// tokens, configuration and certificate, and, as the installed server's, its cluster-scoped
	// RBAC named after it (server.ClusterScopedName).
	srvNS := "ergomake-bench-srv-" + randSuffix()
	b.logf("setting up the server path: the server in %s", srvNS)
	if _, err := b.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: srvNS,
		Labels: map[string]string{"ergomake.dev/bench": "true"}}}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating namespace %s: %w", srvNS, err)
	}
	s.cleanups = append(s.cleanups, func() {
		dctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		_ = deleteNamespaceWait(dctx, b.cs, srvNS)
	})
	info, err := b.installServer(ctx, s, srvNS)
	if err != nil {
		return err
	}

	tenancy := &server.Tenancy{Kube: b.cs, Dynamic: dyn, Namespace: srvNS, EnvRole: server.ClusterScopedName(server.EnvRoleName, srvNS)}
	store := &server.TokenStore{Client: b.cs, Namespace: srvNS, CacheTTL: 5 * time.Second}
	user, project := "bench"+randSuffix(), "bench"
	ns, err := tenancy.EnsureNamespace(ctx, user, project)
	if err != nil {
		return err
	}
	s.cleanups = append(s.cleanups, func() {
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
		return fmt.Errorf("applying the server path's environment: %w", err)
	}
	sel := render.SelectorLabels(env, "app")
	s.ns, s.sel = ns, sel
	if s.pod, err = waitReadyPod(ctx, b, ns, sel); err != nil {
		return err
	}

	// The user's token, as an admin makes it, and their login at the NodePort, pinning the CA.
	out, err := b.ergomakeOutput(ctx, b.tmp, time.Minute, "server", "token", "create", user, "--ttl", "1h", "-n", srvNS)
	if err != nil {
		return err
	}
	tok := strings.TrimSpace(string(out))
	home := filepath.Join(b.tmp, "server-user")
	userEnv := withEnv(b.env(), "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"), "KUBECONFIG="+filepath.Join(home, "no-kubeconfig"))
	if _, err := b.ergomakeEnvOutput(ctx, b.tmp, time.Minute, userEnv, "login", info.URLs[0], "--token", tok, "--ca-fingerprint", info.Fingerprint); err != nil {
		return err
	}
	creds, err := server.LoadCredentials(filepath.Join(home, ".config", "ergomake", server.CredentialsFile))
	if err != nil {
		return err
	}
	installed, err := server.NewClient(creds)
	if err != nil {
		return err
	}
	if who, err := installed.WhoAmI(ctx); err != nil || who.User != user {
		return fmt.Errorf("whoami at the installed server %s: %+v, %v", info.URLs[0], who, err)
	}

	// The same server's handler in this process, over TLS with a CA of its own, the same token.
	ca, err := server.NewCA(time.Now())
	if err != nil {
		return err
	}
	chain, key, err := ca.Issue(server.ServingHosts(srvNS), time.Now())
	if err != nil {
		return err
	}
	cert, err := tls.X509KeyPair(chain, key)
	if err != nil {
		return err
	}
	h := server.NewHandler(server.HandlerOptions{Auth: store, Tenancy: tenancy, Audit: slog.New(slog.DiscardHandler),
		// The installed server's limits: each new connection is one dial request.
		Limiter:     &server.RateLimiter{Rate: server.DefaultRate, Burst: server.DefaultBurst},
		DialLimiter: &server.RateLimiter{Rate: server.DefaultDialRate, Burst: server.DefaultDialBurst}})
	hs := server.NewHTTPServer(h, func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil })
	hs.ErrorLog = slog.NewLogLogger(slog.DiscardHandler, slog.LevelWarn)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go func() { _ = hs.ServeTLS(ln, "", "") }()
	s.cleanups = append(s.cleanups, func() { _ = hs.Close() })
	inproc, err := server.NewClient(&server.Credentials{URL: "https://" + ln.Addr().String(), Token: tok, CA: string(ca.CertPEM)})
	if err != nil {
		return err
	}

	logf := func(format string, args ...any) {
		if b.c.verbose {
			b.logf(format, args...)
		}
	}
	routedVia := func(c *server.Client) *forward.Forwarder {
		return forward.NewRoutedFirst(func(ctx context.Context, p forward.Port, first *forward.First) (net.Conn, error) {
			return c.DialFirst(ctx, project, p.Service, p.RemotePort, first) // as the CLI's forwarder
		}, forward.Options{Logf: logf})
	}
	api, err := forward.New(b.cfg, ns, forward.Options{Logf: logf})
	if err != nil {
		return err
	}
	s.installed, s.routed, s.api = map[int]string{}, map[int]string{}, map[int]string{}
	for _, f := range []struct {
		fwd   *forward.Forwarder
		addrs map[int]string
	}{{routedVia(installed), s.installed}, {routedVia(inproc), s.routed}, {api, s.api}} {
		bs, err := f.fwd.Bind([]forward.Port{{Service: "app", Selector: sel, RemotePort: httpPort, HostIP: "127.0.0.1"}})
		if err != nil {
			return err
		}
		f.addrs[httpPort] = bs[0].Addrs[0]
		fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		done := make(chan struct{})
		go func() {
			_ = f.fwd.Serve(fctx)
			close(done)
		}()
		s.cleanups = append(s.cleanups, func() {
			cancel()
			<-done
		})
	}
	return nil
}

// installServer builds serverImage from this tree, installs the server in srvNS exposed as a
// NodePort (uninstalled by s.cleanups) and checks that its 2 replicas are ready.
func (b *bench) installServer(ctx context.Context, s *serverEnv, srvNS string) (*install.ServerInfo, error) {
	root, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		return nil, fmt.Errorf("finding the module's folder: %w", err)
	}
	dir := strings.TrimSpace(string(root))
	b.logf("building %s from the working tree", serverImage)
	cmd := exec.CommandContext(ctx, filepath.Join(dir, "hack", "cluster", "image.sh"), "--no-shell", serverImage, "./cmd/ergomake-operator")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building %s: %v\n%s", serverImage, err, out)
	}
	var out bytes.Buffer
	iopts := install.Options{Namespace: srvNS, Image: serverImage, Revision: "bench-" + randSuffix(), Timeout: 3 * time.Minute, Out: &out}
	s.cleanups = append(s.cleanups, func() {
		dctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		var out bytes.Buffer
		opts := iopts
		opts.Out = &out
		if err := install.UninstallServer(dctx, b.cfg, opts, install.ServerOptions{}); err != nil {
			b.logf("uninstalling the server of %s: %v\n%s", srvNS, err, out.String())
		}
	})
	b.logf("installing the server in %s (NodePort)", srvNS)
	info, err := install.InstallServer(ctx, b.cfg, iopts, install.ServerOptions{Expose: install.ExposeNodePort})
	if err != nil {
		return nil, fmt.Errorf("installing the server in %s: %w\n%s", srvNS, err, out.String())
	}
	if len(info.URLs) == 0 || info.Fingerprint == "" {
		return nil, fmt.Errorf("the installed server gave no URL or CA fingerprint: %+v", info)
	}
	d, err := b.cs.AppsV1().Deployments(srvNS).Get(ctx, server.ServiceName, metav1.GetOptions{})
	if err != nil || d.Status.ReadyReplicas != 2 {
		return nil, fmt.Errorf("the server's Deployment in %s: %v, %d of 2 replicas ready", srvNS, err, d.Status.ReadyReplicas)
	}
	b.logf("the server runs 2 replicas at %s", info.URLs[0])
	return info, nil
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

// retriedNote says which paths had transfers tried again after an error ("" when none).
func retriedNote(retried map[int]int) string {
	var parts []string
	for p := range nServerPaths {
		if n := retried[p]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", serverPathNames[p], n))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "transfers that failed and were tried once more (the second try's rate counts): " + strings.Join(parts, ", ")
}
