package termtest

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// PTY is a pseudo-terminal whose output is recorded: write to Slave, read what arrived with Output.
type PTY struct {
	Slave  *os.File
	master *os.File
	out    bytes.Buffer
	done   chan struct{}
}

// OpenPTY opens a pseudo-terminal and records what is written to it; it skips the test where there
// are none. Close the slave with Output.
func OpenPTY(t testing.TB) *PTY {
	t.Helper()
	m, s, err := open()
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	p := &PTY{Slave: s, master: m, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		_, _ = io.Copy(&p.out, m) // ends with EIO once the slave is closed
	}()
	t.Cleanup(func() { s.Close(); m.Close() })
	return p
}

// Output closes the slave and returns everything written to it, with the terminal's "\r\n" turned
// back into "\n".
func (p *PTY) Output(t testing.TB) string {
	t.Helper()
	p.Slave.Close()
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		t.Fatal("pty reader did not finish")
	}
	return strings.ReplaceAll(p.out.String(), "\r\n", "\n")
}

func open() (master, slave *os.File, err error) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, err
	}
	fd := int(m.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("unlock pty: %w", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("name pty: %w", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		return nil, nil, err
	}
	return m, s, nil
}
