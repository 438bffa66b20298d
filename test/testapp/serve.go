package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// maxFetchBody bounds what /fetch copies from the fetched response into its answer.
const maxFetchBody = 1 << 20

type config struct {
	service    string
	hostname   string
	ports      []int
	echoPorts  []int
	readyAfter time.Duration
}

func configFromEnv(getenv func(string) string) (config, error) {
	var c config
	var err error
	c.service = getenv("SERVICE")
	if c.hostname, err = os.Hostname(); err != nil {
		return c, err
	}
	portsEnv := getenv("PORTS")
	if portsEnv == "" {
		portsEnv = "8080"
	}
	if c.ports, err = parsePorts("PORTS", portsEnv); err != nil {
		return c, err
	}
	if c.echoPorts, err = parsePorts("ECHO_PORTS", getenv("ECHO_PORTS")); err != nil {
		return c, err
	}
	if c.readyAfter, err = secondsEnv(getenv, "READY_AFTER"); err != nil {
		return c, err
	}
	return c, nil
}

func parsePorts(key, v string) ([]int, error) {
	var ports []int
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := strconv.Atoi(f)
		if err != nil || p < 1 || p > 65535 {
			return nil, fmt.Errorf("%s: bad port %q", key, f)
		}
		ports = append(ports, p)
	}
	return ports, nil
}

// serve runs the HTTP and echo listeners until ctx ends or one of them fails.
func serve(ctx context.Context, cfg config, log io.Writer) error {
	start := time.Now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, len(cfg.ports)+len(cfg.echoPorts))
	for _, port := range cfg.ports {
		ln, err := net.Listen("tcp", ":"+strconv.Itoa(port))
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: newHandler(cfg, port, start), ReadHeaderTimeout: 10 * time.Second}
		fmt.Fprintf(log, "testapp: service %q serving HTTP on :%d\n", cfg.service, port)
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errs <- err
			}
		}()
		go func() {
			defer wg.Done()
			<-ctx.Done()
			shutdownCtx, done := context.WithTimeout(context.Background(), 2*time.Second)
			defer done()
			_ = srv.Shutdown(shutdownCtx)
		}()
	}
	for _, port := range cfg.echoPorts {
		ln, err := net.Listen("tcp", ":"+strconv.Itoa(port))
		if err != nil {
			return err
		}
		fmt.Fprintf(log, "testapp: service %q echoing TCP on :%d\n", cfg.service, port)
		wg.Add(2)
		go func() {
			defer wg.Done()
			<-ctx.Done()
			ln.Close()
		}()
		go func() {
			defer wg.Done()
			echo(ctx, ln)
		}()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errs:
	}
	cancel()
	wg.Wait()
	fmt.Fprintln(log, "testapp: stopped")
	return err
}

func echo(ctx context.Context, ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			stop := context.AfterFunc(ctx, func() { c.Close() })
			defer stop()
			_, _ = io.Copy(c, c)
		}()
	}
}

func newHandler(cfg config, port int, start time.Time) http.Handler {
	client := &http.Client{Timeout: 10 * time.Second}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"service": cfg.service, "hostname": cfg.hostname, "port": port})
	})
	mux.HandleFunc("GET /fetch", func(w http.ResponseWriter, r *http.Request) {
		u := r.URL.Query().Get("url")
		if u == "" {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": "missing url parameter"})
			return
		}
		req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, u, nil)
		if err != nil {
			writeJSON(w, http.StatusBadGateway, map[string]any{"error": err.Error()})
			return
		}
		resp, err := client.Do(req)
		if err != nil {
			writeJSON(w, http.StatusBadGateway, map[string]any{"error": err.Error()})
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxFetchBody))
		if err != nil {
			writeJSON(w, http.StatusBadGateway, map[string]any{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"status": resp.StatusCode, "body": string(body)})
	})
	mux.HandleFunc("GET /bytes", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
		if err != nil || n < 0 {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": "n must be a non-negative integer"})
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		buf := make([]byte, 32<<10)
		for i := range buf {
			buf[i] = 'a' + byte(i%26)
		}
		for n > 0 {
			k := min(n, int64(len(buf)))
			if _, err := w.Write(buf[:k]); err != nil {
				return
			}
			n -= k
		}
	})
	mux.HandleFunc("POST /sink", func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"bytes": n})
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if time.Since(start) < cfg.readyAfter {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"ready": false})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"ready": true})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// probe GETs u and succeeds on a 2xx answer.
func probe(u string, timeout time.Duration) error {
	client := &http.Client{Timeout: timeout}
	resp, err := client.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxFetchBody))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%s answered %s", u, resp.Status)
	}
	return nil
}
