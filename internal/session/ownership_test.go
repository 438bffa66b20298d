package session

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/ergomake/ergomake/internal/kube"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

var t0 = time.Date(2026, 12, 4, 11, 0, 0, 0, time.UTC)

func envWithSession(sess *v1alpha1.Session, heartbeat string) *v1alpha1.ErgomakeEnv {
	env := &v1alpha1.ErgomakeEnv{ObjectMeta: metav1.ObjectMeta{Namespace: "ergomake-shop", Name: "shop", Annotations: map[string]string{}}}
	if sess != nil {
		env.Annotations[v1alpha1.AnnotationSession] = sess.Annotation()
	}
	if heartbeat != "" {
		env.Annotations[v1alpha1.AnnotationHeartbeat] = heartbeat
	}
	return env
}

// TestLiveSession: whether a second `up` is refused. A session is live while its heartbeat is
// younger than three of its intervals by our clock (or ahead of it); one on this host whose
// process is gone is not.
func TestLiveSession(t *testing.T) {
	other := &v1alpha1.Session{ID: "a", Host: "laptop", PID: 100, StartedAt: metav1.NewTime(t0)}
	fast := &v1alpha1.Session{ID: "b", Host: "laptop", PID: 100, StartedAt: metav1.NewTime(t0), HeartbeatEvery: metav1.Duration{Duration: 2 * time.Second}}
	hb := func(d time.Duration) string { return t0.Add(d).Format(time.RFC3339Nano) }
	alive := func(int) bool { return true }
	dead := func(int) bool { return false }
	tests := []struct {
		name  string
		env   *v1alpha1.ErgomakeEnv
		host  string
		alive func(int) bool
		want  bool
	}{
		{"no session recorded", envWithSession(nil, hb(0)), "desk", alive, false},
		{"no heartbeat", envWithSession(other, ""), "desk", alive, false},
		{"unreadable heartbeat", envWithSession(other, "yesterday"), "desk", alive, false},
		{"fresh heartbeat", envWithSession(other, hb(-5*time.Second)), "desk", alive, true},
		{"two heartbeats late", envWithSession(other, hb(-59*time.Second)), "desk", alive, true},
		{"three heartbeats late", envWithSession(other, hb(-61*time.Second)), "desk", alive, false},
		{"clock ahead of ours", envWithSession(other, hb(10*time.Minute)), "desk", alive, true},
		{"own interval: fresh", envWithSession(fast, hb(-5*time.Second)), "desk", alive, true},
		{"own interval: stale", envWithSession(fast, hb(-7*time.Second)), "desk", alive, false},
		{"this host, process gone", envWithSession(other, hb(-time.Second)), "laptop", dead, false},
		{"this host, process runs", envWithSession(other, hb(-time.Second)), "laptop", alive, true},
		{"other host, pid unknown here", envWithSession(other, hb(-time.Second)), "desk", dead, true},
	}
	for _, tt := range tests {
		if _, _, got := liveSession(tt.env, t0, tt.host, tt.alive); got != tt.want {
			t.Errorf("%s: live = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestProcessAlive(t *testing.T) {
	if !processAlive(1) || !processAlive(syscall.Getpid()) {
		t.Error("pid 1 or this process is not alive")
	}
	if processAlive(1 << 30) {
		t.Error("an impossible pid is alive")
	}
}

func TestInUseMessage(t *testing.T) {
	e := &InUseError{Namespace: "ergomake-shop", Name: "shop", Project: "shop",
		Session:   &v1alpha1.Session{ID: "a", User: "alice", Host: "laptop", PID: 4242, StartedAt: metav1.NewTime(t0)},
		Heartbeat: t0.Add(time.Minute), Now: t0.Add(time.Minute + 4*time.Second)}
	msg := e.Error()
	for _, want := range []string{"environment ergomake-shop/shop is in use", "alice", "host laptop", "pid 4242",
		"since 2026-12-04 11:00:00 UTC", "last heartbeat 4s ago", "ergomake forward", "ergomake up -p shop-2"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
	// Without a user in the session, the creator is named.
	e.Session.User = ""
	e.Creator = &v1alpha1.Creator{Username: "bob"}
	if !strings.Contains(e.Error(), "bob is attached") {
		t.Errorf("message does not name the creator:\n%s", e.Error())
	}
}

func TestCheckNamespaceAllowed(t *testing.T) {
	for _, ns := range []string{"ergomake-system", "kube-system", "kube-public", "default"} {
		s := newSession(Options{}, ns, "shop", "shop")
		err := s.checkNamespaceAllowed()
		if err == nil || !strings.Contains(err.Error(), "namespace "+ns+" is ") || !strings.Contains(err.Error(), "ergomake-shop") {
			t.Errorf("-n %s: %v", ns, err)
		}
	}
	if err := newSession(Options{}, "team", "shop", "shop").checkNamespaceAllowed(); err != nil {
		t.Errorf("-n team: %v", err)
	}
}

// A session that re-attached to an environment it did not create detaches on Ctrl-C: nothing is
// deleted, the TTL the environment had comes back, and the session record is removed.
func TestReattachedInterruptDetaches(t *testing.T) {
	c := newFakeCluster(false)
	s, ctx, sigs, rec := testSession(t, false, c)
	s.created, s.existed, s.ownNamespace = false, true, true
	prev := 24 * time.Hour
	s.prevTTL = &prev
	sigs <- syscall.SIGINT
	<-ctx.Done()
	if err := s.end(ctx, nil); err != nil {
		t.Errorf("end() = %v", err)
	}
	if len(c.deletes) != 0 || len(c.ttls) != 1 || c.ttls[0] != prev || c.detached[0] != "this-session" {
		t.Errorf("deletes %v, TTLs %v, detached %v: want none, 24h, this session", c.deletes, c.ttls, c.detached)
	}
	if !strings.Contains(rec.String(), "notice Detached. This session did not create the environment, so it keeps running (TTL 24h0m0s)") {
		t.Errorf("output:\n%s", rec)
	}
}

// A failure of a session that re-attached (the wait timed out, say) leaves the environment to
// whoever created it.
func TestReattachedFailureDetaches(t *testing.T) {
	c := newFakeCluster(false)
	s, ctx, _, rec := testSession(t, false, c)
	s.created, s.existed = false, true
	cause := errors.New("timed out")
	if err := s.failed(ctx, cause); err != cause {
		t.Errorf("failed() = %v", err)
	}
	if len(c.deletes) != 0 || len(c.detached) != 1 || c.ttls[0] != 24*time.Hour {
		t.Errorf("deletes %v, detached %v, TTLs %v", c.deletes, c.detached, c.ttls)
	}
	if !strings.Contains(rec.String(), "log Leaving the environment running: this session did not create it") {
		t.Errorf("output:\n%s", rec)
	}
}

// The teardown of a session that created its environment asks for the namespace too, saying it
// was created here (before the environment had a UID to mark it with).
func TestTeardownAsksForCreatedNamespace(t *testing.T) {
	c := newFakeCluster(false)
	s, ctx, sigs, _ := testSession(t, false, c)
	sigs <- syscall.SIGINT
	<-ctx.Done()
	if err := s.end(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if len(c.deletes) != 1 || !c.deletes[0].Namespace || !c.deletes[0].NamespaceCreated || c.deletes[0].KeptNamespace == nil {
		t.Errorf("deletes %+v", c.deletes)
	}
}

func TestHeartbeatEvery(t *testing.T) {
	s := newSession(Options{}, "n", "e", "p")
	if got := s.heartbeatEvery(); got != 20*time.Second {
		t.Errorf("default = %s", got)
	}
	s.ttl = 30 * time.Second // forward of an environment with a short TTL
	if got := s.heartbeatEvery(); got != 10*time.Second {
		t.Errorf("TTL 30s: %s", got)
	}
	s = newSession(Options{HeartbeatEvery: 2 * time.Second}, "n", "e", "p")
	s.ttl = 10 * time.Minute
	if got := s.heartbeatEvery(); got != 2*time.Second {
		t.Errorf("2s: %s", got)
	}
	if MinTTL(0) != time.Minute || MinTTL(2*time.Second) != 6*time.Second {
		t.Errorf("MinTTL = %s, %s", MinTTL(0), MinTTL(2*time.Second))
	}
}

// Heartbeats that keep failing are said once (not once per beat), and so is their return.
func TestHeartbeatFailuresSaidOnce(t *testing.T) {
	c := newFakeCluster(false)
	s, ctx, _, rec := testSession(t, false, c)
	s.opts.HeartbeatEvery = 2 * time.Millisecond
	s.ttl = time.Minute
	fail := errors.New("connection refused")
	c.beatErrs = []error{fail, fail, fail, fail, fail, fail, nil, fail, nil}
	h := s.startHeartbeat(ctx, true)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		n := c.beats
		c.mu.Unlock()
		if n >= 12 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d heartbeats", n)
		}
		time.Sleep(time.Millisecond)
	}
	h.stop()
	out := rec.String()
	if n := strings.Count(out, "warn the last 3 heartbeats failed (connection refused): unless one gets through, the operator deletes the environment 1m0s after its last one"); n != 1 {
		t.Errorf("warned %d times, want once:\n%s", n, out)
	}
	if n := strings.Count(out, "log Heartbeats reach the cluster again."); n != 1 {
		t.Errorf("said %d times that heartbeats are back, want once:\n%s", n, out)
	}
	if h.isGone() {
		t.Error("gone although the environment is there")
	}
}

// A heartbeat that finds the environment gone says so and stops.
func TestHeartbeatGone(t *testing.T) {
	c := newFakeCluster(false)
	s, ctx, _, _ := testSession(t, false, c)
	s.opts.HeartbeatEvery = time.Millisecond
	c.beatErrs = []error{nil, apierrors.NewNotFound(schema.GroupResource{Group: "ergomake.dev", Resource: "ergomakeenvs"}, "shop")}
	h := s.startHeartbeat(ctx, true)
	select {
	case <-h.gone:
	case <-time.After(10 * time.Second):
		t.Fatal("not gone")
	}
	h.stop()
	_ = context.Background()
}

// TestClaim: a live session refuses a second `up` before anything is asked of the cluster; a
// stale one is taken over, keeping the creator the environment records; a new environment
// records who the credentials are.
func TestClaim(t *testing.T) {
	cs := fake.NewClientset()
	cs.PrependReactor("create", "selfsubjectreviews", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, &authnv1.SelfSubjectReview{Status: authnv1.SelfSubjectReviewStatus{
			UserInfo: authnv1.UserInfo{Username: "carol", Groups: []string{"dev"}}}}, nil
	})
	client := &kube.Client{Kube: cs}
	now := t0.Add(time.Hour)
	opts := Options{Reporter: &recorder{}, Now: func() time.Time { return now }}

	live := envWithSession(&v1alpha1.Session{ID: "a", User: "alice", Host: "elsewhere", PID: 1, StartedAt: metav1.NewTime(t0)},
		now.Add(-10*time.Second).Format(time.RFC3339Nano))
	s := newSession(Options{Reporter: &recorder{}, Now: opts.Now}, "ergomake-shop", "shop", "shop") // no client: must not be asked
	var inUse *InUseError
	if err := s.claim(context.Background(), live); !errors.As(err, &inUse) || inUse.Session.User != "alice" {
		t.Fatalf("claim(live) = %v, want InUseError naming alice", err)
	}

	stale := envWithSession(&v1alpha1.Session{ID: "a", User: "alice", Host: "elsewhere", PID: 1, StartedAt: metav1.NewTime(t0)},
		now.Add(-2*time.Minute).Format(time.RFC3339Nano))
	stale.Annotations[v1alpha1.AnnotationCreator] = (&v1alpha1.Creator{Username: "alice"}).Annotation()
	stale.Spec.TTL = &metav1.Duration{Duration: 24 * time.Hour}
	opts.Client = client
	s = newSession(opts, "ergomake-shop", "shop", "shop")
	if err := s.claim(context.Background(), stale); err != nil {
		t.Fatalf("claim(stale) = %v", err)
	}
	if s.creator == nil || s.creator.Username != "alice" || s.info.User != "carol" || s.prevTTL == nil || *s.prevTTL != 24*time.Hour {
		t.Errorf("creator %+v, session user %q, previous TTL %v", s.creator, s.info.User, s.prevTTL)
	}

	s = newSession(opts, "ergomake-shop", "shop", "shop")
	if err := s.claim(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if s.creator == nil || s.creator.Username != "carol" || len(s.creator.Groups) != 1 || s.info.ID == "" || s.info.Host == "" || s.info.PID == 0 {
		t.Errorf("creator %+v, session %+v", s.creator, s.info)
	}
	env := &v1alpha1.ErgomakeEnv{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{}}}
	s.ownership(env.Annotations)
	if c, _ := v1alpha1.EnvCreator(env); c == nil || c.Username != "carol" {
		t.Errorf("creator annotation: %v", env.Annotations)
	}
	if got, _ := v1alpha1.EnvSession(env); got == nil || got.ID != s.info.ID || got.User != "carol" {
		t.Errorf("session annotation: %v", env.Annotations)
	}
}
