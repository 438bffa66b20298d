package operator

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// TestExpiryOwnClock: the operator counts an environment's TTL from when it saw the heartbeat
// change, on its own clock: what time the annotation says (a skewed client clock) does not
// matter, and an operator that has just started counts afresh, never reclaiming at once.
func TestExpiryOwnClock(t *testing.T) {
	ttl := 10 * time.Minute
	env := testEnv()
	env.UID = "u1"
	env.Spec.TTL = &metav1.Duration{Duration: ttl}
	beat := func(at time.Time) {
		env.Annotations = map[string]string{v1alpha1.AnnotationHeartbeat: at.Format(time.RFC3339Nano)}
	}

	r := &Reconciler{}
	// A client clock an hour behind: the heartbeat looks an hour old, yet counts from now.
	beat(t0.Add(-time.Hour))
	if at, seen, ok := r.expiry(env, t0); !ok || !seen.Equal(t0) || !at.Equal(t0.Add(ttl)) {
		t.Errorf("first sight: expiry %v seen %v ok %v", at, seen, ok)
	}
	// The same value later: still counted from when it was first seen.
	if at, _, _ := r.expiry(env, t0.Add(9*time.Minute)); !at.Equal(t0.Add(ttl)) {
		t.Errorf("same value: expiry %v", at)
	}
	// A client clock an hour ahead: a changed value counts from when it changed.
	beat(t0.Add(2 * time.Hour))
	if at, _, _ := r.expiry(env, t0.Add(9*time.Minute)); !at.Equal(t0.Add(9*time.Minute + ttl)) {
		t.Errorf("changed value: expiry %v", at)
	}
	// An operator that restarted long after the last heartbeat: counted afresh from its start.
	restarted := &Reconciler{}
	if at, _, _ := restarted.expiry(env, t0.Add(5*time.Hour)); !at.Equal(t0.Add(5*time.Hour + ttl)) {
		t.Errorf("after a restart: expiry %v", at)
	}
	// Another environment of the same name (a new UID): afresh too.
	env.UID = "u2"
	if at, _, _ := r.expiry(env, t0.Add(20*time.Minute)); !at.Equal(t0.Add(20*time.Minute + ttl)) {
		t.Errorf("new UID: expiry %v", at)
	}
	// Forgotten once gone.
	r.beats.forget(typesName(env))
	if at, _, _ := r.expiry(env, t0.Add(30*time.Minute)); !at.Equal(t0.Add(30*time.Minute + ttl)) {
		t.Errorf("after forget: expiry %v", at)
	}
	// No heartbeat at all counts from first sight; no TTL, no expiry.
	env.Annotations = nil
	env.UID = "u3"
	if at, _, ok := r.expiry(env, t0); !ok || !at.Equal(t0.Add(ttl)) {
		t.Errorf("no heartbeat: %v %v", at, ok)
	}
	env.Spec.TTL = nil
	if _, _, ok := r.expiry(env, t0); ok {
		t.Error("no TTL: expires")
	}

	st := heartbeatStatus(t0, t0.Add(ttl), true)
	if !st.SeenAt.Time.Equal(t0) || st.ExpiresAt == nil || !st.ExpiresAt.Time.Equal(t0.Add(ttl)) {
		t.Errorf("heartbeatStatus = %+v", st)
	}
	if heartbeatStatus(t0, time.Time{}, false).ExpiresAt != nil {
		t.Error("heartbeatStatus without TTL has an expiry")
	}
}

func TestNamespaceMarkedFor(t *testing.T) {
	ns := func(name, managed, uid string) *corev1.Namespace {
		return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
			v1alpha1.LabelManagedBy: managed, v1alpha1.LabelNamespaceEnvUID: uid}}}
	}
	tests := []struct {
		ns   *corev1.Namespace
		uid  string
		want bool
	}{
		{ns("ergomake-shop", "ergomake", "u1"), "u1", true},
		{ns("ergomake-shop", "ergomake", "u1"), "u2", false},
		{ns("ergomake-shop", "ergomake", ""), "", false},
		{ns("ergomake-shop", "someone", "u1"), "u1", false},
		{ns("ergomake-system", "ergomake", "u1"), "u1", false},
		{ns("kube-system", "ergomake", "u1"), "u1", false},
		{ns("kube-anything", "ergomake", "u1"), "u1", false},
		{ns("default", "ergomake", "u1"), "u1", false},
	}
	for _, tt := range tests {
		if got := namespaceMarkedFor(tt.ns, typesUID(tt.uid)); got != tt.want {
			t.Errorf("%s %v for %q: %v, want %v", tt.ns.Name, tt.ns.Labels, tt.uid, got, tt.want)
		}
	}
}

func typesUID(s string) types.UID { return types.UID(s) }

func typesName(env *v1alpha1.ErgomakeEnv) types.NamespacedName {
	return types.NamespacedName{Namespace: env.Namespace, Name: env.Name}
}
