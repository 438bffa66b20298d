// Package defaults holds docker compose's defaults, written out once because Kubernetes' differ.
// translate writes them into the ErgomakeEnv for what a compose file leaves out; render applies
// the same values to a spec that leaves them out (one written by hand, or by an older ergomake).
// It imports nothing of the project, so that both can use it.
package defaults

import "time"

// Healthcheck timing and retries when the compose file does not say (docker's defaults).
const (
	HealthInterval      = 30 * time.Second
	HealthTimeout       = 30 * time.Second
	HealthRetries       = 3
	HealthStartInterval = 5 * time.Second
)

// StopGracePeriod is how long a container has to stop after SIGTERM before it is killed.
const StopGracePeriod = 10 * time.Second

// PullPolicy is the image pull policy when the compose file does not say: pull when missing (the
// Kubernetes name of compose's "missing").
const PullPolicy = "IfNotPresent"

// Compose's restart policies, as written in a compose file (without the ":max-retries" suffix).
const (
	RestartNo            = "no"
	RestartAlways        = "always"
	RestartOnFailure     = "on-failure"
	RestartUnlessStopped = "unless-stopped"
	// Restart is the policy when the compose file does not say.
	Restart = RestartNo
)

// KnownRestart reports whether policy is one of compose's restart policies, or empty (the default).
func KnownRestart(policy string) bool {
	switch policy {
	case "", RestartNo, RestartAlways, RestartOnFailure, RestartUnlessStopped:
		return true
	}
	return false
}
