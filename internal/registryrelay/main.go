package registryrelay

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os/signal"
	"syscall"
	"time"
)

// Command is the operator binary's subcommand that runs the relay.
const Command = "registry-relay"

// Main runs `ergomake-operator registry-relay [flags]` until SIGTERM or SIGINT and returns the exit
// code: 0 after a signal, 1 when the relay cannot listen or fails, 2 on bad flags.
func Main(args []string, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return run(ctx, args, stderr, nil)
}

// run is Main with its context; ready, when set, receives the listening address.
func run(ctx context.Context, args []string, stderr io.Writer, ready func(net.Addr)) int {
	fs := flag.NewFlagSet("ergomake-operator "+Command, flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", DefaultListen, "address to listen on (the node's loopback)")
	upstream := fs.String("upstream", "", "the registry, host:port (required)")
	dialTimeout := fs.Duration("dial-timeout", DefaultDialTimeout, "how long a connection waits for the registry to accept")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected arguments %q\n", Command, fs.Args())
		return 2
	}
	if *upstream == "" {
		fmt.Fprintf(stderr, "%s: --upstream is required\n", Command)
		return 2
	}
	if _, _, err := net.SplitHostPort(*upstream); err != nil {
		fmt.Fprintf(stderr, "%s: --upstream %q: %v\n", Command, *upstream, err)
		return 2
	}
	if *dialTimeout <= 0 {
		fmt.Fprintf(stderr, "%s: --dial-timeout must be positive\n", Command)
		return 2
	}
	logger := log.New(stderr, "", log.LstdFlags|log.LUTC)
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		logger.Printf("%s: %v", Command, err)
		return 1
	}
	logger.Printf("%s: relaying %s to %s", Command, ln.Addr(), *upstream)
	if ready != nil {
		ready(ln.Addr())
	}
	r := &Relay{Upstream: *upstream, DialTimeout: *dialTimeout, Logf: logger.Printf}
	done := make(chan error, 1)
	go func() { done <- r.Serve(ctx, ln) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		// connections in flight get a moment to finish (a pull in progress), then the process exits
		select {
		case err = <-done:
		case <-time.After(shutdownGrace):
		}
	}
	if err != nil {
		logger.Printf("%s: %v", Command, err)
		return 1
	}
	logger.Printf("%s: stopped", Command)
	return 0
}

// shutdownGrace is how long connections in flight may take to finish after a signal.
var shutdownGrace = 10 * time.Second
