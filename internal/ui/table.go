package ui

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/lipgloss/table"

	"github.com/ergomake/ergomake/internal/iostreams"
)

// Table is ergomake's one table: a bordered lipgloss table on a terminal, columns aligned with
// spaces elsewhere (kubectl's layout, stable for scripts: headers on the first line, one row per
// line, at least three spaces between columns).
//
// On a terminal the table stays narrower than the terminal: the Fit column is cut ("…") to make
// room, and when even that is not enough every row becomes one short line ("  web running 1/1")
// cut to the width. Colour only where the stream's manners allow it (a terminal, no NO_COLOR).
type Table struct {
	w        io.Writer
	tty      bool
	styles   *Styles
	termSize func() int
	headers  []string
	rows     [][]string

	// CellStyle, when set, styles a data cell on a terminal (colour a state column, say). row and
	// col count from 0; value is the cell's text. The table adds the padding.
	CellStyle func(row, col int, value string) lipgloss.Style
	// Fit is the column cut to keep the table within the width; the last one unless set.
	Fit int
	// MaxWidth is the width the table must stay under on a terminal; 0 means the terminal's
	// width, and no limit when that is unknown.
	MaxWidth int
}

// NewTable returns an empty table printed on stdout, with these column headers.
func NewTable(ios *iostreams.IOStreams, headers ...string) *Table {
	return newTable(ios.Out, ios.IsStdoutTTY(), ios.ColorEnabled(), ios, headers)
}

// NewStderrTable returns an empty table shown on stderr (the live view of `up`, under a Status),
// with stderr's manners.
func NewStderrTable(ios *iostreams.IOStreams, headers ...string) *Table {
	return newTable(ios.ErrOut, ios.IsStderrTTY(), ios.ColorEnabledStderr(), ios, headers)
}

func newTable(w io.Writer, tty, color bool, ios *iostreams.IOStreams, headers []string) *Table {
	return &Table{w: w, tty: tty, styles: NewStyles(color), termSize: ios.TerminalWidth,
		headers: headers, Fit: len(headers) - 1}
}

// Styles returns the styles of the table's stream, for CellStyle.
func (t *Table) Styles() *Styles { return t.styles }

// AddRow appends a row; missing cells are empty, extra cells are dropped.
func (t *Table) AddRow(cells ...string) {
	row := make([]string, len(t.headers))
	copy(row, cells)
	t.rows = append(t.rows, clean(row))
}

// Len is the number of rows.
func (t *Table) Len() int { return len(t.rows) }

// String renders the table for its stream, with a final newline.
func (t *Table) String() string {
	if t.tty {
		return t.fancy() + "\n"
	}
	return t.plain()
}

// Print writes the table to its stream.
func (t *Table) Print() error {
	_, err := fmt.Fprint(t.w, t.String())
	return err
}

func (t *Table) plain() string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, strings.Join(t.headers, "\t"))
	for _, r := range t.rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	_ = tw.Flush()
	// tabwriter pads the last column of a row when an earlier row's is wider: trim it.
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	for i := range lines {
		lines[i] = strings.TrimRight(lines[i], " ")
	}
	return strings.Join(lines, "\n") + "\n"
}

// minFit is the narrowest the Fit column is cut to before the table gives way to short lines.
const minFit = 10

// fancy is the bordered table, every line narrower than the width (no final newline).
func (t *Table) fancy() string {
	width := t.MaxWidth
	if width <= 0 && t.termSize != nil {
		width = t.termSize()
	}
	rows := t.rows
	if width > 0 && t.Fit >= 0 && t.Fit < len(t.headers) {
		// Each cell takes its text plus 2 of padding, and there is one border more than columns:
		// what is left of the width (less one column: a line as wide as the terminal may wrap) is
		// the Fit column's.
		room := width - 1 - (len(t.headers) + 1)
		for col := range t.headers {
			if col != t.Fit {
				room -= t.colWidth(col)
			}
		}
		room -= 2
		room = max(room, minFit, lipgloss.Width(t.headers[t.Fit]))
		rows = make([][]string, len(t.rows))
		for i, r := range t.rows {
			rows[i] = append([]string(nil), r...)
			rows[i][t.Fit] = Truncate(r[t.Fit], room)
		}
	}
	out := t.bordered(rows)
	if width <= 0 || lipgloss.Width(out) < width {
		return out
	}
	// Too narrow for the table (and a line that wraps could not be redrawn in place): one short
	// line each.
	lines := make([]string, len(t.rows))
	for i, r := range t.rows {
		lines[i] = Truncate(strings.TrimRight("  "+strings.Join(r, " "), " "), width-1)
	}
	return strings.Join(lines, "\n")
}

// colWidth is the width of a column: its widest cell plus the padding.
func (t *Table) colWidth(col int) int {
	w := lipgloss.Width(t.headers[col])
	for _, r := range t.rows {
		w = max(w, lipgloss.Width(r[col]))
	}
	return w + 2
}

func (t *Table) bordered(rows [][]string) string {
	s := t.styles
	cell := s.NewStyle().Padding(0, 1)
	header := cell.Bold(s.Color())
	tb := table.New().
		Border(lipgloss.RoundedBorder()).
		BorderStyle(s.Dim).
		Headers(t.headers...).
		StyleFunc(func(row, col int) lipgloss.Style {
			if row == table.HeaderRow {
				return header
			}
			if t.CellStyle != nil && row >= 0 && row < len(t.rows) && col < len(t.rows[row]) {
				return cell.Inherit(t.CellStyle(row, col, t.rows[row][col]))
			}
			return cell
		})
	for _, r := range rows {
		tb.Row(r...)
	}
	return tb.Render()
}

// Truncate cuts s to at most n columns, ending with "…" when it was cut.
func Truncate(s string, n int) string {
	if lipgloss.Width(s) <= n {
		return s
	}
	r := []rune(s)
	for len(r) > 0 && lipgloss.Width(string(r)) > n-1 {
		r = r[:len(r)-1]
	}
	return string(r) + "…"
}

// clean keeps a cell on one line and out of tabwriter's way.
func clean(cells []string) []string {
	out := make([]string, len(cells))
	r := strings.NewReplacer("\n", " ", "\r", " ", "\t", " ")
	for i, c := range cells {
		out[i] = r.Replace(c)
	}
	return out
}
