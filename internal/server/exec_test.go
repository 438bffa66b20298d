package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/tools/remotecommand"

	"github.com/ergomake/ergomake/internal/kube"
)

// TestFrames: frames round-trip; output longer than a frame is split; a frame over the limit and
// a truncated one are errors; the resize payload round-trips.
func TestFrames(t *testing.T) {
	var b bytes.Buffer
	fw := &frameWriter{w: &b}
	big := bytes.Repeat([]byte("x"), MaxFramePayload*2+10)
	if n, err := (&frameStream{f: fw, kind: FrameStdout}).Write(big); err != nil || n != len(big) {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if err := fw.write(FrameStdinEnd, nil); err != nil {
		t.Fatal(err)
	}
	var got []byte
	var kinds []byte
	buf := make([]byte, 16)
	for {
		kind, p, err := readFrame(&b, buf)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, kind)
		got = append(got, p...)
	}
	if !bytes.Equal(kinds, []byte{FrameStdout, FrameStdout, FrameStdout, FrameStdinEnd}) || !bytes.Equal(got, big) {
		t.Errorf("kinds %v, %d bytes back of %d", kinds, len(got), len(big))
	}

	over := []byte{FrameStdout, 0, 1, 0, 1} // 65537 bytes
	if _, _, err := readFrame(bytes.NewReader(over), nil); err == nil || !strings.Contains(err.Error(), "over the limit") {
		t.Errorf("a frame over the limit: %v", err)
	}
	short := []byte{FrameStdout, 0, 0, 0, 5, 'a', 'b'}
	if _, _, err := readFrame(bytes.NewReader(short), nil); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("a truncated frame: %v", err)
	}
	size := remotecommand.TerminalSize{Width: 132, Height: 43}
	if s, ok := parseResize(resizePayload(size)); !ok || s != size {
		t.Errorf("resize round trip = %+v, %v", s, ok)
	}
	if _, ok := parseResize([]byte{1, 2, 3}); ok {
		t.Error("a short resize payload parsed")
	}
}

// TestSizeQueue: the newest size waits for the executor (older unread ones are dropped); once
// closed, Next returns nil.
func TestSizeQueue(t *testing.T) {
	q := newSizeQueue()
	q.push(remotecommand.TerminalSize{Width: 1, Height: 1})
	q.push(remotecommand.TerminalSize{Width: 2, Height: 2})
	if s := q.Next(); s == nil || s.Width != 2 {
		t.Errorf("Next = %+v, want the newest", s)
	}
	q.close()
	q.push(remotecommand.TerminalSize{Width: 3, Height: 3}) // does not block
	q.close()
	done := make(chan *remotecommand.TerminalSize)
	go func() {
		s := q.Next()
		for s != nil { // a size pushed before close may still be read once
			s = q.Next()
		}
		done <- s
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Next after close did not return")
	}
}

// sizes is a TerminalSizeQueue of fixed sizes.
type sizes []remotecommand.TerminalSize

func (s *sizes) Next() *remotecommand.TerminalSize {
	if len(*s) == 0 {
		return nil
	}
	v := (*s)[0]
	*s = (*s)[1:]
	return &v
}

// TestExecThroughServer: exec runs in a running pod of the caller's service, with the command
// as sent; stdin reaches it and its end closes it; stdout, stderr, the terminal's size and the
// exit code come back; a command that could not start is a kube.ExecStartError; the refusals
// (another user's environment, an unknown service, no running replica, no upgrade, a bad query)
// are the server's answers; the audit line names user, action and environment, never the
// command.
func TestExecThroughServer(t *testing.T) {
	var mu sync.Mutex
	var seen []kube.ExecOptions
	f := newFixture(t, HandlerOptions{Exec: func(ctx context.Context, o kube.ExecOptions) (int, error) {
		mu.Lock()
		seen = append(seen, o)
		mu.Unlock()
		switch o.Command[0] {
		case "cat":
			in, err := io.ReadAll(o.Stdin)
			if err != nil {
				return 0, err
			}
			fmt.Fprintf(o.Stdout, "got %s", in)
			fmt.Fprint(o.Stderr, "to stderr")
			return 3, nil
		case "size":
			s := o.Sizes.Next()
			fmt.Fprintf(o.Stdout, "%dx%d", s.Width, s.Height)
			return 0, nil
		case "block":
			<-ctx.Done()
			return 0, ctx.Err()
		}
		return 0, &kube.ExecStartError{Reason: `exec: "` + o.Command[0] + `": executable file not found in $PATH`}
	}})
	ns := f.userEnv(t, "alice", "shop", 8080)
	f.readyPod(t, ns, "shop", "web", "web-1", true)
	ctx := context.Background()
	alice := f.client(t, f.token(t, "alice"))

	var stdout, stderr bytes.Buffer
	secret := "s3cret-argument"
	res, err := alice.Exec(ctx, "shop", ExecRequest{Service: "web", Command: []string{"cat", secret}, Stdin: true},
		ExecStreams{Stdin: strings.NewReader("hello"), Stdout: &stdout, Stderr: &stderr})
	if err != nil || res.Code != 3 || res.Pod != "web-1" || stdout.String() != "got hello" || stderr.String() != "to stderr" {
		t.Fatalf("exec cat = %+v, %v; stdout %q, stderr %q", res, err, &stdout, &stderr)
	}
	mu.Lock()
	o := seen[0]
	mu.Unlock()
	if o.Pod.Name != "web-1" || o.Pod.Namespace != ns || o.Container != "main" || strings.Join(o.Command, " ") != "cat "+secret || o.TTY {
		t.Errorf("ran %+v", o)
	}

	stdout.Reset()
	res, err = alice.Exec(ctx, "shop", ExecRequest{Service: "web", Command: []string{"size"}, TTY: true},
		ExecStreams{Stdout: &stdout, Sizes: &sizes{{Width: 120, Height: 40}}})
	if err != nil || res.Code != 0 || stdout.String() != "120x40" {
		t.Errorf("exec with a terminal = %+v, %v; stdout %q", res, err, &stdout)
	}

	_, err = alice.Exec(ctx, "shop", ExecRequest{Service: "web", Command: []string{"nope"}}, ExecStreams{Stdout: io.Discard})
	var ns1 *kube.ExecStartError
	if !errors.As(err, &ns1) || !strings.Contains(ns1.Reason, "executable file not found") {
		t.Errorf("a command that cannot start: %v", err)
	}

	// Ctrl-C: the client's end ends the command's connection on the server.
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := alice.Exec(cctx, "shop", ExecRequest{Service: "web", Command: []string{"block"}}, ExecStreams{Stdout: io.Discard})
		done <- err
	}()
	time.Sleep(200 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("exec after cancel = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("exec did not end with its context")
	}
	waitLog(t, f.audit, "error=\"pod web-1: the client went away\"")

	bob := f.client(t, f.token(t, "bob"))
	refusals := []struct {
		name   string
		c      *Client
		req    ExecRequest
		status int
		msg    string
	}{
		{"another user's", bob, ExecRequest{Service: "web", Command: []string{"true"}}, http.StatusNotFound, `you have no environment "shop"`},
		{"unknown service", alice, ExecRequest{Service: "api", Command: []string{"true"}}, http.StatusConflict, "no such service: api (the services of project shop: web, db)"},
		{"no running replica", alice, ExecRequest{Service: "db", Command: []string{"true"}}, http.StatusConflict, "service db is not running: see `ergomake ps`"},
		{"no such replica", alice, ExecRequest{Service: "web", Index: 2, Command: []string{"true"}}, http.StatusConflict, "service web has 1 replica: --index must be between 1 and 1"},
		{"no command", alice, ExecRequest{Service: "web"}, http.StatusBadRequest, "exec wants ?service=NAME&command="},
	}
	for _, r := range refusals {
		_, err := r.c.Exec(ctx, "shop", r.req, ExecStreams{Stdout: io.Discard})
		if apiStatus(err) != r.status || !strings.Contains(err.Error(), r.msg) {
			t.Errorf("%s: %v (status %d), want %d %q", r.name, err, apiStatus(err), r.status, r.msg)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/v1/envs/shop/exec?service=web&command=true", nil)
	req.Header.Set("Authorization", "Bearer "+f.token(t, "alice"))
	resp, err := alice.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUpgradeRequired {
		t.Errorf("exec without the upgrade: %s", resp.Status)
	}

	audit := f.audit.String()
	if !strings.Contains(audit, "user=alice action=envs.exec env=shop status=101") || !strings.Contains(audit, "user=bob action=envs.exec env=shop status=404") {
		t.Errorf("audit:\n%s", audit)
	}
	if strings.Contains(audit, secret) {
		t.Errorf("the audit log has the command's arguments:\n%s", audit)
	}
}
