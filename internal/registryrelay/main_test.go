package registryrelay

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func TestRunFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "--upstream is required"},
		{[]string{"--upstream", "registry"}, "missing port"},
		{[]string{"--upstream", "r:5000", "extra"}, "unexpected arguments"},
		{[]string{"--upstream", "r:5000", "--dial-timeout", "0s"}, "must be positive"},
		{[]string{"--nope"}, "flag provided but not defined"},
	} {
		var stderr bytes.Buffer
		if code := run(context.Background(), tc.args, &stderr, nil); code != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr.String(), tc.want)
		}
	}
	var stderr bytes.Buffer
	if code := run(context.Background(), []string{"--listen", "256.0.0.1:1", "--upstream", "r:5000"}, &stderr, nil); code != 1 {
		t.Errorf("bad listen address: exit %d, stderr %q", code, stderr.String())
	}
}

// The subcommand relays on the address it is given and exits 0 when its context ends.
func TestRunRelays(t *testing.T) {
	up := upstream(t, func(c net.Conn) { io.Copy(c, c) })
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan net.Addr, 1)
	code := make(chan int, 1)
	var stderr bytes.Buffer
	go func() {
		code <- run(ctx, []string{"--listen", "127.0.0.1:0", "--upstream", up}, &stderr, func(a net.Addr) { addrs <- a })
	}()
	var addr net.Addr
	select {
	case addr = <-addrs:
	case c := <-code:
		t.Fatalf("exit %d: %s", c, stderr.String())
	}
	c := dial(t, addr.String())
	io.WriteString(c, "ping")
	c.CloseWrite()
	if b, err := io.ReadAll(c); err != nil || string(b) != "ping" {
		t.Fatalf("echo %q, %v", b, err)
	}
	cancel()
	select {
	case c := <-code:
		if c != 0 {
			t.Fatalf("exit %d", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("run did not return after cancel")
	}
	if !strings.Contains(stderr.String(), "relaying 127.0.0.1:") || !strings.Contains(stderr.String(), up) {
		t.Errorf("stderr %q", stderr.String())
	}
}
