package main

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"1GiB": 1 << 30, "256MiB": 256 << 20, "64KiB": 64 << 10, "100": 100, "5B": 5} {
		got, err := parseSize(in)
		if err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
		if in != "100" && in != "5B" && fmtSize(got) != in {
			t.Errorf("fmtSize(%d) = %q, want %q", got, fmtSize(got), in)
		}
	}
	for _, bad := range []string{"", "GiB", "-1MiB", "1TB", "0"} {
		if _, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q): no error", bad)
		}
	}
}

func TestStats(t *testing.T) {
	v := []float64{5, 1, 3, 2, 4}
	if m := median(v); m != 3 {
		t.Errorf("median = %v", m)
	}
	if m := median([]float64{1, 2, 3, 4}); m != 2.5 {
		t.Errorf("median of 4 = %v", m)
	}
	if !math.IsInf(median([]float64{1, math.Inf(1)}), 1) {
		t.Error("median of an infinite half is not infinite")
	}
	var h []float64
	for i := 1; i <= 100; i++ {
		h = append(h, float64(i))
	}
	if p := percentile(h, 50); p != 50 {
		t.Errorf("p50 = %v", p)
	}
	if p := percentile(h, 99); p != 99 {
		t.Errorf("p99 = %v", p)
	}
	if p := percentile([]float64{7}, 99); p != 7 {
		t.Errorf("p99 of one = %v", p)
	}
}

func TestVerdictAndTable(t *testing.T) {
	res := &results{}
	tput := res.row("download", "MiB/s", 1, target{ratioAtLeast, 1.2, "≥ 1.2× kubectl"})
	for _, v := range []float64{300, 310, 290} {
		tput.add(pErgo, v)
	}
	for _, v := range []float64{200, 210, 190} {
		tput.add(pKube, v)
	}
	tput.add(pDirect, 1500)
	hol := res.row("hol", "ms", 1, target{ergoAtMost, 10, "≤ 10 ms"})
	hol.inf[pKube] = "no answer"
	hol.add(pErgo, 12)
	hol.add(pKube, math.Inf(1))
	hol.add(pErgo, math.NaN()) // left out
	fails := res.row("fails", "count", 0, target{ergoNoneAtMost, 0, "0 every run"})
	fails.add(pErgo, 0)
	fails.add(pErgo, 1)
	fails.add(pErgo, 0)
	fails.na[pDirect] = true
	free := res.row("echo", "ms", 2, target{})
	free.add(pErgo, 1)
	res.notef("a note")

	if got := tput.verdict(); got != "PASS" { // 300/200 = 1.5
		t.Errorf("throughput verdict %s", got)
	}
	if got := hol.verdict(); got != "MISS" {
		t.Errorf("hol verdict %s", got)
	}
	if len(hol.vals[pErgo]) != 1 {
		t.Errorf("NaN was recorded: %v", hol.vals[pErgo])
	}
	if got := fails.verdict(); got != "MISS" { // median 0, but one run failed
		t.Errorf("failures verdict %s", got)
	}
	if got := free.verdict(); got != "—" {
		t.Errorf("no-target verdict %s", got)
	}
	out := res.table()
	for _, want := range []string{"300.0 (290.0–310.0)", "1.50×", "0.20×", "no answer", "- a note"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	var width int
	for i, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.HasPrefix(l, "|") {
			continue
		}
		if n := len([]rune(l)); i == 0 {
			width = n
		} else if n != width {
			t.Errorf("line %d is %d wide, want %d: %q", i, n, width, l)
		}
	}
}

func TestOrderRotates(t *testing.T) {
	seen := map[[nPaths]int]bool{}
	for r := range nPaths {
		o := order(r)
		seen[o] = true
		got := map[int]bool{}
		for _, p := range o {
			got[p] = true
		}
		if len(got) != nPaths {
			t.Errorf("order(%d) = %v is not a permutation", r, o)
		}
	}
	if len(seen) != nPaths {
		t.Errorf("orders repeat within %d runs", nPaths)
	}
}

// The 8-connection fairness row is judged against direct TCP's slowest share in the same run, not
// against a perfect ⅛ split that no path reaches.
func TestVerdictAtLeastDirect(t *testing.T) {
	share := func(ergo, direct []float64) *row {
		r := &row{name: "8 conns slowest share", tgt: target{ergoAtLeastDirect, 0, "≥ direct TCP's"}}
		for _, v := range ergo {
			r.add(pErgo, v)
		}
		for _, v := range direct {
			r.add(pDirect, v)
		}
		r.add(pKube, 12.5) // kubectl's share plays no part
		return r
	}
	for _, c := range []struct {
		ergo, direct []float64
		want         string
	}{
		{[]float64{10.5, 9.9, 11.9}, []float64{9.7, 8.9, 10.5}, "PASS"}, // below ⅛ and below 0.9 × ⅛, yet fairer than direct
		{[]float64{9.7}, []float64{9.7}, "PASS"},                        // as fair as direct
		{[]float64{9.0, 9.5, 12.5}, []float64{9.6, 9.8, 10.0}, "MISS"},  // median 9.5 < 9.8
		{[]float64{12.5}, nil, "—"},                                     // direct not measured: nothing to judge
		{[]float64{math.NaN()}, []float64{9.7}, "—"},                    // no moment with all 8 active
		{[]float64{12.4, 12.5}, []float64{12.5, 12.5, 12.5}, "MISS"},    // direct perfectly fair, ergomake not
	} {
		if got := share(c.ergo, c.direct).verdict(); got != c.want {
			t.Errorf("ergomake %v, direct %v: verdict %s, want %s", c.ergo, c.direct, got, c.want)
		}
	}
}

// TestWriteMarkdownPartial: a run of some groups (-only) replaces its own rows and notes in the
// table already written, keeps every other row, note and line, and records itself in one line
// (replaced, not repeated, by the next run of the same groups).
func TestWriteMarkdownPartial(t *testing.T) {
	path := filepath.Join(t.TempDir(), "b.md")
	full := &results{}
	a := full.row("transport row", "MiB/s", 1, target{})
	a.add(pErgo, 100)
	b := full.row("build: unchanged re-up -d / first up -d", "×", 2, target{ergoAtMost, 0.3, "≤ 0.3× first up"})
	b.add(pErgo, 0.9)
	full.notef("transport: how")
	full.notef("build: old how")
	if err := os.WriteFile(path, []byte("# Title\n\nprose before\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeMarkdown(path, config{runs: 5, command: "make bench"}, full, time.Minute); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		part := &results{}
		r := part.row("build: unchanged re-up -d / first up -d", "×", 2, target{ergoAtMost, 0.3, "≤ 0.3× first up"})
		r.add(pErgo, 0.2)
		n := part.row("build: context upload (64 MiB, ergomake build)", "MiB/s", 1, target{})
		n.add(pErgo, 42)
		part.notef("build: new how")
		if err := writeMarkdown(path, config{runs: 3, command: "go run ./bench -only build", only: map[string]bool{"build": true}}, part, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	raw, _ := os.ReadFile(path)
	s := string(raw)
	rows, notes, ok := parseTable(s)
	if !ok || len(rows) != 3 || rows[0][0] != "transport row" || rows[0][2] != "100.0" ||
		rows[1][0] != "build: unchanged re-up -d / first up -d" || rows[1][2] != "0.20" || rows[1][8] != "PASS" ||
		rows[2][0] != "build: context upload (64 MiB, ergomake build)" || rows[2][2] != "42.0" {
		t.Errorf("rows %q\n%s", rows, s)
	}
	if strings.Join(notes, "|") != "transport: how|build: new how" {
		t.Errorf("notes %q", notes)
	}
	for _, want := range []string{"prose before", "Latest run: ", "Reproduce: `make bench`", "took 1m0s."} {
		if !strings.Contains(s, want) {
			t.Errorf("lost %q:\n%s", want, s)
		}
	}
	if strings.Count(s, partialPrefix+"build`") != 1 || !strings.Contains(s, "reproduce: `go run ./bench -only build`") {
		t.Errorf("the partial run's line, once:\n%s", s)
	}
	if strings.Index(s, partialPrefix) > strings.Index(s, "Cells are ") {
		t.Errorf("the partial run's line is not with the run lines:\n%s", s)
	}
}

// TestWriteMarkdownPartialLines: the line of an earlier partial run stays while some of its rows
// do, and goes once later runs measured every group it names again; the lines do not pile up
// blank lines between them however many runs there are.
func TestWriteMarkdownPartialLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "b.md")
	full := &results{}
	full.row("server row", "ms", 1, target{}).add(pErgo, 1)
	full.row("build: row", "s", 1, target{}).add(pErgo, 1)
	if err := writeMarkdown(path, config{runs: 5, command: "make bench"}, full, time.Minute); err != nil {
		t.Fatal(err)
	}
	run := func(groups ...string) string {
		t.Helper()
		only := map[string]bool{}
		for _, g := range groups {
			only[g] = true
		}
		part := &results{}
		part.row("server row", "ms", 1, target{}).add(pErgo, 2)
		if err := writeMarkdown(path, config{runs: 3, command: "-only " + strings.Join(groups, ","), only: only}, part, time.Minute); err != nil {
			t.Fatal(err)
		}
		raw, _ := os.ReadFile(path)
		return string(raw)
	}
	s := run("build", "server")
	s = run("build")
	if !strings.Contains(s, partialPrefix+"build,server`") || !strings.Contains(s, partialPrefix+"build`") {
		t.Fatalf("the build,server line went while its server rows stay:\n%s", s)
	}
	s = run("server")
	if strings.Contains(s, partialPrefix+"build,server`") {
		t.Errorf("the build,server line stays after build and server were both measured again:\n%s", s)
	}
	if !strings.Contains(s, partialPrefix+"build`") || !strings.Contains(s, partialPrefix+"server`") {
		t.Errorf("lost a line:\n%s", s)
	}
	for range 3 {
		s = run("server")
	}
	if strings.Contains(s, "\n\n\n") {
		t.Errorf("blank lines pile up:\n%s", s)
	}
}
