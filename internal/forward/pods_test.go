package forward

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
)

var t0 = time.Date(2026, 11, 24, 18, 0, 0, 0, time.UTC)

type podOpt func(*corev1.Pod)

func notReady(p *corev1.Pod) { p.Status.Conditions[0].Status = corev1.ConditionFalse }
func terminating(p *corev1.Pod) {
	ts := metav1.NewTime(t0.Add(time.Hour))
	p.DeletionTimestamp = &ts
}
func pending(p *corev1.Pod)      { p.Status.Phase = corev1.PodPending }
func failedPod(p *corev1.Pod)    { p.Status.Phase = corev1.PodFailed }
func svc(name string) podOpt     { return func(p *corev1.Pod) { p.Labels["ergomake.dev/service"] = name } }
func noConditions(p *corev1.Pod) { p.Status.Conditions = nil }
func age(d time.Duration) podOpt {
	return func(p *corev1.Pod) { p.CreationTimestamp = metav1.NewTime(t0.Add(-d)) }
}

func mkPod(name string, opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, UID: types.UID("uid-" + name),
			Labels:            map[string]string{"ergomake.dev/env": "demo", "ergomake.dev/service": "web"},
			CreationTimestamp: metav1.NewTime(t0),
		},
		Status: corev1.PodStatus{
			Phase:      corev1.PodRunning,
			PodIP:      "10.244.0.9",
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
		},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func TestPickPod(t *testing.T) {
	web := labels.SelectorFromSet(map[string]string{"ergomake.dev/env": "demo", "ergomake.dev/service": "web"})
	tests := []struct {
		name string
		pods []*corev1.Pod
		want string // "" = none
	}{
		{"none", nil, ""},
		{"one ready", []*corev1.Pod{mkPod("a")}, "a"},
		{"not ready", []*corev1.Pod{mkPod("a", notReady)}, ""},
		{"no ready condition", []*corev1.Pod{mkPod("a", noConditions)}, ""},
		{"pending", []*corev1.Pod{mkPod("a", pending)}, ""},
		{"failed", []*corev1.Pod{mkPod("a", failedPod)}, ""},
		{"terminating skipped", []*corev1.Pod{mkPod("old", age(time.Hour)), mkPod("new", terminating)}, "old"},
		{"only terminating", []*corev1.Pod{mkPod("a", terminating)}, ""},
		{"newest first", []*corev1.Pod{mkPod("old", age(time.Hour)), mkPod("new", age(time.Minute)), mkPod("mid", age(30*time.Minute))}, "new"},
		{"newest not ready: next newest", []*corev1.Pod{mkPod("old", age(time.Hour)), mkPod("new", age(time.Minute), notReady)}, "old"},
		{"same age: by name", []*corev1.Pod{mkPod("b"), mkPod("c"), mkPod("a")}, "c"},
		{"other service ignored", []*corev1.Pod{mkPod("db", svc("db"), age(-time.Hour)), mkPod("web", age(time.Hour))}, "web"},
		{"other service only", []*corev1.Pod{mkPod("db", svc("db"))}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := pickPod(tt.pods, web)
			name := ""
			if got != nil {
				name = got.Name
			}
			if name != tt.want {
				t.Errorf("pickPod = %q, want %q", name, tt.want)
			}
		})
	}
}

func TestCommonSelector(t *testing.T) {
	got := commonSelector([]map[string]string{
		{"ergomake.dev/env": "demo", "ergomake.dev/service": "web"},
		{"ergomake.dev/env": "demo", "ergomake.dev/service": "db"},
		{"ergomake.dev/env": "demo", "ergomake.dev/service": "web", "x": "y"},
	})
	if got.String() != "ergomake.dev/env=demo" {
		t.Errorf("commonSelector = %q", got.String())
	}
	if s := commonSelector([]map[string]string{{"a": "1"}, {"a": "2"}}); len(s) != 0 {
		t.Errorf("disjoint selectors share %v", s)
	}
	if s := commonSelector(nil); len(s) != 0 {
		t.Errorf("no selectors share %v", s)
	}
}

// sliceLister is a pod cache for the tracker's decision logic.
type sliceLister struct {
	pods func() []*corev1.Pod
}

func (l sliceLister) List(sel labels.Selector) ([]*corev1.Pod, error) {
	var out []*corev1.Pod
	for _, p := range l.pods() {
		if sel.Matches(labels.Set(p.Labels)) {
			out = append(out, p)
		}
	}
	return out, nil
}

func TestTrackerWaitsForReadyPod(t *testing.T) {
	var cur atomicPods
	cur.set([]*corev1.Pod{mkPod("a", notReady)})
	tr := newTracker(sliceLister{cur.get})
	sel := labels.SelectorFromSet(map[string]string{"ergomake.dev/service": "web"})

	got := make(chan *corev1.Pod, 1)
	go func() { got <- tr.wait(context.Background(), sel, 10*time.Second) }()
	select {
	case p := <-got:
		t.Fatalf("wait returned %v before any pod was ready", p)
	case <-time.After(50 * time.Millisecond):
	}
	cur.set([]*corev1.Pod{mkPod("a", notReady), mkPod("b")})
	tr.notify()
	select {
	case p := <-got:
		if p == nil || p.Name != "b" {
			t.Fatalf("wait = %v, want pod b", p)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("wait did not return after a pod became ready")
	}

	// Bounded: no ready pod within the timeout gives nil.
	cur.set(nil)
	if p := tr.wait(context.Background(), sel, 20*time.Millisecond); p != nil {
		t.Fatalf("wait = %v, want nil", p.Name)
	}
	// And ctx ends the wait.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if p := tr.wait(ctx, sel, time.Hour); p != nil {
		t.Fatalf("wait = %v after cancel, want nil", p.Name)
	}
}

type atomicPods struct {
	mu   chan struct{}
	pods []*corev1.Pod
}

func (a *atomicPods) set(p []*corev1.Pod) {
	a.lock()
	a.pods = p
	a.unlock()
}

func (a *atomicPods) get() []*corev1.Pod {
	a.lock()
	defer a.unlock()
	return a.pods
}

func (a *atomicPods) lock() {
	if a.mu == nil {
		a.mu = make(chan struct{}, 1)
	}
	a.mu <- struct{}{}
}
func (a *atomicPods) unlock() { <-a.mu }

func TestBackoff(t *testing.T) {
	now := t0
	b := newBackoff(100*time.Millisecond, time.Second, time.Minute)
	b.now = func() time.Time { return now }
	var got []time.Duration
	for range 6 {
		got = append(got, b.next())
		now = now.Add(time.Second)
	}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("delays %v, want %v ms", got, want)
		}
	}
	// A success soon after a failure does not reset...
	b.success()
	if d := b.next(); d != time.Second {
		t.Errorf("after a quick success: %v, want the cap", d)
	}
	// ...a healthy period does.
	now = now.Add(2 * time.Minute)
	b.success()
	if d := b.next(); d != 100*time.Millisecond {
		t.Errorf("after a healthy period: %v, want the minimum", d)
	}
}

func TestPickComing(t *testing.T) {
	web := labels.SelectorFromSet(map[string]string{"ergomake.dev/service": "web"})
	startingIP := func(p *corev1.Pod) { p.Status.PodIP = "" }
	tests := []struct {
		name      string
		pods      []*corev1.Pod
		everReady map[types.UID]bool
		want      string
	}{
		{"replacement starting beside a ready pod", []*corev1.Pod{mkPod("old", age(time.Hour)), mkPod("new", notReady)}, nil, "new"},
		{"no ready pod at all", []*corev1.Pod{mkPod("new", notReady)}, nil, "new"},
		{"older than the pick: not coming", []*corev1.Pod{mkPod("old", age(time.Hour), notReady), mkPod("new")}, nil, ""},
		{"lost its readiness: not coming", []*corev1.Pod{mkPod("old", age(time.Hour)), mkPod("new", notReady)}, map[types.UID]bool{"uid-new": true}, ""},
		{"terminating", []*corev1.Pod{mkPod("new", notReady, terminating)}, nil, ""},
		{"not running yet", []*corev1.Pod{mkPod("new", notReady, pending)}, nil, ""},
		{"no IP yet", []*corev1.Pod{mkPod("new", notReady, startingIP)}, nil, ""},
		{"other service", []*corev1.Pod{mkPod("db", notReady, svc("db"))}, nil, ""},
		{"newest of two", []*corev1.Pod{mkPod("a", notReady, age(time.Minute)), mkPod("b", notReady)}, nil, "b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := pickComing(tt.pods, web, pickPod(tt.pods, web), tt.everReady)
			name := ""
			if got != nil {
				name = got.Name
			}
			if name != tt.want {
				t.Errorf("pickComing = %q, want %q", name, tt.want)
			}
		})
	}
}

func TestRepeatsHoldsBackTheSameLine(t *testing.T) {
	r := repeats{window: 5 * time.Second}
	check := func(line string, at time.Duration, wantN int, wantOK bool) {
		t.Helper()
		n, ok := r.allow(line, t0.Add(at))
		if n != wantN || ok != wantOK {
			t.Errorf("allow(%q, +%s) = %d, %v; want %d, %v", line, at, n, ok, wantN, wantOK)
		}
	}
	check("a", 0, 0, true)
	check("a", time.Second, 0, false)
	check("b", time.Second, 0, true) // another line is not held back
	check("a", 2*time.Second, 0, false)
	check("a", 6*time.Second, 2, true) // after the window, with the count
	check("a", 7*time.Second, 0, false)
}
