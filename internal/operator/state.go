package operator

import (
	"fmt"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// Reasons a service status carries. Kubernetes' own reasons (ErrImagePull, ImagePullBackOff,
// CrashLoopBackOff, CreateContainerConfigError, ...) are passed through unchanged.
const (
	ReasonWaitingForDependencies = "WaitingForDependencies"
	ReasonDependencyFailed       = "DependencyFailed"
	ReasonPulling                = "Pulling"
	ReasonCreating               = "Creating"
	ReasonContainerCreating      = "ContainerCreating"
	ReasonUnschedulable          = "Unschedulable"
	ReasonProbeFailing           = "ProbeFailing"
	ReasonRunning                = "Running"
	ReasonRollingOut             = "RollingOut"
	ReasonHealthy                = "Healthy"
	ReasonCompleted              = "Completed"
	ReasonJobFailed              = "JobFailed"
	ReasonContainerFailed        = "ContainerFailed"
	ReasonScaledToZero           = "ScaledToZero"
	ReasonRenderFailed           = "RenderFailed"
	ReasonRestarting             = "Restarting"
)

// unschedulableGrace is how long a pod may stay unschedulable before the service counts as failed:
// a pod often waits briefly for a volume to bind, which the scheduler also reports as unschedulable.
const unschedulableGrace = 60 * time.Second

// logLines is how many lines of a failing container's log a service status carries (LogTail).
const logLines = 10

// stableAfter is how long the container of a long-running service must stay up after a restart
// to count as recovered from its exit (see crashes).
const stableAfter = 30 * time.Second

// observed is what the cluster shows of one service: its workload and its live pods.
type observed struct {
	// Deployment or Job, whichever the service has (both nil: not created yet).
	Deployment *appsv1.Deployment
	Job        *batchv1.Job
	// Pods of the service that are not being deleted.
	Pods []*corev1.Pod
}

// logRef says which container's log explains a failure.
type logRef struct {
	Pod       string
	Container string
	// Previous: the log of the previous (terminated) instance of the container.
	Previous bool
	// OrPrevious: when the current instance has logged nothing, the previous instance's log.
	OrPrevious bool
}

// assessment is where one service stands, decided from what the cluster shows.
type assessment struct {
	State   v1alpha1.ServiceState
	Ready   int32
	Desired int32
	Reason  string
	Message string

	// Started: a container of the service has started (compose service_started).
	Started bool
	// Healthy: every desired replica is ready (compose service_healthy).
	Healthy bool
	// Completed: the one-shot service's Job succeeded (compose service_completed_successfully).
	Completed bool
	// Failed: the service cannot become ready without a change.
	Failed bool

	// Log, when set, names the container whose last log lines explain a failure; LogTail are
	// those lines, once read.
	Log     *logRef
	LogTail []string
	// CreatedAt is when the workload was created.
	CreatedAt time.Time
	// ReadyAt is when the service became ready (healthy or completed), when known.
	ReadyAt time.Time
	// LookAt, when set, is when the assessment changes although nothing in the cluster does.
	LookAt time.Time
}

// podAssessment is where one pod stands.
type podAssessment struct {
	State   v1alpha1.ServiceState
	Reason  string
	Message string
	Started bool
	Ready   bool
	Failed  bool
	Log     *logRef
	// LookAt: see assessment.
	LookAt time.Time
}

// severity orders pod states from best to worst, so a service shows its worst pod.
func severity(p podAssessment) int {
	if p.Failed {
		return 100
	}
	switch p.State {
	case v1alpha1.StatePulling:
		return 50
	case v1alpha1.StateStarting:
		return 40
	case v1alpha1.StateRunning:
		if p.Reason == ReasonProbeFailing {
			return 35
		}
		return 30
	case v1alpha1.StateHealthy, v1alpha1.StateCompleted:
		return 10
	}
	return 20
}

// podEvents are the events of one pod, newest last.
type podEvents []corev1.Event

// eventsByPod groups events by the name of the pod they are about, each group oldest first.
func eventsByPod(events []corev1.Event) map[string]podEvents {
	out := map[string]podEvents{}
	for _, e := range events {
		if e.InvolvedObject.Kind != "Pod" {
			continue
		}
		out[e.InvolvedObject.Name] = append(out[e.InvolvedObject.Name], e)
	}
	for _, evs := range out {
		sort.SliceStable(evs, func(i, j int) bool { return eventTime(evs[i]).Before(eventTime(evs[j])) })
	}
	return out
}

func eventTime(e corev1.Event) time.Time {
	switch {
	case e.Series != nil && !e.Series.LastObservedTime.IsZero():
		return e.Series.LastObservedTime.Time
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	}
	return e.FirstTimestamp.Time
}

// last returns the newest event with one of the reasons, for the container when one is named.
func (evs podEvents) last(container string, reasons ...string) *corev1.Event {
	for i := len(evs) - 1; i >= 0; i-- {
		e := evs[i]
		if container != "" && e.InvolvedObject.FieldPath != "" &&
			e.InvolvedObject.FieldPath != "spec.containers{"+container+"}" &&
			e.InvolvedObject.FieldPath != "spec.initContainers{"+container+"}" {
			continue
		}
		for _, r := range reasons {
			if e.Reason == r {
				return &evs[i]
			}
		}
	}
	return nil
}

// assessPod decides where one pod stands from its status and its events.
func assessPod(pod *corev1.Pod, evs podEvents, now time.Time) podAssessment {
	if pod.Status.Phase == corev1.PodSucceeded {
		return podAssessment{State: v1alpha1.StateCompleted, Reason: ReasonCompleted, Started: true}
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			msg := c.Message
			if msg == "" {
				if e := evs.last("", "FailedScheduling"); e != nil {
					msg = e.Message
				}
			}
			return podAssessment{
				State:   v1alpha1.StateStarting,
				Reason:  ReasonUnschedulable,
				Message: "cannot be scheduled: " + msg,
				Failed:  !c.LastTransitionTime.IsZero() && now.Sub(c.LastTransitionTime.Time) >= unschedulableGrace,
			}
		}
	}

	statuses := make([]corev1.ContainerStatus, 0, len(pod.Status.InitContainerStatuses)+len(pod.Status.ContainerStatuses))
	statuses = append(statuses, pod.Status.InitContainerStatuses...)
	statuses = append(statuses, pod.Status.ContainerStatuses...)

	// Failures first: any one of them decides the pod.
	for i, cs := range statuses {
		if a, ok := containerFailure(pod, cs, i < len(pod.Status.InitContainerStatuses), evs); ok {
			return a
		}
	}
	// The containers of a long-running service that keep exiting, or exited and have not stayed
	// up since: a crash loop fails the pod, a single exit keeps it from counting as ready.
	if pod.Spec.RestartPolicy == corev1.RestartPolicyAlways {
		for _, cs := range pod.Status.ContainerStatuses {
			if a, ok := crashAssessment(pod, cs, now); ok {
				return a
			}
		}
	}

	if pod.Status.Phase == corev1.PodFailed {
		return podAssessment{State: v1alpha1.StateFailed, Reason: nonEmpty(pod.Status.Reason, "PodFailed"),
			Message: nonEmpty(pod.Status.Message, "the pod failed"), Failed: true}
	}

	started := false
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.State.Running != nil || cs.State.Terminated != nil || (cs.Started != nil && *cs.Started) {
			started = true
		}
	}

	// A container that exited and is about to be restarted (restartPolicy OnFailure: Jobs; the
	// containers of long-running services are taken care of above).
	for _, cs := range pod.Status.ContainerStatuses {
		if t := cs.State.Terminated; t != nil && pod.Spec.RestartPolicy != corev1.RestartPolicyNever {
			return podAssessment{State: v1alpha1.StateStarting, Reason: ReasonRestarting,
				Message: terminationSummary(t, cs.RestartCount) + ", restarting", Started: true}
		}
	}

	// Containers not running yet: pulling, or being created.
	for _, cs := range statuses {
		if cs.State.Waiting == nil {
			continue
		}
		if pulling(evs, cs.Name) {
			return podAssessment{State: v1alpha1.StatePulling, Reason: ReasonPulling,
				Message: fmt.Sprintf("pulling image %q", cs.Image), Started: started}
		}
		reason := nonEmpty(cs.State.Waiting.Reason, ReasonContainerCreating)
		msg := cs.State.Waiting.Message
		switch why := transientCreateError(msg); {
		case why != "":
			reason, msg = ReasonContainerCreating, "container "+cs.Name+" is being created: "+why
		case msg == "":
			msg = "container " + cs.Name + " is being created"
		}
		return podAssessment{State: v1alpha1.StateStarting, Reason: reason, Message: msg, Started: started}
	}
	if len(pod.Status.ContainerStatuses) == 0 {
		if pulling(evs, "") {
			return podAssessment{State: v1alpha1.StatePulling, Reason: ReasonPulling, Message: "pulling image"}
		}
		return podAssessment{State: v1alpha1.StateStarting, Reason: ReasonContainerCreating, Message: "the pod is being created"}
	}

	// Ready as the kubelet says: every readiness probe passes, and for a container without one (a
	// service without a healthcheck) it runs, as docker compose counts a service started. A
	// container that exits after that is seen above: restarting after one exit, failed in a crash
	// loop, and not ready until it has stayed up again.
	if podReady(pod) {
		return podAssessment{State: v1alpha1.StateHealthy, Reason: ReasonHealthy, Started: true, Ready: true}
	}
	// Running but not ready: a failing probe says why.
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.Ready {
			continue
		}
		if e := evs.last(cs.Name, "Unhealthy"); e != nil && cs.State.Running != nil &&
			!eventTime(*e).Before(cs.State.Running.StartedAt.Time) {
			return podAssessment{State: v1alpha1.StateRunning, Reason: ReasonProbeFailing,
				Message: strings.TrimSpace(e.Message), Started: true}
		}
	}
	if started {
		return podAssessment{State: v1alpha1.StateRunning, Reason: ReasonRunning, Message: "running, not ready yet", Started: true}
	}
	return podAssessment{State: v1alpha1.StateStarting, Reason: ReasonContainerCreating, Message: "the pod is starting"}
}

// containerFailure reports a container that cannot run without a change. init: cs is the status
// of an init container.
func containerFailure(pod *corev1.Pod, cs corev1.ContainerStatus, init bool, evs podEvents) (podAssessment, bool) {
	if w := cs.State.Waiting; w != nil {
		switch w.Reason {
		case "ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull", "RegistryUnavailable", "SignatureValidationFailed":
			msg := w.Message
			if !strings.Contains(msg, ": ") {
				// The back-off message lacks the pull error on older kubelets: take it from the events.
				if e := evs.last(cs.Name, "Failed"); e != nil && strings.Contains(e.Message, "image") {
					msg = e.Message
				}
			}
			return podAssessment{
				State:   v1alpha1.StateFailed,
				Reason:  w.Reason,
				Message: fmt.Sprintf("cannot pull image %q: %s", cs.Image, nonEmpty(msg, w.Reason)),
				Failed:  true,
			}, true
		case "CrashLoopBackOff":
			return podAssessment{
				State:   v1alpha1.StateFailed,
				Reason:  w.Reason,
				Message: "crash loop: " + terminationSummary(cs.LastTerminationState.Terminated, cs.RestartCount),
				Started: true,
				Failed:  true,
				Log:     &logRef{Pod: pod.Name, Container: cs.Name, Previous: true},
			}, true
		case "CreateContainerConfigError", "CreateContainerError", "RunContainerError", "PreCreateHookError", "PostStartHookError":
			if transientCreateError(w.Message) != "" {
				// The kubelet retries by itself: not a failure, and not the user's to fix.
				return podAssessment{}, false
			}
			return podAssessment{
				State:   v1alpha1.StateFailed,
				Reason:  w.Reason,
				Message: fmt.Sprintf("container %s cannot start: %s", cs.Name, nonEmpty(w.Message, w.Reason)),
				Failed:  true,
			}, true
		}
	}
	// A container that exited with an error again after a restart: the kubelet shows it terminated
	// for most of the back-off, and waiting with CrashLoopBackOff only now and then. (The
	// containers of long-running services: see crashAssessment.)
	if t := cs.State.Terminated; t != nil && t.ExitCode != 0 && cs.RestartCount > 0 &&
		pod.Spec.RestartPolicy != corev1.RestartPolicyNever && (init || pod.Spec.RestartPolicy != corev1.RestartPolicyAlways) {
		return podAssessment{
			State:   v1alpha1.StateFailed,
			Reason:  "CrashLoopBackOff",
			Message: "crash loop: " + terminationSummary(t, cs.RestartCount),
			Started: true,
			Failed:  true,
			Log:     &logRef{Pod: pod.Name, Container: cs.Name},
		}, true
	}
	// A container that exited with an error and will not be restarted (restartPolicy Never: Jobs).
	if t := cs.State.Terminated; t != nil && t.ExitCode != 0 && pod.Spec.RestartPolicy == corev1.RestartPolicyNever {
		return podAssessment{
			State:   v1alpha1.StateFailed,
			Reason:  ReasonContainerFailed,
			Message: terminationSummary(t, cs.RestartCount),
			Started: true,
			Failed:  true,
			Log:     &logRef{Pod: pod.Name, Container: cs.Name},
		}, true
	}
	return podAssessment{}, false
}

// transientCreateError says in the user's words what the node is still doing when msg is a
// container-creation error the kubelet gets over by itself, seen on a busy node ("" for any other
// error): its caches of the pod's Secrets and ConfigMaps not yet in sync when it first tries
// ("failed to sync secret cache: timed out waiting for the condition"), the container runtime
// slower than the kubelet's deadline ("context deadline exceeded"), and the name of the container
// it is still creating from that timed-out try ("failed to reserve container name").
func transientCreateError(msg string) string {
	switch {
	case strings.Contains(msg, "failed to sync ") && strings.Contains(msg, " cache"):
		return "the node is still loading its Secrets and ConfigMaps"
	case strings.Contains(msg, "context deadline exceeded"), strings.Contains(msg, "failed to reserve container name"):
		return "the node's container runtime is slow to respond, retrying"
	}
	return ""
}

// crashInfo is what a container's status tells of its exits since the pod started.
type crashInfo struct {
	// Last is the newest exit (nil when the kubelet no longer shows it).
	Last *corev1.ContainerStateTerminated
	// Exits counts the exits since the pod started.
	Exits int32
	// Loop: the container exited again soon after a restart.
	Loop bool
	// LastIsPrevious: the instance that exited last is the container's previous instance (a new
	// one is running or waiting to), not its current one.
	LastIsPrevious bool
}

// crashes tells whether the container of a long-running service (restartPolicy Always) has
// exited and not recovered since. What a docker compose user would find truthful:
//
//   - A long-running service is meant to keep running, so any exit counts, whatever its code:
//     the kubelet restarts the container, and compose would show it "Restarting", not "running".
//   - A container that has been up for stableAfter since its last start has recovered; so has one
//     whose instance that exited last had been up that long before it exited, as far as that
//     exit goes (one exit after a long run is a new, single exit, not part of a loop).
//   - Until it recovers, the container does not count as running or ready, even when the pod is
//     Ready for a moment after a restart (a service without a healthcheck has no readiness probe).
//   - One exit (the first, or the first after a long run) is not a failure yet: a service often
//     exits once because something it needs was not up. It is restarting.
//   - A second exit in a row (the instance that exited last was up for less than stableAfter
//     after an earlier exit) is a crash loop: the service failed, and the environment is
//     Degraded right away rather than after the kubelet's back-off has grown.
//
// now comes from the reconciler's clock; a start time ahead of it (clock skew, a test's clock)
// counts as just started.
func crashes(cs corev1.ContainerStatus, now time.Time) (crashInfo, bool) {
	c := crashInfo{Exits: cs.RestartCount, Last: cs.LastTerminationState.Terminated, LastIsPrevious: true}
	if t := cs.State.Terminated; t != nil {
		c.Exits++
		c.Last, c.LastIsPrevious = t, false
	}
	if c.Exits == 0 {
		return crashInfo{}, false
	}
	if r := cs.State.Running; r != nil && upFor(r.StartedAt.Time, now) >= stableAfter {
		return crashInfo{}, false
	}
	ranLong := c.Last != nil && !c.Last.StartedAt.IsZero() && !c.Last.FinishedAt.IsZero() &&
		c.Last.FinishedAt.Sub(c.Last.StartedAt.Time) >= stableAfter
	c.Loop = c.Exits >= 2 && !ranLong
	return c, true
}

// upFor is how long a container started at started has been up at now (0 when unknown).
func upFor(started, now time.Time) time.Duration {
	if started.IsZero() || now.Before(started) {
		return 0
	}
	return now.Sub(started)
}

// crashAssessment is where a pod stands whose container of a long-running service has exited and
// not recovered (see crashes): failed in a crash loop, restarting (not ready) after one exit.
func crashAssessment(pod *corev1.Pod, cs corev1.ContainerStatus, now time.Time) (podAssessment, bool) {
	c, ok := crashes(cs, now)
	if !ok {
		return podAssessment{}, false
	}
	if c.Loop {
		var lookAt time.Time
		if r := cs.State.Running; r != nil {
			lookAt = r.StartedAt.Add(stableAfter) // when it has recovered, if it stays up
		}
		return podAssessment{
			LookAt:  lookAt,
			State:   v1alpha1.StateFailed,
			Reason:  "CrashLoopBackOff",
			Message: "crash loop: " + terminationSummary(c.Last, cs.RestartCount),
			Started: true,
			Failed:  true,
			Log:     &logRef{Pod: pod.Name, Container: cs.Name, Previous: c.LastIsPrevious, OrPrevious: !c.LastIsPrevious},
		}, true
	}
	a := podAssessment{State: v1alpha1.StateStarting, Reason: ReasonRestarting, Started: true,
		Message: terminationSummary(c.Last, cs.RestartCount)}
	if r := cs.State.Running; r != nil {
		a.Message += fmt.Sprintf("; up again for %s, counted as running once up for %s",
			upFor(r.StartedAt.Time, now).Truncate(time.Second), stableAfter)
		a.LookAt = r.StartedAt.Add(stableAfter)
	} else {
		a.Message += ", restarting"
	}
	return a, true
}

// terminationSummary describes how a container last ended.
func terminationSummary(t *corev1.ContainerStateTerminated, restarts int32) string {
	var b strings.Builder
	if t == nil {
		b.WriteString("the container keeps exiting")
	} else {
		fmt.Fprintf(&b, "exited with code %d", t.ExitCode)
		if t.Reason != "" && t.Reason != "Error" && t.Reason != "Completed" {
			fmt.Fprintf(&b, " (%s)", t.Reason)
		}
		if m := strings.TrimSpace(t.Message); m != "" {
			fmt.Fprintf(&b, ": %s", m)
		}
	}
	switch {
	case restarts == 1:
		b.WriteString(", restarted 1 time")
	case restarts > 1:
		fmt.Fprintf(&b, ", restarted %d times", restarts)
	}
	return b.String()
}

// pulling is true when the newest image event of the container says it is being pulled.
func pulling(evs podEvents, container string) bool {
	e := evs.last(container, "Pulling", "Pulled", "Failed", "BackOff", "ErrImageNeverPull")
	return e != nil && e.Reason == "Pulling"
}

func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// readySince is when the pod started to count as ready here: when the kubelet said it is, or,
// for the container of a long-running service that restarted, once it had been up again for
// stableAfter (see crashes).
func readySince(pod *corev1.Pod) time.Time {
	t := podReadySince(pod)
	if pod.Spec.RestartPolicy != corev1.RestartPolicyAlways {
		return t
	}
	for _, cs := range pod.Status.ContainerStatuses {
		r := cs.State.Running
		if r == nil || r.StartedAt.IsZero() {
			continue
		}
		if cs.RestartCount > 0 && r.StartedAt.Add(stableAfter).After(t) {
			t = r.StartedAt.Add(stableAfter)
		}
	}
	return t
}

// podReadySince is when the kubelet last said the pod is ready.
func podReadySince(pod *corev1.Pod) time.Time {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return c.LastTransitionTime.Time
		}
	}
	return time.Time{}
}

// assessService decides where one service stands from its workload, its pods and their events.
func assessService(o observed, events map[string]podEvents, now time.Time) assessment {
	switch {
	case o.Job != nil:
		return assessJob(o, events, now)
	case o.Deployment != nil:
		return assessDeployment(o, events, now)
	}
	return assessment{State: v1alpha1.StateWaiting}
}

func assessDeployment(o observed, events map[string]podEvents, now time.Time) assessment {
	d := o.Deployment
	desired := int32(1)
	if d.Spec.Replicas != nil {
		desired = *d.Spec.Replicas
	}
	st := d.Status
	a := assessment{Desired: desired, Ready: min(st.ReadyReplicas, desired)}

	// Rolled out: the Deployment controller has seen this spec and every pod is of the current
	// template (older ready pods do not count). Readiness is the pods' (below), not the
	// Deployment's ReadyReplicas, which follows them a moment later.
	rolledOut := st.ObservedGeneration >= d.Generation && st.UpdatedReplicas >= desired &&
		st.Replicas == st.UpdatedReplicas
	if desired == 0 {
		a.State, a.Reason, a.Message = v1alpha1.StateHealthy, ReasonScaledToZero, "scaled to 0 replicas"
		a.Healthy, a.Started = true, true
		a.ReadyAt = d.CreationTimestamp.Time
		return a
	}

	worst := podAssessment{}
	worstSet := false
	readyPods := int32(0)
	for _, p := range o.Pods {
		pa := assessPod(p, events[p.Name], now)
		if pa.Started {
			a.Started = true
		}
		if pa.Ready {
			readyPods++
			if t := readySince(p); t.After(a.ReadyAt) {
				a.ReadyAt = t
			}
		}
		if !pa.LookAt.IsZero() && (a.LookAt.IsZero() || pa.LookAt.Before(a.LookAt)) {
			a.LookAt = pa.LookAt
		}
		if !worstSet || severity(pa) > severity(worst) {
			worst, worstSet = pa, true
		}
	}
	if worstSet {
		// The pods tell how many replicas are ready: the Deployment's count lags behind them (a
		// pod that has just become ready, or just exited, may not count there yet), and counts
		// pods the kubelet calls Ready that do not count here (a container that keeps exiting,
		// or has not stayed up since it restarted). Without pods in sight, the Deployment's count.
		a.Ready = min(readyPods, desired)
	}

	// Healthy only with every desired replica ready, as v1alpha1.ServiceStatus.IsReady counts it.
	if rolledOut && (!worstSet || worst.Ready) && a.Ready >= desired {
		a.State, a.Reason, a.Healthy, a.Started = v1alpha1.StateHealthy, ReasonHealthy, true, true
		a.Message = fmt.Sprintf("%d/%d ready", a.Ready, desired)
		if a.ReadyAt.IsZero() {
			a.ReadyAt = now
		}
		return a
	}
	a.ReadyAt = time.Time{}
	if !worstSet {
		a.State, a.Reason, a.Message = v1alpha1.StateStarting, ReasonCreating, "creating pods"
		return a
	}
	if worst.State == v1alpha1.StateHealthy {
		// Every pod we see is ready, yet the Deployment is not rolled out: old pods still go away,
		// or new ones are still to be created.
		a.State, a.Reason, a.Message = v1alpha1.StateStarting, ReasonRollingOut, fmt.Sprintf("%d/%d ready, rolling out", a.Ready, desired)
		return a
	}
	a.State, a.Reason, a.Message, a.Failed, a.Log = worst.State, worst.Reason, worst.Message, worst.Failed, worst.Log
	if a.Failed {
		a.State = v1alpha1.StateFailed
	}
	return a
}

func assessJob(o observed, events map[string]podEvents, now time.Time) assessment {
	j := o.Job
	a := assessment{Desired: 1}
	if j.Spec.Completions != nil {
		a.Desired = *j.Spec.Completions
	}
	for _, c := range j.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete:
			a.State, a.Reason, a.Ready, a.Message = v1alpha1.StateCompleted, ReasonCompleted, a.Desired, "completed successfully"
			a.Completed, a.Healthy, a.Started = true, true, true
			switch {
			case j.Status.CompletionTime != nil:
				a.ReadyAt = j.Status.CompletionTime.Time
			case !c.LastTransitionTime.IsZero():
				a.ReadyAt = c.LastTransitionTime.Time
			default:
				a.ReadyAt = now
			}
			return a
		case batchv1.JobFailed:
			a.State, a.Reason, a.Failed, a.Started = v1alpha1.StateFailed, ReasonJobFailed, true, true
			a.Message = "the job failed"
			if c.Message != "" {
				a.Message += ": " + c.Message
			}
			// The newest failed pod tells the exit code and holds the log.
			if p, cs := lastFailedContainer(o.Pods); p != nil {
				a.Message += "; " + terminationSummary(terminated(cs), 0)
				a.Log = &logRef{Pod: p.Name, Container: cs.Name, Previous: cs.State.Terminated == nil}
			}
			return a
		}
	}

	worst := podAssessment{}
	worstSet := false
	for _, p := range o.Pods {
		pa := assessPod(p, events[p.Name], now)
		if pa.Started {
			a.Started = true
		}
		if pa.Failed && (pa.Reason == ReasonContainerFailed || pa.Reason == "CrashLoopBackOff") {
			// The Job retries a failed attempt (a new pod, or the same one restarted): not the
			// final word yet, the Job says when it gives up.
			pa = podAssessment{State: v1alpha1.StateStarting, Reason: ReasonRestarting,
				Message: "attempt failed (" + pa.Message + "), retrying", Started: true}
		}
		if !worstSet || severity(pa) > severity(worst) {
			worst, worstSet = pa, true
		}
	}
	if !worstSet {
		a.State, a.Reason, a.Message = v1alpha1.StateStarting, ReasonCreating, "creating the pod"
		return a
	}
	a.State, a.Reason, a.Message, a.Failed, a.Log = worst.State, worst.Reason, worst.Message, worst.Failed, worst.Log
	if a.State == v1alpha1.StateHealthy || a.State == v1alpha1.StateCompleted {
		// The pod is done or running; the Job has not said so yet.
		a.State, a.Reason, a.Message = v1alpha1.StateRunning, ReasonRunning, "running"
	}
	if a.Failed {
		a.State = v1alpha1.StateFailed
	}
	return a
}

// lastFailedContainer finds the most recently ended container that exited non-zero.
func lastFailedContainer(pods []*corev1.Pod) (*corev1.Pod, *corev1.ContainerStatus) {
	var (
		bestPod *corev1.Pod
		best    *corev1.ContainerStatus
		bestAt  time.Time
	)
	for _, p := range pods {
		for i := range p.Status.ContainerStatuses {
			cs := &p.Status.ContainerStatuses[i]
			t := terminated(cs)
			if t == nil || t.ExitCode == 0 {
				continue
			}
			if best == nil || t.FinishedAt.After(bestAt) {
				bestPod, best, bestAt = p, cs, t.FinishedAt.Time
			}
		}
	}
	return bestPod, best
}

// terminated is the container's current termination, or its last one.
func terminated(cs *corev1.ContainerStatus) *corev1.ContainerStateTerminated {
	if cs.State.Terminated != nil {
		return cs.State.Terminated
	}
	return cs.LastTerminationState.Terminated
}

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
