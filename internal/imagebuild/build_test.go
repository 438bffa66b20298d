package imagebuild

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/moby/buildkit/client"
	digest "github.com/opencontainers/go-digest"

	"github.com/ergomake/ergomake/internal/forward"
)

// TestTracker: steps are prefixed with their service and get digests of
// their own; the failing step and its last lines are kept.
func TestTracker(t *testing.T) {
	tr := newTracker("web")
	d1, d2 := digest.FromString("a"), digest.FromString("b")
	s := &client.SolveStatus{
		Vertexes: []*client.Vertex{{Digest: d1, Name: "[1/2] FROM busybox"}, {Digest: d2, Inputs: []digest.Digest{d1}, Name: "[2/2] RUN make"}},
		Statuses: []*client.VertexStatus{{Vertex: d1}},
	}
	tr.observe(s)
	if s.Vertexes[0].Name != "[web] [1/2] FROM busybox" || s.Vertexes[1].Name != "[web] [2/2] RUN make" {
		t.Errorf("names %q %q", s.Vertexes[0].Name, s.Vertexes[1].Name)
	}
	if s.Vertexes[0].Digest == d1 || s.Vertexes[1].Inputs[0] != s.Vertexes[0].Digest || s.Statuses[0].Vertex != s.Vertexes[0].Digest {
		t.Errorf("digests not remapped consistently")
	}
	if other := newTracker("api"); other.remap(d1) == tr.remap(d1) {
		t.Errorf("two services' identical steps share a digest")
	}
	var lines strings.Builder
	for i := range 30 {
		fmt.Fprintf(&lines, "line %d\n", i)
	}
	tr.observe(&client.SolveStatus{Logs: []*client.VertexLog{{Vertex: d2, Data: []byte(lines.String()[:50])}, {Vertex: d2, Data: []byte(lines.String()[50:] + "partial")}}})
	tr.observe(&client.SolveStatus{Vertexes: []*client.Vertex{{Digest: d2, Name: "[2/2] RUN make", Error: "process did not complete successfully: exit code: 2"}}})
	step, out := tr.failure()
	if step != "[2/2] RUN make" {
		t.Errorf("step %q", step)
	}
	got := strings.Split(out, "\n")
	if len(got) != keptLines+1 || got[0] != "line 10" || got[keptLines-1] != "line 29" || got[keptLines] != "partial" {
		t.Errorf("output %q", out)
	}
	// A cancelled step is not the failure.
	tr2 := newTracker("x")
	tr2.observe(&client.SolveStatus{Vertexes: []*client.Vertex{{Digest: d1, Name: "RUN sleep", Error: "context canceled"}}})
	if step, _ := tr2.failure(); step != "" {
		t.Errorf("cancelled step reported as failing: %q", step)
	}
}

// TestCountingFS counts what is read and names the biggest top-level paths.
func TestCountingFS(t *testing.T) {
	dir := t.TempDir()
	for p, n := range map[string]int{"node_modules/a/x.js": 3000, "node_modules/b.js": 2000, "big.bin": 4000, "small.txt": 10} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), make([]byte, n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var sent atomic.Int64
	fs, err := newCountingFS(dir, &sent)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"node_modules/a/x.js", "node_modules/b.js", "big.bin", "small.txt"} {
		rc, err := fs.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, rc)
		_ = rc.Close()
	}
	if sent.Load() != 9010 {
		t.Errorf("sent %d, want 9010", sent.Load())
	}
	b := fs.biggest(2)
	if len(b) != 2 || b[0] != (pathSize{"node_modules/", 5000}) || b[1] != (pathSize{"big.bin", 4000}) {
		t.Errorf("biggest %v", b)
	}
	if humanBytes(5<<20+1<<19) != "5.5 MiB" || humanBytes(12) != "12 B" {
		t.Errorf("humanBytes: %s %s", humanBytes(5<<20+1<<19), humanBytes(12))
	}
}

func TestRepoOf(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:5100/p/web:abc": "127.0.0.1:5100/p/web",
		"127.0.0.1:5100/p/web":     "127.0.0.1:5100/p/web",
		"reg/p/web:1":              "reg/p/web",
	} {
		if got := repoOf(in); got != want {
			t.Errorf("repoOf(%s) = %s, want %s", in, got, want)
		}
	}
}

// TestBuildUnreachable: no builder is one error naming why, before
// anything is sent.
func TestBuildUnreachable(t *testing.T) {
	_, err := Build(context.Background(), []Planned{{Service: "web"}}, Options{Dial: func(ctx context.Context) (net.Conn, error) {
		return nil, fmt.Errorf("%w: no pod matches app=builder", forward.ErrNoReadyPod)
	}})
	if !errors.Is(err, ErrBuilderUnreachable) || !strings.Contains(err.Error(), "no pod matches app=builder") {
		t.Fatalf("Build = %v", err)
	}
	// Any other dial error: three tries.
	var dials atomic.Int32
	_, err = Build(context.Background(), []Planned{{Service: "web"}}, Options{Dial: func(ctx context.Context) (net.Conn, error) {
		dials.Add(1)
		return nil, errors.New("forbidden")
	}})
	if dials.Load() != 3 {
		t.Errorf("%d dials, want 3", dials.Load())
	}
	if !errors.Is(err, ErrBuilderUnreachable) || !strings.Contains(err.Error(), "forbidden") {
		t.Fatalf("Build = %v", err)
	}
	if _, err := Build(context.Background(), []Planned{{Service: "web"}}, Options{}); err == nil {
		t.Fatal("Build without Dial succeeded")
	}
	if res, err := Build(context.Background(), nil, Options{Dial: func(context.Context) (net.Conn, error) { return nil, errors.New("x") }}); res != nil || err != nil {
		t.Fatalf("Build(no plans) = %v, %v", res, err)
	}
}

func TestRegistryFull(t *testing.T) {
	for _, tc := range []struct {
		msg  string
		full bool
	}{
		{"failed to push 10.200.0.1:32304/proj/app:df04: unknown: invalid content range", true},
		{"failed to push r:5000/p/app:1: unknown: unknown error: write /var/lib/registry/x/data: no space left on device", true},
		{"failed to push r/p/app:1: unexpected status from PUT request to https://r/v2/p/app/blobs/uploads/x: 507 Insufficient Storage", true},
		{"failed to push r/p/app:1: unexpected status from POST request to http://r/v2/p/app/blobs/uploads/: 401 Unauthorized", false},
		// the builder's own disk: not the registry's
		{"process \"/bin/sh -c make\" did not complete successfully: write /tmp/x: no space left on device", false},
	} {
		if got := registryFull(errors.New(tc.msg)); got != tc.full {
			t.Errorf("registryFull(%q) = %v", tc.msg, got)
		}
	}
	err := &BuildError{Service: "app", Step: "[app] exporting to image", Err: &RegistryFullError{Registry: "r:5000/p", Err: errors.New("failed to push r:5000/p/app:1: unknown: invalid content range")}}
	if !errors.Is(err, ErrRegistryFull) {
		t.Error("a RegistryFullError in a BuildError is not ErrRegistryFull")
	}
	for _, want := range []string{`service "app"`, "the registry r:5000/p is full", "invalid content range", "Make room", "--registry"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
}
