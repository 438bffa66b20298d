//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/utils/ptr"

	"github.com/ergomake/ergomake/internal/forward"
	"github.com/ergomake/ergomake/internal/testutil/cluster"
	"github.com/ergomake/ergomake/internal/testutil/testapp"
)

// The conformance pod's ports.
const (
	cfHTTP    = 8080 // testapp HTTP: /bytes, /sink, /
	cfEcho    = 9000 // testapp TCP echo
	cfDigest  = 9100 // reads "<n>\n" and n bytes, writes their sha256 ("<hex>  -\n") and closes
	cfBye     = 9101 // writes "pod-says-bye\n" and closes at once, reading nothing
	cfEOFSum  = 9102 // reads until EOF, then writes the sha256 of what it read and closes
	cfRefused = 9999 // nothing listens
)

// cfSize is the size of the bulk transfers.
const cfSize = 32 << 20

// TestForwardConformance runs the same checks through three port-forwards
// of the same pod: ours over WebSocket (the usual path), ours over SPDY (the
// real fallback: the API server is reached through a proxy that refuses
// WebSocket upgrades, and the forwarder must fall back by itself), and
// client-go's port-forward with the dialer kubectl builds (WebSocket, SPDY
// fallback). The checks: byte-identical 32 MiB transfers both ways (sha256),
// the client's half-close (what the pod sends after it still arrives, both
// ends close; whether the pod sees EOF is the runtime's doing and must come
// out the same through all three), the pod closing first, and a port nothing
// listens on in the pod and a pod that stops reading an upload, where the
// two differ on purpose: ours resets that one connection and keeps
// forwarding; client-go's ends the whole port-forward (and, for the cut
// upload, ends the local read with a plain EOF).
//
// The digest, bye and EOF-digest ports are busybox nc servers in a second
// container of the pod (the test image carries busybox), so the image is
// unchanged.
func TestForwardConformance(t *testing.T) {
	e := cfSetup(t)
	pod := fwReadyPod(t, e)

	data := make([]byte, cfSize)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	first := sha256.Sum256(data[:1<<20])
	want := cfWant{data: data, sum: hex.EncodeToString(sum[:]), bytesSum: cfBytesSum(cfSize), firstMiBSum: hex.EncodeToString(first[:])}
	ports := []int32{cfHTTP, cfEcho, cfDigest, cfBye, cfEOFSum, cfRefused}
	cfOutcomes.Lock()
	cfOutcomes.m = map[string]string{}
	cfOutcomes.Unlock()
	defer func() {
		cfOutcomes.Lock()
		defer cfOutcomes.Unlock()
		ref, ok := cfOutcomes.m["client-go"]
		for path, o := range cfOutcomes.m {
			if ok && o != ref {
				t.Errorf("half-close through %s: %s; through client-go: %s", path, o, ref)
			}
		}
	}()

	t.Run("websocket", func(t *testing.T) {
		o := cfOurs(t, e.cfg, e, ports)
		o.run(t, want, pod.Name)
	})
	t.Run("spdy", func(t *testing.T) {
		pcfg, proxy := cfWebSocketRefusingProxy(t, e.cfg)
		o := cfOurs(t, pcfg, e, ports)
		o.run(t, want, pod.Name)
		refused, upgraded := proxy.refused.Load(), proxy.spdy.Load()
		t.Logf("proxy: %d WebSocket upgrades refused, %d SPDY upgrades carried", refused, upgraded)
		if refused == 0 || upgraded == 0 {
			t.Errorf("the forwarder did not go through the SPDY fallback: %d WebSocket upgrades refused, %d SPDY upgrades", refused, upgraded)
		}
	})
	t.Run("client-go", func(t *testing.T) {
		// client-go's port-forward ends as a whole on a refused port, so
		// every check gets its own.
		for _, c := range cfChecks() {
			t.Run(c.name, func(t *testing.T) {
				cg := cfClientGo(t, e, pod.Name, ports)
				c.run(t, cg.addr, want, pod.Name)
			})
		}
		t.Run("pod-stops-reading", func(t *testing.T) {
			cg := cfClientGo(t, e, pod.Name, ports)
			reply, rerr, werr := cfOverrun(t, cg.addr(cfDigest), want.data)
			// client-go: the reply ends in a plain EOF (whether the local
			// side's writes fail is down to timing); the error the pod
			// side reports ends the whole port-forward.
			t.Logf("client-go, pod stops reading: read err %v, write err %v", rerr, werr)
			if reply != want.firstMiBSum {
				t.Errorf("pod stops reading: reply %q, want %s", reply, want.firstMiBSum)
			}
			cg.wantLost(t)
		})
		t.Run("refused", func(t *testing.T) {
			cg := cfClientGo(t, e, pod.Name, ports)
			got, err := cfRefusedConn(t, cg.addr(cfRefused))
			// client-go: the connection ends with a plain EOF and no byte,
			// the error goes to its log and the whole port-forward ends
			// with ErrLostConnectionToPod, its listeners closed.
			if len(got) != 0 || err != nil {
				t.Errorf("refused port: read %q, err %v; want a plain EOF", got, err)
			}
			cg.wantLost(t)
		})
	})
}

// cfWant is what the checks expect.
type cfWant struct {
	data     []byte // sent through echo and digest
	sum      string // hex sha256 of data
	bytesSum string // hex sha256 of GET /bytes?n=cfSize

	firstMiBSum string // hex sha256 of data's first MiB
}

type cfCheck struct {
	name string
	run  func(t *testing.T, addr func(int32) string, want cfWant, pod string)
}

// cfChecks are the checks every path passes the same way.
func cfChecks() []cfCheck {
	return []cfCheck{
		{"echo", func(t *testing.T, addr func(int32) string, want cfWant, _ string) {
			// Random bytes up and back down at once: byte-identical.
			c := cfDial(t, addr(cfEcho))
			werr := make(chan error, 1)
			go func() {
				_, err := c.Write(want.data)
				if err == nil {
					err = c.(*net.TCPConn).CloseWrite()
				}
				werr <- err
			}()
			h := sha256.New()
			n, err := io.Copy(h, c)
			if err != nil || n != cfSize {
				t.Fatalf("echo: %d of %d bytes back, err %v", n, cfSize, err)
			}
			if err := <-werr; err != nil {
				t.Fatalf("echo: writing: %v", err)
			}
			if got := hex.EncodeToString(h.Sum(nil)); got != want.sum {
				t.Errorf("echo: sha256 %s, want %s", got, want.sum)
			}
		}},
		{"upload", func(t *testing.T, addr func(int32) string, want cfWant, _ string) {
			// Every byte reaches the pod, and only then is EOF seen there.
			got := cfDigestOf(t, addr(cfDigest), want.data)
			if got != want.sum {
				t.Errorf("upload: the pod read data with sha256 %q, want %s", got, want.sum)
			}
		}},
		{"upload-http", func(t *testing.T, addr func(int32) string, want cfWant, _ string) {
			c := cfDial(t, addr(cfHTTP))
			fmt.Fprintf(c, "POST /sink HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", len(want.data))
			if _, err := c.Write(want.data); err != nil {
				t.Fatalf("POST /sink: %v", err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("POST /sink: %v", err)
			}
			body, err := io.ReadAll(resp.Body)
			if err != nil || resp.StatusCode != 200 || !bytes.Contains(body, []byte(fmt.Sprintf(`"bytes":%d`, len(want.data)))) {
				t.Errorf("POST /sink: %d %q, err %v; want %d bytes received", resp.StatusCode, body, err, len(want.data))
			}
		}},
		{"download", func(t *testing.T, addr func(int32) string, want cfWant, _ string) {
			c := cfDial(t, addr(cfHTTP))
			fmt.Fprintf(c, "GET /bytes?n=%d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", cfSize)
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("download: %v", err)
			}
			h := sha256.New()
			n, err := io.Copy(h, resp.Body)
			if err != nil || n != cfSize {
				t.Fatalf("download: %d of %d bytes, err %v", n, cfSize, err)
			}
			if got := hex.EncodeToString(h.Sum(nil)); got != want.bytesSum {
				t.Errorf("download: sha256 %s, want %s", got, want.bytesSum)
			}
		}},
		{"half-close-echo", func(t *testing.T, addr func(int32) string, _ cfWant, _ string) {
			// The client closes its write side and only then reads: what
			// the pod sends after the client's FIN still arrives, then the
			// connection ends cleanly.
			c := cfDial(t, addr(cfEcho))
			msg := []byte(strings.Repeat("half-close ", 6000))
			if _, err := c.Write(msg); err != nil {
				t.Fatal(err)
			}
			if err := c.(*net.TCPConn).CloseWrite(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(300 * time.Millisecond)
			got, err := io.ReadAll(c)
			if err != nil || !bytes.Equal(got, msg) {
				t.Errorf("half-closed echo: %d of %d bytes back, err %v", len(got), len(msg), err)
			}
		}},
		{"half-close-eof", func(t *testing.T, addr func(int32) string, _ cfWant, _ string) {
			// Does the pod see the client's FIN as EOF? The runtime decides
			// (containerd does not pass a half-close on: it closes the pod's
			// connection a second after the client's FIN, after which the
			// pod's late reply has nowhere to go). Whatever it does, it must
			// be the same through every forward, and the connection must
			// end cleanly: TestForwardConformance compares the outcomes.
			small := []byte(strings.Repeat("half-close ", 1000))
			sum := sha256.Sum256(small)
			c := cfDial(t, addr(cfEOFSum))
			_ = c.SetDeadline(time.Now().Add(30 * time.Second))
			start := time.Now()
			if _, err := c.Write(small); err != nil {
				t.Fatal(err)
			}
			if err := c.(*net.TCPConn).CloseWrite(); err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(c)
			took := time.Since(start)
			if err != nil {
				t.Errorf("half-closed connection ended with %v after %s, want a clean EOF", err, took.Round(time.Millisecond))
			}
			reply := strings.TrimSuffix(strings.TrimSpace(string(got)), "  -")
			outcome := "the pod saw EOF and its reply arrived"
			switch reply {
			case hex.EncodeToString(sum[:]):
			case "":
				outcome = "the pod's reply after EOF was lost"
			default:
				t.Errorf("half-closed connection: reply %q, want the digest of what was sent or nothing", got)
				outcome = fmt.Sprintf("reply %q", got)
			}
			t.Logf("half-close: %s; connection ended after %s", outcome, took.Round(time.Millisecond))
			cfRecord(t, outcome)
		}},
		{"pod-closes-first", func(t *testing.T, addr func(int32) string, _ cfWant, _ string) {
			// The pod writes and closes without reading; the client, still
			// able to write, gets the bytes and EOF, then the forward
			// closes its end: the client's writes fail.
			c := cfDial(t, addr(cfBye))
			start := time.Now()
			got, err := io.ReadAll(c)
			if err != nil || string(got) != "pod-says-bye\n" {
				t.Fatalf("pod closing first: read %q, err %v", got, err)
			}
			eof := time.Since(start)
			var werr error
			for deadline := time.Now().Add(10 * time.Second); werr == nil && time.Now().Before(deadline); {
				_, werr = c.Write([]byte("still there?\n"))
				time.Sleep(20 * time.Millisecond)
			}
			if !errors.Is(werr, syscall.EPIPE) && !errors.Is(werr, syscall.ECONNRESET) {
				t.Errorf("pod closing first: writes after EOF: %v, want the connection closed (EPIPE or ECONNRESET)", werr)
			}
			t.Logf("pod closing first: EOF after %s, then writes fail: %v", eof.Round(time.Millisecond), werr)
		}},
		{"http-close", func(t *testing.T, addr func(int32) string, _ cfWant, pod string) {
			// An HTTP/1.1 exchange with Connection: close, read to EOF.
			c := cfDial(t, addr(cfHTTP))
			fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			got, err := io.ReadAll(c)
			if err != nil || !bytes.HasPrefix(got, []byte("HTTP/1.1 200 OK")) || !bytes.Contains(got, []byte(pod)) {
				t.Errorf("GET / with Connection: close: %v, %q", err, got)
			}
		}},
	}
}

// cfOutcomes are the half-close outcomes, by path (websocket, spdy,
// client-go).
var cfOutcomes struct {
	sync.Mutex
	m map[string]string
}

// cfRecord notes the half-close outcome of the path t runs under.
func cfRecord(t *testing.T, outcome string) {
	parts := strings.Split(t.Name(), "/")
	if len(parts) < 2 {
		return
	}
	cfOutcomes.Lock()
	defer cfOutcomes.Unlock()
	if cfOutcomes.m != nil {
		cfOutcomes.m[parts[1]] = outcome
	}
}

// cfOursUnderTest is our forwarder with every conformance port bound.
type cfOursUnderTest struct {
	f     *forward.Forwarder
	addrs map[int32]string
	mu    sync.Mutex
	logs  []string
}

func (o *cfOursUnderTest) addr(p int32) string { return o.addrs[p] }

func cfOurs(t *testing.T, cfg *rest.Config, e *fwEnv, ports []int32) *cfOursUnderTest {
	t.Helper()
	o := &cfOursUnderTest{addrs: map[int32]string{}}
	f, err := forward.New(cfg, e.ns, forward.Options{Logf: func(format string, args ...any) {
		line := fmt.Sprintf(format, args...)
		o.mu.Lock()
		o.logs = append(o.logs, line)
		o.mu.Unlock()
		t.Log(line)
	}})
	if err != nil {
		t.Fatal(err)
	}
	var ps []forward.Port
	for _, p := range ports {
		ps = append(ps, e.port(p))
	}
	bs, err := f.Bind(ps)
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range bs {
		o.addrs[ports[i]] = b.Addrs[0]
	}
	o.f = f
	fwServe(t, f)
	return o
}

// settled waits until no connection is in progress and returns the stats.
func (o *cfOursUnderTest) settled(t *testing.T) forward.Stats {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		st := o.f.Stats()
		if st.Active == 0 {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still active 15s after their local ends closed: %+v", st.Active, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (o *cfOursUnderTest) run(t *testing.T, want cfWant, pod string) {
	for _, c := range cfChecks() {
		t.Run(c.name, func(t *testing.T) {
			before := o.settled(t)
			c.run(t, o.addr, want, pod)
			after := o.settled(t)
			if d := after.Failed - before.Failed; d != 0 {
				t.Errorf("%d connections counted as failed: %+v", d, after)
			}
			if after.Succeeded == before.Succeeded {
				t.Errorf("no connection counted as succeeded: %+v", after)
			}
		})
	}
	t.Run("pod-stops-reading", func(t *testing.T) {
		// The pod reads 1 MiB of the 8 sent, answers and closes: the
		// runtime reports the reset on the error stream. Ours: the reply
		// arrives, then that connection is reset (the local side learns
		// its upload was cut, as it would talking to the pod directly) and
		// counted as failed; the forward goes on.
		before := o.settled(t)
		reply, rerr, werr := cfOverrun(t, o.addr(cfDigest), want.data)
		t.Logf("pod stops reading: read err %v, write err %v", rerr, werr)
		if reply != want.firstMiBSum {
			t.Errorf("pod stops reading: reply %q, want %s", reply, want.firstMiBSum)
		}
		if !cfCut(rerr) && !cfCut(werr) {
			t.Errorf("pod stops reading: read err %v, write err %v; want the connection reset", rerr, werr)
		}
		after := o.settled(t)
		if d := after.Failed - before.Failed; d != 1 {
			t.Errorf("%d connections counted as failed, want 1: %+v", d, after)
		}
		small := []byte("after the cut upload")
		sum := sha256.Sum256(small)
		if got := cfDigestOf(t, o.addr(cfDigest), small); got != hex.EncodeToString(sum[:]) {
			t.Errorf("after the cut upload: digest %q", got)
		}
	})
	t.Run("refused", func(t *testing.T) {
		// Ours: that one connection is reset and counted as failed, a log
		// line names the port, and the listener and the others go on.
		before := o.settled(t)
		for i := range 3 {
			got, err := cfRefusedConn(t, o.addr(cfRefused))
			if len(got) != 0 || !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("refused port, attempt %d: read %q, err %v; want a reset and no byte", i, got, err)
			}
		}
		after := o.settled(t)
		if d := after.Failed - before.Failed; d != 3 {
			t.Errorf("%d connections counted as failed, want the 3 to port %d: %+v", d, cfRefused, after)
		}
		o.mu.Lock()
		logs := strings.Join(o.logs, "\n")
		o.mu.Unlock()
		if !strings.Contains(logs, fmt.Sprintf("port %d", cfRefused)) {
			t.Errorf("no log line names port %d: %q", cfRefused, logs)
		}
		small := []byte("after the refusal")
		sum := sha256.Sum256(small)
		if got := cfDigestOf(t, o.addr(cfDigest), small); got != hex.EncodeToString(sum[:]) {
			t.Errorf("after the refused connection: digest %q", got)
		}
	})
}

// cfClientGoUnderTest is one client-go port-forward of every conformance
// port, as kubectl port-forward runs it.
type cfClientGoUnderTest struct {
	addrs map[int32]string
	done  chan struct{} // closed when ForwardPorts returned
	err   error         // what it returned
}

func (c *cfClientGoUnderTest) addr(p int32) string { return c.addrs[p] }

// wantLost checks that the port-forward ended as client-go ends on an error
// from the pod side: ForwardPorts returns ErrLostConnectionToPod and the
// listeners are closed.
func (c *cfClientGoUnderTest) wantLost(t *testing.T) {
	t.Helper()
	select {
	case <-c.done:
		if !errors.Is(c.err, portforward.ErrLostConnectionToPod) {
			t.Errorf("ForwardPorts returned %v, want %v", c.err, portforward.ErrLostConnectionToPod)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("client-go's port-forward still running 15s after the pod side reported an error")
	}
	if conn, err := net.DialTimeout("tcp", c.addr(cfEcho), 2*time.Second); err == nil {
		conn.Close()
		t.Errorf("client-go's listener still accepts after its forward ended")
	}
}

func cfClientGo(t *testing.T, e *fwEnv, pod string, ports []int32) *cfClientGoUnderTest {
	t.Helper()
	u := e.cs.CoreV1().RESTClient().Post().Resource("pods").Namespace(e.ns).Name(pod).SubResource("portforward").URL()
	dialer, err := cluster.Dialer(e.cfg, u)
	if err != nil {
		t.Fatal(err)
	}
	var specs []string
	for _, p := range ports {
		specs = append(specs, fmt.Sprintf("0:%d", p))
	}
	stop, ready := make(chan struct{}), make(chan struct{})
	out := &cfLog{t: t}
	fw, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, specs, stop, ready, out, out)
	if err != nil {
		t.Fatal(err)
	}
	cg := &cfClientGoUnderTest{addrs: map[int32]string{}, done: make(chan struct{})}
	go func() {
		cg.err = fw.ForwardPorts()
		close(cg.done)
	}()
	t.Cleanup(func() {
		close(stop)
		select {
		case <-cg.done:
		case <-time.After(10 * time.Second):
			t.Errorf("client-go's ForwardPorts did not return 10s after stop")
		}
	})
	select {
	case <-ready:
	case <-cg.done:
		t.Fatalf("client-go port-forward: %v", cg.err)
	case <-time.After(30 * time.Second):
		t.Fatal("client-go port-forward not ready after 30s")
	}
	fps, err := fw.GetPorts()
	if err != nil || len(fps) != len(ports) {
		t.Fatalf("client-go port-forward ports: %v %v", fps, err)
	}
	for _, fp := range fps {
		cg.addrs[int32(fp.Remote)] = fmt.Sprintf("127.0.0.1:%d", fp.Local)
	}
	return cg
}

type cfLog struct{ t *testing.T }

func (l *cfLog) Write(p []byte) (int, error) {
	l.t.Logf("client-go: %s", bytes.TrimSpace(p))
	return len(p), nil
}

// cfDial connects to a local forward; the connection is closed, and every
// operation on it bounded, for the test.
func cfDial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatalf("dialling %s: %v", addr, err)
	}
	_ = c.SetDeadline(time.Now().Add(2 * time.Minute))
	t.Cleanup(func() { c.Close() })
	return c
}

// cfDigestOf sends data to the digest port, length first, and returns the
// digest the pod answers once it has read it all. The pod then closes: the
// connection must end with a clean EOF.
func cfDigestOf(t *testing.T, addr string, data []byte) string {
	t.Helper()
	c := cfDial(t, addr)
	werr := make(chan error, 1)
	go func() {
		_, err := fmt.Fprintf(c, "%d\n", len(data))
		if err == nil {
			_, err = c.Write(data)
		}
		werr <- err
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Errorf("digest port: reading the reply: %v (got %q)", err, got)
	}
	if err := <-werr; err != nil {
		t.Errorf("digest port: writing: %v", err)
	}
	s := strings.TrimSpace(string(got))
	if s, ok := strings.CutSuffix(s, "  -"); ok {
		return s
	}
	return "reply " + s
}

// cfOverrun tells the digest port 1 MiB comes and sends 8 MiB of data: the
// pod reads the first MiB, answers its digest and closes with the rest
// unread. It returns the digest and how reading and writing ended.
func cfOverrun(t *testing.T, addr string, data []byte) (reply string, rerr, werr error) {
	t.Helper()
	c := cfDial(t, addr)
	werrc := make(chan error, 1)
	go func() {
		_, err := fmt.Fprintf(c, "%d\n", 1<<20)
		if err == nil {
			_, err = c.Write(data[:8<<20])
		}
		werrc <- err
	}()
	got, rerr := io.ReadAll(c)
	_ = c.Close() // ends the writes, if still blocked
	werr = <-werrc
	return strings.TrimSuffix(strings.TrimSpace(string(got)), "  -"), rerr, werr
}

// cfCut says err is a connection reset or a broken pipe.
func cfCut(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// cfRefusedConn sends a request to the forwarded port nothing listens on
// and reads until the connection ends.
func cfRefusedConn(t *testing.T, addr string) ([]byte, error) {
	t.Helper()
	c := cfDial(t, addr)
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	got, err := io.ReadAll(c)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the connection to the refused port did not end within 30s")
	}
	return got, err
}

// cfBytesSum is the sha256 of what testapp's GET /bytes?n=N sends: a
// 32 KiB buffer of a..z repeated.
func cfBytesSum(n int) string {
	buf := make([]byte, 32<<10)
	for i := range buf {
		buf[i] = 'a' + byte(i%26)
	}
	h := sha256.New()
	for n > 0 {
		k := min(n, len(buf))
		h.Write(buf[:k])
		n -= k
	}
	return hex.EncodeToString(h.Sum(nil))
}

// cfSetup creates a Deployment "web" whose pod runs testapp (HTTP on 8080,
// echo on 9000) and, beside it, busybox nc servers on the digest and bye
// ports.
func cfSetup(t *testing.T) *fwEnv {
	t.Helper()
	cfg := cluster.Config(t)
	cs := cluster.Clientset(t, cfg)
	ns := cluster.Namespace(t, cs, "e2e-fwconf")
	sel := map[string]string{"ergomake.dev/env": "fwconf", "ergomake.dev/service": "web"}
	script := fmt.Sprintf("/bin/busybox nc -ll -p %d -e /bin/sh -c 'read n; /bin/busybox head -c $n | /bin/busybox sha256sum' & "+
		"/bin/busybox nc -ll -p %d -e /bin/busybox echo pod-says-bye & "+
		"/bin/busybox nc -ll -p %d -e /bin/busybox sha256sum & wait", cfDigest, cfBye, cfEOFSum)
	d := testapp.Deployment(ns, "web", sel, testapp.HTTPReady(cfHTTP), fmt.Sprintf("PORTS=%d", cfHTTP), fmt.Sprintf("ECHO_PORTS=%d", cfEcho))
	pod := &d.Spec.Template.Spec
	pod.TerminationGracePeriodSeconds = ptr.To[int64](1)
	pod.Containers = append(pod.Containers, corev1.Container{
		Name:            "nc",
		Image:           cluster.TestImage,
		ImagePullPolicy: corev1.PullIfNotPresent,
		Command:         []string{"/bin/sh", "-c", script},
		ReadinessProbe: &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(cfDigest)}},
			PeriodSeconds: 1,
		},
	})
	testapp.Deploy(t, cs, d)
	return &fwEnv{cfg: cfg, cs: cs, ns: ns, sel: sel}
}

// cfProxy is a plain-HTTP proxy in front of the API server that refuses
// WebSocket upgrades (as a proxy or an API server without WebSocket
// port-forward does: the handshake gets a 400) and carries everything else,
// SPDY upgrades included.
type cfProxy struct {
	refused, spdy atomic.Int32
}

// cfWebSocketRefusingProxy starts a cfProxy for cfg's API server and returns
// the configuration that reaches the API server through it.
func cfWebSocketRefusingProxy(t *testing.T, cfg *rest.Config) (*rest.Config, *cfProxy) {
	t.Helper()
	target, err := url.Parse(cfg.Host)
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg, err := rest.TLSConfigFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// HTTP/1.1 only: upgrades do not cross HTTP/2.
	rt, err := rest.HTTPWrappersForConfig(cfg, &http.Transport{TLSClientConfig: tlsCfg})
	if err != nil {
		t.Fatal(err)
	}
	p := &cfProxy{}
	rp := &httputil.ReverseProxy{
		Rewrite:       func(r *httputil.ProxyRequest) { r.SetURL(target) },
		Transport:     rt,
		FlushInterval: -1,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch up := strings.ToLower(r.Header.Get("Upgrade")); {
		case up == "websocket":
			p.refused.Add(1)
			http.Error(w, "this proxy does not carry WebSocket", http.StatusBadRequest)
			return
		case strings.HasPrefix(up, "spdy/"):
			p.spdy.Add(1)
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	return &rest.Config{Host: srv.URL, QPS: cfg.QPS, Burst: cfg.Burst}, p
}
