// Package echo is a TCP echo server for tests of what carries connections (the forwarder, the
// server's dial route).
package echo

import (
	"io"
	"net"
	"testing"
)

// Serve listens on a free loopback port until the test ends and echoes every connection until
// its EOF, then half-closes it. It returns the listener's address.
func Serve(t testing.TB) *net.TCPAddr {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
				_ = c.(*net.TCPConn).CloseWrite()
				_, _ = io.Copy(io.Discard, c)
			}()
		}
	}()
	return l.Addr().(*net.TCPAddr)
}
