package ui

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ergomake/ergomake/internal/iostreams"
)

// openPTY opens a pseudo-terminal: the spinner library animates only on a real terminal.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	fd := int(m.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		t.Skipf("cannot unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		m.Close()
		t.Skipf("cannot name pty: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Skipf("cannot open pty slave: %v", err)
	}
	return m, s
}

// TestStatusSpinnerPTY drives the real spinner on a real terminal: frames are drawn, a log line
// interrupts them cleanly (erase, line, newline) and End leaves the ✓ line.
func TestStatusSpinnerPTY(t *testing.T) {
	master, slave := openPTY(t)
	defer master.Close()

	var out bytes.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(&out, master) // ends with EIO once the slave is closed
	}()

	ios, _, _, _ := iostreams.Test()
	ios.ErrOut = slave
	ios.SetStderrTTY(true)
	ios.SetEnv(iostreams.Env{NoColor: true})
	st := NewStatus(ios, StatusOptions{})
	st.Start("Applying")
	time.Sleep(350 * time.Millisecond)
	st.Logf("created namespace")
	st.Update("3 objects")
	time.Sleep(350 * time.Millisecond)
	st.End(true)
	slave.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("pty reader did not finish")
	}

	// The terminal turns "\n" into "\r\n".
	got := strings.ReplaceAll(out.String(), "\r\n", "\n")
	for _, want := range []string{
		"\r ⠋ Applying",
		"\r\x1b[Kcreated namespace\n",
		" Applying: 3 objects",
		" ✓ Applying\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("terminal output lacks %q:\n%q", want, got)
		}
	}
	if strings.Contains(got, "\x1b[3") {
		t.Errorf("NO_COLOR terminal got colour codes: %q", got)
	}
	if !strings.HasSuffix(got, " ✓ Applying\n") {
		t.Errorf("terminal output does not end with the ✓ line: %q", got)
	}
}
