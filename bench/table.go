package main

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// The three paths every measure compares.
const (
	pErgo = iota
	pKube
	pDirect
	nPaths
)

var pathNames = [nPaths]string{"ergomake", "kubectl", "direct"}

// targetKind says how a row's target is judged, always on medians.
type targetKind int

const (
	noTarget          targetKind = iota
	ratioAtLeast                 // ergomake/kubectl >= x
	ratioAtMost                  // ergomake/kubectl <= x
	ergoAtMost                   // ergomake <= x
	ergoNoneAtMost               // ergomake <= x in every run (counts: failures)
	ergoAtLeastDirect            // ergomake >= direct (x unused): as good as the physical ceiling measured in the same run
)

type target struct {
	kind targetKind
	x    float64
	text string
}

// row is one measure: samples per path (one per run; +Inf means "never", shown as inf[path]).
type row struct {
	name string
	unit string
	prec int // decimals
	vals [nPaths][]float64
	na   [nPaths]bool   // path not measured for this row
	inf  [nPaths]string // what +Inf means on this path ("no answer", "forward ended")
	tgt  target
}

// add records one run's value; NaN (nothing to measure in that run) is left out.
func (r *row) add(p int, v float64) {
	if !math.IsNaN(v) {
		r.vals[p] = append(r.vals[p], v)
	}
}

type results struct {
	rows  []*row
	notes []string
}

func (res *results) row(name, unit string, prec int, tgt target) *row {
	r := &row{name: name, unit: unit, prec: prec, tgt: tgt}
	res.rows = append(res.rows, r)
	return r
}

func (res *results) notef(format string, args ...any) {
	res.notes = append(res.notes, fmt.Sprintf(format, args...))
}

func sorted(v []float64) []float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := sorted(v)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	if math.IsInf(s[n/2-1], 1) || math.IsInf(s[n/2], 1) {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// percentile of v (nearest rank).
func percentile(v []float64, p float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := sorted(v)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func (r *row) fmtVal(p int, v float64) string {
	switch {
	case math.IsInf(v, 1):
		if r.inf[p] != "" {
			return r.inf[p]
		}
		return "∞"
	case math.IsNaN(v):
		return "—"
	}
	return fmtFloat(v, r.prec)
}

func fmtFloat(v float64, prec int) string { return fmt.Sprintf("%.*f", prec, v) }

// cell is "median (min–max)", or just the value when all runs agree or there is one run.
func (r *row) cell(p int) string {
	v := r.vals[p]
	if r.na[p] || len(v) == 0 {
		return "—"
	}
	s := sorted(v)
	lo, hi, med := s[0], s[len(s)-1], median(v)
	if len(s) == 1 || r.fmtVal(p, lo) == r.fmtVal(p, hi) {
		return r.fmtVal(p, med)
	}
	return fmt.Sprintf("%s (%s–%s)", r.fmtVal(p, med), r.fmtVal(p, lo), r.fmtVal(p, hi))
}

func (r *row) ratio(to int) (float64, bool) {
	if r.na[pErgo] || r.na[to] || len(r.vals[pErgo]) == 0 || len(r.vals[to]) == 0 {
		return 0, false
	}
	a, b := median(r.vals[pErgo]), median(r.vals[to])
	if math.IsInf(a, 0) || math.IsInf(b, 0) || math.IsNaN(a) || math.IsNaN(b) || b == 0 {
		return 0, false
	}
	return a / b, true
}

func (r *row) ratioCell(to int) string {
	q, ok := r.ratio(to)
	if !ok {
		return "—"
	}
	return fmt.Sprintf("%.2f×", q)
}

// verdict is PASS, MISS, or "—" for a row without a target (or without data to judge).
func (r *row) verdict() string {
	if r.tgt.kind == noTarget || len(r.vals[pErgo]) == 0 {
		return "—"
	}
	e := median(r.vals[pErgo])
	ok := false
	switch r.tgt.kind {
	case ratioAtLeast, ratioAtMost:
		k := median(r.vals[pKube])
		switch {
		case len(r.vals[pKube]) == 0:
			return "—"
		case math.IsInf(k, 1): // kubectl never got there
			ok = !math.IsInf(e, 1) || r.tgt.kind == ratioAtLeast
		case math.IsInf(e, 1):
			ok = r.tgt.kind == ratioAtLeast
		default:
			q := e / k
			ok = (r.tgt.kind == ratioAtLeast && q >= r.tgt.x) || (r.tgt.kind == ratioAtMost && q <= r.tgt.x)
		}
	case ergoAtMost:
		ok = e <= r.tgt.x
	case ergoAtLeastDirect:
		d := r.vals[pDirect]
		if len(d) == 0 {
			return "—"
		}
		ok = e >= median(d)
	case ergoNoneAtMost:
		ok = true
		for _, v := range r.vals[pErgo] {
			ok = ok && v <= r.tgt.x
		}
	}
	if ok {
		return "PASS"
	}
	return "MISS"
}

// table renders the rows as a markdown table, columns padded so it reads in a terminal too.
func (res *results) table() string {
	return renderTable(res.cells(), res.notes)
}

// tableHead is the table's header row.
var tableHead = []string{"Measure", "Unit", "ergomake", "kubectl", "direct", "ergomake/kubectl", "ergomake/direct", "Target", "Result"}

// cells are the rows' cells, as the table shows them.
func (res *results) cells() [][]string {
	var lines [][]string
	for _, r := range res.rows {
		lines = append(lines, []string{r.name, r.unit, r.cell(pErgo), r.cell(pKube), r.cell(pDirect),
			r.ratioCell(pKube), r.ratioCell(pDirect), r.tgt.text, r.verdict()})
	}
	return lines
}

// renderTable renders rows of cells under tableHead, then the notes.
func renderTable(rows [][]string, notes []string) string {
	lines := append([][]string{tableHead}, rows...)
	w := make([]int, len(tableHead))
	for _, l := range lines {
		for i, c := range l {
			if i < len(w) {
				w[i] = max(w[i], len([]rune(c)))
			}
		}
	}
	var b strings.Builder
	put := func(l []string) {
		b.WriteString("|")
		for i := range w {
			c := ""
			if i < len(l) {
				c = l[i]
			}
			b.WriteString(" " + c + strings.Repeat(" ", w[i]-len([]rune(c))) + " |")
		}
		b.WriteString("\n")
	}
	put(lines[0])
	sep := make([]string, len(tableHead))
	for i := range sep {
		sep[i] = strings.Repeat("-", w[i])
	}
	put(sep)
	for _, l := range lines[1:] {
		put(l)
	}
	if len(notes) > 0 {
		b.WriteString("\n")
		for _, n := range notes {
			b.WriteString("- " + n + "\n")
		}
	}
	return b.String()
}

// parseTable reads back a table renderTable wrote (its rows' cells and its notes) from text;
// ok is false when text holds no such table.
func parseTable(text string) (rows [][]string, notes []string, ok bool) {
	inTable := false
	for _, l := range strings.Split(text, "\n") {
		switch {
		case strings.HasPrefix(l, "|"):
			cells := strings.Split(strings.Trim(strings.TrimSpace(l), "|"), "|")
			for i := range cells {
				cells[i] = strings.TrimSpace(cells[i])
			}
			switch {
			case !inTable && len(cells) > 0 && cells[0] == tableHead[0]:
				inTable, ok = true, true
			case inTable && strings.Trim(cells[0], "-") == "":
			case inTable:
				rows = append(rows, cells)
			}
		case ok && strings.HasPrefix(l, "- "):
			notes = append(notes, strings.TrimPrefix(l, "- "))
		}
	}
	return rows, notes, ok
}

// mergeTable is the table of a partial run (-only): the old table's rows, each replaced by the
// new row of the same measure, then the new rows it did not have; the old notes, each replaced by
// the new note on the same subject (its text before ": "), then the new ones.
func mergeTable(oldRows [][]string, oldNotes []string, newRows [][]string, newNotes []string) string {
	byName := map[string][]string{}
	for _, r := range newRows {
		byName[r[0]] = r
	}
	var rows [][]string
	for _, r := range oldRows {
		if n, ok := byName[r[0]]; ok {
			r = n
			delete(byName, r[0])
		}
		rows = append(rows, r)
	}
	for _, r := range newRows {
		if _, ok := byName[r[0]]; ok {
			rows = append(rows, r)
		}
	}
	subject := func(n string) string { s, _, _ := strings.Cut(n, ": "); return s }
	bySubject := map[string]string{}
	for _, n := range newNotes {
		bySubject[subject(n)] = n
	}
	var notes []string
	for _, n := range oldNotes {
		if nn, ok := bySubject[subject(n)]; ok {
			n = nn
			delete(bySubject, subject(n))
		}
		notes = append(notes, n)
	}
	for _, n := range newNotes {
		if _, ok := bySubject[subject(n)]; ok {
			notes = append(notes, n)
		}
	}
	return renderTable(rows, notes)
}
