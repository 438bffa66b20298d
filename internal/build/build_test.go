package build

import (
	"runtime"
	"testing"
)

func TestGet(t *testing.T) {
	defer func(v, c, d string) { Version, Commit, Date = v, c, d }(Version, Commit, Date)

	Version, Commit, Date = "v1.2.3", "abc123", "2026-11-24T17:00:00Z"
	got := Get()
	if got.Version != "v1.2.3" || got.Commit != "abc123" || got.Date != "2026-11-24T17:00:00Z" {
		t.Errorf("stamped info lost: %+v", got)
	}
	if got.GoVersion != runtime.Version() || got.Platform != runtime.GOOS+"/"+runtime.GOARCH {
		t.Errorf("runtime info wrong: %+v", got)
	}

	Version, Commit, Date = "v1.2.3", "none", "0001-01-01T00:00:00Z"
	if got := Get(); got.Commit == "none" || got.Date == "0001-01-01T00:00:00Z" {
		t.Errorf("placeholders kept: %+v", got)
	}
}
