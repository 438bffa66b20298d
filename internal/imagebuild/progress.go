package imagebuild

import (
	"bytes"
	"strings"
	"sync"
	"time"

	"github.com/moby/buildkit/client"
	digest "github.com/opencontainers/go-digest"
)

var timeNow = time.Now

// Lines of output kept per step, for the error of a failed build.
const keptLines = 20

// tracker follows one service's build status on its way to the shared
// display: it prefixes every step with the service ("[web] [2/4] RUN
// make"), gives steps digests of their own (two services' identical steps
// are two lines), and keeps the last lines of each step's output and
// which step failed.
type tracker struct {
	service string

	mu     sync.Mutex
	names  map[digest.Digest]string
	logs   map[digest.Digest]*tail
	failed digest.Digest // the last step that failed (not cancelled)
}

func newTracker(service string) *tracker {
	return &tracker{service: service, names: map[digest.Digest]string{}, logs: map[digest.Digest]*tail{}}
}

func (t *tracker) remap(d digest.Digest) digest.Digest {
	if d == "" {
		return d
	}
	return digest.FromString(t.service + "/" + d.String())
}

// observe records s and rewrites it for the shared display.
func (t *tracker) observe(s *client.SolveStatus) {
	t.mu.Lock()
	defer t.mu.Unlock()
	prefix := "[" + t.service + "] "
	for _, v := range s.Vertexes {
		v.Digest = t.remap(v.Digest)
		for i, in := range v.Inputs {
			v.Inputs[i] = t.remap(in)
		}
		if !strings.HasPrefix(v.Name, prefix) {
			v.Name = prefix + v.Name
		}
		t.names[v.Digest] = v.Name
		if v.Error != "" && !strings.Contains(v.Error, "context canceled") {
			t.failed = v.Digest
		}
	}
	for _, st := range s.Statuses {
		st.Vertex = t.remap(st.Vertex)
	}
	for _, l := range s.Logs {
		l.Vertex = t.remap(l.Vertex)
		tl := t.logs[l.Vertex]
		if tl == nil {
			tl = &tail{}
			t.logs[l.Vertex] = tl
		}
		tl.write(l.Data)
	}
	for _, w := range s.Warnings {
		w.Vertex = t.remap(w.Vertex)
	}
}

// failure returns the failing step's name and its last lines of output.
func (t *tracker) failure() (step, output string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.failed == "" {
		return "", ""
	}
	step = strings.TrimPrefix(t.names[t.failed], "["+t.service+"] ")
	if tl := t.logs[t.failed]; tl != nil {
		output = tl.String()
	}
	return step, output
}

// tail keeps the last keptLines lines written to it.
type tail struct {
	lines   []string
	partial []byte
}

func (t *tail) write(b []byte) {
	t.partial = append(t.partial, b...)
	for {
		i := bytes.IndexByte(t.partial, '\n')
		if i < 0 {
			break
		}
		t.push(string(bytes.TrimRight(t.partial[:i], "\r")))
		t.partial = t.partial[i+1:]
	}
	if len(t.partial) > 64<<10 { // one very long line
		t.push(string(t.partial))
		t.partial = nil
	}
}

func (t *tail) push(line string) {
	t.lines = append(t.lines, line)
	if len(t.lines) > keptLines {
		t.lines = t.lines[len(t.lines)-keptLines:]
	}
}

func (t *tail) String() string {
	lines := t.lines
	if len(t.partial) > 0 {
		lines = append(append([]string(nil), lines...), string(t.partial))
	}
	return strings.Join(lines, "\n")
}
