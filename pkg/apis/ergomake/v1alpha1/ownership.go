package v1alpha1

import (
	"encoding/json"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Who owns an environment (ARCHITECTURE.md, decision 14): the identity that created it and the CLI
// session attached to it, as annotations the CLI writes with every apply; and the mark on a
// namespace ergomake created for one environment.
const (
	// AnnotationCreator holds the identity that created the environment (JSON Creator), from a
	// SelfSubjectReview of the creating CLI's credentials. `ergomake down` asks for --force
	// before removing an environment another identity created.
	AnnotationCreator = "ergomake.dev/creator"
	// AnnotationSession holds the CLI session attached to the environment (JSON Session). It is
	// removed when that session detaches; a session that died leaves it behind, and its
	// heartbeat tells it is gone.
	AnnotationSession = "ergomake.dev/session"
	// LabelNamespaceEnvUID on a namespace: ergomake created it for the environment of that UID.
	// ergomake deletes a namespace only when it carries the UID of the environment being removed
	// (and holds nothing else of note).
	LabelNamespaceEnvUID = "ergomake.dev/env-uid"
)

// Creator is the identity that created an environment.
type Creator struct {
	// Username as the API server authenticated it.
	Username string `json:"username"`
	// Groups the API server put the user in.
	// +optional
	Groups []string `json:"groups,omitempty"`
}

// Session is one CLI process attached to an environment (`ergomake up`).
type Session struct {
	// ID is random, new for each process.
	ID string `json:"id"`
	// User is the identity the session's credentials authenticate as ("" when unknown).
	// +optional
	User string `json:"user,omitempty"`
	// Host is the machine the CLI runs on, PID its process.
	Host string `json:"host"`
	PID  int    `json:"pid"`
	// StartedAt is when the session attached (the CLI's clock).
	StartedAt metav1.Time `json:"startedAt"`
	// HeartbeatEvery is how often the session renews the heartbeat: a heartbeat older than three
	// of these (by the reader's clock) says the session is gone.
	// +optional
	HeartbeatEvery metav1.Duration `json:"heartbeatEvery,omitempty"`
}

// EnvCreator returns the identity recorded on env (nil: none recorded, an environment older than
// the record, or one applied with kubectl).
func EnvCreator(env *ErgomakeEnv) (*Creator, error) {
	v, ok := env.Annotations[AnnotationCreator]
	if !ok || v == "" {
		return nil, nil
	}
	c := &Creator{}
	if err := json.Unmarshal([]byte(v), c); err != nil {
		return nil, fmt.Errorf("annotation %s of %s/%s: %w", AnnotationCreator, env.Namespace, env.Name, err)
	}
	return c, nil
}

// EnvSession returns the session recorded on env (nil: none attached).
func EnvSession(env *ErgomakeEnv) (*Session, error) {
	v, ok := env.Annotations[AnnotationSession]
	if !ok || v == "" {
		return nil, nil
	}
	s := &Session{}
	if err := json.Unmarshal([]byte(v), s); err != nil {
		return nil, fmt.Errorf("annotation %s of %s/%s: %w", AnnotationSession, env.Namespace, env.Name, err)
	}
	return s, nil
}

// Annotation encodes c as the value of AnnotationCreator.
func (c *Creator) Annotation() string { return mustJSON(c) }

// Annotation encodes s as the value of AnnotationSession.
func (s *Session) Annotation() string { return mustJSON(s) }

// EnvHeartbeat returns the time the heartbeat annotation says (the writer's clock), and whether
// it has a readable one.
func EnvHeartbeat(env *ErgomakeEnv) (time.Time, bool) {
	v, ok := env.Annotations[AnnotationHeartbeat]
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	return t, err == nil
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		// Only strings, ints and times: cannot happen.
		panic(err)
	}
	return string(b)
}

// HeartbeatStatus is how the operator judges an environment's heartbeat: on its own clock, from
// when it saw the annotation's value change, never from the time the value says (the CLI's clock
// may be skewed). An operator that restarts, or a new leader, counts afresh from when it first
// sees the environment: SeenAt is shown, never trusted across restarts.
type HeartbeatStatus struct {
	// SeenAt is when the operator saw the current heartbeat value first (its clock).
	SeenAt metav1.Time `json:"seenAt"`
	// ExpiresAt is when the operator reclaims the environment unless the heartbeat changes.
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`
}
