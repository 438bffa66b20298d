package cli

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/charmbracelet/lipgloss"

	"github.com/ergomake/ergomake/internal/iostreams"
	"github.com/ergomake/ergomake/internal/session"
	"github.com/ergomake/ergomake/internal/ui"
	"github.com/ergomake/ergomake/internal/wait"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// envView shows an environment's services while `up` waits for them, on stderr: a ui.Status
// (the one spinner) with a ui.Table (the one table) under it.
//
// On a terminal that can animate it is a table redrawn in place under the spinner line:
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
	ios     *iostreams.IOStreams
	status  *ui.Status
	animate bool
	title   string

	mu      sync.Mutex
	changes *changePrinter // the plain lines
}

func newEnvView(ios *iostreams.IOStreams, title string, now func() time.Time) *envView {
	v := &envView{ios: ios, status: ui.NewStatus(ios, ui.StatusOptions{Now: now}), animate: ios.CanAnimate(), title: title}
	v.changes = newChangePrinter(nil, v.status.Logf)
	v.changes.tails = nil // summaries only
	return v
}

// Start shows the view (and starts the spinner on a terminal).
func (v *envView) Start() { v.status.Start(v.title) }

// Update shows a new version of the environment.
func (v *envView) Update(env *v1alpha1.ErgomakeEnv) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.animate {
		v.changes.update(env)
		return
	}
	ready, total := session.ReadyCount(env)
	v.status.SetBody(fmt.Sprintf("%d/%d ready", ready, total), strings.TrimSuffix(v.table(env), "\n"))
}

// Logf prints a line above the view.
func (v *envView) Logf(format string, args ...any) { v.status.Logf(format, args...) }

// Warnf prints a warning line above the view.
func (v *envView) Warnf(format string, args ...any) { v.status.Warnf(format, args...) }

// End stops the spinner and leaves the last table on screen, its title marked ✓ or ✗.
func (v *envView) End(ok bool) { v.status.End(ok) }

// table renders the services for the terminal, narrower than it; "" without services.
func (v *envView) table(env *v1alpha1.ErgomakeEnv) string {
	if len(env.Status.Services) == 0 {
		return ""
	}
	t := ui.NewStderrTable(v.ios, "SERVICE", "STATE", "READY", "DETAILS")
	if v.ios.TerminalWidth() <= 0 {
		t.MaxWidth = 100
	}
	colorStates(t, 1)
	for _, r := range serviceRows(env) {
		t.AddRow(r...)
	}
	return t.String()
}

// colorStates colours the state column col of a table of services (on a colour terminal).
func colorStates(t *ui.Table, col int) {
	t.CellStyle = func(_, c int, value string) lipgloss.Style {
		if c == col {
			return stateStyle(t.Styles(), value)
		}
		return t.Styles().NewStyle()
	}
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

// changePrinter prints a line for each change of a service while `up` or `forward` is attached
// (a service that crashes after the environment was ready, say), and the log lines that explain
// a failure.
type changePrinter struct {
	logf    func(format string, args ...any)
	prev    *v1alpha1.ErgomakeEnv
	printed map[string]string
	// tails is the log tail last printed of each service, its lines joined; nil when the log
	// tails are not printed (the live view of `up`: its failure explanation prints them).
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
		if tail := strings.Join(s.LogTail, "\n"); p.tails != nil && p.tails[s.Name] != tail {
			p.tails[s.Name] = tail
			for _, l := range s.LogTail {
				p.logf("  | %s", l)
			}
		}
	}
	p.prev = env
}
