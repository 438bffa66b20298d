//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ergomake/ergomake/internal/forward"
	"github.com/ergomake/ergomake/internal/testutil/cluster"
)

// TestForwardVsKubectl measures, on the same pod and in the same run,
// interleaved, ergomake's forwarder against `kubectl port-forward`:
// single-connection download and upload throughput, client CPU per GiB and
// new connection + GET latency. It asserts only that the bytes arrive; the
// numbers go to the test log. By default it is a quick smoke run (32 MiB,
// one round); for meaningful numbers run it without -race, e.g.
//
//	FORWARD_PERF_MIB=256 FORWARD_PERF_ROUNDS=5 FORWARD_PERF_STREAMS=1 \
//	  go test -tags e2e -run TestForwardVsKubectl -v ./test/e2e/
//
// FORWARD_PERF_STREAMS=1 adds the forwarder on client-go's stream
// connection as a third contender, FORWARD_PERF_SPDY=1 makes the forwarder
// dial plain SPDY, FORWARD_PERF_PROFILE=path writes CPU profiles.
func TestForwardVsKubectl(t *testing.T) {
	kubectl := filepath.Join(cluster.Dir(), "bin", "kubectl")
	if _, err := os.Stat(kubectl); err != nil {
		t.Skipf("no kubectl at %s", kubectl)
	}
	size := int64(32) << 20
	if v, err := strconv.Atoi(os.Getenv("FORWARD_PERF_MIB")); err == nil && v > 0 {
		size = int64(v) << 20
	}
	rounds := 1
	if v, err := strconv.Atoi(os.Getenv("FORWARD_PERF_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	e := fwSetup(t, "e2e-fwperf")
	pod := fwReadyPod(t, e)

	opts := forward.Options{Logf: t.Logf}
	if os.Getenv("FORWARD_PERF_SPDY") == "1" {
		opts.Dialer = fwSPDYDialer(e) // plain SPDY, to see what the WebSocket layer costs
	}
	_, bs := fwStart(t, e, opts, e.port(8080))
	theirs := fwKubectl(t, kubectl, e.ns, pod.Name)
	names := []string{"ergomake", "kubectl"}
	bases := []string{"http://" + bs[0].Addrs[0], theirs.base}
	if os.Getenv("FORWARD_PERF_STREAMS") == "1" {
		// A third contender: the forwarder on client-go's stream connection
		// (spdystream) instead of its own protocol code.
		_, bs2 := fwStart(t, e, forward.Options{Logf: t.Logf, Dialer: fwClientGoDialer(e)}, e.port(8080))
		names = append(names, "streams")
		bases = append(bases, "http://"+bs2[0].Addrs[0])
	}
	const kc = 1 // index of kubectl

	type result struct {
		down, up, cpuDown, cpuUp []float64 // MiB/s; forwarder CPU-seconds per GiB
		srvDown, srvUp           []float64 // cluster side CPU-seconds per GiB
		conn                     []time.Duration
	}
	res := make([]result, len(names))
	client := map[string][]float64{}
	for r := range rounds {
		for i := range names {
			for _, dir := range []string{"down", "up"} {
				profiling := false
				if prof := os.Getenv("FORWARD_PERF_PROFILE"); prof != "" && i == 0 && r == 0 {
					// A CPU profile of ergomake's first transfer in each direction.
					pf, err := os.Create(prof + "." + dir)
					if err != nil {
						t.Fatal(err)
					}
					defer pf.Close()
					profiling = pprof.StartCPUProfile(pf) == nil
				}
				self0, kc0, srv0 := selfCPU(), theirs.cpu(t), serverCPU()
				start := time.Now()
				if dir == "down" {
					fwDownload(t, bases[i], size)
				} else {
					fwUpload(t, bases[i], size)
				}
				el := time.Since(start).Seconds()
				if profiling {
					pprof.StopCPUProfile()
				}
				gib := float64(size) / (1 << 30)
				self, kcpu, srv := (selfCPU()-self0)/gib, (theirs.cpu(t)-kc0)/gib, (serverCPU()-srv0)/gib
				// The HTTP client runs in this process for every contender: on
				// kubectl's turn this process is only that client, so a
				// forwarder's share is what this process spends beyond it.
				cpu := self
				if i == kc {
					cpu = kcpu
					client[dir] = append(client[dir], self)
				}
				mibs := float64(size) / (1 << 20) / el
				if dir == "down" {
					res[i].down, res[i].cpuDown, res[i].srvDown = append(res[i].down, mibs), append(res[i].cpuDown, cpu), append(res[i].srvDown, srv)
				} else {
					res[i].up, res[i].cpuUp, res[i].srvUp = append(res[i].up, mibs), append(res[i].cpuUp, cpu), append(res[i].srvUp, srv)
				}
			}
			for range 20 {
				start := time.Now()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				resp, _, err := fwGet(ctx, bases[i]+"/")
				cancel()
				if err != nil || resp.StatusCode != 200 {
					t.Fatalf("%s: GET /: %v", names[i], err)
				}
				res[i].conn = append(res[i].conn, time.Since(start))
			}
		}
		t.Logf("round %d done", r+1)
	}
	med := func(v []float64) float64 {
		s := append([]float64(nil), v...)
		sort.Float64s(s)
		return s[len(s)/2]
	}
	for i := range names {
		if i == kc {
			continue
		}
		for j := range res[i].cpuDown {
			res[i].cpuDown[j] -= med(client["down"])
			res[i].cpuUp[j] -= med(client["up"])
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "single connection, %d MiB, %d interleaved rounds (median); CPU-seconds per GiB: forwarder (client's %.2fs down / %.2fs up excluded) and cluster side (apiserver+kubelet+containerd):\n",
		size>>20, rounds, med(client["down"]), med(client["up"]))
	for i := range names {
		fmt.Fprintf(&b, "  %-8s  down %6.1f MiB/s  up %6.1f MiB/s  cpu/GiB down %5.2f up %5.2f  cluster down %5.2f up %5.2f  new conn+GET p50 %s p99 %s\n",
			names[i], med(res[i].down), med(res[i].up), med(res[i].cpuDown), med(res[i].cpuUp),
			med(res[i].srvDown), med(res[i].srvUp), pct(res[i].conn, 50), pct(res[i].conn, 99))
	}
	for i := range names {
		if i == kc {
			continue
		}
		fmt.Fprintf(&b, "  %s/kubectl: down %.2fx  up %.2fx  cpu/GiB down %.2fx up %.2fx  new conn p50 %.2fx\n", names[i],
			med(res[i].down)/med(res[kc].down), med(res[i].up)/med(res[kc].up), med(res[i].cpuDown)/med(res[kc].cpuDown),
			med(res[i].cpuUp)/med(res[kc].cpuUp), float64(pct(res[i].conn, 50))/float64(pct(res[kc].conn, 50)))
	}
	t.Log(b.String())

	// Eight concurrent downloads, interleaved the same way.
	agg, slow := make([][]float64, len(names)), make([][]float64, len(names))
	for range rounds {
		for i := range names {
			each := size / 8
			var wg sync.WaitGroup
			durs := make([]float64, 8)
			start := time.Now()
			for k := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s := time.Now()
					fwDownload(t, bases[i], each)
					durs[k] = time.Since(s).Seconds()
				}()
			}
			wg.Wait()
			total := float64(size) / (1 << 20) / time.Since(start).Seconds()
			slowest := 0.0
			for _, d := range durs {
				slowest = max(slowest, d)
			}
			agg[i] = append(agg[i], total)
			slow[i] = append(slow[i], float64(each)/(1<<20)/slowest)
		}
	}
	b.Reset()
	fmt.Fprintf(&b, "8 concurrent downloads of %d MiB (median of %d):", size>>23, rounds)
	for i := range names {
		fmt.Fprintf(&b, "  %s %.1f MiB/s in all, slowest %.1f (%.2fx kubectl);", names[i], med(agg[i]), med(slow[i]), med(agg[i])/med(agg[kc]))
	}
	t.Log(b.String())
}

type kubectlForward struct {
	base string
	pid  int
}

// fwKubectl starts `kubectl port-forward` to the pod's 8080 on a free port.
func fwKubectl(t *testing.T, kubectl, ns, pod string) *kubectlForward {
	t.Helper()
	cmd := exec.Command(kubectl, "--kubeconfig", cluster.KubeconfigPath(t), "-n", ns, "port-forward", "pod/"+pod, ":8080")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	re := regexp.MustCompile(`Forwarding from 127\.0\.0\.1:(\d+)`)
	sc := bufio.NewScanner(out)
	portc := make(chan string, 1)
	go func() {
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case portc <- m[1]:
				default:
				}
			}
		}
	}()
	select {
	case p := <-portc:
		return &kubectlForward{base: "http://127.0.0.1:" + p, pid: cmd.Process.Pid}
	case <-time.After(30 * time.Second):
		t.Fatal("kubectl port-forward did not start")
		return nil
	}
}

// cpu returns kubectl's CPU seconds so far.
func (k *kubectlForward) cpu(t *testing.T) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", k.pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ
}

func selfCPU() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func fwDownload(t *testing.T, base string, n int64) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /bytes?n=%d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", n)
	resp, err := http.ReadResponse(bufio.NewReaderSize(c, 64<<10), nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.CopyBuffer(io.Discard, resp.Body, make([]byte, 64<<10))
	resp.Body.Close()
	if err != nil || got != n {
		t.Fatalf("download from %s: %d of %d bytes, %v", base, got, n, err)
	}
}

func fwUpload(t *testing.T, base string, n int64) {
	t.Helper()
	tr := &http.Transport{DisableKeepAlives: true, WriteBufferSize: 64 << 10}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodPost, base+"/sink", io.LimitReader(zeroReader{}, n))
	req.ContentLength = n
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), fmt.Sprintf(`"bytes":%d`, n)) {
		t.Fatalf("upload to %s: %s", base, body)
	}
}

// serverCPU returns the CPU seconds used so far by the cluster processes on
// the forwarding path: kube-apiserver, kubelet, containerd.
func serverCPU() float64 {
	var total float64
	ents, _ := os.ReadDir("/proc")
	for _, ent := range ents {
		if _, err := strconv.Atoi(ent.Name()); err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + ent.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(data)
		open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || closing < 0 {
			continue
		}
		switch s[open+1 : closing] {
		case "kube-apiserver", "kubelet", "containerd":
		default:
			continue
		}
		f := strings.Fields(s[closing+2:])
		ut, _ := strconv.ParseFloat(f[11], 64)
		st, _ := strconv.ParseFloat(f[12], 64)
		total += (ut + st) / 100
	}
	return total
}

// TestForwardIdleFootprint: what holding 100 forwarded ports and 100
// pre-dialled tunnels costs (as 50 services with the default 2 tunnels
// each would), in memory and goroutines. Logged, not asserted.
func TestForwardIdleFootprint(t *testing.T) {
	e := fwSetup(t, "e2e-fwmem")
	runtime.GC()
	rss0, g0 := selfRSS(), runtime.NumGoroutine()
	var ports []forward.Port
	for range 100 {
		ports = append(ports, e.port(8080))
	}
	f, bs := fwStart(t, e, forward.Options{PrewarmTunnels: 100}, ports...)
	deadline := time.Now().Add(2 * time.Minute)
	for f.Stats().Dials < 100 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second)
	fwRoot(t, "http://"+bs[99].Addrs[0])
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("100 ports (%d listeners) + %d tunnels: RSS +%.1f MiB (process %.1f MiB), heap in use %.1f MiB, goroutines +%d",
		len(bs)*len(bs[0].Addrs), f.Stats().Dials, float64(selfRSS()-rss0)/(1<<20), float64(selfRSS())/(1<<20),
		float64(ms.HeapInuse)/(1<<20), runtime.NumGoroutine()-g0)
}

func selfRSS() int64 {
	data, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			f := strings.Fields(l)
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}
