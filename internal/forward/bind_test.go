package forward

import (
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"

	"k8s.io/client-go/rest"

	"github.com/ergomake/ergomake/internal/testutil/freeport"
)

func newTestForwarder(t *testing.T) *Forwarder {
	t.Helper()
	// Bind never talks to the cluster: an address nobody answers on is fine.
	f, err := New(&rest.Config{Host: "https://127.0.0.1:1"}, "ns", Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

var webSel = map[string]string{"ergomake.dev/env": "demo", "ergomake.dev/service": "web"}

func hasV6Loopback() bool {
	l, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		return false
	}
	l.Close()
	return true
}

func dialOK(t *testing.T, addr string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Errorf("dial %s: %v", addr, err)
		return
	}
	c.Close()
}

func TestBindWantedPort(t *testing.T) {
	f := newTestForwarder(t)
	want := freeport.Port(t)
	bs, err := f.Bind([]Port{{Service: "web", Selector: webSel, RemotePort: 80, LocalPort: want}})
	if err != nil {
		t.Fatal(err)
	}
	b := bs[0]
	if b.LocalPort != want || b.Note != "" {
		t.Fatalf("binding %+v, want port %d without note", b, want)
	}
	wantAddrs := []string{fmt.Sprintf("127.0.0.1:%d", want)}
	if hasV6Loopback() {
		wantAddrs = append(wantAddrs, fmt.Sprintf("[::1]:%d", want))
	}
	if strings.Join(b.Addrs, " ") != strings.Join(wantAddrs, " ") {
		t.Errorf("addrs %v, want %v", b.Addrs, wantAddrs)
	}
	for _, a := range b.Addrs {
		dialOK(t, a)
	}
}

func TestBindTakenPort(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := taken.Addr().(*net.TCPAddr).Port

	f := newTestForwarder(t)
	bs, err := f.Bind([]Port{{Service: "web", Selector: webSel, RemotePort: 80, LocalPort: port}})
	if err != nil {
		t.Fatal(err)
	}
	b := bs[0]
	if b.LocalPort == port || b.LocalPort == 0 {
		t.Fatalf("got port %d, want another free port", b.LocalPort)
	}
	if want := fmt.Sprintf("%d in use, using %d", port, b.LocalPort); b.Note != want {
		t.Errorf("note %q, want %q", b.Note, want)
	}
	dialOK(t, b.Addrs[0])
}

func TestBindTwoServicesSamePort(t *testing.T) {
	f := newTestForwarder(t)
	port := freeport.Port(t)
	bs, err := f.Bind([]Port{
		{Service: "a", Selector: webSel, RemotePort: 80, LocalPort: port},
		{Service: "b", Selector: webSel, RemotePort: 81, LocalPort: port},
	})
	if err != nil {
		t.Fatal(err)
	}
	if bs[0].LocalPort != port || bs[1].LocalPort == port || !strings.HasPrefix(bs[1].Note, fmt.Sprintf("%d in use", port)) {
		t.Errorf("bindings %+v", bs)
	}
}

func TestBindPrivilegedPort(t *testing.T) {
	f := newTestForwarder(t)
	// Root may bind port 80, so the kernel's answer to anyone else is
	// simulated: EACCES for a port below 1024.
	f.listen = func(network, addr string) (net.Listener, error) {
		_, p, _ := net.SplitHostPort(addr)
		var n int
		fmt.Sscan(p, &n)
		if n > 0 && n < 1024 {
			return nil, &net.OpError{Op: "listen", Net: network, Err: syscall.EACCES}
		}
		return net.Listen(network, addr)
	}
	bs, err := f.Bind([]Port{{Service: "web", Selector: webSel, RemotePort: 80, LocalPort: 80}})
	if err != nil {
		t.Fatal(err)
	}
	b := bs[0]
	if b.LocalPort < 1024 {
		t.Fatalf("got port %d", b.LocalPort)
	}
	if want := fmt.Sprintf("80 is a privileged port, using %d", b.LocalPort); b.Note != want {
		t.Errorf("note %q, want %q", b.Note, want)
	}
}

func TestBindUDP(t *testing.T) {
	f := newTestForwarder(t)
	bs, err := f.Bind([]Port{{Service: "dns", Selector: webSel, RemotePort: 53, LocalPort: 5353, Protocol: "udp"}})
	if err != nil {
		t.Fatal(err)
	}
	b := bs[0]
	if b.Note != NoteUDP || len(b.Addrs) != 0 || b.LocalPort != 0 {
		t.Errorf("binding %+v, want no listener and the UDP note", b)
	}
	if !strings.Contains(b.Note, "UDP cannot be port-forwarded by Kubernetes") {
		t.Errorf("note %q", b.Note)
	}
}

func TestBindAnyPort(t *testing.T) {
	f := newTestForwarder(t)
	bs, err := f.Bind([]Port{{Service: "web", Selector: webSel, RemotePort: 9200}})
	if err != nil {
		t.Fatal(err)
	}
	b := bs[0]
	if b.LocalPort == 0 || b.Note != "" {
		t.Fatalf("binding %+v", b)
	}
	for _, a := range b.Addrs {
		if !strings.HasSuffix(a, fmt.Sprintf(":%d", b.LocalPort)) {
			t.Errorf("address %s is not on port %d", a, b.LocalPort)
		}
		dialOK(t, a)
	}
}

func TestBindRange(t *testing.T) {
	// Find three consecutive free ports, take the first.
	var lo int
	var taken net.Listener
	for range 50 {
		p := freeport.Port(t)
		if p > 65000 {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		free := true
		for q := p + 1; q <= p+2; q++ {
			l2, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", q))
			if err != nil {
				free = false
				break
			}
			l2.Close()
		}
		if free {
			lo, taken = p, l
			break
		}
		l.Close()
	}
	if taken == nil {
		t.Skip("no three consecutive free ports")
	}
	defer taken.Close()

	f := newTestForwarder(t)
	bs, err := f.Bind([]Port{{Service: "web", Selector: webSel, RemotePort: 80, LocalRange: [2]int{lo, lo + 2}}})
	if err != nil {
		t.Fatal(err)
	}
	if b := bs[0]; b.LocalPort != lo+1 || b.Note != "" {
		t.Errorf("binding %+v, want port %d (first free of the range) without note", b, lo+1)
	}

	// A range with every port taken falls back to any port, with a note.
	bs, err = f.Bind([]Port{{Service: "web", Selector: webSel, RemotePort: 80, LocalRange: [2]int{lo, lo}}})
	if err != nil {
		t.Fatal(err)
	}
	if b := bs[0]; b.LocalPort == lo || b.Note != fmt.Sprintf("%d-%d all in use, using %d", lo, lo, b.LocalPort) {
		t.Errorf("binding %+v", b)
	}
}

func TestBindHostIP(t *testing.T) {
	f := newTestForwarder(t)
	bs, err := f.Bind([]Port{{Service: "web", Selector: webSel, RemotePort: 80, HostIP: "127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	if b := bs[0]; len(b.Addrs) != 1 || !strings.HasPrefix(b.Addrs[0], "127.0.0.1:") {
		t.Errorf("addrs %v, want 127.0.0.1 only", b.Addrs)
	}

	// An address that is not on this machine: an error naming the service,
	// and nothing stays bound.
	_, err = f.Bind([]Port{
		{Service: "ok", Selector: webSel, RemotePort: 80},
		{Service: "web", Selector: webSel, RemotePort: 80, HostIP: "192.0.2.1"},
	})
	if err == nil || !strings.Contains(err.Error(), `service "web"`) {
		t.Errorf("err = %v, want one naming service web", err)
	}
	if n := len(f.ports); n != 1 {
		t.Errorf("%d ports bound after a failed Bind, want the 1 of before", n)
	}
}

func TestBindRejectsMissingSelector(t *testing.T) {
	f := newTestForwarder(t)
	_, err := f.Bind([]Port{{Service: "web", RemotePort: 80}})
	if err == nil || !strings.Contains(err.Error(), "selector") {
		t.Errorf("err = %v", err)
	}
}

func TestCloseReleasesListeners(t *testing.T) {
	f := newTestForwarder(t)
	bs, err := f.Bind([]Port{{Service: "web", Selector: webSel, RemotePort: 80}})
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	l, err := net.Listen("tcp", bs[0].Addrs[0])
	if err != nil {
		t.Fatalf("port still bound after Close: %v", err)
	}
	l.Close()
}
