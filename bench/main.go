// Command bench measures ergomake's port forwarding and time to ready on the local cluster
// (make cluster-up), side by side with `kubectl port-forward` (the harness's kubectl, same
// cluster, same run) and with direct TCP to the pod IP from the host (the ceiling), interleaved
// run by run so that drift cancels. It prints one table row per measure: min/median/max of each
// path over the runs, the ratios ergomake/kubectl and ergomake/direct, the target and whether it
// is met. See docs/benchmarks.md.
//
// Every byte goes to loopback or to the local cluster's own pod and API server addresses.
//
//	go run ./bench -runs 5 -size 1GiB -markdown docs/benchmarks.md
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

type config struct {
	kubeconfig  string
	kubectl     string
	ergomake    string
	runs        int
	size        int64
	holSize     int64
	echoN       int
	connN       int
	holTimeout  time.Duration
	ttrServices []int
	ttrHealthy  []int
	scaleSvcs   int
	only        map[string]bool
	cpuprofile  string
	markdown    string
	command     string
	verbose     bool
}

func main() {
	ctrllog.SetLogger(logr.Discard()) // install's controller-runtime client would warn that none was set
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func defaultClusterDir() string {
	if d := os.Getenv("ERGOMAKE_CLUSTER_DIR"); d != "" {
		return d
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "ergomake", "cluster")
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := defaultClusterDir()
	kc := os.Getenv("KUBECONFIG")
	if kc == "" || strings.Contains(kc, ":") {
		kc = filepath.Join(dir, "kubeconfig")
	}
	var c config
	var size, holSize, ttr, ttrHealthy, only string
	fs.StringVar(&c.kubeconfig, "kubeconfig", kc, "kubeconfig of the local cluster")
	fs.StringVar(&c.kubectl, "kubectl", filepath.Join(dir, "bin", "kubectl"), "kubectl to compare with (the harness's)")
	fs.StringVar(&c.ergomake, "ergomake", "", "ergomake binary for time to ready and scale (default: built from this tree)")
	fs.IntVar(&c.runs, "runs", 5, "runs per measure (min/median/max over them)")
	fs.StringVar(&size, "size", "1GiB", "bytes per single-connection transfer (and in all for 8 connections)")
	fs.StringVar(&holSize, "hol-size", "256MiB", "size of the unread download beside the head-of-line echo")
	fs.IntVar(&c.echoN, "echo-n", 2000, "64-byte echo round trips per run (keep-alive latency)")
	fs.IntVar(&c.connN, "conn-n", 200, "new connections + GET per run")
	fs.DurationVar(&c.holTimeout, "hol-timeout", 5*time.Second, "how long a head-of-line echo may take before it counts as unanswered")
	fs.StringVar(&ttr, "ttr-services", "2,20", "service counts of the time-to-ready projects")
	fs.StringVar(&ttrHealthy, "ttr-healthcheck-services", "2", "service counts of time-to-ready projects whose services have a healthcheck")
	fs.IntVar(&c.scaleSvcs, "scale-services", 50, "services of the scale project (2 published ports each)")
	fs.StringVar(&only, "only", "", "comma-separated groups to run: transport,recovery,ttr,scale,build,server (default all)")
	fs.StringVar(&c.cpuprofile, "cpuprofile", "", "write a CPU profile of this process (the in-process forwarder and the clients) to file")
	fs.StringVar(&c.markdown, "markdown", "", "also write the results into this markdown file, between its bench markers")
	fs.StringVar(&c.command, "command", "", "the command line to record in -markdown (default: this one)")
	fs.BoolVar(&c.verbose, "v", false, "progress details")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var err error
	if c.size, err = parseSize(size); err != nil {
		return fmt.Errorf("-size: %w", err)
	}
	if c.holSize, err = parseSize(holSize); err != nil {
		return fmt.Errorf("-hol-size: %w", err)
	}
	if c.runs < 1 || c.echoN < 1 || c.connN < 1 || c.scaleSvcs < 1 {
		return errors.New("-runs, -echo-n, -conn-n and -scale-services must be at least 1")
	}
	if c.size < 8<<10 {
		return errors.New("-size must be at least 8KiB")
	}
	if c.ttrServices, err = parseCounts("-ttr-services", ttr); err != nil {
		return err
	}
	if c.ttrHealthy, err = parseCounts("-ttr-healthcheck-services", ttrHealthy); err != nil {
		return err
	}
	c.only = map[string]bool{}
	for _, g := range strings.Split(only, ",") {
		if g = strings.TrimSpace(g); g != "" {
			switch g {
			case "transport", "recovery", "ttr", "scale", "build", "server":
				c.only[g] = true
			default:
				return fmt.Errorf("-only: unknown group %q", g)
			}
		}
	}
	if c.command == "" {
		c.command = "go run ./bench " + strings.Join(args, " ")
	}
	for _, p := range []string{c.kubeconfig, c.kubectl} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("%s missing: is the local cluster up (make cluster-up)?", p)
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if c.cpuprofile != "" {
		f, err := os.Create(c.cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	b, err := newBench(ctx, c, stderr)
	if err != nil {
		return err
	}
	defer b.cleanup()
	start := time.Now()
	res, err := b.all(ctx)
	if err != nil {
		return err
	}
	table := res.table()
	fmt.Fprintf(stdout, "\nergomake vs kubectl port-forward vs direct to the pod: %d run(s), %s per transfer, %s\n\n",
		c.runs, fmtSize(c.size), time.Since(start).Round(time.Second))
	fmt.Fprint(stdout, table)
	if c.markdown != "" {
		if err := writeMarkdown(c.markdown, c, res, time.Since(start)); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "bench: wrote %s\n", c.markdown)
	}
	return nil
}

// parseCounts reads a comma-separated list of positive counts.
func parseCounts(flag, list string) ([]int, error) {
	var out []int
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%s: bad count %q", flag, s)
		}
		out = append(out, n)
	}
	return out, nil
}

func (c config) want(group string) bool { return len(c.only) == 0 || c.only[group] }

// parseSize reads 1GiB, 256MiB, 64KiB or a plain byte count.
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.m
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("bad size %q (want e.g. 1GiB, 256MiB, 64KiB)", s)
	}
	return n * mult, nil
}

func fmtSize(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}
