package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/watch"
)

const (
	ioBuf       = 256 << 10
	idleTimeout = 30 * time.Second // no byte for this long: the transfer failed
	echoSize    = 64
	mib         = 1 << 20
	gib         = 1 << 30
)

// order is the order of the three paths in run r: rotated each run so that each path takes
// each slot (A/B/C, B/C/A, ...) and drift cancels.
func order(r int) [nPaths]int {
	return [nPaths]int{r % nPaths, (r + 1) % nPaths, (r + 2) % nPaths}
}

// transport runs measures 1-5 for c.runs runs.
func (b *bench) transport(ctx context.Context, res *results) error {
	c := b.c
	sz := fmtSize(c.size)
	var (
		down, up, cpuDown, cpuUp, relayDown, relayUp, agg, share, echo50, echo99, conn50, conn99, hol, recT, recF *row
	)
	if c.want("transport") {
		down = res.row("1 conn download "+sz, "MiB/s", 1, target{ratioAtLeast, 1.2, "≥ 1.2× kubectl"})
		up = res.row("1 conn upload "+sz, "MiB/s", 1, target{ratioAtLeast, 1.2, "≥ 1.2× kubectl"})
		cpuDown = res.row("client CPU per GiB, download", "CPU-s", 2, target{ratioAtMost, 0.7, "≤ 0.7× kubectl"})
		cpuUp = res.row("client CPU per GiB, upload", "CPU-s", 2, target{ratioAtMost, 0.7, "≤ 0.7× kubectl"})
		cpuDown.na[pDirect], cpuUp.na[pDirect] = true, true
		relayDown = res.row("cluster relay CPU per GiB, download", "CPU-s", 2, target{})
		relayUp = res.row("cluster relay CPU per GiB, upload", "CPU-s", 2, target{})
		agg = res.row("8 conns aggregate download "+sz, "MiB/s", 1, target{ratioAtLeast, 1.5, "≥ 1.5× kubectl"})
		share = res.row("8 conns slowest share (all active)", "%", 1, target{ergoAtLeastDirect, 0, "≥ direct TCP's"})
		echo50 = res.row(fmt.Sprintf("echo 64 B keep-alive p50 (n=%d)", c.echoN), "ms", 3, target{})
		echo99 = res.row(fmt.Sprintf("echo 64 B keep-alive p99 (n=%d)", c.echoN), "ms", 3, target{})
		conn50 = res.row(fmt.Sprintf("new conn + GET p50 (n=%d)", c.connN), "ms", 2, target{ratioAtMost, 1.0, "≤ 1.0× kubectl"})
		conn99 = res.row(fmt.Sprintf("new conn + GET p99 (n=%d)", c.connN), "ms", 2, target{})
		hol = res.row("head-of-line echo p99 beside unread "+fmtSize(c.holSize), "ms", 2, target{ergoAtMost, 10, "≤ 10 ms"})
		hol.inf = [nPaths]string{"no answer", "no answer", "no answer"}
	}
	if c.want("recovery") {
		recT = res.row("recovery: Ready → first new conn OK", "ms", 0, target{ergoAtMost, 1000, "≤ 1000 ms"})
		recF = res.row("recovery: failed conns after Ready", "count", 0, target{ergoNoneAtMost, 0, "0 every run"})
		recT.na[pDirect], recF.na[pDirect] = true, true
		recT.inf = [nPaths]string{"never", "forward ended", ""}
	}

	for r := range c.runs {
		ord := order(r)
		b.logf("run %d/%d (order %s, %s, %s)", r+1, c.runs, pathNames[ord[0]], pathNames[ord[1]], pathNames[ord[2]])
		if c.want("transport") {
			// 1. One connection, download then upload, with the CPU each forwarder spends.
			for _, dir := range []string{"download", "upload"} {
				var self [nPaths]float64
				var kube float64
				for _, p := range ord {
					if err := b.ensureKube(ctx); err != nil {
						return err
					}
					s0, k0, r0 := selfCPU(), b.kubeCPU(), relayCPU(b.relay)
					start := time.Now()
					var err error
					if dir == "download" {
						err = download(ctx, b.addr(p, httpPort), c.size, nil, nil)
					} else {
						err = upload(ctx, b.addr(p, httpPort), c.size)
					}
					el := time.Since(start).Seconds()
					if err != nil {
						return fmt.Errorf("%s %s: %w", pathNames[p], dir, err)
					}
					g := float64(c.size) / gib
					self[p] = (selfCPU() - s0) / g
					relay := math.NaN()
					if len(b.relay) > 0 {
						relay = (relayCPU(b.relay) - r0) / g
					}
					if p == pKube {
						kube = (b.kubeCPU() - k0) / g
					}
					rate := float64(c.size) / mib / el
					if dir == "download" {
						down.add(p, rate)
						relayDown.add(p, relay)
					} else {
						up.add(p, rate)
						relayUp.add(p, relay)
					}
					if c.verbose {
						b.logf("  %s %s: %.1f MiB/s, this process %.2f CPU-s/GiB", pathNames[p], dir, rate, self[p])
					}
				}
				// This process runs the client on every path; on kubectl's it is only the client,
				// so ergomake's forwarder costs what this process spends beyond that.
				row := cpuDown
				if dir == "upload" {
					row = cpuUp
				}
				row.add(pErgo, math.Max(0, self[pErgo]-self[pKube]))
				row.add(pKube, kube)
			}
			// 2. Eight connections at once.
			for _, p := range ord {
				if err := b.ensureKube(ctx); err != nil {
					return err
				}
				a, s, err := eight(ctx, b.addr(p, httpPort), c.size)
				if err != nil {
					return fmt.Errorf("%s 8 connections: %w", pathNames[p], err)
				}
				agg.add(p, a)
				share.add(p, s)
			}
			// 3. Small-request latency.
			for _, p := range ord {
				if err := b.ensureKube(ctx); err != nil {
					return err
				}
				lat, err := echoLatency(ctx, b.addr(p, echoPort), c.echoN, 10*time.Second)
				if err != nil {
					return fmt.Errorf("%s echo: %w", pathNames[p], err)
				}
				echo50.add(p, percentile(lat, 50))
				echo99.add(p, percentile(lat, 99))
			}
			for _, p := range ord {
				if err := b.ensureKube(ctx); err != nil {
					return err
				}
				lat, err := connLatency(ctx, b.addr(p, httpPort), c.connN)
				if err != nil {
					return fmt.Errorf("%s new connections: %w", pathNames[p], err)
				}
				conn50.add(p, percentile(lat, 50))
				conn99.add(p, percentile(lat, 99))
			}
			// 4. Head-of-line blocking.
			for _, p := range ord {
				if err := b.ensureKube(ctx); err != nil {
					return err
				}
				v, err := b.headOfLine(ctx, p)
				if err != nil {
					return fmt.Errorf("%s head-of-line: %w", pathNames[p], err)
				}
				hol.add(p, v)
				if p == pKube {
					// kubectl's forward is stuck behind the unread download: start a fresh one.
					if err := b.restartKube(ctx); err != nil {
						return err
					}
				}
			}
		}
		// 5. Recovery after the pod is deleted (last: it replaces the pod).
		if c.want("recovery") {
			if err := b.ensureKube(ctx); err != nil {
				return err
			}
			if err := b.recovery(ctx, recT, recF); err != nil {
				return fmt.Errorf("recovery: %w", err)
			}
		}
	}
	if c.want("recovery") {
		res.notef("recovery: a new connection + GET / every 50 ms on each path while the pod is deleted; Ready = the watch event of the replacement; kubectl forwards to the deleted pod, so its forward ends (its process exited in %d of %d runs; the failures counted are its refused connections in the 3 s after Ready); direct has no address to follow", b.kubeEnded, c.runs)
	}
	if c.want("transport") {
		res.notef("client CPU per GiB: kubectl's is the kubectl process's (/proc/<pid>/stat); ergomake's is this process's (getrusage) minus what it spent on the same transfer through kubectl, i.e. minus the client's own share")
		res.notef("cluster relay CPU: what kube-apiserver, kubelet and containerd (this machine's processes of the local cluster, %d found) spent during the single-connection transfer, per GiB: the relay every forwarded byte crosses, shared by ergomake and kubectl", len(b.relay))
		res.notef("8 conns: each connection downloads %s/8; the slowest share is the smallest connection's part of the bytes moved while all 8 were active; a perfectly fair split (⅛ = 12.5%%) is not physical, so the target is direct TCP's slowest share in the same run (ergomake's median ≥ direct's)", fmtSize(c.size))
		res.notef("head-of-line: a new connection's 64-byte echoes (p99 of %d) while another connection's %s download is not read; \"no answer\" = nothing within %s", holEchoes(c.echoN), fmtSize(c.holSize), c.holTimeout)
	}
	return nil
}

// relayPids finds the processes of the cluster that relay port-forward traffic.
func relayPids() []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile("/proc/" + e.Name() + "/comm")
		if err != nil {
			continue
		}
		switch strings.TrimSpace(string(comm)) {
		case "kube-apiserver", "kubelet", "containerd":
			out = append(out, pid)
		}
	}
	return out
}

func relayCPU(pids []int) float64 {
	var sum float64
	for _, pid := range pids {
		v, _ := procCPU(pid)
		sum += v
	}
	return sum
}

func (b *bench) kubeCPU() float64 {
	if b.kube == nil {
		return 0
	}
	v, _ := procCPU(b.kube.pid)
	return v
}

// dialDeadline dials addr; the connection is closed when ctx ends.
func dial(ctx context.Context, addr string, timeout time.Duration) (net.Conn, func(), error) {
	d := net.Dialer{Timeout: timeout}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	return c, func() { stop(); _ = c.Close() }, nil
}

// download GETs /bytes?n=N on one fresh connection and reads the body, adding to count as it
// goes; firstByte (when not nil) is called when the first bytes of the body arrive.
func download(ctx context.Context, addr string, n int64, count *atomic.Int64, firstByte func()) error {
	c, done, err := dial(ctx, addr, 10*time.Second)
	if err != nil {
		return err
	}
	defer done()
	_ = c.SetDeadline(time.Now().Add(idleTimeout))
	if _, err := fmt.Fprintf(c, "GET /bytes?n=%d HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n", n); err != nil {
		return err
	}
	br := bufio.NewReaderSize(c, 64<<10)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /bytes: %s", resp.Status)
	}
	buf := make([]byte, ioBuf)
	var got int64
	for {
		m, err := resp.Body.Read(buf)
		if got == 0 && m > 0 && firstByte != nil {
			firstByte()
		}
		got += int64(m)
		if count != nil && m > 0 {
			count.Add(int64(m))
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("after %d of %d bytes: %w", got, n, err)
		}
		_ = c.SetReadDeadline(time.Now().Add(idleTimeout))
	}
	if got != n {
		return fmt.Errorf("got %d of %d bytes", got, n)
	}
	return nil
}

var zeros = make([]byte, ioBuf)

// upload POSTs n bytes to /sink on one fresh connection and checks the count it answers.
func upload(ctx context.Context, addr string, n int64) error {
	c, done, err := dial(ctx, addr, 10*time.Second)
	if err != nil {
		return err
	}
	defer done()
	_ = c.SetDeadline(time.Now().Add(idleTimeout))
	if _, err := fmt.Fprintf(c, "POST /sink HTTP/1.1\r\nHost: bench\r\nContent-Length: %d\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n", n); err != nil {
		return err
	}
	for left := n; left > 0; {
		m := min(left, int64(len(zeros)))
		if _, err := c.Write(zeros[:m]); err != nil {
			return fmt.Errorf("after %d of %d bytes: %w", n-left, n, err)
		}
		left -= m
		_ = c.SetDeadline(time.Now().Add(idleTimeout))
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	var got struct {
		Bytes int64 `json:"bytes"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &got) != nil || got.Bytes != n {
		return fmt.Errorf("POST /sink: %s %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

// eight downloads size/8 on each of 8 concurrent connections. It returns the aggregate rate
// (MiB/s, all bytes over the wall time) and the slowest connection's share (%) of the bytes
// moved while all 8 were active: from the last one's first bytes to the first one's end (NaN
// when there was no such moment).
func eight(ctx context.Context, addr string, size int64) (float64, float64, error) {
	const n = 8
	per := size / n
	var counts [n]atomic.Int64
	var first, last [n]int64 // bytes when the last connection got its first bytes, when the first finished
	var started atomic.Int32
	var onceStart, onceEnd sync.Once
	snap := func(dst *[n]int64) {
		for j := range n {
			dst[j] = counts[j].Load()
		}
	}
	errc := make(chan error, n)
	start := time.Now()
	for i := range n {
		go func() {
			err := download(ctx, addr, per, &counts[i], func() {
				if started.Add(1) == n {
					onceStart.Do(func() { snap(&first) })
				}
			})
			onceEnd.Do(func() {
				snap(&last)
				onceStart.Do(func() { snap(&first) }) // finished before all had started: empty window
			})
			errc <- err
		}()
	}
	var errs []error
	for range n {
		if err := <-errc; err != nil {
			errs = append(errs, err)
		}
	}
	el := time.Since(start).Seconds()
	if len(errs) > 0 {
		return 0, 0, errors.Join(errs...)
	}
	var sum, least int64 = 0, math.MaxInt64
	for j := range n {
		d := last[j] - first[j]
		sum += d
		least = min(least, d)
	}
	share := math.NaN() // no moment with all 8 active
	if sum > 0 {
		share = 100 * float64(least) / float64(sum)
	}
	return float64(per*n) / mib / el, share, nil
}

// echoLatency sends n 64-byte messages on one connection to an echo port, one at a time, and
// returns each round trip in ms.
func echoLatency(ctx context.Context, addr string, n int, timeout time.Duration) ([]float64, error) {
	c, done, err := dial(ctx, addr, timeout)
	if err != nil {
		return nil, err
	}
	defer done()
	msg := []byte(strings.Repeat("e", echoSize))
	buf := make([]byte, echoSize)
	for range 5 { // warm up
		_ = c.SetDeadline(time.Now().Add(timeout))
		if _, err := c.Write(msg); err != nil {
			return nil, err
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			return nil, err
		}
	}
	out := make([]float64, 0, n)
	for range n {
		_ = c.SetDeadline(time.Now().Add(timeout))
		start := time.Now()
		if _, err := c.Write(msg); err != nil {
			return nil, err
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			return nil, err
		}
		out = append(out, ms(time.Since(start)))
	}
	return out, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// getRoot does one GET / on a fresh connection and returns the hostname it answers.
func getRoot(ctx context.Context, addr string, timeout time.Duration) (string, error) {
	c, done, err := dial(ctx, addr, timeout)
	if err != nil {
		return "", err
	}
	defer done()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET /: %s", resp.Status)
	}
	var got struct {
		Hostname string `json:"hostname"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		return "", fmt.Errorf("GET /: %v", err)
	}
	return got.Hostname, nil
}

// connLatency opens n connections one after the other, each carrying one GET /, and returns
// each one's time from dial to the end of the response, in ms.
func connLatency(ctx context.Context, addr string, n int) ([]float64, error) {
	out := make([]float64, 0, n)
	for range n {
		start := time.Now()
		if _, err := getRoot(ctx, addr, 10*time.Second); err != nil {
			return nil, err
		}
		out = append(out, ms(time.Since(start)))
	}
	return out, nil
}

// waitHTTP waits until GET / on addr answers.
func waitHTTP(ctx context.Context, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if _, err = getRoot(ctx, addr, 2*time.Second); err == nil {
			return nil
		}
		if !sleepCtx(ctx, 100*time.Millisecond) {
			return ctx.Err()
		}
	}
	return fmt.Errorf("%s not answering after %s: %v", addr, timeout, err)
}

func holEchoes(echoN int) int { return min(echoN, 200) }

// headOfLine starts a download of c.holSize that nobody reads, waits for the buffers on the way
// to fill, then times 64-byte echoes on a new connection: their p99 in ms, +Inf when one gets
// no answer within c.holTimeout.
func (b *bench) headOfLine(ctx context.Context, p int) (float64, error) {
	a, doneA, err := dial(ctx, b.addr(p, httpPort), 10*time.Second)
	if err != nil {
		return 0, err
	}
	defer func() {
		if tc, ok := a.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		doneA()
	}()
	if _, err := fmt.Fprintf(a, "GET /bytes?n=%d HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n", b.c.holSize); err != nil {
		return 0, err
	}
	if !sleepCtx(ctx, time.Second) {
		return 0, ctx.Err()
	}
	lat, err := echoLatency(ctx, b.addr(p, echoPort), holEchoes(b.c.echoN), b.c.holTimeout)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) ||
			strings.Contains(err.Error(), "reset") || strings.Contains(err.Error(), "refused") {
			if b.c.verbose {
				b.logf("  %s head-of-line: %v", pathNames[p], err)
			}
			return math.Inf(1), nil
		}
		return 0, err
	}
	return percentile(lat, 99), nil
}

type attempt struct {
	start, end time.Time
	ok         bool
	host       string
}

// stream opens a new connection with one GET / every interval until stop is closed, keeping
// at most 64 in flight, and returns every attempt.
func stream(ctx context.Context, addr string, interval time.Duration, stop <-chan struct{}) []attempt {
	var mu sync.Mutex
	var out []attempt
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	t := time.NewTicker(interval)
	defer t.Stop()
loop:
	for {
		select {
		case <-stop:
			break loop
		case <-ctx.Done():
			break loop
		case <-t.C:
		}
		select {
		case sem <- struct{}{}:
		default:
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			a := attempt{start: time.Now()}
			host, err := getRoot(ctx, addr, 3*time.Second)
			a.end, a.ok, a.host = time.Now(), err == nil, host
			mu.Lock()
			out = append(out, a)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// recovery deletes the pod under a steady stream of new connections through ergomake and
// through kubectl, and measures, from the moment the replacement pod is seen Ready, the time to
// the first successful new connection (to the replacement) and the connections that fail after.
func (b *bench) recovery(ctx context.Context, recT, recF *row) error {
	old := b.pod
	sel := labels.SelectorFromSet(b.sel).String()
	w, err := b.cs.CoreV1().Pods(b.ns).Watch(ctx, metav1.ListOptions{LabelSelector: sel, ResourceVersion: old.ResourceVersion})
	if err != nil {
		return err
	}
	defer w.Stop()
	type readyAt struct {
		pod *corev1.Pod
		at  time.Time
	}
	readyc := make(chan readyAt, 1)
	go func() {
		for ev := range w.ResultChan() {
			if ev.Type != watch.Added && ev.Type != watch.Modified {
				continue
			}
			if p, ok := ev.Object.(*corev1.Pod); ok && p.Name != old.Name && podReady(p) {
				readyc <- readyAt{p, time.Now()}
				return
			}
		}
	}()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var got [nPaths][]attempt
	for _, p := range []int{pErgo, pKube} {
		addr := b.addr(p, httpPort)
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[p] = stream(ctx, addr, 50*time.Millisecond, stop)
		}()
	}
	stopped := false
	stopStreams := func() {
		if !stopped {
			stopped = true
			close(stop)
			wg.Wait()
		}
	}
	defer stopStreams()

	if !sleepCtx(ctx, 500*time.Millisecond) {
		return ctx.Err()
	}
	if err := b.cs.CoreV1().Pods(b.ns).Delete(ctx, old.Name, metav1.DeleteOptions{}); err != nil {
		return fmt.Errorf("deleting pod %s: %w", old.Name, err)
	}
	var ready readyAt
	select {
	case ready = <-readyc:
	case <-time.After(3 * time.Minute):
		return fmt.Errorf("no replacement of pod %s Ready after 3m", old.Name)
	case <-ctx.Done():
		return ctx.Err()
	}
	// Keep the stream going for 3s past Ready, longer (up to 15s) while ergomake has not yet
	// reached the replacement.
	deadline := ready.at.Add(15 * time.Second)
	minEnd := ready.at.Add(3 * time.Second)
	for time.Now().Before(minEnd) || (time.Now().Before(deadline) && !reached(b, ready.pod.Name)) {
		if !sleepCtx(ctx, 100*time.Millisecond) {
			return ctx.Err()
		}
	}
	stopStreams()

	for _, p := range []int{pErgo, pKube} {
		first := math.Inf(1)
		fails := 0
		for _, a := range got[p] {
			if a.ok && a.host == ready.pod.Name {
				first = math.Min(first, ms(a.end.Sub(ready.at)))
			}
			if !a.ok && !a.start.Before(ready.at) {
				fails++
			}
		}
		if !math.IsInf(first, 1) {
			first = math.Max(0, first)
		}
		recT.add(p, first)
		recF.add(p, float64(fails))
		if b.c.verbose {
			b.logf("  %s recovery: first OK %.0f ms after Ready, %d failed after, %d attempts", pathNames[p], first, fails, len(got[p]))
		}
	}
	if !b.kube.alive() {
		b.kubeEnded++
	}
	b.pod = ready.pod
	return b.restartKube(ctx)
}

// reached reports whether the in-process forwarder has carried a connection to pod... it has
// no such query: a GET through it tells.
func reached(b *bench, pod string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	host, err := getRoot(ctx, b.ergoAddr[httpPort], time.Second)
	return err == nil && host == pod
}

// readResponse reads one HTTP response and its body from br (the connection stays usable).
func readResponse(br *bufio.Reader) (int, error) {
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	return resp.StatusCode, err
}
