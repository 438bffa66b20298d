//go:build e2e

package forward_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ergomake/ergomake/internal/forward"
	"github.com/ergomake/ergomake/internal/testutil/cluster"
	"github.com/ergomake/ergomake/internal/testutil/testapp"
)

// TestPodDialer dials a pod of the test image (HTTP on 8080, TCP echo on
// 7000) through PodDialer: the ready pod by selector, a clear error when
// none matches, bytes echoed intact both ways on several connections at
// once, HTTP over a dialled connection, and a port nothing listens on.
func TestPodDialer(t *testing.T) {
	cfg := cluster.Config(t)
	cs := cluster.Clientset(t, cfg)
	ns := cluster.Namespace(t, cs, "podconn")
	sel := map[string]string{"app.kubernetes.io/name": "podconn-web"}
	d := testapp.Deployment(ns, "web", sel, testapp.HTTPReady(8080), "PORTS=8080", "ECHO_PORTS=7000")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pd, err := forward.NewPodDialer(cfg, ns)
	if err != nil {
		t.Fatal(err)
	}

	// Nothing there yet.
	if _, err := pd.ReadyPod(ctx, "app.kubernetes.io/name=podconn-web"); !errors.Is(err, forward.ErrNoReadyPod) ||
		!strings.Contains(err.Error(), "no pod matches app.kubernetes.io/name=podconn-web in namespace "+ns) {
		t.Fatalf("ReadyPod before the deployment = %v; want ErrNoReadyPod naming selector and namespace", err)
	}
	if _, err := pd.Dial(ctx, "app.kubernetes.io/name=podconn-web", 7000); !errors.Is(err, forward.ErrNoReadyPod) {
		t.Fatalf("Dial before the deployment = %v; want ErrNoReadyPod", err)
	}

	testapp.Deploy(t, cs, d)
	want := cluster.ReadyPod(t, cs, ns, sel, 30*time.Second)
	pod, err := pd.ReadyPod(ctx, "app.kubernetes.io/name=podconn-web")
	if err != nil || pod != want.Name {
		t.Fatalf("ReadyPod = %q, %v; want %q", pod, err, want.Name)
	}

	// Echo, several connections at once, 1 MiB each way.
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := pd.Dial(ctx, "app.kubernetes.io/name=podconn-web", 7000)
			if err != nil {
				t.Errorf("conn %d: Dial: %v", i, err)
				return
			}
			defer c.Close()
			if got := c.RemoteAddr().String(); got != fmt.Sprintf("pod/%s:7000", pod) {
				t.Errorf("conn %d: RemoteAddr = %s", i, got)
			}
			payload := make([]byte, 1<<20)
			_, _ = rand.Read(payload)
			werr := make(chan error, 1)
			go func() { _, err := c.Write(payload); werr <- err }()
			got := make([]byte, len(payload))
			if _, err := io.ReadFull(c, got); err != nil {
				t.Errorf("conn %d: reading the echo: %v", i, err)
				return
			}
			if err := <-werr; err != nil {
				t.Errorf("conn %d: Write: %v", i, err)
			}
			if !bytes.Equal(got, payload) {
				t.Errorf("conn %d: the echo differs from what was sent", i)
			}
			pc := c.(*forward.PodConn)
			// The counters follow the copies: a moment after the reads.
			for deadline := time.Now().Add(5 * time.Second); pc.Received() < int64(len(payload)) && time.Now().Before(deadline); {
				time.Sleep(10 * time.Millisecond)
			}
			if pc.Sent() != int64(len(payload)) || pc.Received() != int64(len(payload)) {
				t.Errorf("conn %d: Sent, Received = %d, %d; want %d each", i, pc.Sent(), pc.Received(), len(payload))
			}
		}()
	}
	wg.Wait()

	// HTTP through a dialled connection, as a client with a context dialer does.
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return pd.DialPod(ctx, pod, 8080)
	}}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://web/healthz", nil)
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatalf("GET /healthz through DialPod: %v", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /healthz: %s", resp.Status)
	}

	// Nothing listens on 9: the first read says so.
	c, err := pd.DialPod(ctx, pod, 9)
	if err != nil {
		t.Fatalf("DialPod(port 9) = %v; want the refusal on read", err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, _ = c.Write([]byte("hello\n"))
	_, err = bufio.NewReader(c).ReadByte()
	if err == nil || !strings.Contains(err.Error(), "nothing listens on port 9") {
		t.Fatalf("read from port 9 = %v; want an error saying nothing listens", err)
	}

	// An unknown pod: the dial fails.
	if _, err := pd.DialPod(ctx, "no-such-pod", 7000); err == nil {
		t.Fatal("DialPod(no-such-pod) succeeded")
	}
}
