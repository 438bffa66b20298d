package server

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestWatchEndings: WatchEnv ends nil once the environment is deleted, and otherwise with an error
// wrapping ErrWatchEnded (the session watches again): a stream that ends, one that breaks off, and
// one whose last line is an error. A refusal is the *APIError.
func TestWatchEndings(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.Split(strings.TrimPrefix(r.URL.Path, "/v1/envs/"), "/")[0]
		if name == "refused" {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprintln(w, `{"error":"you have no environment \"refused\""}`)
			return
		}
		first := `{"env":{"metadata":{"name":"` + name + `"}}}` + "\n\n" // a state, then a keep-alive
		switch name {
		case "deleted":
			fmt.Fprint(w, first+`{"deleted":true}`+"\n"+first)
		case "ends":
			fmt.Fprint(w, first)
		case "failed":
			fmt.Fprint(w, first+`{"error":"the API server went away"}`+"\n")
		case "broken":
			w.Header().Set("Content-Length", "4096")
			fmt.Fprint(w, first+`{"env":{"meta`)
		}
	}))
	defer srv.Close()
	c, err := NewClient(&Credentials{URL: srv.URL, Token: "t",
		CA: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]struct {
		err    error // nil: WatchEnv returns nil
		events int
	}{
		"deleted": {nil, 2},
		"ends":    {ErrWatchEnded, 1},
		"failed":  {ErrWatchEnded, 1},
		"broken":  {ErrWatchEnded, 1},
	} {
		events := 0
		err := c.WatchEnv(context.Background(), name, func(ev WatchEvent) error {
			events++
			if !ev.Deleted && (ev.Env == nil || ev.Env.Name != name) {
				t.Errorf("%s: event %+v", name, ev)
			}
			return nil
		})
		if (want.err == nil) != (err == nil) || (want.err != nil && !errors.Is(err, want.err)) || events != want.events {
			t.Errorf("%s: %v after %d events, want %v after %d", name, err, events, want.err, want.events)
		}
	}
	if err := c.WatchEnv(context.Background(), "refused", func(WatchEvent) error { return nil }); apiStatus(err) != http.StatusNotFound {
		t.Errorf("refused: %v, want the 404", err)
	}
	stop := errors.New("stop")
	if err := c.WatchEnv(context.Background(), "ends", func(WatchEvent) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("fn's error: %v, want it returned", err)
	}
}
