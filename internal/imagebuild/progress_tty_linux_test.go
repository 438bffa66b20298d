package imagebuild

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/buildkit/client"
	digest "github.com/opencontainers/go-digest"

	"github.com/ergomake/ergomake/internal/iostreams/termtest"
)

// TestDisplayTTY: on a terminal the one display of every build is BuildKit's live view, drawn
// with cursor movements; once it ends, the screen shows each service's steps prefixed with the
// service (two services' identical steps as two lines), ergomake's own notes, then the warnings.
func TestDisplayTTY(t *testing.T) {
	pty := termtest.OpenPTY(t)
	b := &builder{opts: Options{Out: pty.Slave, TTY: true}, display: make(chan *client.SolveStatus, 64)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.runDisplay()
	}()
	start := time.Now()
	step := func(name string, d digest.Digest, started, completed time.Duration, logs ...string) *client.SolveStatus {
		s, c := start.Add(started), start.Add(completed)
		st := &client.SolveStatus{Vertexes: []*client.Vertex{{Digest: d, Name: name, Started: &s, Completed: &c}}}
		for _, l := range logs {
			st.Logs = append(st.Logs, &client.VertexLog{Vertex: d, Data: []byte(l + "\n"), Timestamp: c})
		}
		return st
	}
	from, run := digest.FromString("from"), digest.FromString("run")
	for _, svc := range []string{"web", "api"} {
		tr := newTracker(svc)
		for _, s := range []*client.SolveStatus{
			step("[1/2] FROM ergomake.test/testapp:latest", from, 0, 100*time.Millisecond),
			step("[2/2] RUN make", run, 100*time.Millisecond, 1500*time.Millisecond, "compiling "+svc),
		} {
			tr.observe(s)
			b.display <- s
		}
		b.note(svc, "build context: 1.0 KiB sent")
	}
	b.warn(`service "web": the build context is large`)
	close(b.display)
	<-done

	out := pty.Output(t)
	if !strings.Contains(out, "\x1b[") {
		t.Errorf("no live view (no cursor movements) on a terminal:\n%q", out)
	}
	screen := termtest.Screen(out)
	t.Logf("screen:\n%s", strings.Join(screen, "\n"))
	find := func(want string) int {
		return slices.IndexFunc(screen, func(l string) bool { return strings.Contains(l, want) })
	}
	for _, want := range []string{
		"[web] [1/2] FROM ergomake.test/testapp:latest", "[web] [2/2] RUN make",
		"[api] [1/2] FROM ergomake.test/testapp:latest", "[api] [2/2] RUN make",
		"[web] build context: 1.0 KiB sent", "[api] build context: 1.0 KiB sent",
	} {
		if find(want) < 0 {
			t.Errorf("the screen lacks %q:\n%s", want, strings.Join(screen, "\n"))
		}
	}
	if w := find(`WARNING: service "web": the build context is large`); w < 0 || w != len(screen)-1 {
		t.Errorf("the warning is not the screen's last line:\n%s", strings.Join(screen, "\n"))
	}
}
