package cli

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/lipgloss/table"

	"github.com/ergomake/ergomake/internal/iostreams"
	"github.com/ergomake/ergomake/internal/ui"
	"github.com/ergomake/ergomake/internal/wait"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// envView shows an environment's services while `up` waits for them, on stderr.
//
// On a terminal that can animate it is a table redrawn in place under a spinner line:
//
//	⠙ Waiting for services: 1/2 ready
//	╭───────────────┬──────────┬───────┬─────────────────────────────╮
//	│ SERVICE       │ STATE    │ READY │ DETAILS                     │
//	...
//
// Elsewhere every change of a service is one stable, timestamped line:
//
//	17:30:05 elasticsearch: healthy 1/1
//	17:30:05 kibana: waiting for elasticsearch
type envView struct {
	w       io.Writer
	styles  *ui.Styles
	animate bool
	width   int
	now     func() time.Time
	title   string

	mu    sync.Mutex
	prev  *v1alpha1.ErgomakeEnv
	cur   *v1alpha1.ErgomakeEnv
	lines int // lines of the frame on screen
	// printed is the last plain line of each service, so that only real changes are printed.
	printed map[string]string
	frame   int
	ticker  *time.Ticker
	done    chan struct{}
	wg      sync.WaitGroup
}

var spinnerFrames = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

func newEnvView(ios *iostreams.IOStreams, title string, now func() time.Time) *envView {
	if now == nil {
		now = time.Now
	}
	return &envView{
		w:       ios.ErrOut,
		styles:  ui.NewStyles(ios.ColorEnabledStderr()),
		animate: ios.CanAnimate(),
		width:   ios.TerminalWidth(),
		now:     now,
		title:   title,
		printed: map[string]string{},
	}
}

// Start shows the view (and starts the spinner on a terminal).
func (v *envView) Start() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.animate {
		v.plain("%s %s ...", ui.IconPhase, v.title)
		return
	}
	done, ticker := make(chan struct{}), time.NewTicker(100*time.Millisecond)
	v.done, v.ticker = done, ticker
	v.draw("")
	v.wg.Add(1)
	go func() {
		defer v.wg.Done()
		for {
			select {
			case <-done:
				return
			case <-ticker.C:
				v.mu.Lock()
				v.frame++
				v.draw("")
				v.mu.Unlock()
			}
		}
	}()
}

// Update shows a new version of the environment.
func (v *envView) Update(env *v1alpha1.ErgomakeEnv) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.prev, v.cur = v.cur, env
	if v.animate {
		v.draw("")
		return
	}
	for _, s := range wait.Changed(v.prev, v.cur) {
		if line := s.Name + ": " + serviceSummary(s); v.printed[s.Name] != line {
			v.printed[s.Name] = line
			v.plain("%s", line)
		}
	}
}

// Logf prints a line above the view.
func (v *envView) Logf(format string, args ...any) {
	v.mu.Lock()
	defer v.mu.Unlock()
	line := fmt.Sprintf(format, args...)
	if !v.animate {
		v.plain("%s", line)
		return
	}
	v.erase()
	fmt.Fprintln(v.w, line)
	v.lines = 0
	v.draw("")
}

// End stops the spinner and leaves the last table on screen, its title marked ✓ or ✗.
func (v *envView) End(ok bool) {
	v.mu.Lock()
	if v.done != nil {
		close(v.done)
		v.ticker.Stop()
		v.done = nil
	}
	v.mu.Unlock()
	v.wg.Wait()
	v.mu.Lock()
	defer v.mu.Unlock()
	icon, plainIcon := v.styles.SuccessIcon(), ui.IconSuccess
	if !ok {
		icon, plainIcon = v.styles.FailureIcon(), ui.IconFailure
	}
	if !v.animate {
		v.plain("%s %s", plainIcon, v.title)
		return
	}
	v.draw(icon)
	v.lines = 0
}

func (v *envView) plain(format string, args ...any) {
	fmt.Fprintf(v.w, "%s %s\n", v.now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func (v *envView) erase() {
	if v.lines > 0 {
		fmt.Fprintf(v.w, "\r\033[%dA\033[J", v.lines)
	}
}

// draw replaces the frame on screen; icon replaces the spinner when not empty.
func (v *envView) draw(icon string) {
	if icon == "" {
		icon = v.styles.Accent.Render(spinnerFrames[v.frame%len(spinnerFrames)])
	}
	head := v.title
	if v.cur != nil {
		ready, total := readyCount(v.cur)
		head += fmt.Sprintf(": %d/%d ready", ready, total)
	}
	if v.width > 4 {
		head = truncate(head, v.width-4)
	}
	var b strings.Builder
	b.WriteString(" " + icon + " " + head + "\n")
	if v.cur != nil && len(v.cur.Status.Services) > 0 {
		b.WriteString(v.table(v.cur) + "\n")
	}
	out := b.String()
	v.erase()
	fmt.Fprint(v.w, out)
	v.lines = strings.Count(out, "\n")
}

// table renders the services as a lipgloss table no wider than the terminal.
func (v *envView) table(env *v1alpha1.ErgomakeEnv) string {
	width := v.width
	if width <= 0 {
		width = 100
	}
	rows := serviceRows(env)
	nameW, stateW := len("SERVICE"), len("STATE")
	for _, r := range rows {
		nameW, stateW = max(nameW, lipgloss.Width(r[0])), max(stateW, lipgloss.Width(r[1]))
	}
	// Borders and padding take 3 columns per cell plus 1.
	// Each cell takes its text plus 2 of padding, plus 5 borders: keep the table narrower than
	// the terminal.
	detailW := width - 1 - (nameW + 2) - (stateW + 2) - (len("READY") + 2) - 2 - 5
	if detailW < 10 {
		detailW = 10
	}
	s := v.styles
	cell := s.NewStyle().Padding(0, 1)
	t := table.New().Border(lipgloss.RoundedBorder()).BorderStyle(s.Dim).
		Headers("SERVICE", "STATE", "READY", "DETAILS").
		StyleFunc(func(row, col int) lipgloss.Style {
			if row == table.HeaderRow {
				return cell.Bold(s.Color())
			}
			if col == 1 && row >= 0 && row < len(rows) {
				return stateStyle(s, rows[row][1]).Padding(0, 1) // Inherit does not carry padding
			}
			return cell
		})
	for _, r := range rows {
		t.Row(r[0], r[1], r[2], truncate(r[3], detailW))
	}
	out := t.Render()
	if lipgloss.Width(out) < width {
		return out
	}
	// Too narrow for the table (a line that wraps could not be erased): one short line each.
	var b strings.Builder
	for i, r := range rows {
		if i > 0 {
			b.WriteString("\n")
		}
		line := truncate(fmt.Sprintf("  %s %s %s %s", r[0], r[1], r[2], r[3]), width-1)
		b.WriteString(line)
	}
	return b.String()
}

func stateStyle(s *ui.Styles, state string) lipgloss.Style {
	switch v1alpha1.ServiceState(state) {
	case v1alpha1.StateHealthy, v1alpha1.StateCompleted:
		return s.Success
	case v1alpha1.StateFailed:
		return s.Failure
	case v1alpha1.StateRunning:
		return s.Accent
	}
	return s.Warning
}

// serviceRows are SERVICE, STATE, READY, DETAILS for each service of the status.
func serviceRows(env *v1alpha1.ErgomakeEnv) [][]string {
	var rows [][]string
	for _, s := range env.Status.Services {
		rows = append(rows, []string{s.Name, string(s.State), fmt.Sprintf("%d/%d", s.Ready, s.Desired), serviceDetails(s)})
	}
	return rows
}

// serviceDetails is what a user should know about a service beyond its state.
func serviceDetails(s v1alpha1.ServiceStatus) string {
	switch {
	case s.IsReady():
		return ""
	case s.State == v1alpha1.StateWaiting && len(s.WaitingFor) > 0 && s.Message == "":
		return "waiting for " + strings.Join(s.WaitingFor, ", ")
	case s.Message != "":
		return s.Message
	case s.Reason != "":
		return s.Reason
	}
	return ""
}

// serviceSummary is one plain line for a service: "healthy 1/1", "waiting for db", "failed:
// ImagePullBackOff: image not found".
func serviceSummary(s v1alpha1.ServiceStatus) string {
	text := string(s.State)
	if s.State == "" {
		text = "pending"
	}
	if (s.State != v1alpha1.StateWaiting && s.State != "") || s.Desired > 0 {
		text += fmt.Sprintf(" %d/%d", s.Ready, s.Desired)
	}
	if d := serviceDetails(s); d != "" {
		text += ": " + d
	}
	return text
}

func readyCount(env *v1alpha1.ErgomakeEnv) (ready, total int) {
	for _, s := range env.Status.Services {
		total++
		if s.IsReady() {
			ready++
		}
	}
	if total == 0 {
		total = len(env.Spec.Services)
	}
	return ready, total
}

func truncate(s string, n int) string {
	if lipgloss.Width(s) <= n {
		return s
	}
	r := []rune(s)
	for len(r) > 0 && lipgloss.Width(string(r)) > n-1 {
		r = r[:len(r)-1]
	}
	return string(r) + "…"
}

// changePrinter prints a line for each change of a service while `up` or `forward` is attached
// (a service that crashes after the environment was ready, say), and the log lines that explain
// a failure.
type changePrinter struct {
	logf    func(format string, args ...any)
	prev    *v1alpha1.ErgomakeEnv
	printed map[string]string
	// tails is the log tail last printed of each service, its lines joined.
	tails map[string]string
}

func newChangePrinter(env *v1alpha1.ErgomakeEnv, logf func(format string, args ...any)) *changePrinter {
	p := &changePrinter{logf: logf, prev: env, printed: map[string]string{}, tails: map[string]string{}}
	if env != nil {
		for _, s := range env.Status.Services {
			p.printed[s.Name] = s.Name + ": " + serviceSummary(s)
			p.tails[s.Name] = strings.Join(s.LogTail, "\n")
		}
	}
	return p
}

func (p *changePrinter) update(env *v1alpha1.ErgomakeEnv) {
	for _, s := range wait.Changed(p.prev, env) {
		if line := s.Name + ": " + serviceSummary(s); p.printed[s.Name] != line {
			p.printed[s.Name] = line
			p.logf("%s", line)
		}
		if tail := strings.Join(s.LogTail, "\n"); p.tails[s.Name] != tail {
			p.tails[s.Name] = tail
			for _, l := range s.LogTail {
				p.logf("  | %s", l)
			}
		}
	}
	p.prev = env
}
