package v1alpha1

import (
	"reflect"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestOwnershipAnnotations(t *testing.T) {
	c := &Creator{Username: "alice", Groups: []string{"dev", "system:authenticated"}}
	s := &Session{ID: "abc", Host: "laptop", PID: 42, StartedAt: metav1.NewTime(time.Date(2026, 12, 4, 11, 0, 0, 0, time.UTC)),
		HeartbeatEvery: metav1.Duration{Duration: 20 * time.Second}}
	env := &ErgomakeEnv{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{
		AnnotationCreator: c.Annotation(), AnnotationSession: s.Annotation(),
		AnnotationHeartbeat: "2026-12-04T11:00:05.5Z",
	}}}
	gotC, err := EnvCreator(env)
	if err != nil || !reflect.DeepEqual(gotC, c) {
		t.Errorf("EnvCreator = %+v, %v; want %+v", gotC, err, c)
	}
	gotS, err := EnvSession(env)
	if err != nil || gotS.ID != "abc" || gotS.PID != 42 || !gotS.StartedAt.Equal(&s.StartedAt) || gotS.HeartbeatEvery != s.HeartbeatEvery {
		t.Errorf("EnvSession = %+v, %v; want %+v", gotS, err, s)
	}
	hb, ok := EnvHeartbeat(env)
	if !ok || !hb.Equal(time.Date(2026, 12, 4, 11, 0, 5, 5e8, time.UTC)) {
		t.Errorf("EnvHeartbeat = %v, %v", hb, ok)
	}

	none := &ErgomakeEnv{}
	if c, err := EnvCreator(none); c != nil || err != nil {
		t.Errorf("EnvCreator of none = %v, %v", c, err)
	}
	if s, err := EnvSession(none); s != nil || err != nil {
		t.Errorf("EnvSession of none = %v, %v", s, err)
	}
	if _, ok := EnvHeartbeat(none); ok {
		t.Error("EnvHeartbeat of none is ok")
	}
	bad := &ErgomakeEnv{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{AnnotationCreator: "{", AnnotationSession: "x"}}}
	if _, err := EnvCreator(bad); err == nil {
		t.Error("EnvCreator of bad JSON: no error")
	}
	if _, err := EnvSession(bad); err == nil {
		t.Error("EnvSession of bad JSON: no error")
	}
}
