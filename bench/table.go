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
	head := []string{"Measure", "Unit", "ergomake", "kubectl", "direct", "ergomake/kubectl", "ergomake/direct", "Target", "Result"}
	lines := [][]string{head}
	for _, r := range res.rows {
		lines = append(lines, []string{r.name, r.unit, r.cell(pErgo), r.cell(pKube), r.cell(pDirect),
			r.ratioCell(pKube), r.ratioCell(pDirect), r.tgt.text, r.verdict()})
	}
	w := make([]int, len(head))
	for _, l := range lines {
		for i, c := range l {
			w[i] = max(w[i], len([]rune(c)))
		}
	}
	var b strings.Builder
	put := func(l []string) {
		b.WriteString("|")
		for i, c := range l {
			b.WriteString(" " + c + strings.Repeat(" ", w[i]-len([]rune(c))) + " |")
		}
		b.WriteString("\n")
	}
	put(lines[0])
	sep := make([]string, len(head))
	for i := range sep {
		sep[i] = strings.Repeat("-", w[i])
	}
	put(sep)
	for _, l := range lines[1:] {
		put(l)
	}
	if len(res.notes) > 0 {
		b.WriteString("\n")
		for _, n := range res.notes {
			b.WriteString("- " + n + "\n")
		}
	}
	return b.String()
}
