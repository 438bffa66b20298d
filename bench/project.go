package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"sigs.k8s.io/yaml"
)

// ensureErgomake builds cmd/ergomake from this tree unless -ergomake names a binary.
func (b *bench) ensureErgomake(ctx context.Context) error {
	if b.c.ergomake != "" {
		return nil
	}
	bin := filepath.Join(b.tmp, "ergomake")
	b.logf("building ergomake from the working tree")
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/ergomake/ergomake/cmd/ergomake").CombinedOutput()
	if err != nil {
		return fmt.Errorf("go build ./cmd/ergomake: %v\n%s", err, out)
	}
	b.c.ergomake = bin
	return nil
}

// project is a generated compose project of n services of the test image.
type project struct {
	dir, name, ns string
	services      []string
	ports         []int // container ports each service publishes (every one answers GET / when HTTP)
}

func (b *bench) newProject(prefix string, n int, ports []int, healthcheck bool) (*project, error) {
	p := &project{name: prefix + "-" + randSuffix(), ports: ports}
	p.ns = "ergomake-" + p.name
	p.dir = filepath.Join(b.tmp, p.name)
	if err := os.MkdirAll(p.dir, 0o755); err != nil {
		return nil, err
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "name: %s\nservices:\n", p.name)
	for i := range n {
		s := fmt.Sprintf("s%02d", i+1)
		p.services = append(p.services, s)
		fmt.Fprintf(&sb, "  %s:\n    image: %s\n    stop_grace_period: 1s\n    environment:\n      SERVICE: %s\n", s, testImage, s)
		fmt.Fprintf(&sb, "      PORTS: %q\n", strconv.Itoa(ports[0]))
		if len(ports) > 1 {
			fmt.Fprintf(&sb, "      ECHO_PORTS: %q\n", strconv.Itoa(ports[1]))
		}
		if healthcheck {
			fmt.Fprintf(&sb, "    healthcheck:\n      test: [\"CMD\", \"/testapp\", \"probe\", \"http://localhost:%d/healthz\"]\n      interval: 1s\n      timeout: 1s\n      retries: 60\n", ports[0])
		}
		sb.WriteString("    ports:\n")
		for _, pt := range ports {
			fmt.Fprintf(&sb, "      - %q\n", strconv.Itoa(pt))
		}
	}
	return p, os.WriteFile(filepath.Join(p.dir, "compose.yaml"), []byte(sb.String()), 0o644)
}

func (b *bench) env() []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "KUBECONFIG" || strings.HasPrefix(k, "COMPOSE_") || strings.HasPrefix(k, "ERGOMAKE_") {
			continue
		}
		out = append(out, kv)
	}
	return append(out, "KUBECONFIG="+b.c.kubeconfig, "NO_COLOR=1", "XDG_CONFIG_HOME="+filepath.Join(b.tmp, "xdg"))
}

// withEnv is env with the variables of kvs (KEY=VALUE) set: an earlier setting of the same
// variable is left out.
func withEnv(env []string, kvs ...string) []string {
	set := map[string]bool{}
	for _, kv := range kvs {
		k, _, _ := strings.Cut(kv, "=")
		set[k] = true
	}
	var out []string
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); !set[k] {
			out = append(out, kv)
		}
	}
	return append(out, kvs...)
}

// upProc is a running `ergomake up`.
type upProc struct {
	cmd    *exec.Cmd
	stderr *lockedBuffer
	stdout *lockedBuffer
	done   chan struct{}
	// local ports by "service/containerPort", from the forwarding table
	mu    sync.Mutex
	local map[string]int
	seen  chan struct{} // closed when every expected port is in local
}

var bindingRe = regexp.MustCompile(`^(\S+)\s+·\s+\S+:(\d+)\s+→\s+(\d+)`)

// startUp runs `ergomake up` in p (attached: it forwards) and collects the forwarding table.
func (b *bench) startUp(p *project) (*upProc, error) {
	u := &upProc{stderr: &lockedBuffer{}, stdout: &lockedBuffer{}, done: make(chan struct{}), local: map[string]int{},
		seen: make(chan struct{})}
	u.cmd = exec.Command(b.c.ergomake, "up", "-f", "compose.yaml", "--wait-timeout", "5m")
	u.cmd.Dir, u.cmd.Env = p.dir, b.env()
	u.cmd.Stderr = u.stderr
	out, err := u.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := u.cmd.Start(); err != nil {
		return nil, err
	}
	want := len(p.services) * len(p.ports)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			_, _ = u.stdout.Write([]byte(line + "\n"))
			if m := bindingRe.FindStringSubmatch(line); m != nil {
				l, _ := strconv.Atoi(m[2])
				u.mu.Lock()
				u.local[m[1]+"/"+m[3]] = l
				if len(u.local) == want {
					close(u.seen)
				}
				u.mu.Unlock()
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	go func() {
		_ = u.cmd.Wait()
		close(u.done)
	}()
	return u, nil
}

func (u *upProc) failure(what string) error {
	return fmt.Errorf("ergomake up: %s\n--- stdout:\n%s--- stderr:\n%s", what, u.stdout, u.stderr)
}

// waitTable waits for the forwarding table (every port bound).
func (u *upProc) waitTable(ctx context.Context, timeout time.Duration) error {
	select {
	case <-u.seen:
		return nil
	case <-u.done:
		return u.failure("ended before forwarding")
	case <-time.After(timeout):
		return u.failure("no forwarding table after " + timeout.String())
	case <-ctx.Done():
		return ctx.Err()
	}
}

// down interrupts `ergomake up` (which tears the environment down) and waits for it.
func (b *bench) down(u *upProc, p *project) {
	_ = u.cmd.Process.Signal(os.Interrupt)
	select {
	case <-u.done:
	case <-time.After(5 * time.Minute):
		_ = u.cmd.Process.Kill()
		<-u.done
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	_ = deleteNamespaceWait(ctx, b.cs, p.ns) // in case the teardown did not finish
}

// waitAll waits until GET / answers on every address.
func waitAll(ctx context.Context, addrs []string, timeout time.Duration) error {
	errc := make(chan error, len(addrs))
	for _, a := range addrs {
		go func() { errc <- waitHTTPFast(ctx, a, timeout) }()
	}
	var errs []error
	for range addrs {
		if err := <-errc; err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// waitHTTPFast polls GET / every 20 ms.
func waitHTTPFast(ctx context.Context, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if _, err = getRoot(ctx, addr, 2*time.Second); err == nil {
			return nil
		}
		if !sleepCtx(ctx, 20*time.Millisecond) {
			return ctx.Err()
		}
	}
	return fmt.Errorf("%s not answering after %s: %v", addr, timeout, err)
}

// ergoReady runs `ergomake up` on p and returns the seconds until every published port answers
// on localhost; the environment is torn down afterwards (not timed).
func (b *bench) ergoReady(ctx context.Context, p *project) (float64, error) {
	start := time.Now()
	u, err := b.startUp(p)
	if err != nil {
		return 0, err
	}
	defer b.down(u, p)
	if err := u.waitTable(ctx, 5*time.Minute); err != nil {
		return 0, err
	}
	var addrs []string
	u.mu.Lock()
	for _, s := range p.services {
		addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", u.local[s+"/"+strconv.Itoa(p.ports[0])]))
	}
	u.mu.Unlock()
	if err := waitAll(ctx, addrs, 2*time.Minute); err != nil {
		return 0, u.failure(err.Error())
	}
	return time.Since(start).Seconds(), nil
}

// rendered is `ergomake render` of a project without the ErgomakeEnv: what kubectl applies.
type rendered struct {
	file        string
	deployments map[string]string // compose service → Deployment name
}

func (b *bench) render(ctx context.Context, p *project, ns string) (*rendered, error) {
	cmd := exec.CommandContext(ctx, b.c.ergomake, "render", "--show-secrets", "-f", "compose.yaml", "-n", ns)
	cmd.Dir, cmd.Env = p.dir, b.env()
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("ergomake render: %v: %s", err, stderr.String())
	}
	r := &rendered{file: filepath.Join(p.dir, "rendered-"+ns+".yaml"), deployments: map[string]string{}}
	var keep []string
	for _, doc := range strings.Split(string(out), "\n---\n") {
		var obj struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name   string            `json:"name"`
				Labels map[string]string `json:"labels"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			return nil, fmt.Errorf("ergomake render output: %w", err)
		}
		switch obj.Kind {
		case "", "ErgomakeEnv": // the operator's input; kubectl applies what it would make
			continue
		case "Deployment":
			r.deployments[obj.Metadata.Labels["ergomake.dev/service"]] = obj.Metadata.Name
		}
		keep = append(keep, strings.TrimPrefix(doc, "---\n"))
	}
	return r, os.WriteFile(r.file, []byte(strings.Join(keep, "\n---\n")), 0o644)
}

// kubeReady is the kubectl path of time to ready: create the namespace, apply the rendered
// objects, wait for the Deployments, start one kubectl port-forward per published port, until
// every port answers. Teardown afterwards (not timed).
func (b *bench) kubeReady(ctx context.Context, p *project) (float64, error) {
	ns := p.ns + "-k"
	r, err := b.render(ctx, p, ns)
	if err != nil {
		return 0, err
	}
	var fwds []*kubeFwd
	defer func() {
		for _, k := range fwds {
			k.stop()
		}
		dctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		_ = deleteNamespaceWait(dctx, b.cs, ns)
	}()
	kubectl := func(args ...string) error {
		cmd := exec.CommandContext(ctx, b.c.kubectl, append([]string{"--kubeconfig", b.c.kubeconfig}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("kubectl %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	start := time.Now()
	if err := kubectl("create", "namespace", ns); err != nil {
		return 0, err
	}
	if err := kubectl("apply", "-f", r.file); err != nil {
		return 0, err
	}
	if err := kubectl("wait", "-n", ns, "--for=condition=Available", "deployment", "--all", "--timeout=5m"); err != nil {
		return 0, err
	}
	var mu sync.Mutex
	var addrs []string
	errc := make(chan error, len(p.services))
	for _, s := range p.services {
		go func() {
			k, err := startKubeFwd(ctx, b.c.kubectl, b.c.kubeconfig, ns, "deployment/"+r.deployments[s], p.ports[:1])
			if err == nil {
				mu.Lock()
				fwds = append(fwds, k)
				addrs = append(addrs, k.addr(p.ports[0]))
				mu.Unlock()
			}
			errc <- err
		}()
	}
	var errs []error
	for range p.services {
		if err := <-errc; err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return 0, errors.Join(errs...)
	}
	if err := waitAll(ctx, addrs, 2*time.Minute); err != nil {
		return 0, err
	}
	return time.Since(start).Seconds(), nil
}

// timeToReady is measure 6, for each -ttr-services count (and each -ttr-healthcheck-services
// count, services with a healthcheck), the two paths alternating.
func (b *bench) timeToReady(ctx context.Context, res *results) error {
	type variant struct {
		n       int
		healthy bool
	}
	var vs []variant
	for _, n := range b.c.ttrServices {
		vs = append(vs, variant{n, false})
	}
	for _, n := range b.c.ttrHealthy {
		vs = append(vs, variant{n, true})
	}
	for _, v := range vs {
		name, prefix := fmt.Sprintf("time to ready, %d services", v.n), fmt.Sprintf("bench-ttr%d", v.n)
		if v.healthy {
			name, prefix = name+" with healthchecks", prefix+"h"
		}
		r := res.row(name, "s", 2, target{ratioAtMost, 1.0, "≤ 1.0× kubectl"})
		r.na[pDirect] = true
		for run := range b.c.runs {
			paths := []int{pErgo, pKube}
			if run%2 == 1 {
				paths = []int{pKube, pErgo}
			}
			for _, path := range paths {
				p, err := b.newProject(prefix, v.n, []int{httpPort}, v.healthy)
				if err != nil {
					return err
				}
				var sec float64
				if path == pErgo {
					sec, err = b.ergoReady(ctx, p)
				} else {
					sec, err = b.kubeReady(ctx, p)
				}
				if err != nil {
					return fmt.Errorf("%s (%s): %w", name, pathNames[path], err)
				}
				b.logf("%s, run %d/%d: %s %.2fs", name, run+1, b.c.runs, pathNames[path], sec)
				r.add(path, sec)
			}
		}
	}
	res.notef("time to ready: ergomake = `ergomake up` (attached) from exec until GET / answers on every forwarded localhost port; kubectl = `kubectl create namespace` + `kubectl apply` of `ergomake render` (without the ErgomakeEnv, rendered beforehand) + `kubectl wait --for=condition=Available deployment --all` + one `kubectl port-forward deployment/…` per port, until every port answers; teardown not timed")
	return nil
}

// scale is measure 7: one environment of c.scaleSvcs services with two published ports each,
// forwarded by one `ergomake up` and by one kubectl port-forward per service; resident memory
// and CPU of the forwarding processes idle and with one connection open on every port.
func (b *bench) scale(ctx context.Context, res *results) error {
	n := b.c.scaleSvcs
	nports := 2 * n
	label := fmt.Sprintf("%d svcs/%d ports", n, nports)
	rssIdle := res.row("scale "+label+": RSS idle", "MB", 1, target{ergoAtMost, 100, "≤ 100 MB"})
	cpuIdle := res.row("scale "+label+": CPU idle", "% core", 2, target{})
	rssConn := res.row(fmt.Sprintf("scale %s: RSS, %d conns open", label, nports), "MB", 1, target{ergoAtMost, 100, "≤ 100 MB"})
	cpuConn := res.row(fmt.Sprintf("scale %s: CPU, %d conns open", label, nports), "% core", 2, target{})
	for _, r := range []*row{rssIdle, cpuIdle, rssConn, cpuConn} {
		r.na[pDirect] = true
	}

	p, err := b.newProject("bench-scale", n, []int{httpPort, echoPort}, false)
	if err != nil {
		return err
	}
	b.logf("scale: ergomake up of %d services, %d published ports", n, nports)
	start := time.Now()
	u, err := b.startUp(p)
	if err != nil {
		return err
	}
	defer b.down(u, p)
	if err := u.waitTable(ctx, 8*time.Minute); err != nil {
		return err
	}
	u.mu.Lock()
	var ergoAddrs [][2]string // per service: http, echo
	for _, s := range p.services {
		ergoAddrs = append(ergoAddrs, [2]string{
			fmt.Sprintf("127.0.0.1:%d", u.local[s+"/"+strconv.Itoa(httpPort)]),
			fmt.Sprintf("127.0.0.1:%d", u.local[s+"/"+strconv.Itoa(echoPort)])})
	}
	u.mu.Unlock()
	var httpAddrs []string
	for _, a := range ergoAddrs {
		httpAddrs = append(httpAddrs, a[0])
	}
	if err := waitAll(ctx, httpAddrs, 3*time.Minute); err != nil {
		return u.failure(err.Error())
	}
	b.logf("scale: every port answers through ergomake after %s; starting %d kubectl port-forwards", time.Since(start).Round(time.Second), n)

	var fwds []*kubeFwd
	defer func() {
		for _, k := range fwds {
			k.stop()
		}
	}()
	var mu sync.Mutex
	kubeAddrs := make([][2]string, n)
	errc := make(chan error, n)
	sem := make(chan struct{}, 8)
	for i, s := range p.services {
		go func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			k, err := startKubeFwd(ctx, b.c.kubectl, b.c.kubeconfig, p.ns, "deployment/"+s, []int{httpPort, echoPort})
			if err == nil {
				mu.Lock()
				fwds = append(fwds, k)
				kubeAddrs[i] = [2]string{k.addr(httpPort), k.addr(echoPort)}
				mu.Unlock()
			}
			errc <- err
		}()
	}
	var errs []error
	for range n {
		if err := <-errc; err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	ergoPids := []int{u.cmd.Process.Pid}
	var kubePids []int
	for _, k := range fwds {
		kubePids = append(kubePids, k.pid)
	}
	const window = 3 * time.Second
	if !sleepCtx(ctx, window) { // let start-up settle
		return ctx.Err()
	}
	sample := func(rss, cpu *row) error {
		e0, err := cpuOf(ergoPids)
		if err != nil {
			return u.failure(err.Error())
		}
		k0, err := cpuOf(kubePids)
		if err != nil {
			return err
		}
		if !sleepCtx(ctx, window) {
			return ctx.Err()
		}
		e1, err := cpuOf(ergoPids)
		if err != nil {
			return u.failure(err.Error())
		}
		k1, _ := cpuOf(kubePids)
		cpu.add(pErgo, 100*(e1-e0)/window.Seconds())
		cpu.add(pKube, 100*(k1-k0)/window.Seconds())
		er, _ := rssOf(ergoPids)
		kr, _ := rssOf(kubePids)
		rss.add(pErgo, float64(er)/1e6)
		rss.add(pKube, float64(kr)/1e6)
		return nil
	}
	for run := range b.c.runs {
		if err := sample(rssIdle, cpuIdle); err != nil {
			return err
		}
		b.logf("scale idle, run %d/%d: ergomake %.1f MB, kubectl (%d processes) %.1f MB", run+1, b.c.runs,
			rssIdle.vals[pErgo][run], n, rssIdle.vals[pKube][run])
	}
	conns, err := openAll(ctx, append(ergoAddrs, kubeAddrs...))
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	if err != nil {
		return err
	}
	for run := range b.c.runs {
		if err := sample(rssConn, cpuConn); err != nil {
			return err
		}
		b.logf("scale %d conns, run %d/%d: ergomake %.1f MB, kubectl %.1f MB", nports, run+1, b.c.runs,
			rssConn.vals[pErgo][run], rssConn.vals[pKube][run])
	}
	// The connections are still alive at the end.
	for _, c := range conns {
		if err := echoOnce(c); err != nil {
			return fmt.Errorf("an open connection died during the scale measure: %w", err)
		}
	}
	res.notef("scale: one `ergomake up` process forwards all %d ports; kubectl = %d `kubectl port-forward deployment/sNN :%d :%d` processes (RSS and CPU summed); CPU = CPU-seconds per second over %s windows, one window per run; idle = after every HTTP port has answered one GET (so each pod has carried a connection); connections: one per port, each having made one request and kept open", nports, n, httpPort, echoPort, window)
	return nil
}

func cpuOf(pids []int) (float64, error) {
	var sum float64
	for _, pid := range pids {
		v, err := procCPU(pid)
		if err != nil {
			return 0, err
		}
		sum += v
	}
	return sum, nil
}

func rssOf(pids []int) (int64, error) {
	var sum int64
	for _, pid := range pids {
		v, err := procRSS(pid)
		if err != nil {
			return 0, err
		}
		sum += v
	}
	return sum, nil
}

// heldConn is one open connection of the scale measure: HTTP (keep-alive) or echo.
type heldConn struct {
	net.Conn
	echo bool
	br   *bufio.Reader
}

// openAll opens one connection to every address (pairs: HTTP, echo) and makes one request on
// each, keeping it open.
func openAll(ctx context.Context, addrs [][2]string) ([]*heldConn, error) {
	var out []*heldConn
	for _, pair := range addrs {
		for i, a := range pair {
			c, err := (&net.Dialer{Timeout: 10 * time.Second}).DialContext(ctx, "tcp", a)
			if err != nil {
				return out, err
			}
			h := &heldConn{Conn: c, echo: i == 1, br: bufio.NewReader(c)}
			out = append(out, h)
			if err := echoOnce(h); err != nil {
				return out, fmt.Errorf("%s: %w", a, err)
			}
		}
	}
	return out, nil
}

// echoOnce makes one request on a held connection: 64 bytes echoed, or GET / kept alive.
func echoOnce(h *heldConn) error {
	_ = h.SetDeadline(time.Now().Add(10 * time.Second))
	defer func() { _ = h.SetDeadline(time.Time{}) }()
	if h.echo {
		msg := []byte(strings.Repeat("s", echoSize))
		if _, err := h.Write(msg); err != nil {
			return err
		}
		_, err := io.ReadFull(h.br, make([]byte, echoSize))
		return err
	}
	if _, err := io.WriteString(h, "GET / HTTP/1.1\r\nHost: bench\r\n\r\n"); err != nil {
		return err
	}
	resp, err := readResponse(h.br)
	if err != nil {
		return err
	}
	if resp != 200 {
		return fmt.Errorf("GET /: status %d", resp)
	}
	return nil
}
