package forward

import (
	"context"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
)

// usable reports whether new connections may go to the pod: it is running,
// Ready, has an IP and is not being deleted.
func usable(p *corev1.Pod) bool {
	if p == nil || p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// finished reports whether the pod can carry no connection any more.
func finished(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

// PickPod is pickPod for relays that choose pods the same way as the
// forwarder (the ergomake server).
func PickPod(pods []*corev1.Pod, sel labels.Selector) *corev1.Pod { return pickPod(pods, sel) }

// PodFinished reports whether the pod can carry no connection any more
// (it succeeded or failed).
func PodFinished(p *corev1.Pod) bool { return finished(p) }

// NotReadyReason says in a few words why p is not ready ("pending
// (ContainerCreating)", "being deleted").
func NotReadyReason(p *corev1.Pod) string { return notReadyReason(p) }

// pickPod returns the pod new connections of sel should reach: among the
// usable pods that match, the newest (latest creation, then name).
func pickPod(pods []*corev1.Pod, sel labels.Selector) *corev1.Pod {
	var best *corev1.Pod
	for _, p := range pods {
		if !sel.Matches(labels.Set(p.Labels)) || !usable(p) {
			continue
		}
		if best == nil || newer(p, best) {
			best = p
		}
	}
	return best
}

// pickComing returns the pod that new connections of sel will most likely
// go to next: the newest pod that runs but has never been ready yet (a
// replacement starting up), when it is newer than the current pick. Its
// tunnels can be dialled while it becomes ready. everReady holds the pods
// seen ready before: one that has lost its readiness is not coming.
func pickComing(pods []*corev1.Pod, sel labels.Selector, pick *corev1.Pod, everReady map[types.UID]bool) *corev1.Pod {
	var best *corev1.Pod
	for _, p := range pods {
		if !sel.Matches(labels.Set(p.Labels)) || p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning ||
			p.Status.PodIP == "" || usable(p) || everReady[p.UID] {
			continue
		}
		if (pick == nil || newer(p, pick)) && (best == nil || newer(p, best)) {
			best = p
		}
	}
	return best
}

func newer(a, b *corev1.Pod) bool {
	ta, tb := a.CreationTimestamp.Time, b.CreationTimestamp.Time
	if !ta.Equal(tb) {
		return ta.After(tb)
	}
	return a.Name > b.Name
}

// commonSelector returns the label pairs every selector shares: the
// informer watches only those pods (usually one environment's).
func commonSelector(sels []map[string]string) labels.Set {
	if len(sels) == 0 {
		return nil
	}
	common := labels.Set{}
	for k, v := range sels[0] {
		common[k] = v
	}
	for _, s := range sels[1:] {
		for k, v := range common {
			if s[k] != v {
				delete(common, k)
			}
		}
	}
	return common
}

// podLister is what the tracker needs from the informer's cache.
type podLister interface {
	List(selector labels.Selector) ([]*corev1.Pod, error)
}

// tracker answers "which pod now" from the informer cache and lets callers
// wait for the answer to change.
type tracker struct {
	lister podLister

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every pod event
}

func newTracker(l podLister) *tracker {
	return &tracker{lister: l, changed: make(chan struct{})}
}

// notify wakes everyone waiting for a pod event.
func (t *tracker) notify() {
	t.mu.Lock()
	close(t.changed)
	t.changed = make(chan struct{})
	t.mu.Unlock()
}

func (t *tracker) changes() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.changed
}

func (t *tracker) pods() []*corev1.Pod {
	pods, _ := t.lister.List(labels.Everything())
	sort.Slice(pods, func(i, j int) bool { return pods[i].Name < pods[j].Name })
	return pods
}

func (t *tracker) pick(sel labels.Selector) *corev1.Pod {
	pods, _ := t.lister.List(sel)
	return pickPod(pods, sel)
}

// wait returns the pod for sel, waiting up to timeout for one to become
// ready. It returns nil when none did or ctx ended.
func (t *tracker) wait(ctx context.Context, sel labels.Selector, timeout time.Duration) *corev1.Pod {
	var timer <-chan time.Time
	for {
		ch := t.changes() // before pick, so no event is missed in between
		if p := t.pick(sel); p != nil {
			return p
		}
		if timer == nil {
			tm := time.NewTimer(timeout)
			defer tm.Stop()
			timer = tm.C
		}
		select {
		case <-ch:
		case <-timer:
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}
