// Command testapp is the workload of ergomake's end-to-end tests, demos and benchmarks. It is
// packed into the image ergomake.test/testapp:latest (entrypoint /testapp, default command serve,
// busybox at /bin/sh) by `make cluster-up`. Its interface is fixed; tests are written against it:
//
//	testapp serve        HTTP on every port of PORTS (default 8080), TCP echo on every port of
//	                     ECHO_PORTS. GET / -> {"service","hostname","port"}; GET /fetch?url=U ->
//	                     {"status","body"} or 502 {"error"}; GET /bytes?n=N -> N bytes;
//	                     POST /sink -> {"bytes": N}; GET /healthz -> 503 until READY_AFTER seconds
//	                     have passed since start, then 200.
//	testapp probe URL    exit 0 when GET URL answers 2xx, else 1.
//	testapp exit CODE    sleep SLEEP seconds (default 0), then exit with CODE.
//	testapp crash        print a line to stderr and exit 1 at once.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 {
		cmd = args[0]
	}
	switch cmd {
	case "serve":
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		defer stop()
		cfg, err := configFromEnv(getenv)
		if err != nil {
			fmt.Fprintln(stderr, "testapp:", err)
			return 2
		}
		if err := serve(ctx, cfg, stdout); err != nil {
			fmt.Fprintln(stderr, "testapp:", err)
			return 1
		}
		return 0
	case "probe":
		if len(args) != 2 {
			fmt.Fprintln(stderr, "usage: testapp probe URL")
			return 2
		}
		if err := probe(args[1], 10*time.Second); err != nil {
			fmt.Fprintln(stderr, "testapp: probe:", err)
			return 1
		}
		return 0
	case "exit":
		if len(args) != 2 {
			fmt.Fprintln(stderr, "usage: testapp exit CODE")
			return 2
		}
		code, err := strconv.Atoi(args[1])
		if err != nil || code < 0 || code > 255 {
			fmt.Fprintf(stderr, "testapp: exit: bad code %q\n", args[1])
			return 2
		}
		sleep, err := secondsEnv(getenv, "SLEEP")
		if err != nil {
			fmt.Fprintln(stderr, "testapp:", err)
			return 2
		}
		fmt.Fprintf(stdout, "exiting with %d after %s\n", code, sleep)
		time.Sleep(sleep)
		return code
	case "crash":
		fmt.Fprintln(stderr, "testapp: crash requested, exiting with 1")
		return 1
	default:
		fmt.Fprintf(stderr, "testapp: unknown command %q (want serve, probe, exit or crash)\n", cmd)
		return 2
	}
}

// secondsEnv reads a duration in (possibly fractional) seconds; empty means 0.
func secondsEnv(getenv func(string) string, key string) (time.Duration, error) {
	v := getenv(key)
	if v == "" {
		return 0, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("%s: want a number of seconds, got %q", key, v)
	}
	return time.Duration(f * float64(time.Second)), nil
}
