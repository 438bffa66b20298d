package compose

import (
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"

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
	reEmptyFile   = regexp.MustCompile(`^(env|label) file  not found: stat : `)
	reEmptyVolume = regexp.MustCompile(`^invalid empty volume spec`)
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
	l := &located{e: &Error{Msg: msg, Err: err}, msg: msg, files: files, env: env, docs: parseFiles(files)}
	for _, k := range messageKinds {
		if m := k.re.FindStringSubmatch(msg); m != nil {
			return k.fill(l, m)
		}
	}
	e := l.e
	if len(files) == 1 {
		e.File = files[0]
	} else if len(files) > 1 {
		e.Msg = fmt.Sprintf("%s (in %s)", msg, strings.Join(files, ", "))
	}
	return e
}

// located is what a messageKind's fill reads: compose-go's message (indexes written .N), the
// compose files, the environment, and the *Error to fill (Msg and Err already set).
type located struct {
	e     *Error
	msg   string
	files []string
	env   types.Mapping
	docs  docs
}

// firstFile is the first compose file, for errors that cannot be placed more precisely.
func (l *located) firstFile() string {
	if len(l.files) > 0 {
		return l.files[0]
	}
	return ""
}

// A messageKind is one kind of compose-go message: the pattern that recognises it, and how to
// fill the *Error from the pattern's submatches and the compose files.
type messageKind struct {
	re   *regexp.Regexp
	fill func(l *located, m []string) *Error
}

// messageKinds are tried in order; the first whose pattern matches the message fills the error.
// A message no kind recognises is kept as it is, with the file when there is only one.
var messageKinds = []messageKind{
	// a JSON schema violation: validating FILE: PATH WHAT
	{reValidating, locateSchema},
	// a YAML error in a named file: failed to parse FILE: yaml: ...
	{reParse, func(l *located, m []string) *Error {
		return yamlError(l.e.Err, m[1], m[2], l.docs)
	}},
	// a value that does not decode: 'services[web].mem_limit' invalid size: 'lots'
	{reDecode, func(l *located, m []string) *Error {
		e := l.e
		e.Service, e.Key, e.Msg = m[1], m[2], m[3]
		e.File, e.Line = l.docs.find("services." + m[1] + "." + m[2])
		return e
	}},
	// healthcheck.test must start either by "CMD", ... (no service named)
	{regexp.MustCompile(`^healthcheck\.test must start`), locateHealthcheckTest},
	// services must be a mapping
	{reMapping, func(l *located, m []string) *Error {
		e := l.e
		e.setPath(m[1])
		e.Msg = strings.TrimSpace(strings.TrimPrefix(l.msg, m[1]))
		e.File, e.Line = l.docs.find(m[1])
		return e
	}},
	// invalid project name "X": from COMPOSE_PROJECT_NAME or the name key
	{regexp.MustCompile(`invalid project name`), func(l *located, m []string) *Error {
		e := l.e
		e.Msg = l.msg[strings.Index(l.msg, m[0]):]
		if v, ok := l.env[EnvComposeProjectName]; ok && v != "" {
			e.Key = EnvComposeProjectName
			return e
		}
		e.Key = "name"
		e.File, e.Line = l.docs.find("name")
		return e
	}},
	// env_file: "" or label_file: "": env file  not found: stat : ...
	{reEmptyFile, func(l *located, m []string) *Error {
		e := l.e
		e.Key = m[1] + "_file"
		e.Msg = `"" is not a file name`
		e.Service, e.File, e.Line = l.docs.findEmpty(e.Key)
		return e
	}},
	// open PATH: ...: an included or extended file, found by its base name
	{reOpen, func(l *located, m []string) *Error {
		e := l.e
		base := m[1][strings.LastIndexAny(m[1], `/\`)+1:]
		e.Msg = fmt.Sprintf("%s: %s", m[1], m[2])
		if file, path, line := l.docs.findScalar(base); file != "" {
			e.File, e.Line = file, line
			e.setPath(path)
		} else {
			e.File = l.firstFile()
		}
		return e
	}},
	// include cycle detected: one file per line
	{regexp.MustCompile(`^include cycle detected`), func(l *located, _ []string) *Error {
		e := l.e
		var chain []string
		for _, line := range strings.Split(l.msg, "\n")[1:] {
			chain = append(chain, strings.TrimPrefix(strings.TrimSpace(line), "include "))
		}
		if len(chain) > 0 {
			e.File = chain[0]
		}
		e.Key = "include"
		e.Msg = "cycle: " + strings.Join(chain, " includes ")
		e.Line = l.docs.line(e.File, "include")
		return e
	}},
	// volume "data" ...: a top-level secret, config, volume or network
	{reObject, func(l *located, m []string) *Error {
		e := l.e
		e.Key = m[1] + "s." + m[2]
		e.Msg = strings.TrimSuffix(strings.TrimSpace(m[3]), ": invalid compose project")
		e.File, e.Line = l.docs.find(e.Key)
		return e
	}},
	// error while interpolating PATH: ... (and strconv casts of interpolated values)
	{reInterpolate, func(l *located, m []string) *Error {
		e := l.e
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
		e.File, e.Line = l.docs.find(path)
		return e
	}},
	// env file PATH not found: the service whose env_file names it
	{reEnvFile, func(l *located, m []string) *Error {
		e := l.e
		e.Msg = fmt.Sprintf("env file %s not found", m[1])
		e.Key = "env_file"
		e.Service, e.File, e.Line = l.docs.findValue("env_file", m[1])
		return e
	}},
	// dependency cycle detected: web -> db -> web
	{reCycle, func(l *located, m []string) *Error {
		e := l.e
		e.Service, e.Key = m[1], "depends_on"
		e.File, e.Line = l.docs.find("services." + m[1] + ".depends_on")
		return e
	}},
	// a malformed port, without the service: re-parse each ports and expose entry
	{rePortErr, func(l *located, _ []string) *Error {
		e := l.e
		var value string
		e.Service, e.Key, value, e.File, e.Line = l.docs.findBadPort(l.env)
		if e.Service == "" {
			e.Key = "ports or expose"
		} else {
			e.Msg = fmt.Sprintf("invalid port %q: %s", value, l.msg)
		}
		return e
	}},
	// volumes: [""]: invalid empty volume spec
	{reEmptyVolume, func(l *located, _ []string) *Error {
		e := l.e
		e.Key = "volumes"
		e.Msg = `"" is not a volume (want [SOURCE:]TARGET[:MODE])`
		e.Service, e.File, e.Line = l.docs.findEmpty("volumes")
		return e
	}},
	// service "web" ...: the key guessed from the words of the message
	{reServiceQ, locateService},
	// any other message holding a services.NAME.KEY path
	{reServicesDot, func(l *located, m []string) *Error {
		e := l.e
		e.setPath(m[0])
		e.File, e.Line = l.docs.find(m[0])
		return e
	}},
}

// locateSchema places a JSON schema violation: "validating FILE: PATH WHAT".
func locateSchema(l *located, m []string) *Error {
	e, docs := l.e, l.docs
	e.File = m[1]
	path, what := m[2], strings.ReplaceAll(m[3], "must be a array", "must be an array")
	if reAdditional.MatchString(what) {
		// jsonschema lists the unknown keys in map order: report the first in the file
		best, bestLine := "", 0
		for _, q := range reQuoted.FindAllStringSubmatch(what, -1) {
			p := strings.TrimPrefix(path+"."+q[1], ".")
			line := docs.line(e.File, p)
			if best == "" || (line > 0 && (bestLine == 0 || line < bestLine)) {
				best, bestLine = p, line
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
}

// locateHealthcheckTest finds the first healthcheck test that starts with neither CMD, CMD-SHELL
// nor NONE: compose-go does not say which service's it is.
func locateHealthcheckTest(l *located, _ []string) *Error {
	e := l.e
	e.Key = "healthcheck.test"
	l.docs.services(func(f, name string, svc *yaml.Node) bool {
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
	e.Msg = strings.TrimPrefix(l.msg, "healthcheck.test ")
	if e.File == "" {
		e.File = l.firstFile()
	}
	return e
}

// locateService places a message about a named service: `service "web" ...`, guessing the key
// from the words of the message.
func locateService(l *located, m []string) *Error {
	e := l.e
	e.Service = m[1] + m[2]
	e.Msg = strings.TrimSpace(l.msg[len(m[0]):])
	e.Msg = strings.TrimSuffix(e.Msg, ": invalid compose project")
	e.Key = guessKey(e.Msg)
	if strings.Contains(e.Msg, "neither an image nor a build") {
		// compose-go checks services in map order: report the first one in the files
		if first := l.docs.firstServiceWithout("image", "build", "extends"); first != "" {
			e.Service = first
		}
	}
	path := "services." + e.Service
	if e.Key != "" {
		path += "." + e.Key
	}
	e.File, e.Line = l.docs.find(path)
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
