package ui

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/lipgloss/table"

	"github.com/ergomake/ergomake/internal/iostreams"
)

// Table prints rows to stdout: a bordered lipgloss table on a terminal, columns aligned with
// spaces elsewhere (kubectl's layout, stable for scripts: headers on the first line, one row per
// line, at least three spaces between columns).
type Table struct {
	ios     *iostreams.IOStreams
	styles  *Styles
	headers []string
	rows    [][]string
	// CellStyle, when set, styles a data cell on a terminal (colour a state column, say). row and
	// col count from 0; value is the cell's text.
	CellStyle func(row, col int, value string) lipgloss.Style
}

// NewTable returns an empty table with these column headers.
func NewTable(ios *iostreams.IOStreams, headers ...string) *Table {
	return &Table{ios: ios, styles: NewStyles(ios.ColorEnabled()), headers: headers}
}

// Styles returns the styles of stdout, for CellStyle.
func (t *Table) Styles() *Styles { return t.styles }

// AddRow appends a row; missing cells are empty, extra cells are dropped.
func (t *Table) AddRow(cells ...string) {
	row := make([]string, len(t.headers))
	copy(row, cells)
	t.rows = append(t.rows, row)
}

// Len is the number of rows.
func (t *Table) Len() int { return len(t.rows) }

// String renders the table for the streams' stdout.
func (t *Table) String() string {
	if t.ios.IsStdoutTTY() {
		return t.fancy()
	}
	return t.plain()
}

// Print writes the table to stdout.
func (t *Table) Print() error {
	_, err := fmt.Fprint(t.ios.Out, t.String())
	return err
}

func (t *Table) plain() string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, strings.Join(t.headers, "\t"))
	for _, r := range t.rows {
		fmt.Fprintln(tw, strings.Join(clean(r), "\t"))
	}
	_ = tw.Flush()
	// tabwriter pads the last column of a row when an earlier row's is wider: trim it.
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	for i := range lines {
		lines[i] = strings.TrimRight(lines[i], " ")
	}
	return strings.Join(lines, "\n") + "\n"
}

func (t *Table) fancy() string {
	s := t.styles
	cell := s.NewStyle().Padding(0, 1)
	header := cell.Bold(true)
	if !s.Color() {
		header = cell
	}
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
	for _, r := range t.rows {
		tb.Row(clean(r)...)
	}
	return tb.Render() + "\n"
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
