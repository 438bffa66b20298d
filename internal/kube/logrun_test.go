package kube

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestLogRun: a run is the pod's main container's restart count once it has started; another
// container's state or a waiting main container gives nothing to read.
func TestLogRun(t *testing.T) {
	pod := func(states ...corev1.ContainerStatus) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{UID: "u1"},
			Spec:   corev1.PodSpec{Containers: []corev1.Container{{Name: "web"}, {Name: "side"}}},
			Status: corev1.PodStatus{ContainerStatuses: states}}
	}
	running := corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	waiting := corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{}}
	done := corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{}}
	for _, c := range []struct {
		name string
		pod  *corev1.Pod
		key  string
		ok   bool
	}{
		{"no status", pod(), "", false},
		{"waiting", pod(corev1.ContainerStatus{Name: "web", State: waiting}), "", false},
		{"only the sidecar runs", pod(corev1.ContainerStatus{Name: "side", State: running}), "", false},
		{"running", pod(corev1.ContainerStatus{Name: "web", State: running}), "u1/0", true},
		{"restarted twice", pod(corev1.ContainerStatus{Name: "web", State: done, RestartCount: 2}), "u1/2", true},
	} {
		key, ok := LogRun(c.pod)
		if key != c.key || ok != c.ok {
			t.Errorf("%s: LogRun = %q, %v; want %q, %v", c.name, key, ok, c.key, c.ok)
		}
	}
}

// TestLogRunsStartOnce: each run of the main container is started once; a restart is a new run;
// a container not started yet is nothing to start.
func TestLogRunsStartOnce(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{UID: "u1"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web"}}}}
	var runs LogRuns
	if runs.Start(pod) {
		t.Error("started a container that has not started")
	}
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "web", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}
	if !runs.Start(pod) || runs.Start(pod) {
		t.Error("the first run is not started exactly once")
	}
	pod.Status.ContainerStatuses[0].RestartCount = 1
	if !runs.Start(pod) {
		t.Error("the run after a restart is not started")
	}
}
