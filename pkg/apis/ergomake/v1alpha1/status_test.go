package v1alpha1

import "testing"

func TestServiceStatusIsReady(t *testing.T) {
	tests := []struct {
		s      ServiceStatus
		ready  bool
		failed bool
	}{
		{ServiceStatus{}, false, false},
		{ServiceStatus{State: StateWaiting, Desired: 1}, false, false},
		{ServiceStatus{State: StatePulling, Desired: 1}, false, false},
		{ServiceStatus{State: StateStarting, Desired: 1}, false, false},
		{ServiceStatus{State: StateHealthy, Ready: 1, Desired: 1}, true, false},
		{ServiceStatus{State: StateHealthy, Ready: 1, Desired: 2}, false, false},
		{ServiceStatus{State: StateHealthy, Ready: 0, Desired: 0}, true, false}, // scaled to zero
		{ServiceStatus{State: StateRunning, Ready: 2, Desired: 2}, true, false}, // no healthcheck
		{ServiceStatus{State: StateRunning, Ready: 1, Desired: 2}, false, false},
		{ServiceStatus{State: StateRunning, Ready: 0, Desired: 1}, false, false}, // probe failing, a job running
		{ServiceStatus{State: StateRunning}, false, false},
		{ServiceStatus{State: StateCompleted, Ready: 1, Desired: 1}, true, false},
		{ServiceStatus{State: StateFailed, Ready: 1, Desired: 1}, false, true},
	}
	for _, tt := range tests {
		if got := tt.s.IsReady(); got != tt.ready {
			t.Errorf("%s %d/%d: IsReady() = %v, want %v", tt.s.State, tt.s.Ready, tt.s.Desired, got, tt.ready)
		}
		if got := tt.s.Failed(); got != tt.failed {
			t.Errorf("%s %d/%d: Failed() = %v, want %v", tt.s.State, tt.s.Ready, tt.s.Desired, got, tt.failed)
		}
	}
}
