package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ergomake/ergomake/internal/testutil/freeport"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestHandler(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, "hello")
	}))
	defer upstream.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	cfg := config{service: "api", hostname: "pod-1", readyAfter: time.Hour}
	srv := httptest.NewServer(newHandler(cfg, 9000, time.Now()))
	defer srv.Close()

	tests := []struct {
		name, method, path, body string
		wantCode                 int
		want                     map[string]any
	}{
		{"root", "GET", "/", "", 200, map[string]any{"service": "api", "hostname": "pod-1", "port": 9000.0}},
		{"fetch ok", "GET", "/fetch?url=" + url.QueryEscape(upstream.URL+"/x"), "", 200, map[string]any{"status": 200.0, "body": "hello"}},
		{"fetch upstream 404", "GET", "/fetch?url=" + url.QueryEscape(upstream.URL+"/missing"), "", 200, map[string]any{"status": 404.0, "body": "404 page not found\n"}},
		{"fetch refused", "GET", "/fetch?url=" + url.QueryEscape(closedURL), "", 502, nil},
		{"fetch bad url", "GET", "/fetch?url=%3A", "", 502, nil},
		{"fetch no url", "GET", "/fetch", "", 400, nil},
		{"sink", "POST", "/sink", strings.Repeat("x", 12345), 200, map[string]any{"bytes": 12345.0}},
		{"healthz not yet", "GET", "/healthz", "", 503, map[string]any{"ready": false}},
		{"bytes bad n", "GET", "/bytes?n=-1", "", 400, nil},
		{"unknown path", "GET", "/nope", "", 404, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, srv.URL+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			data, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, data, tt.wantCode)
			}
			if tt.wantCode == 502 {
				var got map[string]any
				if err := json.Unmarshal(data, &got); err != nil || got["error"] == "" || got["error"] == nil {
					t.Fatalf("502 body %s: want {\"error\": ...}", data)
				}
			}
			if tt.want == nil {
				return
			}
			var got map[string]any
			if err := json.Unmarshal(data, &got); err != nil {
				t.Fatalf("body %q: %v", data, err)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %#v, want %#v (body %s)", k, got[k], v, data)
				}
			}
		})
	}
}

func TestBytesAndHealthzReady(t *testing.T) {
	srv := httptest.NewServer(newHandler(config{}, 8080, time.Now()))
	defer srv.Close()
	for _, n := range []int{0, 1, 32 << 10, 100001} {
		resp, err := http.Get(fmt.Sprintf("%s/bytes?n=%d", srv.URL, n))
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || len(data) != n {
			t.Errorf("/bytes?n=%d: status %d, %d bytes", n, resp.StatusCode, len(data))
		}
	}
	resp, err := http.Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("/healthz with READY_AFTER 0: %d, want 200", resp.StatusCode)
	}
}

func TestConfigFromEnv(t *testing.T) {
	c, err := configFromEnv(env(map[string]string{"SERVICE": "db", "ECHO_PORTS": "7000, 7001", "READY_AFTER": "1.5"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.service != "db" || fmt.Sprint(c.ports) != "[8080]" || fmt.Sprint(c.echoPorts) != "[7000 7001]" || c.readyAfter != 1500*time.Millisecond {
		t.Errorf("config = %+v", c)
	}
	for _, bad := range []map[string]string{{"PORTS": "80,x"}, {"PORTS": "0"}, {"ECHO_PORTS": "70000"}, {"READY_AFTER": "soon"}} {
		if _, err := configFromEnv(env(bad)); err == nil {
			t.Errorf("configFromEnv(%v): want an error", bad)
		}
	}
}

func TestCommands(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer ok.Close()
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) }))
	defer bad.Close()
	tests := []struct {
		args       []string
		env        map[string]string
		code       int
		stderrWant string
	}{
		{[]string{"probe", ok.URL}, nil, 0, ""},
		{[]string{"probe", bad.URL}, nil, 1, "503"},
		{[]string{"probe"}, nil, 2, "usage"},
		{[]string{"exit", "3"}, nil, 3, ""},
		{[]string{"exit", "0"}, map[string]string{"SLEEP": "0.05"}, 0, ""},
		{[]string{"exit", "x"}, nil, 2, "bad code"},
		{[]string{"crash"}, nil, 1, "crash"},
		{[]string{"dance"}, nil, 2, "unknown command"},
		{[]string{"serve"}, map[string]string{"PORTS": "nope"}, 2, "PORTS"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			start := time.Now()
			code := run(tt.args, env(tt.env), &stdout, &stderr)
			if code != tt.code {
				t.Errorf("exit code %d, want %d (stderr %q)", code, tt.code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.stderrWant) {
				t.Errorf("stderr %q, want it to contain %q", stderr.String(), tt.stderrWant)
			}
			if tt.env["SLEEP"] != "" && time.Since(start) < 50*time.Millisecond {
				t.Errorf("exit returned before SLEEP passed")
			}
		})
	}
}

func TestServeListeners(t *testing.T) {
	httpPort, echoPort := freeport.Port(t), freeport.Port(t)
	host, _ := os.Hostname()
	cfg := config{service: "web", hostname: host, ports: []int{httpPort}, echoPorts: []int{echoPort}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, io.Discard) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()

	var resp *http.Response
	var err error
	for i := 0; i < 50; i++ {
		if resp, err = http.Get(fmt.Sprintf("http://127.0.0.1:%d/", httpPort)); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Service string
		Port    int
	}
	_ = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if got.Service != "web" || got.Port != httpPort {
		t.Errorf("GET / = %+v", got)
	}

	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", echoPort))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping\n" {
		t.Errorf("echo = %q, %v", buf, err)
	}
}
