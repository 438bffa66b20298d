package session

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// signals turns the user's interrupts into the two steps of a session: the first cancels the
// session; a second (or the first once a teardown after a failure has begun) abandons the
// teardown.
type signals struct {
	ch      <-chan os.Signal
	own     chan os.Signal // the process's signals, when no channel was given
	done    chan struct{}
	abort   chan struct{}
	mu      sync.Mutex
	count   int
	tearing bool
	aborted bool
}

// watchSignals reads ch (nil: the process's SIGINT, SIGTERM and SIGHUP) until stop; the first
// signal calls cancel.
func watchSignals(ch <-chan os.Signal, cancel context.CancelFunc) *signals {
	s := &signals{ch: ch, done: make(chan struct{}), abort: make(chan struct{})}
	if ch == nil {
		s.own = make(chan os.Signal, 2)
		signal.Notify(s.own, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
		s.ch = s.own
	}
	go func() {
		for {
			select {
			case <-s.done:
				return
			case <-s.ch:
				s.mu.Lock()
				s.count++
				if s.count == 1 {
					cancel()
				}
				if (s.count > 1 || s.tearing) && !s.aborted {
					s.aborted = true
					close(s.abort)
				}
				s.mu.Unlock()
			}
		}
	}()
	return s
}

// tearingDown says a teardown begins; the returned channel closes when the user wants it
// abandoned: at the second signal, or at the first when abortOnFirst (a teardown after a failure,
// not after Ctrl-C).
func (s *signals) tearingDown(abortOnFirst bool) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tearing = abortOnFirst
	if s.tearing && s.count > 0 && !s.aborted {
		s.aborted = true
		close(s.abort)
	}
	return s.abort
}

// stop stops reading signals.
func (s *signals) stop() {
	if s.own != nil {
		signal.Stop(s.own)
	}
	close(s.done)
}
