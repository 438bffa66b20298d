package v1alpha1

// IsReady is the one definition of a ready service, used by the operator, `up`'s wait, the live
// view and `ps`: a one-shot service that completed, a service whose every replica is ready
// (healthy: its healthcheck passes; running: it has no healthcheck and every container runs), or
// one scaled to zero replicas.
func (s ServiceStatus) IsReady() bool {
	switch s.State {
	case StateCompleted:
		return true
	case StateHealthy:
		return s.Ready >= s.Desired
	case StateRunning:
		return s.Desired > 0 && s.Ready >= s.Desired
	}
	return false
}

// Failed: the service cannot become ready without a change (a crash loop, an image that cannot be
// pulled, a one-shot service that failed, ...).
func (s ServiceStatus) Failed() bool {
	return s.State == StateFailed
}
