package server

import (
	"context"
	"errors"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"
)

func TestLogs(t *testing.T) {
	f := newFixture(t, HandlerOptions{})
	ns := f.userEnv(t, "alice", "shop", 8080)
	f.readyPod(t, ns, "shop", "web", "web-1", true)
	f.readyPod(t, ns, "shop", "db", "db-1", true)
	ctx := context.Background()
	alice := f.client(t, f.token(t, "alice"))

	collect := func(o LogOptions) []LogLine {
		t.Helper()
		var got []LogLine
		if err := alice.Logs(ctx, "shop", o, func(l LogLine) error { got = append(got, l); return nil }); err != nil {
			t.Fatal(err)
		}
		sort.Slice(got, func(i, j int) bool { return got[i].Pod < got[j].Pod })
		return got
	}
	// The fake cluster answers every log request with "fake logs".
	got := collect(LogOptions{Tail: -1})
	if len(got) != 2 || got[0] != (LogLine{Service: "db", Pod: "db-1", Line: "fake logs"}) || got[1] != (LogLine{Service: "web", Pod: "web-1", Line: "fake logs"}) {
		t.Errorf("all services: %+v", got)
	}
	got = collect(LogOptions{Service: "web", Tail: 10, Timestamps: true})
	if len(got) != 1 || got[0].Pod != "web-1" {
		t.Errorf("service web: %+v", got)
	}

	// Follow ends when the client goes away.
	fctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	lines := make(chan LogLine, 10)
	go func() {
		done <- alice.Logs(fctx, "shop", LogOptions{Follow: true, Tail: -1}, func(l LogLine) error { lines <- l; return nil })
	}()
	select {
	case <-lines:
	case <-time.After(10 * time.Second):
		t.Fatal("no line while following")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Logs after cancel = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("following did not end with the client")
	}

	// fn's error ends the stream and is returned.
	stop := errors.New("enough")
	if err := alice.Logs(ctx, "shop", LogOptions{Tail: -1}, func(LogLine) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("Logs with a failing fn = %v", err)
	}

	bob := f.client(t, f.token(t, "bob"))
	err := bob.Logs(ctx, "shop", LogOptions{Tail: -1}, func(LogLine) error { return nil })
	if apiStatus(err) != http.StatusNotFound {
		t.Errorf("bob's logs of alice's env = %v, want 404", err)
	}
	err = alice.Logs(ctx, "shop", LogOptions{Service: "cache"}, func(LogLine) error { return nil })
	if apiStatus(err) != http.StatusNotFound || !strings.Contains(err.Error(), `no service "cache"`) {
		t.Errorf("logs of an unknown service = %v", err)
	}
	if !strings.Contains(f.audit.String(), "user=alice action=envs.logs env=shop status=200") {
		t.Errorf("no audit line:\n%s", f.audit.String())
	}
}

// Following picks up a pod that starts after the stream began.
func TestLogsFollowNewPod(t *testing.T) {
	f := newFixture(t, HandlerOptions{})
	ns := f.userEnv(t, "alice", "shop", 8080)
	f.readyPod(t, ns, "shop", "web", "web-1", true)
	alice := f.client(t, f.token(t, "alice"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pods := make(chan string, 10)
	done := make(chan error, 1)
	go func() {
		done <- alice.Logs(ctx, "shop", LogOptions{Service: "web", Follow: true, Tail: -1}, func(l LogLine) error {
			pods <- l.Pod
			return nil
		})
	}()
	want := func(pod string) {
		t.Helper()
		timeout := time.After(10 * time.Second)
		for {
			select {
			case p := <-pods:
				if p == pod {
					return
				}
				if strings.HasPrefix(p, "db") {
					t.Errorf("a line of %s while following web", p)
				}
			case <-timeout:
				t.Fatalf("no line of %s while following", pod)
			}
		}
	}
	want("web-1")
	f.readyPod(t, ns, "shop", "web", "web-2", true)
	want("web-2")
	f.readyPod(t, ns, "shop", "db", "db-1", true) // another service: not streamed
	f.readyPod(t, ns, "shop", "web", "web-3", true)
	want("web-3")
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Logs = %v", err)
	}
}
