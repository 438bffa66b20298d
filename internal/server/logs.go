package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/ergomake/ergomake/internal/kube"
	"github.com/ergomake/ergomake/internal/render"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// logFlushEvery is how often a log stream's buffered lines are flushed to the client.
const logFlushEvery = 50 * time.Millisecond

func (h *Handler) logs(c *call) (any, error) {
	name := c.r.PathValue("name")
	c.env = name
	if err := checkName(name); err != nil {
		return nil, err
	}
	q := c.r.URL.Query()
	o := LogOptions{Service: q.Get("service"), Tail: -1, Follow: truthy(q.Get("follow")), Timestamps: truthy(q.Get("timestamps"))}
	if v := q.Get("tail"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, errorf(http.StatusBadRequest, "tail is %q, want a number of lines (-1: all)", v)
		}
		o.Tail = n
	}
	ctx := c.r.Context()
	w, env, err := h.streams.acquireEnv(ctx, c.who.User, name)
	if err != nil {
		return nil, err
	}
	defer h.streams.release(w)
	byLabel := map[string]string{}
	for _, s := range env.Spec.Services {
		byLabel[render.LabelValue(s.Name)] = s.Name
	}
	if o.Service != "" {
		if _, ok := byLabel[render.LabelValue(o.Service)]; !ok {
			return nil, errorf(http.StatusNotFound, "environment %s has no service %q", name, o.Service)
		}
	}
	sel := v1alpha1.LabelEnv + "=" + render.LabelValue(env.Name)
	if o.Service != "" {
		sel += "," + v1alpha1.LabelService + "=" + render.LabelValue(o.Service)
	}
	pods := h.streams.t.Kube.CoreV1().Pods(w.ns)
	list, err := pods.List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, fmt.Errorf("listing the pods of %s: %w", name, err)
	}

	rc := http.NewResponseController(c.w)
	_ = rc.SetWriteDeadline(time.Time{}) // a stream lasts as long as the client wants
	c.w.Header().Set("Content-Type", "application/x-ndjson")
	c.w.Header().Set("Cache-Control", "no-store")
	c.w.WriteHeader(http.StatusOK)
	out := &logWriter{enc: json.NewEncoder(c.w), flush: rc.Flush}
	stopFlush := out.flushLoop()
	defer stopFlush()

	ls := &logStreams{h: h, ns: w.ns, byLabel: byLabel, out: out, o: o}
	items := list.Items
	sort.SliceStable(items, func(i, j int) bool {
		ti, tj := items[i].CreationTimestamp, items[j].CreationTimestamp
		if !ti.Equal(&tj) {
			return ti.Before(&tj)
		}
		return items[i].Name < items[j].Name
	})
	for i := range items {
		ls.maybeStream(ctx, &items[i], o.Tail)
	}
	if o.Follow {
		// Pods and containers that start from now on are streamed from their first line.
		rv := list.ResourceVersion
		for ctx.Err() == nil {
			wt, err := pods.Watch(ctx, metav1.ListOptions{LabelSelector: sel, ResourceVersion: rv})
			if err != nil {
				break
			}
			ls.follow(ctx, wt, &rv)
			wt.Stop()
			if ctx.Err() == nil {
				l, err := pods.List(ctx, metav1.ListOptions{LabelSelector: sel})
				if err != nil {
					break
				}
				for i := range l.Items {
					ls.maybeStream(ctx, &l.Items[i], -1)
				}
				rv = l.ResourceVersion
			}
		}
	}
	ls.wg.Wait()
	return streamed{}, nil
}

// follow streams the pods the watch reports until it ends or ctx does.
func (ls *logStreams) follow(ctx context.Context, wt watch.Interface, rv *string) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-wt.ResultChan():
			if !ok {
				return
			}
			if pod, ok := ev.Object.(*corev1.Pod); ok && (ev.Type == watch.Added || ev.Type == watch.Modified) {
				*rv = pod.ResourceVersion
				ls.maybeStream(ctx, pod, -1)
			}
		}
	}
}

func truthy(v string) bool {
	b, err := strconv.ParseBool(v)
	return err == nil && b
}

// logWriter writes LogLines, one JSON object a line, flushed every logFlushEvery.
type logWriter struct {
	mu    sync.Mutex
	enc   *json.Encoder
	flush func() error
	dirty bool
	dead  bool
}

func (l *logWriter) write(line LogLine) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dead {
		return
	}
	if err := l.enc.Encode(line); err != nil {
		l.dead = true
	}
	l.dirty = true
}

func (l *logWriter) doFlush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dirty && !l.dead {
		if l.flush() != nil {
			l.dead = true
		}
		l.dirty = false
	}
}

func (l *logWriter) flushLoop() (stop func()) {
	done := make(chan struct{})
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		t := time.NewTicker(logFlushEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				l.doFlush()
			}
		}
	}()
	return func() {
		close(done)
		<-ended
		l.doFlush()
	}
}

// logStreams streams the logs of an environment's pods, each container run once.
type logStreams struct {
	h       *Handler
	ns      string
	byLabel map[string]string
	out     *logWriter
	o       LogOptions

	runs kube.LogRuns
	wg   sync.WaitGroup
}

// maybeStream starts streaming a pod's main container once it has started, once per run.
func (ls *logStreams) maybeStream(ctx context.Context, pod *corev1.Pod, tail int64) {
	if ls.o.Service != "" && pod.Labels[v1alpha1.LabelService] != render.LabelValue(ls.o.Service) {
		return // the selector said so already; a watch that does not filter is not trusted
	}
	svc := ls.byLabel[pod.Labels[v1alpha1.LabelService]]
	if svc == "" {
		svc = pod.Labels[v1alpha1.LabelService]
	}
	if !ls.runs.Start(pod) {
		return
	}
	ls.wg.Add(1)
	go func() {
		defer ls.wg.Done()
		err := kube.StreamLog(ctx, ls.h.streams.t.Kube, pod, ls.o.Follow, ls.o.Timestamps, tail, func(line string) {
			ls.out.write(LogLine{Service: svc, Pod: pod.Name, Line: line})
		})
		if err != nil && ctx.Err() == nil {
			ls.out.write(LogLine{Service: svc, Pod: pod.Name, Error: fmt.Sprintf("cannot read the log: %v", err)})
		}
	}()
}
