package compose

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/template"
	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v3"
)

// Error is a compose project that cannot be loaded. Its message names the file (and line when
// known), the service and the key: `compose.yaml:12: service "web": ports: invalid port "abc"`.
type Error struct {
	// File is the compose (or env) file at fault; empty when unknown.
	File string
	// Line is the 1-based line in File; 0 when unknown.
	Line int
	// Service is the compose service at fault; empty for project-level errors.
	Service string
	// Key is the key at fault (`ports`, `healthcheck.test`, `env_file`); empty when unknown.
	Key string
	// Msg says what is wrong.
	Msg string
	// Err is compose-go's original error.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteString(":" + strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	}
	if e.Service != "" {
		fmt.Fprintf(&b, "service %q: ", e.Service)
	}
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

var (
	reValidating  = regexp.MustCompile(`^validating (.+?): (\S*) (.*)$`)
	reAdditional  = regexp.MustCompile(`^additional propert(?:y|ies) '([^']+)'`)
	reCast        = regexp.MustCompile(`failed to cast to expected type: strconv\.(\w+): parsing "(.*)": `)
	reOpen        = regexp.MustCompile(`^open (.+?): (.*)$`)
	reQuoted      = regexp.MustCompile(`'([^']+)'`)
	reIndex       = regexp.MustCompile(`\.?\[(\d+)\]`)
	reParse       = regexp.MustCompile(`(?s)^failed to parse (.+?): (.*)$`)
	reDecode      = regexp.MustCompile(`'services\[([^\]]+)\]\.([^']+)' (.*)`)
	reMapping     = regexp.MustCompile(`^(\S+) must be a (mapping|list|string)`)
	reYAMLLine    = regexp.MustCompile(`line (\d+)`)
	reInterpolate = regexp.MustCompile(`^error while interpolating (\S+?): (.*)$`)
	reEnvFile     = regexp.MustCompile(`^env file (.+?) not found`)
	reCycle       = regexp.MustCompile(`^dependency cycle detected: (\S+)`)
	reServiceQ    = regexp.MustCompile(`^service (?:"([^"]+)"|([^\s"]+))`)
	reObject      = regexp.MustCompile(`^(secret|config|volume|network) "([^"]+)"(.*)$`)
	reServicesDot = regexp.MustCompile(`services\.([^.\s:]+)(?:\.([A-Za-z0-9_.\-\[\]]+))?`)
	rePortErr     = regexp.MustCompile(`(?i)^(invalid (containerPort|hostPort|ip address|proto|port|range)|no port specified|invalid port)`)
)

// locate turns a compose-go error into an *Error, finding the file, the line, the service and the
// key from the message and, when the message does not say, from the compose files themselves.
func locate(err error, files []string, env types.Mapping) *Error {
	e := locateRaw(err, files, env)
	e.Msg = strings.Join(strings.Fields(strings.TrimSuffix(e.Msg, ": invalid compose project")), " ")
	return e
}

func locateRaw(err error, files []string, env types.Mapping) *Error {
	msg := reIndex.ReplaceAllString(err.Error(), ".$1")
	if strings.HasPrefix(msg, "yaml: ") || strings.HasPrefix(msg, "libyaml") {
		return yamlError(err, badYAMLFile(files), msg, parseFiles(files))
	}
	// compose-go wraps with "compose file %q is invalid: " for discovered files.
	if i := strings.Index(msg, " is invalid: "); strings.HasPrefix(msg, "compose file ") && i > 0 {
		msg = msg[i+len(" is invalid: "):]
	}
	e := &Error{Msg: msg, Err: err}
	docs := parseFiles(files)

	switch {
	case reValidating.MatchString(msg):
		m := reValidating.FindStringSubmatch(msg)
		e.File = m[1]
		path, what := m[2], strings.ReplaceAll(m[3], "must be a array", "must be an array")
		if reAdditional.MatchString(what) {
			// jsonschema lists the unknown keys in map order: report the first in the file
			best, bestLine := "", 0
			for _, q := range reQuoted.FindAllStringSubmatch(what, -1) {
				p := strings.TrimPrefix(path+"."+q[1], ".")
				l := docs.line(e.File, p)
				if best == "" || (l > 0 && (bestLine == 0 || l < bestLine)) {
					best, bestLine = p, l
				}
			}
			path = best
			what = "false schema"
		}
		e.setPath(path)
		if what == "false schema" {
			seg := strings.Split(path, ".")
			bad := seg[len(seg)-1]
			e.Msg = fmt.Sprintf("unknown key %q", bad)
			if s := suggest(bad, knownKeys(seg[:len(seg)-1])); s != "" {
				e.Msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			if e.Service == "" && len(seg) == 1 {
				e.Key = ""
				if docs.legacy(e.File) {
					e.Msg = fmt.Sprintf("unknown top-level key %q: this file uses the obsolete version 1 format (services at the top level); move the services under \"services:\"", bad)
				}
			}
		} else {
			e.Msg = strings.TrimSpace(path + " " + what)
			if e.Key != "" {
				e.Msg = strings.TrimSpace(what)
			}
		}
		e.Line = docs.line(e.File, path)
		return e
	case reParse.MatchString(msg):
		m := reParse.FindStringSubmatch(msg)
		return yamlError(err, m[1], m[2], docs)
	case reDecode.MatchString(msg):
		m := reDecode.FindStringSubmatch(msg)
		e.Service, e.Key, e.Msg = m[1], m[2], m[3]
		e.File, e.Line = docs.find("services." + m[1] + "." + m[2])
		return e
	case strings.HasPrefix(msg, "healthcheck.test must start"):
		e.Key = "healthcheck.test"
		d := docs
		d.services(func(f, name string, svc *yaml.Node) bool {
			test := valueOf(valueOf(svc, "healthcheck"), "test")
			if test != nil && test.Kind == yaml.SequenceNode && len(test.Content) > 0 {
				switch test.Content[0].Value {
				case "CMD", "CMD-SHELL", "NONE":
				default:
					e.Service, e.File, e.Line = name, f, test.Line
					return false
				}
			}
			return true
		})
		e.Msg = strings.TrimPrefix(msg, "healthcheck.test ")
		if e.File == "" && len(files) > 0 {
			e.File = files[0]
		}
		return e
	case reMapping.MatchString(msg):
		m := reMapping.FindStringSubmatch(msg)
		e.setPath(m[1])
		e.Msg = strings.TrimSpace(strings.TrimPrefix(msg, m[1]))
		e.File, e.Line = docs.find(m[1])
		return e
	case strings.Contains(msg, "invalid project name"):
		e.Msg = strings.TrimPrefix(msg[strings.Index(msg, "invalid project name"):], "")
		if v, ok := env[EnvComposeProjectName]; ok && v != "" {
			e.Key = EnvComposeProjectName
			return e
		}
		e.Key = "name"
		e.File, e.Line = docs.find("name")
		return e
	case reOpen.MatchString(msg):
		m := reOpen.FindStringSubmatch(msg)
		base := m[1][strings.LastIndexAny(m[1], `/\`)+1:]
		e.Msg = fmt.Sprintf("%s: %s", m[1], m[2])
		if file, path, line := docs.findScalar(base); file != "" {
			e.File, e.Line = file, line
			e.setPath(path)
		} else if len(files) > 0 {
			e.File = files[0]
		}
		return e
	case strings.HasPrefix(msg, "include cycle detected"):
		var chain []string
		for _, l := range strings.Split(msg, "\n")[1:] {
			chain = append(chain, strings.TrimPrefix(strings.TrimSpace(l), "include "))
		}
		if len(chain) > 0 {
			e.File = chain[0]
		}
		e.Key = "include"
		e.Msg = "cycle: " + strings.Join(chain, " includes ")
		e.Line = docs.line(e.File, "include")
		return e
	case reObject.MatchString(msg):
		m := reObject.FindStringSubmatch(msg)
		e.Key = m[1] + "s." + m[2]
		e.Msg = strings.TrimSuffix(strings.TrimSpace(m[3]), ": invalid compose project")
		e.File, e.Line = docs.find(e.Key)
		return e
	case reInterpolate.MatchString(msg):
		m := reInterpolate.FindStringSubmatch(msg)
		path := m[1]
		e.Msg = m[2]
		if c := reCast.FindStringSubmatch(e.Msg); c != nil {
			what := map[string]string{"Atoi": "an integer", "ParseInt": "an integer", "ParseUint": "a positive integer", "ParseFloat": "a number", "ParseBool": "a boolean (true or false)"}[c[1]]
			if what == "" {
				what = "of another type"
			}
			e.Msg = fmt.Sprintf("%q must be %s", c[2], what)
		}
		e.setPath(path)
		e.File, e.Line = docs.find(path)
		return e
	case reEnvFile.MatchString(msg):
		m := reEnvFile.FindStringSubmatch(msg)
		e.Msg = fmt.Sprintf("env file %s not found", m[1])
		e.Key = "env_file"
		e.Service, e.File, e.Line = docs.findValue("env_file", m[1])
		return e
	case reCycle.MatchString(msg):
		m := reCycle.FindStringSubmatch(msg)
		e.Service, e.Key = m[1], "depends_on"
		e.File, e.Line = docs.find("services." + m[1] + ".depends_on")
		return e
	case rePortErr.MatchString(msg):
		var value string
		e.Key = "ports"
		e.Service, e.Key, value, e.File, e.Line = docs.findBadPort(env)
		if e.Service == "" {
			e.Key = "ports or expose"
		} else {
			e.Msg = fmt.Sprintf("invalid port %q: %s", value, msg)
		}
		return e
	case reServiceQ.MatchString(msg):
		m := reServiceQ.FindStringSubmatch(msg)
		e.Service = m[1] + m[2]
		e.Msg = strings.TrimSpace(msg[len(m[0]):])
		e.Msg = strings.TrimSuffix(e.Msg, ": invalid compose project")
		e.Key = guessKey(e.Msg)
		if strings.Contains(e.Msg, "neither an image nor a build") {
			// compose-go checks services in map order: report the first one in the files
			if first := docs.firstServiceWithout("image", "build", "extends"); first != "" {
				e.Service = first
			}
		}
		path := "services." + e.Service
		if e.Key != "" {
			path += "." + e.Key
		}
		e.File, e.Line = docs.find(path)
		return e
	case reServicesDot.MatchString(msg):
		m := reServicesDot.FindStringSubmatch(msg)
		e.setPath(m[0])
		e.File, e.Line = docs.find(m[0])
		return e
	}
	if len(files) == 1 {
		e.File = files[0]
	} else if len(files) > 1 {
		e.Msg = fmt.Sprintf("%s (in %s)", msg, strings.Join(files, ", "))
	}
	return e
}

// setPath fills Service and Key from a dotted path like services.web.ports.0.target.
func (e *Error) setPath(path string) {
	seg := strings.Split(path, ".")
	if len(seg) >= 2 && seg[0] == "services" {
		e.Service = seg[1]
		seg = seg[2:]
	}
	var key []string
	for _, s := range seg {
		if _, err := strconv.Atoi(s); err == nil || s == "[]" {
			continue
		}
		key = append(key, s)
	}
	e.Key = strings.Join(key, ".")
}

func guessKey(msg string) string {
	if strings.Contains(msg, "neither an image nor a build") {
		return "image"
	}
	for _, k := range []string{"secret", "config", "volume", "network"} {
		if strings.Contains(msg, "undefined "+k) {
			return k + "s"
		}
	}
	for _, k := range []string{"network_mode", "networks", "depends_on", "build", "image", "volumes_from", "volumes", "secrets", "configs", "extends", "ports", "healthcheck", "deploy", "scale", "container_name", "env_file", "models"} {
		if strings.Contains(msg, k) {
			return k
		}
	}
	if strings.Contains(msg, "depends on") || strings.Contains(msg, "is required by") {
		return "depends_on"
	}
	for _, k := range []string{"secret", "config", "volume", "network"} {
		if strings.Contains(msg, "undefined "+k) {
			return k + "s"
		}
	}
	return ""
}

// knownKeys lists the keys allowed at path (the mapping holding an unknown key), for a "did you
// mean" hint, from compose-go's types.
func knownKeys(path []string) []string {
	t := reflect.TypeOf(types.Project{})
	for _, seg := range path {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch t.Kind() {
		case reflect.Map, reflect.Slice:
			t = t.Elem() // the segment is a name or an index
			continue
		case reflect.Struct:
			f, ok := fieldByYAML(t, seg)
			if !ok {
				return nil
			}
			t = f
		default:
			return nil
		}
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	keys := yamlKeysOf(t)
	if len(path) == 0 {
		keys = append(keys, "include", "version")
	}
	return keys
}

func suggest(bad string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		if d := levenshtein(strings.ToLower(bad), c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// docs are the parsed compose files, for finding lines.
type docs []doc

type doc struct {
	file string
	root *yaml.Node
}

func parseFiles(files []string) docs {
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
		b, err := os.ReadFile(f)
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

var reYAMLContext = regexp.MustCompile(`^(while [^:]*? at line \d+(?:, column \d+)?): line (\d+)(?:, column \d+)?: (.*)$`)

var reConstruct = regexp.MustCompile(`cannot (?:construct|unmarshal) !!(\w+)`)

// yamlError describes a YAML syntax error, with the line and, when the line holds a key, the
// service and the key.
func yamlError(err error, file, msg string, d docs) *Error {
	msg = strings.TrimPrefix(strings.TrimSpace(msg), "yaml: ")
	msg = strings.TrimSpace(strings.TrimPrefix(msg, "construct errors:"))
	msg = strings.Join(strings.Fields(msg), " ")
	// "line 1: line 4: mapping key ..." : the outer line is the document's
	for {
		rest := regexp.MustCompile(`^line \d+: (line \d+: .*)$`).FindStringSubmatch(msg)
		if rest == nil {
			break
		}
		msg = rest[1]
	}
	e := &Error{File: file, Msg: "invalid YAML: " + msg, Err: err}
	if m := reYAMLContext.FindStringSubmatch(msg); m != nil {
		// "while parsing a block mapping at line 4, column 3: line 6, column 5: did not find
		// expected key": the error is on line 6
		e.Line, _ = strconv.Atoi(m[2])
		if strings.Contains(m[1], "quoted scalar") { // an unterminated quote: where it opens
			e.Line, _ = strconv.Atoi(reYAMLLine.FindStringSubmatch(m[1])[1])
		}
		msg = fmt.Sprintf("%s (%s)", m[3], m[1])
		e.Msg = "invalid YAML: " + msg
	} else if l := reYAMLLine.FindStringSubmatch(msg); l != nil {
		e.Line, _ = strconv.Atoi(l[1])
		msg = strings.TrimPrefix(msg, l[0]+": ")
		e.Msg = "invalid YAML: " + msg
	}
	if c := reConstruct.FindStringSubmatch(msg); c != nil && e.Line <= 1 {
		e.Msg = fmt.Sprintf("a compose file must be a mapping (services:, volumes:, ...) at its top level, not a %s", map[string]string{"seq": "list", "str": "string"}[c[1]])
		if strings.HasSuffix(e.Msg, " ") {
			e.Msg += "scalar"
		}
	}
	if e.Line > 0 && strings.Contains(msg, "cannot start any token") {
		if b, err := os.ReadFile(file); err == nil {
			if lines := strings.Split(string(b), "\n"); e.Line <= len(lines) && strings.Contains(lines[e.Line-1], "\t") {
				e.Msg += " (a tab: indent with spaces)"
			}
		}
	}
	if e.Line > 0 {
		if p := d.pathAtLine(file, e.Line); p != "" {
			e.setPath(p)
		}
	}
	return e
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
