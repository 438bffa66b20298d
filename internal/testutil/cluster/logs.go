package cluster

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// DumpComponentLogs writes the last n lines of every cluster component's log to the test log.
func DumpComponentLogs(t testing.TB, n int) {
	t.Helper()
	for _, c := range Components {
		p := filepath.Join(Dir(), "logs", c+".log")
		tail, err := tailFile(p, n)
		if err != nil {
			t.Logf("--- %s: %v", c, err)
			continue
		}
		t.Logf("--- last %d lines of %s:\n%s", n, p, tail)
	}
}

// DumpNamespace writes the pods (phase, container states), the logs of every container (current
// and previous instance) and the events of the namespace to the test log.
func DumpNamespace(t testing.TB, cs kubernetes.Interface, ns string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var b strings.Builder
	fmt.Fprintf(&b, "=== namespace %s\n", ns)
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		fmt.Fprintf(&b, "listing pods: %v\n", err)
	} else {
		for i := range pods.Items {
			writePod(ctx, &b, cs, &pods.Items[i])
		}
	}
	events, err := cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		fmt.Fprintf(&b, "listing events: %v\n", err)
	} else {
		items := events.Items
		sort.SliceStable(items, func(i, j int) bool { return eventTime(&items[i]).Before(eventTime(&items[j])) })
		fmt.Fprintf(&b, "--- events (%d)\n", len(items))
		for _, e := range items {
			fmt.Fprintf(&b, "%s %s %s/%s %s: %s (x%d)\n", eventTime(&e).UTC().Format(time.TimeOnly), e.Type,
				strings.ToLower(e.InvolvedObject.Kind), e.InvolvedObject.Name, e.Reason, e.Message, max(e.Count, 1))
		}
	}
	t.Log(b.String())
}

func writePod(ctx context.Context, b *strings.Builder, cs kubernetes.Interface, p *corev1.Pod) {
	fmt.Fprintf(b, "--- pod %s: phase %s, ready %v, node %s, ip %s\n", p.Name, p.Status.Phase, PodReady(p), p.Spec.NodeName, p.Status.PodIP)
	statuses := append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...)
	for _, s := range statuses {
		fmt.Fprintf(b, "    container %s: ready %v, restarts %d, %s\n", s.Name, s.Ready, s.RestartCount, describeState(s.State))
		if s.LastTerminationState.Terminated != nil {
			fmt.Fprintf(b, "      last: %s\n", describeState(s.LastTerminationState))
		}
	}
	containers := append(append([]corev1.Container{}, p.Spec.InitContainers...), p.Spec.Containers...)
	for _, c := range containers {
		for _, previous := range []bool{false, true} {
			tail := int64(50)
			req := cs.CoreV1().Pods(p.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{Container: c.Name, TailLines: &tail, Previous: previous})
			data, err := req.DoRaw(ctx)
			if previous && err != nil {
				continue // there is usually no previous instance
			}
			label := "logs"
			if previous {
				label = "logs of the previous instance"
			}
			if err != nil {
				fmt.Fprintf(b, "    %s of %s: %v\n", label, c.Name, err)
				continue
			}
			fmt.Fprintf(b, "    %s of %s:\n%s", label, c.Name, indent(data))
		}
	}
}

func describeState(s corev1.ContainerState) string {
	switch {
	case s.Running != nil:
		return "running since " + s.Running.StartedAt.UTC().Format(time.TimeOnly)
	case s.Waiting != nil:
		return fmt.Sprintf("waiting: %s %s", s.Waiting.Reason, s.Waiting.Message)
	case s.Terminated != nil:
		return fmt.Sprintf("terminated: exit %d %s %s", s.Terminated.ExitCode, s.Terminated.Reason, s.Terminated.Message)
	}
	return "unknown state"
}

func eventTime(e *corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	}
	return e.CreationTimestamp.Time
}

func indent(data []byte) string {
	var b strings.Builder
	for _, l := range bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n")) {
		b.WriteString("      ")
		b.Write(l)
		b.WriteByte('\n')
	}
	return b.String()
}

// tailFile returns the last n lines of the file at p, reading at most its last 256 KiB.
func tailFile(p string, n int) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	const window = 256 << 10
	off := max(st.Size()-window, 0)
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return "", err
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return "", err
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n"), nil
}
