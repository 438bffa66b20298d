package session

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ergomake/ergomake/internal/forward"
	"github.com/ergomake/ergomake/internal/kube"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// recorder is a Reporter that writes down what the session says, one line per call.
type recorder struct {
	mu    sync.Mutex
	lines []string
}

func (r *recorder) add(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, fmt.Sprintf(format, args...))
}

func (r *recorder) Start(phase string)                 { r.add("start %s", phase) }
func (r *recorder) Update(detail string)               { r.add("update %s", detail) }
func (r *recorder) End(ok bool)                        { r.add("end %v", ok) }
func (r *recorder) Logf(format string, args ...any)    { r.add("log "+format, args...) }
func (r *recorder) Warnf(format string, args ...any)   { r.add("warn "+format, args...) }
func (r *recorder) Noticef(format string, args ...any) { r.add("notice "+format, args...) }
func (r *recorder) Printf(format string, args ...any)  { r.add("print "+format, args...) }
func (r *recorder) WaitStart(title string)             { r.add("wait %s", title) }
func (r *recorder) Env(env *v1alpha1.ErgomakeEnv)      { r.add("env %s", Summary(env)) }
func (r *recorder) WaitEnd(ok bool)                    { r.add("waitend %v", ok) }
func (r *recorder) Bound(b []forward.Binding)          { r.add("bound %d", len(b)) }

func (r *recorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.lines, "\n")
}

// fakeCluster answers the session's endings. DeleteEnv returns at once, or with block set only
// once its context ends (a deletion that takes long enough to be interrupted).
type fakeCluster struct {
	block    bool
	deleting chan struct{} // closed when DeleteEnv is called
	mu       sync.Mutex
	deletes  []kube.DeleteOptions
	ttls     []time.Duration
	detached []string
	beats    int
	beatErrs []error
}

func newFakeCluster(block bool) *fakeCluster {
	return &fakeCluster{block: block, deleting: make(chan struct{})}
}

func (c *fakeCluster) DeleteEnv(ctx context.Context, namespace, name string, opts kube.DeleteOptions) error {
	c.mu.Lock()
	c.deletes = append(c.deletes, opts)
	if len(c.deletes) == 1 {
		close(c.deleting)
	}
	c.mu.Unlock()
	if c.block {
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

func (c *fakeCluster) Detach(ctx context.Context, namespace, name, sessionID string, ttl time.Duration, now time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ttls = append(c.ttls, ttl)
	c.detached = append(c.detached, sessionID)
	return nil
}

// Heartbeat answers with the next of beatErrs (nil once they are used up), and counts.
func (c *fakeCluster) Heartbeat(ctx context.Context, namespace, name string, now time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.beats++
	if len(c.beatErrs) == 0 {
		return nil
	}
	err := c.beatErrs[0]
	c.beatErrs = c.beatErrs[1:]
	return err
}

const testDown = "ergomake down -p shop -n ergomake-shop"

// testSession is a session past its apply (created, in a namespace ergomake made), with a fake
// cluster and signals the test sends. ctx is the session's context, which the first signal ends.
func testSession(t *testing.T, keep bool, c *fakeCluster) (s *session, ctx context.Context, sigs chan os.Signal, rec *recorder) {
	t.Helper()
	rec = &recorder{}
	sigs = make(chan os.Signal, 4)
	s = newSession(Options{Reporter: rec, Signals: sigs, Keep: keep, KeptTTL: 24 * time.Hour, DownCommand: testDown,
		Now: func() time.Time { return time.Date(2026, 12, 4, 11, 0, 0, 0, time.UTC) }}, "ergomake-shop", "shop", "shop")
	s.api = c
	s.created, s.attached, s.ownNamespace = true, true, true
	s.info.ID = "this-session"
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s.sig = watchSignals(sigs, cancel)
	t.Cleanup(s.sig.stop)
	return s, ctx, sigs, rec
}

func TestSignals(t *testing.T) {
	t.Run("first cancels, second abandons the teardown after Ctrl-C", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		ch := make(chan os.Signal, 2)
		s := watchSignals(ch, cancel)
		defer s.stop()
		ch <- syscall.SIGINT
		<-ctx.Done()
		abandon := s.tearingDown(false)
		select {
		case <-abandon:
			t.Fatal("the Ctrl-C that began the teardown abandoned it")
		case <-time.After(50 * time.Millisecond):
		}
		ch <- syscall.SIGTERM
		select {
		case <-abandon:
		case <-time.After(5 * time.Second):
			t.Fatal("a second signal did not abandon the teardown")
		}
	})
	t.Run("first abandons the teardown after a failure", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		ch := make(chan os.Signal, 2)
		s := watchSignals(ch, cancel)
		defer s.stop()
		abandon := s.tearingDown(true)
		ch <- syscall.SIGINT
		select {
		case <-abandon:
		case <-time.After(5 * time.Second):
			t.Fatal("the first signal did not abandon a teardown after a failure")
		}
		if ctx.Err() == nil {
			t.Error("the first signal did not cancel the session")
		}
	})
}

// TestFailureTeardownInterrupted: a failure tears down; Ctrl-C during that teardown abandons it
// at once with ErrCancel (so the command exits 130 silently), after saying how to finish the
// job, and no warning about the teardown's own error.
func TestFailureTeardownInterrupted(t *testing.T) {
	c := newFakeCluster(true)
	s, ctx, sigs, rec := testSession(t, false, c)
	go func() {
		<-c.deleting
		sigs <- syscall.SIGINT
	}()
	cause := errors.New(`service "web" failed`)
	errc := make(chan error, 1)
	go func() { errc <- s.failed(ctx, cause) }()
	var err error
	select {
	case err = <-errc:
	case <-time.After(10 * time.Second):
		t.Fatalf("the teardown was not abandoned:\n%s", rec)
	}
	if err != ErrCancel {
		t.Errorf("failed() = %v, want ErrCancel", err)
	}
	out := rec.String()
	for _, want := range []string{"start Deleting environment ergomake-shop/shop", "end false",
		"notice Interrupted: the environment is still being deleted. To finish the job, run:\n  " + testDown} {
		if !strings.Contains(out, want) {
			t.Errorf("lacks %q:\n%s", want, out)
		}
	}
	for _, bad := range []string{"warn", "SilentError", "CancelError"} {
		if strings.Contains(out, bad) {
			t.Errorf("says %q:\n%s", bad, out)
		}
	}
}

func TestFailureTearsDown(t *testing.T) {
	c := newFakeCluster(false)
	s, ctx, _, rec := testSession(t, false, c)
	cause := errors.New("boom")
	if err := s.failed(ctx, cause); err != cause {
		t.Errorf("failed() = %v, want the failure", err)
	}
	if len(c.deletes) != 1 || !c.deletes[0].Namespace {
		t.Errorf("deletes = %+v, want one, with the namespace ergomake created", c.deletes)
	}
	if !strings.Contains(rec.String(), "notice Environment shop and namespace ergomake-shop removed.") {
		t.Errorf("output:\n%s", rec)
	}
}

func TestFailureKeeps(t *testing.T) {
	c := newFakeCluster(false)
	s, ctx, _, rec := testSession(t, true, c)
	cause := errors.New("boom")
	if err := s.failed(ctx, cause); err != cause {
		t.Errorf("failed() = %v, want the failure", err)
	}
	if len(c.deletes) != 0 {
		t.Errorf("--keep deleted: %+v", c.deletes)
	}
	if want := "log Keeping the environment (--keep): " + testDown + " removes it"; rec.String() != want {
		t.Errorf("output:\n%s\nwant:\n%s", rec, want)
	}
}

// A failure before this run applied anything to an environment that was already there leaves it
// alone.
func TestFailureBeforeApplyLeavesExisting(t *testing.T) {
	c := newFakeCluster(false)
	s, ctx, _, rec := testSession(t, false, c)
	s.created, s.existed, s.attached = false, true, false
	cause := errors.New("boom")
	if err := s.failed(ctx, cause); err != cause || len(c.deletes) != 0 || rec.String() != "" {
		t.Errorf("failed() = %v, deletes %v, output %q", err, c.deletes, rec)
	}
}

func TestInterruptedTearsDown(t *testing.T) {
	c := newFakeCluster(false)
	s, ctx, sigs, rec := testSession(t, false, c)
	sigs <- syscall.SIGINT
	<-ctx.Done()
	// A failure seen after Ctrl-C (the wait ended by it) is the interruption: teardown, exit 0.
	if err := s.failed(ctx, context.Canceled); err != nil {
		t.Errorf("failed() after Ctrl-C = %v, want nil", err)
	}
	if len(c.deletes) != 1 || !strings.Contains(rec.String(), "end true") {
		t.Errorf("deletes %v, output:\n%s", c.deletes, rec)
	}
}

func TestInterruptedTwice(t *testing.T) {
	c := newFakeCluster(true)
	s, ctx, sigs, rec := testSession(t, false, c)
	sigs <- syscall.SIGINT
	<-ctx.Done()
	go func() {
		<-c.deleting
		sigs <- syscall.SIGINT
	}()
	if err := s.end(ctx, nil); err != ErrCancel {
		t.Errorf("end() = %v, want ErrCancel\n%s", err, rec)
	}
}

func TestInterruptedKeeps(t *testing.T) {
	c := newFakeCluster(false)
	s, ctx, sigs, rec := testSession(t, true, c)
	sigs <- syscall.SIGINT
	<-ctx.Done()
	if err := s.end(ctx, nil); err != nil {
		t.Errorf("end() = %v", err)
	}
	if len(c.deletes) != 0 || len(c.ttls) != 1 || c.ttls[0] != 24*time.Hour {
		t.Errorf("deletes %v, TTLs set %v: want none, and 24h", c.deletes, c.ttls)
	}
	want := "notice Forwarding stopped. The environment keeps running (TTL 24h0m0s): `ergomake forward` binds its ports again, `" + testDown + "` removes it."
	if rec.String() != want {
		t.Errorf("output:\n%s\nwant:\n%s", rec, want)
	}
}

func TestEndDeletedBySomeoneElse(t *testing.T) {
	c := newFakeCluster(false)
	s, ctx, _, _ := testSession(t, false, c)
	gone := fmt.Errorf("environment ergomake-shop/shop %w", errDeleted)
	if err := s.end(ctx, gone); err != gone || len(c.deletes) != 0 {
		t.Errorf("end() = %v, deletes %v: want the error as is, no teardown", err, c.deletes)
	}
}

// Forwarding that fails on its own while attached is a failure: teardown, and the error.
func TestEndForwardingFailed(t *testing.T) {
	c := newFakeCluster(false)
	s, ctx, _, _ := testSession(t, false, c)
	ferr := errors.New("listener closed")
	if err := s.end(ctx, ferr); err != ferr || len(c.deletes) != 1 {
		t.Errorf("end() = %v, deletes %v: want the error, after a teardown", err, c.deletes)
	}
}
