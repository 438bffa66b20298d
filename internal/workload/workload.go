// Package workload acts on what runs in an environment: its services' pods and Deployments. It
// picks the replica a command runs in (`ergomake exec`) and restarts services (`ergomake
// restart`), for the CLI with a kubeconfig and for the ergomake server alike, with the same
// rules and the same messages.
package workload

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/ergomake/ergomake/internal/kube"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// RequestError is a request that cannot be carried out as asked (an unknown service, a one-shot
// service to restart, a replica that is not running): the caller's mistake or the environment's
// state, not a failure to reach the cluster. The server answers it with a client error.
type RequestError struct{ Err error }

func (e *RequestError) Error() string { return e.Err.Error() }
func (e *RequestError) Unwrap() error { return e.Err }

func requestErrorf(format string, args ...any) error {
	return &RequestError{Err: fmt.Errorf(format, args...)}
}

// ServiceSpec finds a service of the environment by its compose name; the error (a
// *RequestError) names the ones there are.
func ServiceSpec(env *v1alpha1.ErgomakeEnv, name string) (*v1alpha1.ServiceSpec, error) {
	var names []string
	for i := range env.Spec.Services {
		if env.Spec.Services[i].Name == name {
			return &env.Spec.Services[i], nil
		}
		names = append(names, env.Spec.Services[i].Name)
	}
	return nil, requestErrorf("no such service: %s (the services of project %s: %s)", name, env.Spec.Project, strings.Join(names, ", "))
}

// PickReplica chooses the pod a command runs in among the service's pods (oldest first): the
// index-th replica (1-based) when index > 0, else the first running one. Pods that are going
// away or finished are not replicas. The errors (*RequestError) say why no pod fits: the
// service's state as the operator sees it, or the replica's own.
func PickReplica(env *v1alpha1.ErgomakeEnv, service string, pods []corev1.Pod, index int) (*corev1.Pod, error) {
	var replicas []*corev1.Pod
	for i := range pods {
		p := &pods[i]
		if p.DeletionTimestamp == nil && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			replicas = append(replicas, p)
		}
	}
	if index > 0 {
		if index > len(replicas) {
			if len(replicas) == 0 {
				return nil, NotRunning(env, service)
			}
			word := "replicas"
			if len(replicas) == 1 {
				word = "replica"
			}
			return nil, requestErrorf("service %s has %d %s: --index must be between 1 and %d", service, len(replicas), word, len(replicas))
		}
		p := replicas[index-1]
		if why := PodNotRunning(p); why != "" {
			return nil, requestErrorf("replica %d of service %s (pod %s) is not running: %s", index, service, p.Name, why)
		}
		return p, nil
	}
	for _, p := range replicas {
		if PodNotRunning(p) == "" {
			return p, nil
		}
	}
	return nil, NotRunning(env, service)
}

// PodNotRunning says why the pod's main container is not running ("" when it is).
func PodNotRunning(p *corev1.Pod) string {
	main := kube.MainContainer(p)
	for _, st := range p.Status.ContainerStatuses {
		if st.Name != main {
			continue
		}
		switch {
		case st.State.Running != nil:
			return ""
		case st.State.Waiting != nil && st.State.Waiting.Reason != "":
			return st.State.Waiting.Reason
		case st.State.Terminated != nil:
			return fmt.Sprintf("exited with code %d", st.State.Terminated.ExitCode)
		}
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason != "" {
			return c.Reason + ": " + c.Message // Unschedulable: 0/1 nodes are available: ...
		}
	}
	return strings.ToLower(string(p.Status.Phase))
}

// NotRunning is the error (a *RequestError) for a service without a running container, with its
// state as the operator reports it (ps shows the same).
func NotRunning(env *v1alpha1.ErgomakeEnv, service string) error {
	return requestErrorf("service %s is not running%s: see `ergomake ps` and `ergomake logs %s`", service, ServiceState(env, service), service)
}

// ServiceState is " (state, reason, waiting for ...)" from the environment's status, "" when
// the status does not have the service yet.
func ServiceState(env *v1alpha1.ErgomakeEnv, service string) string {
	for _, s := range env.Status.Services {
		if s.Name != service {
			continue
		}
		parts := []string{string(s.State)}
		if s.Reason != "" {
			parts = append(parts, s.Reason)
		}
		if len(s.WaitingFor) > 0 {
			parts = append(parts, "waiting for "+strings.Join(s.WaitingFor, ", "))
		}
		return " (" + strings.Join(parts, ", ") + ")"
	}
	return ""
}
