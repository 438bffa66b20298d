package kube

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestRolloutOf(t *testing.T) {
	two := int32(2)
	zero := int32(0)
	dep := func(gen, observed int64, replicas *int32, st appsv1.DeploymentStatus) *appsv1.Deployment {
		st.ObservedGeneration = observed
		return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Generation: gen}, Spec: appsv1.DeploymentSpec{Replicas: replicas}, Status: st}
	}
	tests := []struct {
		name string
		d    *appsv1.Deployment
		gen  int64
		want Rollout
	}{
		{name: "not observed yet: old status says nothing",
			d:   dep(4, 3, &two, appsv1.DeploymentStatus{Replicas: 2, UpdatedReplicas: 2, AvailableReplicas: 2}),
			gen: 4, want: Rollout{Want: 2}},
		{name: "older object than the patch answered (a stale read)",
			d:   dep(3, 3, &two, appsv1.DeploymentStatus{Replicas: 2, UpdatedReplicas: 2, AvailableReplicas: 2}),
			gen: 4, want: Rollout{Want: 2}},
		{name: "new replicas not all created",
			d:   dep(4, 4, &two, appsv1.DeploymentStatus{Replicas: 3, UpdatedReplicas: 1, AvailableReplicas: 2}),
			gen: 4, want: Rollout{Want: 2, Ready: 1}},
		{name: "an old replica is still there",
			d:   dep(4, 4, &two, appsv1.DeploymentStatus{Replicas: 3, UpdatedReplicas: 2, AvailableReplicas: 3}),
			gen: 4, want: Rollout{Want: 2, Ready: 2}},
		{name: "new replicas not available",
			d:   dep(4, 4, &two, appsv1.DeploymentStatus{Replicas: 2, UpdatedReplicas: 2, AvailableReplicas: 1}),
			gen: 4, want: Rollout{Want: 2, Ready: 1}},
		{name: "done",
			d:   dep(4, 4, &two, appsv1.DeploymentStatus{Replicas: 2, UpdatedReplicas: 2, AvailableReplicas: 2}),
			gen: 4, want: Rollout{Done: true, Want: 2, Ready: 2}},
		{name: "done, and changed again since (a later generation observed)",
			d:   dep(6, 6, &two, appsv1.DeploymentStatus{Replicas: 2, UpdatedReplicas: 2, AvailableReplicas: 2}),
			gen: 4, want: Rollout{Done: true, Want: 2, Ready: 2}},
		{name: "unset replicas mean one",
			d:   dep(2, 2, nil, appsv1.DeploymentStatus{Replicas: 1, UpdatedReplicas: 1, AvailableReplicas: 1}),
			gen: 2, want: Rollout{Done: true, Want: 1, Ready: 1}},
		{name: "scaled to zero",
			d:   dep(2, 2, &zero, appsv1.DeploymentStatus{}),
			gen: 2, want: Rollout{Done: true}},
		{name: "stalled",
			d: dep(4, 4, &two, appsv1.DeploymentStatus{Replicas: 3, UpdatedReplicas: 1, AvailableReplicas: 2,
				Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentProgressing, Reason: "ProgressDeadlineExceeded"}}}),
			gen: 4, want: Rollout{Want: 2, Ready: 1, Stalled: "ProgressDeadlineExceeded"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := RolloutOf(tt.d, tt.gen); got != tt.want {
				t.Errorf("RolloutOf = %+v, want %+v", got, tt.want)
			}
		})
	}
}
