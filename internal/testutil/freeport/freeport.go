// Package freeport finds TCP ports for tests.
package freeport

import (
	"net"
	"testing"
)

// Port is a TCP port free on localhost now.
func Port(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
