package session

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ergomake/ergomake/internal/forward"
	"github.com/ergomake/ergomake/internal/server"
	"github.com/ergomake/ergomake/internal/translate"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// fakeServer implements the session routes of the server's API (CONTRACTS12) minimally, for one
// user and one environment, over TLS as the real one.
type fakeServer struct {
	t   *testing.T
	srv *httptest.Server

	mu         sync.Mutex
	changed    chan struct{} // closed and replaced on every change of env
	env        *v1alpha1.ErgomakeEnv
	applied    []server.ApplyRequest
	deletes    int
	beats      int
	beatBodies []server.SessionRequest
	detach     []string
	// applyStatus, beatStatus: answer with this error status instead (0: none).
	applyStatus, beatStatus int
	// dropWatch: the number of watch streams still to cut after their first line (a server
	// replica going away).
	dropWatch int
	watches   int
	// ready: the environment becomes ready right after the apply.
	ready bool
}

func newFakeServer(t *testing.T) *fakeServer {
	f := &fakeServer{t: t, changed: make(chan struct{}), ready: true}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/whoami", func(w http.ResponseWriter, r *http.Request) {
		writeJSONT(w, 200, server.WhoAmI{User: "alice", TokenID: "t1"})
	})
	mux.HandleFunc("POST /v1/envs", f.apply)
	mux.HandleFunc("GET /v1/envs/{name}", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.env == nil || r.PathValue("name") != f.env.Spec.Project {
			writeJSONT(w, 404, server.ErrorBody{Error: "you have no environment"})
			return
		}
		writeJSONT(w, 200, f.env)
	})
	mux.HandleFunc("GET /v1/envs/{name}/watch", f.watch)
	mux.HandleFunc("POST /v1/envs/{name}/heartbeat", func(w http.ResponseWriter, r *http.Request) {
		var body server.SessionRequest
		_ = json.NewDecoder(r.Body).Decode(&body)
		f.mu.Lock()
		defer f.mu.Unlock()
		f.beats++
		f.beatBodies = append(f.beatBodies, body)
		if f.beatStatus != 0 {
			writeJSONT(w, f.beatStatus, server.ErrorBody{Error: "token revoked: log in again with a new token (`ergomake login`)"})
			return
		}
		writeJSONT(w, 200, struct{}{})
	})
	mux.HandleFunc("POST /v1/envs/{name}/detach", func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Session, TTL string }
		_ = json.NewDecoder(r.Body).Decode(&body)
		f.mu.Lock()
		f.detach = append(f.detach, body.Session+" "+body.TTL)
		f.mu.Unlock()
		writeJSONT(w, 200, struct{}{})
	})
	mux.HandleFunc("DELETE /v1/envs/{name}", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.deletes++
		ns := ""
		if f.env != nil {
			ns = f.env.Namespace
		}
		f.mu.Unlock()
		f.set(nil)
		writeJSONT(w, 200, server.Deleted{Name: r.PathValue("name"), Namespace: ns})
	})
	mux.HandleFunc("GET /v1/envs/{name}/dial", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != server.UpgradeProtocol || r.URL.Query().Get("service") != "web" {
			writeJSONT(w, 400, server.ErrorBody{Error: "bad dial"})
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ergomake-tcp\r\n\r\n")
		_ = brw.Flush()
		// The pod: answers what it read, upper-cased, once the client half-closed.
		b, _ := io.ReadAll(brw)
		_, _ = conn.Write([]byte(strings.ToUpper(string(b))))
	})
	f.srv = httptest.NewUnstartedServer(mux)
	f.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	return f
}

func writeJSONT(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// client is a server.Client that trusts the fake server's certificate, as a login pins it.
func (f *fakeServer) client(t *testing.T) *server.Client {
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.srv.Certificate().Raw})
	c, err := server.NewClient(&server.Credentials{URL: f.srv.URL, Token: "ergomake_test", CA: string(ca)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (f *fakeServer) set(env *v1alpha1.ErgomakeEnv) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.env = env
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *fakeServer) apply(w http.ResponseWriter, r *http.Request) {
	var req server.ApplyRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeJSONT(w, 400, server.ErrorBody{Error: err.Error()})
		return
	}
	f.mu.Lock()
	f.applied = append(f.applied, req)
	status := f.applyStatus
	existing := f.env
	f.mu.Unlock()
	if status != 0 {
		writeJSONT(w, status, server.ErrorBody{Error: "held by another session of alice on host elsewhere"})
		return
	}
	p, err := translate.DecodeProject(req.Project)
	if err != nil {
		writeJSONT(w, 400, server.ErrorBody{Error: err.Error()})
		return
	}
	env := testServerEnv(p.Name)
	env.Generation, env.Status.ObservedGeneration = 1, 1
	env.Status.Services = []v1alpha1.ServiceStatus{{Name: "web", State: v1alpha1.StateStarting, Desired: 1}}
	f.set(env)
	if f.ready {
		go func() {
			time.Sleep(50 * time.Millisecond)
			ready := env.DeepCopy()
			ready.Status.Phase = v1alpha1.PhaseReady
			ready.Status.Services = []v1alpha1.ServiceStatus{{Name: "web", State: v1alpha1.StateHealthy, Ready: 1, Desired: 1}}
			ready.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, ObservedGeneration: 1, Reason: "Ready"}}
			f.set(ready)
		}()
	}
	writeJSONT(w, 200, server.ApplyResponse{Env: env, Created: existing == nil})
}

func (f *fakeServer) watch(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.watches++
	drop := f.dropWatch > 0
	if drop {
		f.dropWatch--
	}
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-ndjson")
	enc := json.NewEncoder(w)
	for {
		f.mu.Lock()
		env, changed := f.env, f.changed
		f.mu.Unlock()
		if env == nil {
			_ = enc.Encode(server.WatchEvent{Deleted: true})
			return
		}
		_ = enc.Encode(server.WatchEvent{Env: env})
		w.(http.Flusher).Flush()
		if drop {
			return
		}
		select {
		case <-changed:
		case <-r.Context().Done():
			return
		}
	}
}

func testServerEnv(project string) *v1alpha1.ErgomakeEnv {
	return &v1alpha1.ErgomakeEnv{
		ObjectMeta: metav1.ObjectMeta{Name: project, Namespace: server.Namespace("alice", project)},
		Spec: v1alpha1.EnvSpec{Project: project, Services: []v1alpha1.ServiceSpec{{
			Name: "web", Image: "nginx", Ports: []v1alpha1.PortSpec{{Target: 80, Publish: true, Protocol: "TCP"}},
		}}},
	}
}

// serverUp runs Up through the fake server; the returned function sends a signal.
func serverUp(t *testing.T, f *fakeServer, opts Options) (done chan error, sigs chan os.Signal, rec *recorder) {
	t.Helper()
	rec = &recorder{}
	sigs = make(chan os.Signal, 2)
	opts.Server, opts.Reporter, opts.Signals = f.client(t), rec, sigs
	opts.DownCommand = "ergomake down -p shop"
	opts.KeptTTL = time.Hour
	opts.Project = &types.Project{Name: "shop", WorkingDir: "/home/alice/shop", ComposeFiles: []string{"/home/alice/shop/compose.yaml"}, Services: types.Services{"web": {Name: "web"}}}
	opts.Files = map[string][]byte{"/home/alice/shop/compose.yaml": []byte("services: {web: {image: nginx}}\n")}
	env := testServerEnv("shop")
	env.Namespace = "ergomake-shop" // what translate gives: the server chooses the user's namespace
	ttl := metav1.Duration{Duration: 10 * time.Minute}
	env.Spec.TTL = &ttl
	done = make(chan error, 1)
	go func() { done <- Up(context.Background(), opts, &translate.Result{Env: env}) }()
	return done, sigs, rec
}

// waitFor waits until the recorder has a line containing want.
func waitFor(t *testing.T, rec *recorder, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(rec.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in:\n%s", want, rec)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestServerUpForwardsAndTearsDown(t *testing.T) {
	f := newFakeServer(t)
	rec := &recorder{}
	sigs := make(chan os.Signal, 2)
	var bound []string
	lv := &bindRecorder{recorder: rec, bound: func(addrs []string) { bound = addrs }}
	opts := Options{Server: f.client(t), Reporter: lv, Signals: sigs, DownCommand: "ergomake down -p shop", KeptTTL: time.Hour,
		Project: &types.Project{Name: "shop", WorkingDir: "/home/alice/shop", ComposeFiles: []string{"/home/alice/shop/compose.yaml"}, Services: types.Services{"web": {Name: "web"}}},
		Files:   map[string][]byte{"/home/alice/shop/compose.yaml": []byte("services: {web: {image: nginx}}\n")}}
	env := testServerEnv("shop")
	env.Namespace = "ergomake-shop"
	done := make(chan error, 1)
	go func() { done <- Up(context.Background(), opts, &translate.Result{Env: env}) }()
	waitFor(t, rec, "print Environment ready")
	if len(bound) == 0 || !strings.HasPrefix(bound[0], "127.0.0.1:") {
		t.Fatalf("bound %v\n%s", bound, rec)
	}
	// A connection to the local port reaches the "pod" through the server's dial route.
	conn, err := net.Dial("tcp", bound[0])
	if err != nil {
		t.Fatal(err)
	}
	_, _ = conn.Write([]byte("ping"))
	_ = conn.(*net.TCPConn).CloseWrite()
	got, _ := io.ReadAll(conn)
	conn.Close()
	if string(got) != "PING" {
		t.Fatalf("through the server: %q", got)
	}

	sigs <- syscall.SIGINT
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Up: %v\n%s", err, rec)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("Up did not end after Ctrl-C\n%s", rec)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.deletes != 1 || f.env != nil {
		t.Fatalf("deletes %d, env %v", f.deletes, f.env)
	}
	if len(f.applied) != 1 {
		t.Fatalf("applied %d", len(f.applied))
	}
	req := f.applied[0]
	if req.Session.ID == "" || req.Session.PID != os.Getpid() || string(req.Files["/home/alice/shop/compose.yaml"]) == "" {
		t.Fatalf("apply request: session %+v, files %v", req.Session, req.Files)
	}
	out := rec.String()
	for _, want := range []string{
		"start Connecting to ergomake server " + f.srv.Listener.Addr().String(),
		"Found no existing remote environments of project shop: creating one in namespace ergomake-alice-shop",
		"start Applying environment ergomake-alice-shop/shop",
		"start Deleting environment ergomake-alice-shop/shop",
		"notice Environment shop and namespace ergomake-alice-shop removed.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
}

// bindRecorder is a recorder that also tells where the ports were bound.
type bindRecorder struct {
	*recorder
	bound func([]string)
}

func (b *bindRecorder) Bound(bs []forward.Binding) {
	var addrs []string
	for _, x := range bs {
		addrs = append(addrs, x.Addrs...)
	}
	b.bound(addrs)
	b.recorder.Bound(bs)
}

func TestServerUpRevokedTokenEndsSession(t *testing.T) {
	f := newFakeServer(t)
	done, _, rec := serverUp(t, f, Options{HeartbeatEvery: 50 * time.Millisecond})
	waitFor(t, rec, "print Environment ready")
	start := time.Now()
	f.mu.Lock()
	f.beatStatus = http.StatusUnauthorized
	f.mu.Unlock()
	var err error
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("a revoked token did not end the session\n%s", rec)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("the session took %s to end", time.Since(start))
	}
	var lo *LoggedOutError
	if !errors.As(err, &lo) || !strings.Contains(err.Error(), "ergomake login") || !strings.Contains(err.Error(), "token revoked") {
		t.Fatalf("err = %v, want a LoggedOutError saying to log in again", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.deletes != 0 {
		t.Fatalf("a session whose token was refused tried to delete (%d)", f.deletes)
	}
}

func TestServerUpHeldByAnotherSession(t *testing.T) {
	f := newFakeServer(t)
	f.applyStatus = http.StatusConflict
	done, _, rec := serverUp(t, f, Options{})
	var err error
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("Up did not end\n%s", rec)
	}
	if !IsInUse(err) || !strings.Contains(err.Error(), "held by another session") {
		t.Fatalf("err = %v, want in use (exit 3)", err)
	}
	if f.deletes != 0 {
		t.Fatalf("a refused apply was torn down (%d deletes)\n%s", f.deletes, rec)
	}
}

func TestServerWaitReconnects(t *testing.T) {
	f := newFakeServer(t)
	f.dropWatch = 2 // the first two streams break after their first line: the wait sees the pending state, then the ready one
	done, sigs, rec := serverUp(t, f, Options{})
	waitFor(t, rec, "print Environment ready")
	sigs <- syscall.SIGINT
	if err := <-done; err != nil {
		t.Fatalf("Up: %v\n%s", err, rec)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.watches < 2 {
		t.Fatalf("%d watches: the wait did not connect again", f.watches)
	}
}

func TestServerUnauthorized(t *testing.T) {
	f := newFakeServer(t)
	c, err := server.NewClient(&server.Credentials{URL: f.srv.URL, Token: "x",
		CA: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.srv.Certificate().Raw}))})
	if err != nil {
		t.Fatal(err)
	}
	b := &serverBackend{c: c, s: newSession(Options{}, "", "shop", "shop")}
	err = b.explain(&server.APIError{Status: 401, Message: "unknown token"})
	if !strings.Contains(err.Error(), "unknown token: log in again (`ergomake login`)") || strings.Count(err.Error(), "\n") != 0 {
		t.Fatalf("401: %q", err)
	}
	err = b.explain(&server.APIError{Status: 401, Message: "token expired: log in again with a new token (`ergomake login`)"})
	if strings.Count(err.Error(), "ergomake login") != 1 {
		t.Fatalf("401: %q", err)
	}
	if err := b.explain(&server.APIError{Status: 403, Message: "over the limit"}); isLoggedOut(err) {
		t.Fatal("403 taken for a refused token")
	}
}

func TestServerUpRevokedDuringWait(t *testing.T) {
	f := newFakeServer(t)
	f.ready = false // the environment never becomes ready: the session is waiting
	f.beatStatus = http.StatusUnauthorized
	done, _, rec := serverUp(t, f, Options{HeartbeatEvery: 50 * time.Millisecond})
	var err error
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("a revoked token did not end the wait\n%s", rec)
	}
	if !isLoggedOut(err) || !strings.Contains(err.Error(), "left to its TTL") {
		t.Fatalf("err = %v", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.deletes != 0 {
		t.Fatalf("tried to delete with a refused token (%d)", f.deletes)
	}
}

// TestServerForwardKeepsAlive: `ergomake forward` through the server holds no session, yet its
// heartbeat keeps the environment alive (as with a kubeconfig), and it ends when the
// environment is deleted.
func TestServerForwardKeepsAlive(t *testing.T) {
	f := newFakeServer(t)
	env := testServerEnv("shop")
	env.Status.Phase = v1alpha1.PhaseReady
	f.set(env)
	rec := &recorder{}
	opts := Options{Server: f.client(t), Reporter: rec, DownCommand: "ergomake down -p shop"}
	ctx, stop := context.WithCancel(context.Background()) // the CLI's Ctrl-C
	defer stop()
	done := make(chan error, 1)
	go func() { done <- Forward(ctx, opts, env, nil) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		f.mu.Lock()
		bodies := append([]server.SessionRequest(nil), f.beatBodies...)
		f.mu.Unlock()
		if len(bodies) > 0 {
			if !bodies[0].Forward || bodies[0].Session != "" {
				t.Fatalf("forward's heartbeat = %+v, want a forward heartbeat without a session", bodies[0])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no heartbeat from forward\n%s", rec)
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("Forward did not end after Ctrl-C\n%s", rec)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.deletes != 0 || len(f.detach) != 0 {
		t.Errorf("forward deleted (%d) or detached (%v) the environment", f.deletes, f.detach)
	}
}
