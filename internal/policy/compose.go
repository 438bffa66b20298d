package policy

import (
	"sort"
	"strconv"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/ergomake/ergomake/internal/compose"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// CheckProject returns the settings of the compose project's services that exceed ceiling but
// that the translation drops, so that CheckEnv cannot see them: pid and ipc in the node's
// namespaces, and the node's devices. A nil project has none.
func CheckProject(p *types.Project, ceiling Level) []Violation {
	if p == nil || ceiling.Allows(Privileged) {
		return nil
	}
	var out []Violation
	for _, name := range p.ServiceNames() {
		s := p.Services[name]
		add := func(key, field, value, msg string) {
			out = append(out, Violation{Service: name, Key: key, Field: field, Value: value, Message: msg, Needs: Privileged, Ceiling: ceiling})
		}
		if s.Pid == "host" {
			add("pid", "hostPID", "host", "host (the node's process namespace)")
		}
		if s.Ipc == "host" {
			add("ipc", "hostIPC", "host", "host (the node's IPC namespace)")
		}
		for _, d := range s.Devices {
			add("devices", "devices", d.Source, "the node's device "+d.Source)
		}
	}
	return out
}

// Check is CheckEnv of spec (translated from p) and CheckProject of p, by service name and then
// line, each with the compose file and line that asks for it (see Locate).
func Check(p *types.Project, spec *v1alpha1.EnvSpec, ceiling Level) []Violation {
	return CheckFiles(p, spec, ceiling, nil)
}

// CheckFiles is Check reading the compose files from fsys (nil: the disk), as the ergomake
// server does from the files the CLI shipped.
func CheckFiles(p *types.Project, spec *v1alpha1.EnvSpec, ceiling Level, fsys compose.FS) []Violation {
	all := append(CheckEnv(spec, ceiling), CheckProject(p, ceiling)...)
	LocateFiles(all, p, fsys)
	sort.SliceStable(all, func(i, j int) bool {
		a, b := all[i], all[j]
		if a.Service != b.Service {
			return a.Service < b.Service
		}
		return a.File == b.File && a.Line > 0 && b.Line > 0 && a.Line < b.Line
	})
	return all
}

// Locate sets File and Line of each violation from the project's compose files: the line of the
// list item (a capability, a volume, a device) when it can be told, else of the key.
func Locate(vs []Violation, p *types.Project) { LocateFiles(vs, p, nil) }

// LocateFiles is Locate reading the compose files from fsys (nil: the disk).
func LocateFiles(vs []Violation, p *types.Project, fsys compose.FS) {
	if p == nil || len(vs) == 0 {
		return
	}
	loc := compose.NewLocator(p.ComposeFiles)
	if fsys != nil {
		loc = compose.NewLocatorFS(p.ComposeFiles, fsys)
	}
	for i := range vs {
		v := &vs[i]
		v.File, v.Line = loc.Find(v.Service, path(p, v))
		if v.File == "" && len(p.ComposeFiles) > 0 {
			v.File = p.ComposeFiles[0]
		}
	}
}

// path is the dotted path of v's key in its service (items by index), for the locator.
func path(p *types.Project, v *Violation) string {
	s, ok := p.Services[v.Service]
	if !ok {
		return v.Key
	}
	switch v.Key {
	case "cap_add":
		for i, c := range s.CapAdd {
			if capName(c) == v.Value {
				return "cap_add." + strconv.Itoa(i)
			}
		}
	case "volumes":
		for i, m := range s.Volumes {
			if m.Target == v.Value {
				return "volumes." + strconv.Itoa(i)
			}
		}
	case "devices":
		for i, d := range s.Devices {
			if d.Source == v.Value {
				return "devices." + strconv.Itoa(i)
			}
		}
	}
	return v.Key
}
