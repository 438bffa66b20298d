package forward

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"
)

// NoteUDP is the Binding.Note of a UDP port: nothing is forwarded.
const NoteUDP = "UDP cannot be port-forwarded by Kubernetes (pods/portforward is TCP only)"

// listenFunc opens one TCP listener; tests replace it to simulate kernel
// answers (EACCES) that cannot be produced as root.
type listenFunc func(network, address string) (net.Listener, error)

// bindPort opens the listeners of one TCP port following the binding rules:
// the wanted port when it can be had, else a port of the published range,
// else any free port, with a note saying why the wanted port was not used.
// It returns an error only when the addresses themselves cannot be listened
// on (a host IP that is not on this machine).
func bindPort(listen listenFunc, p Port) ([]net.Listener, int, string, error) {
	hosts := []string{"127.0.0.1", "::1"}
	optionalV6 := true
	if p.HostIP != "" {
		hosts = []string{strings.Trim(p.HostIP, "[]")}
		optionalV6 = false
	}
	try := func(port int) ([]net.Listener, int, error) {
		return listenAll(listen, hosts, optionalV6, port)
	}

	var note string
	switch {
	case p.LocalPort > 0:
		ls, port, err := try(p.LocalPort)
		if err == nil {
			return ls, port, "", nil
		}
		switch {
		case errors.Is(err, syscall.EADDRINUSE):
			note = fmt.Sprintf("%d in use", p.LocalPort)
		case errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM):
			note = fmt.Sprintf("%d is a privileged port", p.LocalPort)
		default:
			return nil, 0, "", err
		}
	case p.LocalRange[0] > 0:
		lo, hi := p.LocalRange[0], p.LocalRange[1]
		if hi < lo {
			hi = lo
		}
		for port := lo; port <= hi; port++ {
			ls, got, err := try(port)
			if err == nil {
				return ls, got, "", nil
			}
			if !errors.Is(err, syscall.EADDRINUSE) && !errors.Is(err, syscall.EACCES) && !errors.Is(err, syscall.EPERM) {
				return nil, 0, "", err
			}
		}
		note = fmt.Sprintf("%d-%d all in use", lo, hi)
	}

	// Any free port. With two addresses the port chosen for the first may be
	// taken on the second: try again a few times.
	var err error
	for range 20 {
		var ls []net.Listener
		var port int
		ls, port, err = try(0)
		if err == nil {
			if note != "" {
				note = fmt.Sprintf("%s, using %d", note, port)
			}
			return ls, port, note, nil
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			break
		}
	}
	return nil, 0, "", err
}

// listenAll listens on every host at port (0: the port the first listener
// got). optionalV6 skips ::1 when this machine has no IPv6 loopback.
func listenAll(listen listenFunc, hosts []string, optionalV6 bool, port int) ([]net.Listener, int, error) {
	var ls []net.Listener
	closeAll := func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}
	for _, h := range hosts {
		l, err := listen("tcp", net.JoinHostPort(h, strconv.Itoa(port)))
		if err != nil {
			if optionalV6 && h == "::1" && len(ls) > 0 && v6Unavailable(err) {
				continue
			}
			closeAll()
			return nil, 0, err
		}
		ls = append(ls, l)
		if port == 0 {
			port = l.Addr().(*net.TCPAddr).Port
		}
	}
	return ls, port, nil
}

func v6Unavailable(err error) bool {
	return errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, syscall.EAFNOSUPPORT) ||
		errors.Is(err, syscall.EPROTONOSUPPORT)
}

func isUDP(p Port) bool { return strings.EqualFold(p.Protocol, "udp") }
