package main

import (
	"slices"
	"testing"
)

// TestServerRowsAdd: each ergomake path's measure goes to its own row's ergomake column;
// kubectl's and direct's go to all three rows.
func TestServerRowsAdd(t *testing.T) {
	var res results
	rows := serverRows{res.row("installed", "x", 1, target{}), res.row("in-process", "x", 1, target{}), res.row("API", "x", 1, target{})}
	rows.add(sInstalled, 1)
	rows.add(sInProc, 2)
	rows.add(sAPI, 3)
	rows.add(sKube, 4)
	rows.add(sDirect, 5)
	for i, r := range rows {
		if got := r.vals[pErgo]; !slices.Equal(got, []float64{float64(i + 1)}) {
			t.Errorf("%s ergomake column %v, want [%d]", r.name, got, i+1)
		}
		if !slices.Equal(r.vals[pKube], []float64{4}) || !slices.Equal(r.vals[pDirect], []float64{5}) {
			t.Errorf("%s kubectl %v direct %v, want [4] [5]", r.name, r.vals[pKube], r.vals[pDirect])
		}
	}
}

func TestWithEnv(t *testing.T) {
	got := withEnv([]string{"A=1", "HOME=/h", "B=x=y", "HOME=/again"}, "HOME=/u", "C=3")
	want := []string{"A=1", "B=x=y", "HOME=/u", "C=3"}
	if !slices.Equal(got, want) {
		t.Errorf("withEnv = %v, want %v", got, want)
	}
}

func TestImageCompose(t *testing.T) {
	got, err := imageCompose("p-img", map[string]string{"web": "127.0.0.1:5100/p/web@sha256:aa", "api": "127.0.0.1:5100/p/api@sha256:bb"})
	want := `name: p-img
services:
  web:
    image: 127.0.0.1:5100/p/web@sha256:aa
    stop_grace_period: 1s
    ports: ["8080"]
  api:
    image: 127.0.0.1:5100/p/api@sha256:bb
    stop_grace_period: 1s
    ports: ["9000"]
`
	if err != nil || got != want {
		t.Errorf("imageCompose = %q, %v\nwant %q", got, err, want)
	}
	if _, err := imageCompose("p-img", map[string]string{"web": "x"}); err == nil {
		t.Error("imageCompose without api's image: no error")
	}
}

func TestRetriedNote(t *testing.T) {
	if got := retriedNote(map[int]int{}); got != "" {
		t.Errorf("no retries: %q", got)
	}
	got := retriedNote(map[int]int{sAPI: 1, sInstalled: 2})
	want := "transfers that failed and were tried once more (the second try's rate counts): installed server 2, API server 1"
	if got != want {
		t.Errorf("retriedNote = %q, want %q", got, want)
	}
}
