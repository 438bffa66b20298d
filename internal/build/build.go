// Package build holds what the linker stamps into the binaries: the release version and, for
// release builds, the commit and date. Makefile and .goreleaser.yaml set them with -ldflags -X.
package build

import (
	"runtime"
	"runtime/debug"
	"strings"
)

// Set with -ldflags "-X github.com/ergomake/ergomake/internal/build.Version=v1.2.3".
var (
	// Version is the release version ("dev" in a plain `go build`).
	Version = "dev"
	// Commit is the git commit the binary was built from (empty when unknown).
	Commit = ""
	// Date is the build date, RFC 3339 (empty when unknown).
	Date = ""
)

// Info describes the running binary.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit,omitempty"`
	Date      string `json:"date,omitempty"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

// Get returns the stamped build information. A binary built by `go install module@version`
// has no ldflags but knows its module version and VCS revision: those fill the gaps.
func Get() Info {
	info := Info{
		Version:   Version,
		Commit:    Commit,
		Date:      Date,
		GoVersion: runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
	}
	// A snapshot release of a tree without git history stamps placeholders.
	if info.Commit == "none" {
		info.Commit = ""
	}
	if strings.HasPrefix(info.Date, "0001-01-01") {
		info.Date = ""
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return info
	}
	if (info.Version == "" || info.Version == "dev") && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		info.Version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			if info.Commit == "" {
				info.Commit = s.Value
			}
		case "vcs.time":
			if info.Date == "" {
				info.Date = s.Value
			}
		}
	}
	return info
}
