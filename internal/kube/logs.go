package kube

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ergomake/ergomake/internal/render"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// ServicePods lists the pods of one compose service of an environment ("" = every service), oldest
// first. It selects by the label values the operator writes (render.LabelValue of the names: a
// compose name such as `worker_` or one longer than 63 characters is not a label value itself);
// the label value of a name is its own label value, so either may be given.
func (c *Client) ServicePods(ctx context.Context, namespace, envName, service string) ([]corev1.Pod, error) {
	sel := v1alpha1.LabelEnv + "=" + render.LabelValue(envName)
	if service != "" {
		sel += "," + v1alpha1.LabelService + "=" + render.LabelValue(service)
	}
	l, err := c.Kube.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, fmt.Errorf("listing pods of %s/%s: %w", namespace, envName, c.Explain(err))
	}
	pods := l.Items
	sort.SliceStable(pods, func(i, j int) bool {
		ti, tj := pods[i].CreationTimestamp, pods[j].CreationTimestamp
		if !ti.Equal(&tj) {
			return ti.Before(&tj)
		}
		return pods[i].Name < pods[j].Name
	})
	return pods, nil
}

// MainContainer is the name of the container that runs the service in a pod: the first one.
func MainContainer(pod *corev1.Pod) string {
	if len(pod.Spec.Containers) == 0 {
		return ""
	}
	return pod.Spec.Containers[0].Name
}

// LogRun names the run of the pod's main container whose log a follower streams: the pod's UID
// and the container's restart count, once the container has started (ok false before: nothing to
// read yet). A follower streams each run once.
func LogRun(pod *corev1.Pod) (key string, ok bool) {
	container := MainContainer(pod)
	restarts := int32(-1)
	for _, st := range pod.Status.ContainerStatuses {
		if st.Name == container && (st.State.Running != nil || st.State.Terminated != nil) {
			restarts = st.RestartCount
		}
	}
	if restarts < 0 {
		return "", false
	}
	return fmt.Sprintf("%s/%d", pod.UID, restarts), true
}

// LogRuns remembers the runs (LogRun) a log follower has started streaming, so that each run of
// a pod's main container is streamed once. The zero value is ready; safe for concurrent use.
type LogRuns struct {
	mu      sync.Mutex
	started map[string]bool
}

// Start says whether the pod's main container has started a run not streamed yet, and marks it
// as streamed.
func (r *LogRuns) Start(pod *corev1.Pod) bool {
	key, ok := LogRun(pod)
	if !ok {
		return false // not started yet: nothing to read
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started[key] {
		return false
	}
	if r.started == nil {
		r.started = map[string]bool{}
	}
	r.started[key] = true
	return true
}

// StreamLog reads the log of the pod's main container (its last tail lines first, all when tail is
// negative; following it when follow) and hands each line, without its line ending, to line until
// the log or ctx ends. The error is that of opening the log.
func StreamLog(ctx context.Context, cs kubernetes.Interface, pod *corev1.Pod, follow, timestamps bool, tail int64, line func(string)) error {
	opts := &corev1.PodLogOptions{Container: MainContainer(pod), Follow: follow, Timestamps: timestamps}
	if tail >= 0 {
		opts.TailLines = &tail
	}
	rc, err := cs.CoreV1().Pods(pod.Namespace).GetLogs(pod.Name, opts).Stream(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = rc.Close() }()
	r := bufio.NewReaderSize(rc, 64<<10)
	for {
		text, err := r.ReadString('\n')
		if text != "" {
			line(strings.TrimRight(text, "\r\n"))
		}
		if err != nil {
			return nil
		}
	}
}

// TailLogs returns the last n lines the service's most recent pod wrote. When its container has
// restarted (a crash loop), the lines are those of the previous, failed run.
func (c *Client) TailLogs(ctx context.Context, namespace, envName, service string, n int) ([]string, error) {
	pods, err := c.ServicePods(ctx, namespace, envName, service)
	if err != nil || len(pods) == 0 {
		return nil, err
	}
	pod := &pods[len(pods)-1]
	container := MainContainer(pod)
	previous := false
	for _, st := range pod.Status.ContainerStatuses {
		if st.Name == container && st.RestartCount > 0 && st.State.Running == nil {
			previous = true
		}
	}
	lines, err := c.podLogLines(ctx, pod, container, previous, n)
	// The kubelet answers a previous run whose log is gone with a line of its own.
	gone := len(lines) == 1 && strings.HasPrefix(lines[0], "unable to retrieve container logs")
	if (err != nil || gone) && previous {
		lines, err = c.podLogLines(ctx, pod, container, false, n)
		gone = len(lines) == 1 && strings.HasPrefix(lines[0], "unable to retrieve container logs")
	}
	if gone {
		return nil, err
	}
	return lines, err
}

func (c *Client) podLogLines(ctx context.Context, pod *corev1.Pod, container string, previous bool, n int) ([]string, error) {
	tail := int64(n)
	rc, err := c.Kube.CoreV1().Pods(pod.Namespace).GetLogs(pod.Name, &corev1.PodLogOptions{
		Container: container, Previous: previous, TailLines: &tail,
	}).Stream(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rc.Close() }()
	var lines []string
	sc := bufio.NewScanner(io.LimitReader(rc, 1<<20))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		lines = append(lines, strings.TrimRight(sc.Text(), "\r"))
	}
	return lines, sc.Err()
}

// StreamLogs opens the log stream of the pod's main container.
func (c *Client) StreamLogs(ctx context.Context, pod *corev1.Pod, follow bool, tail int64) (io.ReadCloser, error) {
	opts := &corev1.PodLogOptions{Container: MainContainer(pod), Follow: follow}
	if tail >= 0 {
		opts.TailLines = &tail
	}
	rc, err := c.Kube.CoreV1().Pods(pod.Namespace).GetLogs(pod.Name, opts).Stream(ctx)
	if err != nil {
		return nil, c.Explain(err)
	}
	return rc, nil
}
