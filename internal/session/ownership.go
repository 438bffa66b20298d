package session

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ergomake/ergomake/internal/kube"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// Who owns an environment (ARCHITECTURE.md, decision 14). `up` records the identity that created
// the environment and the session attached to it; a second `up` never takes over an environment
// another live session is attached to; a session deletes only what it created: one that
// re-attached to an environment it did not create detaches when it ends.

// InUseError is a second `up` refused: another live session is attached to the environment. The
// command exits with its own code (ExitInUse) on it.
type InUseError struct {
	Namespace, Name string
	// Session is the attached one; Creator who created the environment (nil: not recorded).
	Session *v1alpha1.Session
	Creator *v1alpha1.Creator
	// Heartbeat is its last heartbeat (its clock), Now ours.
	Heartbeat, Now time.Time
	// Project is the compose project, for the -p suggestion.
	Project string
}

func (e *InUseError) Error() string {
	who := e.Session.User
	if who == "" && e.Creator != nil {
		who = e.Creator.Username
	}
	if who == "" {
		who = "someone"
	}
	since := e.Session.StartedAt.UTC().Format("2006-01-02 15:04:05 UTC")
	ago := e.Now.Sub(e.Heartbeat).Round(time.Second)
	beat := fmt.Sprintf("last heartbeat %s ago", ago)
	if ago < time.Second {
		beat = "heartbeat just now"
	}
	return fmt.Sprintf("environment %s/%s is in use: %s is attached with `ergomake up` on host %s (pid %d) since %s (%s).\n"+
		"  To reach its services without owning its teardown, run: ergomake forward\n"+
		"  To bring up a separate copy, run: ergomake up -p %s-2 (any other project name)",
		e.Namespace, e.Name, who, e.Session.Host, e.Session.PID, since, beat, e.Project)
}

// liveSession returns the session attached to env when it is live: its heartbeat (by our clock,
// now) is younger than three of its heartbeat intervals, or in the future (a clock ahead of
// ours). A session on this host whose process is gone is not live, whatever its heartbeat says.
func liveSession(env *v1alpha1.ErgomakeEnv, now time.Time, host string, alive func(pid int) bool) (*v1alpha1.Session, time.Time, bool) {
	sess, err := v1alpha1.EnvSession(env)
	if err != nil || sess == nil {
		return nil, time.Time{}, false
	}
	hb, ok := v1alpha1.EnvHeartbeat(env)
	if !ok {
		return sess, time.Time{}, false
	}
	if sess.Host == host && sess.PID > 0 && alive != nil && !alive(sess.PID) {
		return sess, hb, false
	}
	every := sess.HeartbeatEvery.Duration
	if every <= 0 {
		every = defaultHeartbeatEvery
	}
	return sess, hb, now.Sub(hb) < staleAfter*every
}

// staleAfter heartbeat intervals without a heartbeat, a session is gone; the TTL may not be
// shorter (a heartbeat late once or twice must not lose the environment).
const staleAfter = 3

// processAlive says whether a process of this machine runs (signal 0 reaches it, or exists but
// belongs to another user).
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// newSessionInfo describes this process as a session.
func newSessionInfo(now time.Time, every time.Duration) v1alpha1.Session {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return v1alpha1.Session{ID: hex.EncodeToString(b), Host: host, PID: os.Getpid(),
		StartedAt: metav1.NewTime(now.UTC().Truncate(time.Second)), HeartbeatEvery: metav1.Duration{Duration: every}}
}

// checkNamespaceAllowed refuses a namespace that must never hold an environment (the cluster's
// own, ergomake's): nothing is applied there.
func (s *session) checkNamespaceAllowed() error {
	if why := kube.ReservedNamespace(s.ns, ""); why != "" {
		return fmt.Errorf("namespace %s is %s: environments never go there (ergomake could remove what it holds); choose another namespace with -n, or leave -n out for %s",
			s.ns, why, kube.DefaultNamespace(kube.EnvName(s.project)))
	}
	return nil
}

// claim decides whether this session may attach to the environment (existing: nil when there is
// none) and records who it is: refused (InUseError) when another live session is attached;
// otherwise the identity of the credentials (the creator of a new environment) and this session
// are written with the apply.
func (s *session) claim(ctx context.Context, existing *v1alpha1.ErgomakeEnv) error {
	now := s.now()
	s.info = newSessionInfo(now, s.heartbeatEvery())
	if existing != nil {
		host := s.info.Host
		if sess, hb, live := liveSession(existing, now, host, processAlive); live {
			creator, _ := v1alpha1.EnvCreator(existing)
			return &InUseError{Namespace: s.ns, Name: s.name, Session: sess, Creator: creator, Heartbeat: hb, Now: now, Project: s.project}
		}
		if existing.Spec.TTL != nil {
			ttl := existing.Spec.TTL.Duration
			s.prevTTL = &ttl
		}
	}
	me, err := s.client.WhoAmI(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.rep.Warnf("%v: the environment records no creator", err)
	} else {
		s.info.User = me.Username
	}
	switch {
	case existing == nil:
		s.creator = me
	default:
		// The creator stays who it was (nil when none was recorded).
		s.creator, _ = v1alpha1.EnvCreator(existing)
	}
	return nil
}

// ownership writes the creator and the session into the annotations of the environment about
// to be applied.
func (s *session) ownership(annotations map[string]string) {
	if s.creator != nil {
		annotations[v1alpha1.AnnotationCreator] = s.creator.Annotation()
	}
	annotations[v1alpha1.AnnotationSession] = s.info.Annotation()
}

// release ends this session's attachment to an environment it leaves running: its TTL becomes
// ttl, counted from now, and its session record is removed (so that the next `up` need not wait
// for the heartbeat to go stale).
func (s *session) release(ctx context.Context, ttl time.Duration) error {
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return s.api.Detach(bctx, s.ns, s.name, s.info.ID, ttl, s.now())
}

// leftTTL is the TTL of an environment this session leaves running: --keep's, else the one it
// had before this session attached (one it did not create), else --keep's default.
func (s *session) leftTTL() time.Duration {
	if !s.opts.Keep && s.prevTTL != nil {
		return *s.prevTTL
	}
	return s.opts.KeptTTL
}

// notApplied ends a session that failed before applying anything: after Ctrl-C, it says so and
// returns ErrCancel (exit 130, nothing more printed); otherwise the failure.
func (s *session) notApplied(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		s.rep.Noticef("Interrupted: nothing was applied.")
		return ErrCancel
	}
	return err
}
