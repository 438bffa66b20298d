// Package ui is ergomake's terminal output: styles that are plain when colour is unwelcome, a
// status line with a spinner for long phases, and tables. Everything takes its manners from an
// iostreams.IOStreams: animation and colour only on a terminal, plain stable lines otherwise.
package ui

import (
	"io"

	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"
)

// Icons, the same with and without colour.
const (
	IconSuccess = "✓"
	IconFailure = "✗"
	IconPhase   = "•"
	IconWarning = "!"
)

// Styles are the text styles of one stream. Without colour every style renders its text unchanged.
type Styles struct {
	Bold    lipgloss.Style
	Dim     lipgloss.Style
	Success lipgloss.Style
	Failure lipgloss.Style
	Warning lipgloss.Style
	Accent  lipgloss.Style

	renderer *lipgloss.Renderer
	color    bool
}

// NewStyles returns styles that colour (16-colour ANSI, which every colour terminal understands)
// only when color is true.
func NewStyles(color bool) *Styles {
	r := lipgloss.NewRenderer(io.Discard)
	r.SetHasDarkBackground(true) // never query the terminal
	if color {
		r.SetColorProfile(termenv.ANSI)
	} else {
		r.SetColorProfile(termenv.Ascii)
	}
	s := &Styles{renderer: r, color: color}
	s.Bold = r.NewStyle().Bold(color)
	s.Dim = r.NewStyle().Foreground(lipgloss.Color("8"))
	s.Success = r.NewStyle().Foreground(lipgloss.Color("2"))
	s.Failure = r.NewStyle().Foreground(lipgloss.Color("1"))
	s.Warning = r.NewStyle().Foreground(lipgloss.Color("3"))
	s.Accent = r.NewStyle().Foreground(lipgloss.Color("6"))
	return s
}

// Color tells whether these styles colour.
func (s *Styles) Color() bool { return s.color }

// NewStyle returns an empty style bound to these styles' colour profile.
func (s *Styles) NewStyle() lipgloss.Style { return s.renderer.NewStyle() }

// SuccessIcon, FailureIcon and WarningIcon are the icons in their colours.
func (s *Styles) SuccessIcon() string { return s.Success.Render(IconSuccess) }
func (s *Styles) FailureIcon() string { return s.Failure.Render(IconFailure) }
func (s *Styles) WarningIcon() string { return s.Warning.Render(IconWarning) }
