package operator

import (
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

var t0 = time.Date(2026, 11, 24, 18, 0, 0, 0, time.UTC)

func at(d time.Duration) metav1.Time { return metav1.NewTime(t0.Add(d)) }

// pod builds a pod of one container named "app" with the given container state.
func pod(name string, mutate ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"},
		Spec:       corev1.PodSpec{RestartPolicy: corev1.RestartPolicyAlways, Containers: []corev1.Container{{Name: "app", Image: "img:1"}}},
		Status: corev1.PodStatus{
			Phase: corev1.PodPending,
			Conditions: []corev1.PodCondition{
				{Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
				{Type: corev1.PodReady, Status: corev1.ConditionFalse},
			},
		},
	}
	for _, m := range mutate {
		m(p)
	}
	return p
}

func waiting(reason, msg string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", Image: "img:1",
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: msg}}}}
	}
}

func running(ready bool) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Status.Phase = corev1.PodRunning
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", Image: "img:1", Ready: ready, Started: ptrBool(true),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: at(0)}}}}
		if ready {
			p.Status.Conditions[1] = corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: at(5 * time.Second)}
		}
	}
}

func ptrBool(b bool) *bool { return &b }

func event(pod, reason, msg string, when time.Duration) corev1.Event {
	return corev1.Event{
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: pod, FieldPath: "spec.containers{app}"},
		Reason:         reason, Message: msg, LastTimestamp: at(when),
	}
}

func TestAssessPod(t *testing.T) {
	now := t0.Add(2 * time.Minute)
	tests := []struct {
		name        string
		pod         *corev1.Pod
		events      []corev1.Event
		want        v1alpha1.ServiceState
		wantReason  string
		wantMsg     []string // substrings
		wantFailed  bool
		wantStarted bool
		wantLog     *logRef
	}{
		{
			name: "unschedulable for a moment",
			pod: pod("p", func(p *corev1.Pod) {
				p.Status.Conditions[0] = corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
					Reason: corev1.PodReasonUnschedulable, Message: "0/1 nodes are available: 1 Insufficient memory.", LastTransitionTime: metav1.NewTime(now.Add(-10 * time.Second))}
			}),
			want: v1alpha1.StateStarting, wantReason: ReasonUnschedulable, wantMsg: []string{"cannot be scheduled: 0/1 nodes are available: 1 Insufficient memory."},
		},
		{
			name: "unschedulable for long fails",
			pod: pod("p", func(p *corev1.Pod) {
				p.Status.Conditions[0] = corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
					Reason: corev1.PodReasonUnschedulable, Message: "0/1 nodes are available: 1 Insufficient cpu.", LastTransitionTime: at(0)}
			}),
			want: v1alpha1.StateStarting, wantReason: ReasonUnschedulable, wantMsg: []string{"Insufficient cpu"}, wantFailed: true,
		},
		{
			name:   "pulling",
			pod:    pod("p", waiting("ContainerCreating", "")),
			events: []corev1.Event{event("p", "Scheduled", "assigned", 0), event("p", "Pulling", `Pulling image "img:1"`, time.Second)},
			want:   v1alpha1.StatePulling, wantReason: ReasonPulling, wantMsg: []string{`pulling image "img:1"`},
		},
		{
			name:   "pulled, creating",
			pod:    pod("p", waiting("ContainerCreating", "")),
			events: []corev1.Event{event("p", "Pulling", `Pulling image "img:1"`, time.Second), event("p", "Pulled", "done", 2*time.Second)},
			want:   v1alpha1.StateStarting, wantReason: "ContainerCreating",
		},
		{
			name: "image not found",
			pod: pod("p", waiting("ErrImagePull",
				`failed to pull and unpack image "docker.io/library/img:1": failed to resolve reference "docker.io/library/img:1": docker.io/library/img:1: not found`)),
			want: v1alpha1.StateFailed, wantReason: "ErrImagePull", wantFailed: true,
			wantMsg: []string{`cannot pull image "img:1"`, "not found"},
		},
		{
			name:   "pull back-off without the error takes it from the events",
			pod:    pod("p", waiting("ImagePullBackOff", `Back-off pulling image "img:1"`)),
			events: []corev1.Event{event("p", "Failed", `Failed to pull image "img:1": rpc error: dial tcp: lookup registry: no such host`, time.Second)},
			want:   v1alpha1.StateFailed, wantReason: "ImagePullBackOff", wantFailed: true,
			wantMsg: []string{`cannot pull image "img:1"`, "no such host"},
		},
		{
			name: "crash loop",
			pod: pod("p", func(p *corev1.Pod) {
				p.Status.Phase = corev1.PodRunning
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", Image: "img:1", RestartCount: 3,
					State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off 40s"}},
					LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error"}}}}
			}),
			want: v1alpha1.StateFailed, wantReason: "CrashLoopBackOff", wantFailed: true, wantStarted: true,
			wantMsg: []string{"crash loop: exited with code 1, restarted 3 times"},
			wantLog: &logRef{Pod: "p", Container: "app", Previous: true},
		},
		{
			name: "crash loop, between restarts",
			pod: pod("p", func(p *corev1.Pod) {
				p.Status.Phase = corev1.PodRunning
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", Image: "img:1", RestartCount: 2,
					State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "OOMKilled"}}}}
			}),
			want: v1alpha1.StateFailed, wantReason: "CrashLoopBackOff", wantFailed: true, wantStarted: true,
			wantMsg: []string{"crash loop: exited with code 137 (OOMKilled), restarted 2 times"},
			wantLog: &logRef{Pod: "p", Container: "app", OrPrevious: true},
		},
		{
			name: "first exit, restarting",
			pod: pod("p", func(p *corev1.Pod) {
				p.Status.Phase = corev1.PodRunning
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", Image: "img:1",
					State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1}}}}
			}),
			want: v1alpha1.StateStarting, wantReason: ReasonRestarting, wantStarted: true, wantMsg: []string{"exited with code 1, restarting"},
		},
		{
			name: "config error",
			pod:  pod("p", waiting("CreateContainerConfigError", `secret "s" not found`)),
			want: v1alpha1.StateFailed, wantReason: "CreateContainerConfigError", wantFailed: true,
			wantMsg: []string{`container app cannot start: secret "s" not found`},
		},
		{
			name: "the kubelet's secret cache not in sync yet: it retries",
			pod:  pod("p", waiting("CreateContainerConfigError", "failed to sync secret cache: timed out waiting for the condition")),
			want: v1alpha1.StateStarting, wantReason: ReasonContainerCreating,
			wantMsg: []string{"container app is being created: the node is still loading its Secrets and ConfigMaps"},
		},
		{
			name: "the container runtime slower than the kubelet's deadline: it retries",
			pod:  pod("p", waiting("CreateContainerError", `failed to reserve container name "app_p_default_0": name "app_p_default_0" is reserved for "4a1c"`)),
			want: v1alpha1.StateStarting, wantReason: ReasonContainerCreating,
			wantMsg: []string{"container app is being created: the node's container runtime is slow to respond, retrying"},
		},
		{
			name: "a container that cannot be created",
			pod:  pod("p", waiting("CreateContainerError", `Error: failed to create containerd container: mount /data: not a directory`)),
			want: v1alpha1.StateFailed, wantReason: "CreateContainerError", wantFailed: true,
			wantMsg: []string{"container app cannot start: Error: failed to create containerd container: mount /data: not a directory"},
		},
		{
			name:   "running, probe failing",
			pod:    pod("p", running(false)),
			events: []corev1.Event{event("p", "Unhealthy", "Readiness probe failed: pg_isready: no response\n", 10*time.Second)},
			want:   v1alpha1.StateRunning, wantReason: ReasonProbeFailing, wantStarted: true,
			wantMsg: []string{"Readiness probe failed: pg_isready: no response"},
		},
		{
			name:   "running, a probe failure of an earlier container does not count",
			pod:    pod("p", running(false)),
			events: []corev1.Event{event("p", "Unhealthy", "Readiness probe failed: old", -10*time.Second)},
			want:   v1alpha1.StateRunning, wantReason: ReasonRunning, wantStarted: true,
		},
		{
			name: "ready", pod: pod("p", running(true)),
			want: v1alpha1.StateHealthy, wantReason: ReasonHealthy, wantStarted: true,
		},
		{
			name: "succeeded",
			pod:  pod("p", func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }),
			want: v1alpha1.StateCompleted, wantReason: ReasonCompleted, wantStarted: true,
		},
		{
			name: "job pod exited non-zero",
			pod: pod("p", func(p *corev1.Pod) {
				p.Spec.RestartPolicy = corev1.RestartPolicyNever
				p.Status.Phase = corev1.PodFailed
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", Image: "img:1",
					State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 3, Reason: "Error"}}}}
			}),
			want: v1alpha1.StateFailed, wantReason: ReasonContainerFailed, wantFailed: true, wantStarted: true,
			wantMsg: []string{"exited with code 3"},
			wantLog: &logRef{Pod: "p", Container: "app"},
		},
		{
			name: "no container status yet",
			pod:  pod("p"),
			want: v1alpha1.StateStarting, wantReason: ReasonContainerCreating,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := assessPod(tt.pod, eventsByPod(tt.events)[tt.pod.Name], now)
			if got.State != tt.want || got.Reason != tt.wantReason || got.Failed != tt.wantFailed || got.Started != tt.wantStarted {
				t.Errorf("got state=%s reason=%s failed=%v started=%v, want %s %s %v %v (message %q)",
					got.State, got.Reason, got.Failed, got.Started, tt.want, tt.wantReason, tt.wantFailed, tt.wantStarted, got.Message)
			}
			for _, s := range tt.wantMsg {
				if !strings.Contains(got.Message, s) {
					t.Errorf("message %q lacks %q", got.Message, s)
				}
			}
			if (got.Log == nil) != (tt.wantLog == nil) || (got.Log != nil && *got.Log != *tt.wantLog) {
				t.Errorf("log = %+v, want %+v", got.Log, tt.wantLog)
			}
		})
	}
}

func deployment(replicas, ready, updated, total int32) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Generation: 2, CreationTimestamp: at(0)},
		Spec:       appsv1.DeploymentSpec{Replicas: &replicas},
		Status: appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: total, UpdatedReplicas: updated,
			ReadyReplicas: ready, AvailableReplicas: ready},
	}
}

func job(conds ...batchv1.JobCondition) *batchv1.Job {
	return &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "migrate"}, Status: batchv1.JobStatus{Conditions: conds}}
}

func TestAssessService(t *testing.T) {
	now := t0.Add(time.Minute)
	crashing := pod("c", func(p *corev1.Pod) {
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", RestartCount: 2,
			State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
			LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 2}}}}
	})
	failedJobPod := pod("j", func(p *corev1.Pod) {
		p.Spec.RestartPolicy = corev1.RestartPolicyNever
		p.Status.Phase = corev1.PodFailed
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app",
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 7, FinishedAt: at(30 * time.Second)}}}}
	})
	tests := []struct {
		name    string
		obs     observed
		want    v1alpha1.ServiceState
		reason  string
		ready   int32
		desired int32
		msg     string
		flags   string // S started, H healthy, C completed, F failed
		readyAt time.Time
	}{
		{name: "not created", obs: observed{}, want: v1alpha1.StateWaiting},
		{name: "deployment, no pods yet", obs: observed{Deployment: deployment(1, 0, 0, 0)},
			want: v1alpha1.StateStarting, reason: ReasonCreating, desired: 1},
		{name: "deployment rolled out", obs: observed{Deployment: deployment(1, 1, 1, 1), Pods: []*corev1.Pod{pod("a", running(true))}},
			want: v1alpha1.StateHealthy, reason: ReasonHealthy, ready: 1, desired: 1, flags: "SH", readyAt: t0.Add(5 * time.Second)},
		{name: "deployment one of two ready: the worst pod speaks",
			obs:  observed{Deployment: deployment(2, 1, 2, 2), Pods: []*corev1.Pod{pod("a", running(true)), pod("b", running(false))}},
			want: v1alpha1.StateRunning, reason: ReasonRunning, ready: 1, desired: 2, flags: "S"},
		{name: "deployment crash looping",
			obs:  observed{Deployment: deployment(1, 0, 1, 1), Pods: []*corev1.Pod{crashing}},
			want: v1alpha1.StateFailed, reason: "CrashLoopBackOff", desired: 1, flags: "SF", msg: "exited with code 2"},
		{name: "deployment rolling out: old ready pods do not make it healthy",
			obs:  observed{Deployment: deployment(1, 1, 1, 2), Pods: []*corev1.Pod{pod("a", running(true))}},
			want: v1alpha1.StateStarting, reason: ReasonRollingOut, ready: 1, desired: 1, flags: "S"},
		{name: "deployment scaled to zero", obs: observed{Deployment: deployment(0, 0, 0, 0)},
			want: v1alpha1.StateHealthy, reason: ReasonScaledToZero, flags: "SH", readyAt: t0},
		{name: "job running", obs: observed{Job: job(), Pods: []*corev1.Pod{pod("j", running(false))}},
			want: v1alpha1.StateRunning, reason: ReasonRunning, desired: 1, flags: "S"},
		{name: "job complete", obs: observed{Job: func() *batchv1.Job {
			j := job(batchv1.JobCondition{Type: batchv1.JobComplete, Status: corev1.ConditionTrue})
			j.Status.CompletionTime = ptrMeta(at(40 * time.Second))
			return j
		}()},
			want: v1alpha1.StateCompleted, reason: ReasonCompleted, ready: 1, desired: 1, flags: "SHC", readyAt: t0.Add(40 * time.Second)},
		{name: "job failed: exit code and log",
			obs: observed{Job: job(batchv1.JobCondition{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded",
				Message: "Job has reached the specified backoff limit"}), Pods: []*corev1.Pod{failedJobPod}},
			want: v1alpha1.StateFailed, reason: ReasonJobFailed, desired: 1, flags: "SF",
			msg: "the job failed: Job has reached the specified backoff limit; exited with code 7"},
		{name: "job pod crash looping under restart on-failure, retrying",
			obs:  observed{Job: job(), Pods: []*corev1.Pod{crashing}},
			want: v1alpha1.StateStarting, reason: ReasonRestarting, desired: 1, flags: "S", msg: "exited with code 2"},
		{name: "job attempt failed, retrying",
			obs:  observed{Job: job(), Pods: []*corev1.Pod{failedJobPod}},
			want: v1alpha1.StateStarting, reason: ReasonRestarting, desired: 1, flags: "S", msg: "exited with code 7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := assessService(tt.obs, nil, now)
			flags := ""
			for _, f := range []struct {
				on bool
				c  string
			}{{a.Started, "S"}, {a.Healthy, "H"}, {a.Completed, "C"}, {a.Failed, "F"}} {
				if f.on {
					flags += f.c
				}
			}
			if a.State != tt.want || a.Reason != tt.reason || a.Ready != tt.ready || a.Desired != tt.desired || flags != tt.flags {
				t.Errorf("got %s %s %d/%d %q, want %s %s %d/%d %q (message %q)",
					a.State, a.Reason, a.Ready, a.Desired, flags, tt.want, tt.reason, tt.ready, tt.desired, tt.flags, a.Message)
			}
			if !strings.Contains(a.Message, tt.msg) {
				t.Errorf("message %q lacks %q", a.Message, tt.msg)
			}
			if !a.ReadyAt.Equal(tt.readyAt) {
				t.Errorf("readyAt %v, want %v", a.ReadyAt, tt.readyAt)
			}
		})
	}
}

func ptrMeta(t metav1.Time) *metav1.Time { return &t }

// container builds the status of the "app" container: restarts, the last termination (exit code,
// started and finished at offsets from t0; nil: none), and the current state.
func container(restarts int32, last *corev1.ContainerStateTerminated, state corev1.ContainerState) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Status.Phase = corev1.PodRunning
		cs := corev1.ContainerStatus{Name: "app", Image: "img:1", RestartCount: restarts, State: state}
		if last != nil {
			cs.LastTerminationState.Terminated = last
		}
		if state.Running != nil {
			cs.Started, cs.Ready = ptrBool(true), true
			// No readiness probe: the kubelet calls the pod Ready as soon as the container runs.
			p.Status.Conditions[1] = corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: state.Running.StartedAt}
		}
		p.Status.ContainerStatuses = []corev1.ContainerStatus{cs}
	}
}

func exited(code int32, started, finished time.Duration) *corev1.ContainerStateTerminated {
	reason := "Error"
	if code == 0 {
		reason = "Completed"
	}
	return &corev1.ContainerStateTerminated{ExitCode: code, Reason: reason, StartedAt: at(started), FinishedAt: at(finished)}
}

func runningSince(d time.Duration) corev1.ContainerState {
	return corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: at(d)}}
}

func terminatedState(t *corev1.ContainerStateTerminated) corev1.ContainerState {
	return corev1.ContainerState{Terminated: t}
}

func withProbe(p *corev1.Pod) {
	p.Spec.Containers[0].ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}}
}

// TestAssessPodExits: which state the pod of a long-running service (restartPolicy Always) is in
// after its container exited, at now = t0 + 1m. The pod is Ready whenever the container runs (no
// readiness probe), as the kubelet reports it between restarts.
func TestAssessPodExits(t *testing.T) {
	now := t0.Add(time.Minute)
	tests := []struct {
		name       string
		pod        *corev1.Pod
		want       v1alpha1.ServiceState
		wantReason string
		wantReady  bool
		wantFailed bool
		wantMsg    []string
		wantLog    *logRef
		wantLookAt time.Duration // from t0; 0: none
	}{
		{
			name: "never exited, up long enough: running",
			pod:  pod("p", container(0, nil, runningSince(0))),
			want: v1alpha1.StateHealthy, wantReason: ReasonHealthy, wantReady: true,
		},
		{
			name: "never exited, just started without a readiness probe: ready at once, as the kubelet says",
			pod:  pod("p", container(0, nil, runningSince(59*time.Second+999*time.Millisecond))),
			want: v1alpha1.StateHealthy, wantReason: ReasonHealthy, wantReady: true,
		},
		{
			name: "just started with a readiness probe that passed: ready",
			pod:  pod("p", container(0, nil, runningSince(58*time.Second)), withProbe),
			want: v1alpha1.StateHealthy, wantReason: ReasonHealthy, wantReady: true,
		},
		{
			name: "first exit, not restarted yet: restarting",
			pod:  pod("p", container(0, nil, terminatedState(exited(1, 50*time.Second, 50*time.Second)))),
			want: v1alpha1.StateStarting, wantReason: ReasonRestarting, wantMsg: []string{"exited with code 1, restarting"},
		},
		{
			name: "first exit with code 0: a long-running service is restarting all the same",
			pod:  pod("p", container(0, nil, terminatedState(exited(0, 50*time.Second, 51*time.Second)))),
			want: v1alpha1.StateStarting, wantReason: ReasonRestarting, wantMsg: []string{"exited with code 0, restarting"},
		},
		{
			name: "restarted once, up again for 2s: the pod is Ready, the service is not",
			pod:  pod("p", container(1, exited(1, 57*time.Second, 57*time.Second), runningSince(58*time.Second))),
			want: v1alpha1.StateStarting, wantReason: ReasonRestarting,
			wantMsg:    []string{"exited with code 1, restarted 1 time; up again for 2s, counted as running once up for 30s"},
			wantLookAt: 88 * time.Second,
		},
		{
			name: "restarted once, up again for 30s: recovered",
			pod:  pod("p", container(1, exited(1, 29*time.Second, 29*time.Second), runningSince(30*time.Second))),
			want: v1alpha1.StateHealthy, wantReason: ReasonHealthy, wantReady: true,
		},
		{
			name: "second exit, not restarted yet: crash loop with the current instance's log",
			pod: pod("p", container(1, exited(1, 55*time.Second, 55*time.Second),
				terminatedState(exited(1, 56*time.Second, 56*time.Second)))),
			want: v1alpha1.StateFailed, wantReason: "CrashLoopBackOff", wantFailed: true,
			wantMsg: []string{"crash loop: exited with code 1, restarted 1 time"},
			wantLog: &logRef{Pod: "p", Container: "app", OrPrevious: true},
		},
		{
			name: "restarted twice, up again for a second: crash loop with the previous instance's log",
			pod:  pod("p", container(2, exited(3, 58*time.Second, 58*time.Second), runningSince(59*time.Second))),
			want: v1alpha1.StateFailed, wantReason: "CrashLoopBackOff", wantFailed: true,
			wantMsg:    []string{"crash loop: exited with code 3, restarted 2 times"},
			wantLog:    &logRef{Pod: "p", Container: "app", Previous: true},
			wantLookAt: 89 * time.Second,
		},
		{
			name: "restarted twice, waiting to start again: crash loop",
			pod: pod("p", container(2, exited(1, 58*time.Second, 58*time.Second),
				corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}})),
			want: v1alpha1.StateFailed, wantReason: "CrashLoopBackOff", wantFailed: true,
			wantMsg: []string{"exited with code 1, restarted 2 times"},
			wantLog: &logRef{Pod: "p", Container: "app", Previous: true},
		},
		{
			name: "in the kubelet's back-off after one exit: crash loop",
			pod: pod("p", container(1, exited(1, 58*time.Second, 58*time.Second),
				corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off 10s"}})),
			want: v1alpha1.StateFailed, wantReason: "CrashLoopBackOff", wantFailed: true,
			wantMsg: []string{"crash loop: exited with code 1, restarted 1 time"},
			wantLog: &logRef{Pod: "p", Container: "app", Previous: true},
		},
		{
			name: "restarted many times, up again for a minute: recovered",
			pod:  pod("p", container(7, exited(1, -time.Second, -time.Second), runningSince(0))),
			want: v1alpha1.StateHealthy, wantReason: ReasonHealthy, wantReady: true,
		},
		{
			name: "exited again after a long run: a single exit, restarting",
			pod: pod("p", container(3, exited(1, 10*time.Second, 55*time.Second),
				corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}})),
			want: v1alpha1.StateStarting, wantReason: ReasonRestarting, wantMsg: []string{"exited with code 1, restarted 3 times, restarting"},
		},
		{
			name: "exited again after a long run, up again: restarting until up for 30s",
			pod:  pod("p", container(3, exited(137, -50*time.Second, 50*time.Second), runningSince(51*time.Second))),
			want: v1alpha1.StateStarting, wantReason: ReasonRestarting, wantMsg: []string{"exited with code 137"},
			wantLookAt: 81 * time.Second,
		},
		{
			name: "a start time ahead of the clock counts as just started",
			pod:  pod("p", container(1, exited(1, 2*time.Minute, 2*time.Minute), runningSince(2*time.Minute))),
			want: v1alpha1.StateStarting, wantReason: ReasonRestarting, wantMsg: []string{"up again for 0s"},
			wantLookAt: 150 * time.Second,
		},
		{
			name: "job pod restarted on failure, running again: left to the job",
			pod: pod("p", container(1, exited(1, 58*time.Second, 58*time.Second), runningSince(59*time.Second)),
				func(p *corev1.Pod) { p.Spec.RestartPolicy = corev1.RestartPolicyOnFailure }),
			want: v1alpha1.StateHealthy, wantReason: ReasonHealthy, wantReady: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := assessPod(tt.pod, nil, now)
			if got.State != tt.want || got.Reason != tt.wantReason || got.Ready != tt.wantReady || got.Failed != tt.wantFailed || !got.Started {
				t.Errorf("got state=%s reason=%s ready=%v failed=%v started=%v, want %s %s %v %v true (message %q)",
					got.State, got.Reason, got.Ready, got.Failed, got.Started, tt.want, tt.wantReason, tt.wantReady, tt.wantFailed, got.Message)
			}
			for _, s := range tt.wantMsg {
				if !strings.Contains(got.Message, s) {
					t.Errorf("message %q lacks %q", got.Message, s)
				}
			}
			if (got.Log == nil) != (tt.wantLog == nil) || (got.Log != nil && *got.Log != *tt.wantLog) {
				t.Errorf("log = %+v, want %+v", got.Log, tt.wantLog)
			}
			var wantLookAt time.Time
			if tt.wantLookAt != 0 {
				wantLookAt = t0.Add(tt.wantLookAt)
			}
			if !got.LookAt.Equal(wantLookAt) {
				t.Errorf("lookAt %v, want %v", got.LookAt, wantLookAt)
			}
		})
	}
}

// TestAssessDeploymentCrashing: a Deployment whose status says all replicas are ready (its pod is
// Ready between restarts) is not healthy while its container keeps exiting, and its ready count
// says so.
func TestAssessDeploymentCrashing(t *testing.T) {
	now := t0.Add(time.Minute)
	tests := []struct {
		name   string
		pod    *corev1.Pod
		want   v1alpha1.ServiceState
		reason string
		ready  int32
		flags  string // H healthy, F failed
		lookAt time.Duration
		// readyAt: the pod is Ready from its start (with or without a readiness probe), after a
		// restart from stableAfter later.
		readyAt time.Time
	}{
		{name: "up for a minute", pod: pod("a", container(0, nil, runningSince(0))),
			want: v1alpha1.StateHealthy, reason: ReasonHealthy, ready: 1, flags: "H", readyAt: t0},
		{name: "up for a minute with a readiness probe", pod: pod("a", container(0, nil, runningSince(0)), withProbe),
			want: v1alpha1.StateHealthy, reason: ReasonHealthy, ready: 1, flags: "H", readyAt: t0},
		{name: "recovered after a restart", pod: pod("a", container(1, exited(1, 0, 0), runningSince(time.Second))),
			want: v1alpha1.StateHealthy, reason: ReasonHealthy, ready: 1, flags: "H", readyAt: t0.Add(time.Second + stableAfter)},
		{name: "just started", pod: pod("a", container(0, nil, runningSince(59*time.Second))),
			want: v1alpha1.StateHealthy, reason: ReasonHealthy, ready: 1, flags: "H", readyAt: t0.Add(59 * time.Second)},
		{name: "ready a moment, then exited", pod: pod("a", container(0, nil, terminatedState(exited(1, 59*time.Second, 59*time.Second+200*time.Millisecond)))),
			want: v1alpha1.StateStarting, reason: ReasonRestarting},
		{name: "restarted once", pod: pod("a", container(1, exited(1, 55*time.Second, 55*time.Second), runningSince(56*time.Second))),
			want: v1alpha1.StateStarting, reason: ReasonRestarting, lookAt: 86 * time.Second},
		{name: "crash loop", pod: pod("a", container(2, exited(1, 58*time.Second, 58*time.Second), runningSince(59*time.Second))),
			want: v1alpha1.StateFailed, reason: "CrashLoopBackOff", flags: "F", lookAt: 89 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := assessService(observed{Deployment: deployment(1, 1, 1, 1), Pods: []*corev1.Pod{tt.pod}}, nil, now)
			flags := ""
			if a.Healthy {
				flags += "H"
			}
			if a.Failed {
				flags += "F"
			}
			if a.State != tt.want || a.Reason != tt.reason || a.Ready != tt.ready || a.Desired != 1 || flags != tt.flags || !a.Started {
				t.Errorf("got %s %s %d/%d %q started=%v, want %s %s %d/1 %q (message %q)",
					a.State, a.Reason, a.Ready, a.Desired, flags, a.Started, tt.want, tt.reason, tt.ready, tt.flags, a.Message)
			}
			var wantLookAt time.Time
			if tt.lookAt != 0 {
				wantLookAt = t0.Add(tt.lookAt)
			}
			if !a.LookAt.Equal(wantLookAt) {
				t.Errorf("lookAt %v, want %v", a.LookAt, wantLookAt)
			}
			if !a.ReadyAt.Equal(tt.readyAt) {
				t.Errorf("readyAt %v, want %v", a.ReadyAt, tt.readyAt)
			}
		})
	}
}

// TestAssessDeploymentPodsLagging: the Deployment says every replica is ready, the cache shows
// fewer pods than that: the service is not healthy until every desired replica is seen ready.
func TestAssessDeploymentPodsLagging(t *testing.T) {
	now := t0.Add(time.Minute)
	a := assessService(observed{Deployment: deployment(2, 2, 2, 2), Pods: []*corev1.Pod{pod("a", container(0, nil, runningSince(0)))}}, nil, now)
	if a.Healthy || a.State == v1alpha1.StateHealthy || a.Ready != 1 || a.Desired != 2 {
		t.Errorf("got %s %s %d/%d healthy=%v", a.State, a.Reason, a.Ready, a.Desired, a.Healthy)
	}
	a = assessService(observed{Deployment: deployment(2, 2, 2, 2), Pods: []*corev1.Pod{
		pod("a", container(0, nil, runningSince(0))), pod("b", container(0, nil, runningSince(time.Second)))}}, nil, now)
	if !a.Healthy || a.State != v1alpha1.StateHealthy || a.Ready != 2 || !a.ReadyAt.Equal(t0.Add(time.Second)) {
		t.Errorf("got %s %s %d/%d healthy=%v readyAt=%v", a.State, a.Reason, a.Ready, a.Desired, a.Healthy, a.ReadyAt)
	}
}

// TestAssessDeploymentCountLagging: the pods are ready, the Deployment does not count them yet
// (its ReadyReplicas follows the pods a moment later): ready all the same, as soon as the pods are.
// Pods of an older template still around, or a spec the Deployment controller has not seen, keep
// it rolling out.
func TestAssessDeploymentCountLagging(t *testing.T) {
	now := t0.Add(time.Minute)
	ready := pod("a", container(0, nil, runningSince(59*time.Second)))
	a := assessService(observed{Deployment: deployment(1, 0, 1, 1), Pods: []*corev1.Pod{ready}}, nil, now)
	if !a.Healthy || a.State != v1alpha1.StateHealthy || a.Ready != 1 || !a.ReadyAt.Equal(t0.Add(59*time.Second)) {
		t.Errorf("got %s %s %d/%d healthy=%v readyAt=%v", a.State, a.Reason, a.Ready, a.Desired, a.Healthy, a.ReadyAt)
	}
	old := deployment(1, 1, 1, 2) // one pod of the current template, one older one
	a = assessService(observed{Deployment: old, Pods: []*corev1.Pod{ready}}, nil, now)
	if a.Healthy || a.Reason != ReasonRollingOut || a.Ready != 1 {
		t.Errorf("older pod around: got %s %s %d/%d healthy=%v", a.State, a.Reason, a.Ready, a.Desired, a.Healthy)
	}
	unseen := deployment(1, 1, 1, 1)
	unseen.Generation = 3 // the controller has observed generation 2
	a = assessService(observed{Deployment: unseen, Pods: []*corev1.Pod{ready}}, nil, now)
	if a.Healthy || a.Reason != ReasonRollingOut {
		t.Errorf("spec not observed: got %s %s %d/%d healthy=%v", a.State, a.Reason, a.Ready, a.Desired, a.Healthy)
	}
}
