package compose

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/template"
	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v3"
)

// The locator: the compose files parsed as YAML nodes, to find the file and the line of a key, a
// value or a service, for errors (locate) and for translate's warnings (Locator).

// docs are the parsed compose files, for finding lines.
type docs []doc

type doc struct {
	file string
	root *yaml.Node
}

func parseFiles(files []string) docs {
	return parseFilesWith(files, os.ReadFile)
}

// parseFilesWith is parseFiles reading the files with read.
func parseFilesWith(files []string, read func(string) ([]byte, error)) docs {
	var d docs
	seen := map[string]bool{}
	queue := append([]string{}, files...)
	for len(queue) > 0 && len(d) < 64 {
		f := queue[0]
		queue = queue[1:]
		if seen[f] {
			continue
		}
		seen[f] = true
		b, err := read(f)
		if err != nil {
			continue
		}
		var n yaml.Node
		if yaml.Unmarshal(b, &n) != nil || len(n.Content) == 0 {
			continue
		}
		root := n.Content[0]
		d = append(d, doc{file: f, root: root})
		queue = append(queue, referencedFiles(f, root)...)
	}
	return d
}

// referencedFiles lists the local files a compose file includes or extends, so that errors and
// warnings about what they define name them.
func referencedFiles(file string, root *yaml.Node) []string {
	var out []string
	add := func(n *yaml.Node) {
		if n == nil || n.Kind != yaml.ScalarNode || n.Value == "" || strings.Contains(n.Value, "$") || strings.Contains(n.Value, "://") {
			return
		}
		p := n.Value
		if !filepath.IsAbs(p) {
			p = filepath.Join(filepath.Dir(file), p)
		}
		out = append(out, p)
	}
	if inc := valueOf(root, "include"); inc != nil && inc.Kind == yaml.SequenceNode {
		for _, item := range inc.Content {
			switch item.Kind {
			case yaml.ScalarNode:
				add(item)
			case yaml.MappingNode:
				p := valueOf(item, "path")
				if p != nil && p.Kind == yaml.SequenceNode {
					for _, c := range p.Content {
						add(c)
					}
				} else {
					add(p)
				}
			}
		}
	}
	if svcs := valueOf(root, "services"); svcs != nil && svcs.Kind == yaml.MappingNode {
		for i := 1; i < len(svcs.Content); i += 2 {
			add(valueOf(valueOf(svcs.Content[i], "extends"), "file"))
		}
	}
	return out
}

// lookup walks a dotted path (numeric segments index sequences) and returns the node of the
// deepest segment found (the key node for mappings, the item for sequences) and how many segments
// matched.
func lookup(root *yaml.Node, path string) *yaml.Node {
	n, _ := lookupDepth(root, path)
	return n
}

func lookupDepth(root *yaml.Node, path string) (*yaml.Node, int) {
	n := root
	var last *yaml.Node
	depth := 0
	segs := strings.Split(path, ".")
	for k, seg := range segs {
		for n.Kind == yaml.AliasNode && n.Alias != nil {
			n = n.Alias
		}
		switch n.Kind {
		case yaml.MappingNode:
			var next *yaml.Node
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == seg {
					last, next = n.Content[i], n.Content[i+1]
					break
				}
			}
			if next == nil {
				return last, depth
			}
			n = next
		case yaml.SequenceNode:
			if seg == "[]" { // any item: the one matching the rest of the path best
				if len(n.Content) == 0 {
					return last, depth
				}
				best, bestD := n.Content[0], -1
				rest := strings.Join(segs[k+1:], ".")
				for _, item := range n.Content {
					if rest == "" {
						break
					}
					if f, d := lookupDepth(item, rest); f != nil && d > bestD {
						best, bestD = f, d
					}
				}
				if bestD < 0 {
					return best, depth + 1
				}
				return best, depth + 1 + bestD
			}
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(n.Content) {
				return last, depth
			}
			n = n.Content[i]
			last = n
		default:
			return last, depth
		}
		depth++
	}
	return last, depth
}

// line is the line of path in file (0 when not found).
func (d docs) line(file, path string) int {
	for _, x := range d {
		if x.file == file {
			if n := lookup(x.root, path); n != nil {
				return n.Line
			}
		}
	}
	return 0
}

// find returns the last file that defines the deepest part of path, and its line.
func (d docs) find(path string) (string, int) {
	file, line, depth := "", 0, -1
	for _, x := range d {
		n, dd := lookupDepth(x.root, path)
		if n == nil {
			continue
		}
		if dd >= depth {
			file, line, depth = x.file, n.Line, dd
		}
	}
	if file == "" && len(d) > 0 {
		file = d[0].file
	}
	return file, line
}

// firstNonMapping returns, for the path of an entry of secrets, configs, volumes or networks
// (e.g. "secrets.db"), the path of the first entry of that section, in file order, whose value is
// not a mapping (nor null, when nullOK), in file ("": any file); "" for any other path or when
// there is none.
func (d docs) firstNonMapping(file, path string, nullOK bool) string {
	section, _, ok := strings.Cut(path, ".")
	if !ok || strings.Contains(path[len(section)+1:], ".") ||
		(section != "secrets" && section != "configs" && section != "volumes" && section != "networks") {
		return ""
	}
	for _, x := range d {
		if file != "" && x.file != file {
			continue
		}
		top := x.root
		if top != nil && top.Kind == yaml.DocumentNode && len(top.Content) > 0 {
			top = top.Content[0]
		}
		m := valueOf(top, section)
		if m == nil || m.Kind != yaml.MappingNode {
			continue
		}
		for i := 0; i+1 < len(m.Content); i += 2 {
			v := m.Content[i+1]
			for v.Kind == yaml.AliasNode && v.Alias != nil {
				v = v.Alias
			}
			null := v.Kind == yaml.ScalarNode && v.Tag == "!!null"
			if v.Kind != yaml.MappingNode && !(null && nullOK) {
				return section + "." + m.Content[i].Value
			}
		}
	}
	return ""
}

// services iterates over the services mappings of every file.
func (d docs) services(fn func(file, name string, svc *yaml.Node) bool) {
	for _, x := range d {
		svcs := valueOf(x.root, "services")
		if svcs == nil || svcs.Kind != yaml.MappingNode {
			continue
		}
		for i := 0; i+1 < len(svcs.Content); i += 2 {
			if !fn(x.file, svcs.Content[i].Value, svcs.Content[i+1]) {
				return
			}
		}
	}
}

// findValue finds a service whose key mentions the base name of value.
func (d docs) findValue(key, value string) (service, file string, line int) {
	base := value[strings.LastIndexAny(value, `/\`)+1:]
	d.services(func(f, name string, svc *yaml.Node) bool {
		var walk func(n *yaml.Node) bool
		walk = func(n *yaml.Node) bool {
			if n.Kind == yaml.ScalarNode && strings.Contains(n.Value, base) {
				line = n.Line
				return true
			}
			for _, c := range n.Content {
				if walk(c) {
					return true
				}
			}
			return false
		}
		val := valueOf(svc, key)
		if val != nil && walk(val) {
			service, file = name, f
			return false
		}
		return true
	})
	if file == "" && len(d) > 0 {
		file = d[0].file
	}
	return service, file, line
}

func valueOf(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// findBadPort re-parses every short-syntax port and expose entry to find the one compose-go
// rejected without saying where.
func (d docs) findBadPort(env types.Mapping) (service, badKey, value, file string, line int) {
	d.services(func(f, name string, svc *yaml.Node) bool {
		for _, key := range []string{"ports", "expose"} {
			seq := valueOf(svc, key)
			if seq == nil || seq.Kind != yaml.SequenceNode {
				continue
			}
			for _, item := range seq.Content {
				if item.Kind != yaml.ScalarNode {
					continue
				}
				v, err := template.Substitute(item.Value, func(k string) (string, bool) { s, ok := env[k]; return s, ok })
				if err != nil {
					v = item.Value
				}
				if key == "expose" && !strings.Contains(v, ":") {
					v = "0:" + v // expose has no host part
					if _, err := types.ParsePortConfig(strings.TrimPrefix(v, "0:")); err == nil {
						continue
					}
				}
				if _, err := types.ParsePortConfig(v); err != nil {
					service, badKey, value, file, line = name, key, strings.TrimPrefix(v, "0:"), f, item.Line
					return false
				}
			}
		}
		return true
	})
	if file == "" && len(d) > 0 {
		file = d[0].file
	}
	return service, badKey, value, file, line
}

// badYAMLFile returns the first file that does not parse, for YAML errors that do not name it.
func badYAMLFile(files []string) string {
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var n yaml.Node
		if yaml.Unmarshal(b, &n) != nil {
			return f
		}
	}
	if len(files) > 0 {
		return files[0]
	}
	return ""
}

// Locator finds where a service's key is written in a project's compose files.
type Locator struct{ docs docs }

// NewLocator parses the compose files once.
func NewLocator(files []string) *Locator { return &Locator{docs: parseFiles(files)} }

// NewLocatorFS is NewLocator reading the compose files (each at most MaxComposeFileBytes) from
// fsys (nil: the disk).
func NewLocatorFS(files []string, fsys FS) *Locator {
	fsys = OrDisk(fsys)
	return &Locator{docs: parseFilesWith(files, func(f string) ([]byte, error) { return fsys.ReadFile(f, MaxComposeFileBytes) })}
}

// Find returns the last file defining services.<service>.<key> (a dotted key path), or the
// top-level key when service is empty, with its line; the first file and line 0 when not found.
func (l *Locator) Find(service, key string) (string, int) {
	path := key
	if service != "" {
		path = "services." + service
		if key != "" {
			path += "." + key
		}
	}
	if l == nil || len(l.docs) == 0 {
		return "", 0
	}
	return l.docs.find(path)
}

// legacy reports whether file looks like the version 1 format: no services key, and top-level
// mappings holding image or build.
func (d docs) legacy(file string) bool {
	for _, x := range d {
		if x.file != file || x.root.Kind != yaml.MappingNode || valueOf(x.root, "services") != nil {
			continue
		}
		for i := 1; i < len(x.root.Content); i += 2 {
			v := x.root.Content[i]
			if valueOf(v, "image") != nil || valueOf(v, "build") != nil {
				return true
			}
		}
	}
	return false
}

// Has reports whether some compose file writes services.<service>.<key> itself (not through
// extends, include or compose-go's defaults).
func (l *Locator) Has(service, key string) bool {
	if l == nil {
		return false
	}
	path := "services." + service + "." + key
	want := len(strings.Split(path, "."))
	for _, x := range l.docs {
		if n, d := lookupDepth(x.root, path); n != nil && d == want {
			return true
		}
	}
	return false
}

// firstServiceWithout returns the first service, in file order, that has none of keys.
func (d docs) firstServiceWithout(keys ...string) string {
	found := ""
	d.services(func(_, name string, svc *yaml.Node) bool {
		for _, k := range keys {
			if valueOf(svc, k) != nil {
				return true
			}
		}
		found = name
		return false
	})
	return found
}

// findScalar finds the first scalar value mentioning needle in the files: its file, its dotted
// path and its line.
func (d docs) findScalar(needle string) (file, path string, line int) {
	var walk func(n *yaml.Node, p []string) bool
	walk = func(n *yaml.Node, p []string) bool {
		switch n.Kind {
		case yaml.ScalarNode:
			if strings.Contains(n.Value, needle) {
				path, line = strings.Join(p, "."), n.Line
				return true
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if walk(n.Content[i+1], append(p, n.Content[i].Value)) {
					return true
				}
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				if walk(c, append(p, strconv.Itoa(i))) {
					return true
				}
			}
		}
		return false
	}
	for _, x := range d {
		if walk(x.root, nil) {
			return x.file, path, line
		}
	}
	return "", "", 0
}

// pathAtLine is the dotted path of the key written on line of file ("" when none).
func (d docs) pathAtLine(file string, line int) string {
	var found string
	var walk func(n *yaml.Node, p []string) bool
	walk = func(n *yaml.Node, p []string) bool {
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := n.Content[i]
				kp := append(append([]string{}, p...), k.Value)
				if k.Line == line {
					found = strings.Join(kp, ".")
					return true
				}
				if walk(n.Content[i+1], kp) {
					return true
				}
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				if walk(c, append(append([]string{}, p...), strconv.Itoa(i))) {
					return true
				}
			}
		}
		return false
	}
	for _, x := range d {
		if x.file == file && walk(x.root, nil) {
			return found
		}
	}
	return ""
}

// findEmpty finds the first service whose key is an empty string, or a list holding one.
func (d docs) findEmpty(key string) (service, file string, line int) {
	d.services(func(f, name string, svc *yaml.Node) bool {
		v := valueOf(svc, key)
		if v == nil {
			return true
		}
		items := []*yaml.Node{v}
		if v.Kind == yaml.SequenceNode {
			items = v.Content
		}
		for _, item := range items {
			if item.Kind == yaml.ScalarNode && item.Value == "" && item.Tag != "!!null" {
				service, file, line = name, f, item.Line
				return false
			}
		}
		return true
	})
	if file == "" && len(d) > 0 {
		file = d[0].file
	}
	return service, file, line
}
