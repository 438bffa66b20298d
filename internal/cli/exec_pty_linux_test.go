package cli

import (
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"k8s.io/client-go/tools/remotecommand"

	"github.com/ergomake/ergomake/internal/iostreams/termtest"
)

// TestRawTerminalRestores: exec puts a real terminal in raw mode (no line editing, no echo, no
// signals from keys) and restore gives back exactly the settings it had.
func TestRawTerminalRestores(t *testing.T) {
	slave := termtest.OpenPTY(t).Slave
	before, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if before.Lflag&(unix.ICANON|unix.ECHO|unix.ISIG) == 0 {
		t.Fatalf("a new terminal is already raw: lflag %#x", before.Lflag)
	}
	restore, err := rawTerminal(slave)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if raw.Lflag&(unix.ICANON|unix.ECHO|unix.ISIG) != 0 {
		t.Errorf("not raw: lflag %#x", raw.Lflag)
	}
	restore()
	after, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if *after != *before {
		t.Errorf("restored termios %+v, want %+v", *after, *before)
	}
}

// TestTerminalSizesFollowsWindow: the remote terminal gets the local one's size first, then
// each new size when the window changes (SIGWINCH), and nothing once the command has ended.
func TestTerminalSizesFollowsWindow(t *testing.T) {
	slave := termtest.OpenPTY(t).Slave
	setSize(t, slave, 120, 40)
	q := newTerminalSizes(slave)
	next := func() *remotecommand.TerminalSize {
		t.Helper()
		got := make(chan *remotecommand.TerminalSize, 1)
		go func() { got <- q.Next() }()
		select {
		case s := <-got:
			return s
		case <-time.After(10 * time.Second):
			t.Fatal("no size after 10s")
			return nil
		}
	}
	if s := next(); s == nil || *s != (remotecommand.TerminalSize{Width: 120, Height: 40}) {
		t.Fatalf("first size = %+v, want 120x40", s)
	}
	setSize(t, slave, 80, 25)
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGWINCH); err != nil {
		t.Fatal(err)
	}
	if s := next(); s == nil || *s != (remotecommand.TerminalSize{Width: 80, Height: 25}) {
		t.Fatalf("size after resize = %+v, want 80x25", s)
	}
	q.stop()
	if s := next(); s != nil {
		t.Errorf("size after stop = %+v, want nil", s)
	}
}

// setSize sets a terminal's size in columns and rows.
func setSize(t *testing.T, f *os.File, cols, rows int) {
	t.Helper()
	if err := unix.IoctlSetWinsize(int(f.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Col: uint16(cols), Row: uint16(rows)}); err != nil {
		t.Fatalf("setting the terminal size: %v", err)
	}
}
