package cli

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/ergomake/ergomake/internal/forward"
	"github.com/ergomake/ergomake/internal/iostreams"
	"github.com/ergomake/ergomake/internal/session"
	"github.com/ergomake/ergomake/internal/ui"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// liveView is how `up` and `forward` show their session (session.Reporter): phases on the status
// line, the table of services while waiting (envView), a line per change of a service while
// attached, results on stdout.
type liveView struct {
	ios    *iostreams.IOStreams
	status *ui.Status
	now    func() time.Time

	mu      sync.Mutex
	waiting *envView              // the live table, while waiting
	last    *v1alpha1.ErgomakeEnv // the environment as last reported
	changes *changePrinter        // while attached

	building string              // the build's title while the builder's display has the terminal
	lines    *session.LineWriter // the builder's plain lines, elsewhere
}

var _ session.Reporter = (*liveView)(nil)

func newLiveView(ios *iostreams.IOStreams, status *ui.Status, now func() time.Time) *liveView {
	return &liveView{ios: ios, status: status, now: now}
}

func (v *liveView) Start(phase string)   { v.status.Start(phase) }
func (v *liveView) Update(detail string) { v.status.Update(detail) }
func (v *liveView) End(ok bool)          { v.status.End(ok) }

func (v *liveView) Logf(format string, args ...any) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.waiting != nil {
		v.waiting.Logf(format, args...)
		return
	}
	v.status.Logf(format, args...)
}

func (v *liveView) Warnf(format string, args ...any) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.waiting != nil {
		v.waiting.Warnf(format, args...)
		return
	}
	v.status.Warnf(format, args...)
}

func (v *liveView) Noticef(format string, args ...any) {
	fmt.Fprintln(v.ios.ErrOut, fmt.Sprintf(format, args...))
}

func (v *liveView) Printf(format string, args ...any) {
	fmt.Fprintln(v.ios.Out, fmt.Sprintf(format, args...))
}

func (v *liveView) WaitStart(title string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.waiting = newEnvView(v.ios, title, v.now)
	v.waiting.Start()
}

// Env shows the environment in the table while waiting; while attached it prints what changed
// since the last report (the first report is the starting point).
func (v *liveView) Env(env *v1alpha1.ErgomakeEnv) {
	v.mu.Lock()
	defer v.mu.Unlock()
	switch {
	case v.waiting != nil:
		v.waiting.Update(env)
	case v.changes == nil:
		v.changes = newChangePrinter(env, v.status.Logf)
	default:
		v.changes.update(env)
	}
	v.last = env
}

func (v *liveView) WaitEnd(ok bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.waiting == nil {
		return
	}
	v.waiting.End(ok)
	v.waiting = nil
	v.changes = newChangePrinter(v.last, v.status.Logf)
}

func (v *liveView) Bound(bindings []forward.Binding) {
	if len(bindings) == 0 {
		fmt.Fprintln(v.ios.Out, "No published ports to forward.")
		return
	}
	printBindings(v.ios, bindings)
}

// printBindings prints one line per published port: `service · localhost:PORT → PORT`, with a
// note when the local port is not the one asked for or nothing could be bound.
func printBindings(ios *iostreams.IOStreams, bindings []forward.Binding) {
	styles := ui.NewStyles(ios.ColorEnabled())
	width := 0
	for _, b := range bindings {
		width = max(width, len(b.Port.Service))
	}
	for _, b := range bindings {
		remote := fmt.Sprint(b.Port.RemotePort)
		if p := strings.ToUpper(b.Port.Protocol); p != "" && p != "TCP" {
			remote += "/" + strings.ToLower(p)
		}
		name := b.Port.Service + strings.Repeat(" ", width-len(b.Port.Service))
		var line string
		if b.LocalPort == 0 {
			line = fmt.Sprintf("%s · %s not forwarded", styles.Bold.Render(name), remote)
		} else {
			host := "localhost"
			if b.Port.HostIP != "" {
				host = b.Port.HostIP
				if strings.Contains(host, ":") {
					host = "[" + host + "]"
				}
			}
			line = fmt.Sprintf("%s · %s → %s", styles.Bold.Render(name),
				styles.Accent.Render(fmt.Sprintf("%s:%d", host, b.LocalPort)), remote)
		}
		if b.Note != "" {
			line += "  " + styles.Dim.Render("("+b.Note+")")
		}
		fmt.Fprintln(ios.Out, line)
	}
}

var _ session.BuildReporter = (*liveView)(nil)

// BuildStart hands the terminal to the builder's progress display (one display, lines prefixed
// with the service): on a terminal that animates it draws in place; elsewhere its plain lines
// go out as they come, above nothing.
func (v *liveView) BuildStart(title string) (io.Writer, bool) {
	if v.ios.CanAnimate() && v.ios.ErrFile() != nil {
		v.status.Logf("%s", title)
		v.building = title
		return v.ios.ErrFile(), true
	}
	v.status.Start(title)
	v.lines = session.NewLineWriter(func(line string) { v.status.Logf("%s", line) })
	return v.lines, false
}

// BuildEnd ends the builder's display with ✓ or ✗.
func (v *liveView) BuildEnd(ok bool) {
	if v.lines != nil {
		v.lines.Flush()
		v.lines = nil
	}
	if v.building != "" {
		v.status.Start(v.building)
		v.building = ""
	}
	v.status.End(ok)
}
