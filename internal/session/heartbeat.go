package session

import (
	"context"
	"errors"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// The heartbeat (ARCHITECTURE.md, decisions 7 and 14): from the apply on, through the wait and
// while attached, the session renews the environment's heartbeat annotation; the operator
// reclaims an environment whose heartbeat has not changed for its TTL (on the operator's clock).

// defaultHeartbeatEvery: how often an attached session renews the heartbeat.
const defaultHeartbeatEvery = 20 * time.Second

// failingBeats: after this many heartbeats in a row fail, the session says so (once, until one
// succeeds again).
const failingBeats = 3

// heartbeatEvery is this session's heartbeat interval: Options.HeartbeatEvery (default 20s), and
// never more than a third of the environment's TTL when the session knows it (`forward` of an
// environment with a short TTL).
func (s *session) heartbeatEvery() time.Duration {
	every := s.opts.HeartbeatEvery
	if every <= 0 {
		every = s.be.heartbeatEvery()
	}
	if s.ttl > 0 && s.ttl/staleAfter < every {
		every = s.ttl / staleAfter
	}
	return every
}

// MinTTL is the shortest TTL a session with that heartbeat interval (0: the default) accepts:
// three heartbeats.
func MinTTL(heartbeatEvery time.Duration) time.Duration {
	if heartbeatEvery <= 0 {
		heartbeatEvery = defaultHeartbeatEvery
	}
	return staleAfter * heartbeatEvery
}

// heartbeat is the session's heartbeat, running until stopped.
type heartbeat struct {
	cancel context.CancelFunc
	done   chan struct{}
	gone   chan struct{} // closed when the environment is gone (deleted, reclaimed), or refused is set
	// refused: the server refused the session's token (revoked, expired): the session ends.
	refused error
}

// startHeartbeat renews the heartbeat every heartbeatEvery until ctx ends or stop; now: the first
// renewal at once (attaching to an environment that was left alone), else after one interval
// (the apply has just written one).
func (s *session) startHeartbeat(ctx context.Context, now bool) *heartbeat {
	every := s.heartbeatEvery()
	hctx, cancel := context.WithCancel(ctx)
	h := &heartbeat{cancel: cancel, done: make(chan struct{}), gone: make(chan struct{})}
	go func() {
		defer close(h.done)
		t := time.NewTicker(every)
		defer t.Stop()
		failed := 0
		for first := now; ; first = false {
			if !first {
				select {
				case <-hctx.Done():
					return
				case <-t.C:
				}
			}
			bctx, cancelBeat := context.WithTimeout(hctx, min(every, 10*time.Second))
			err := s.api.Heartbeat(bctx, s.ns, s.name, s.now())
			cancelBeat()
			switch {
			case hctx.Err() != nil:
				return
			case err == nil:
				if failed >= failingBeats {
					s.rep.Logf("Heartbeats reach the cluster again.")
				}
				failed = 0
			case apierrors.IsNotFound(err):
				close(h.gone)
				return
			case isLoggedOut(err):
				h.refused = err
				close(h.gone)
				return
			default:
				failed++
				if failed == failingBeats {
					s.rep.Warnf("the last %d heartbeats failed (%v): unless one gets through, the operator deletes the environment %s after its last one",
						failed, err, s.ttlText())
				}
			}
		}
	}()
	return h
}

func (s *session) ttlText() string {
	if s.ttl <= 0 {
		return "its TTL"
	}
	return s.ttl.String()
}

// stop ends the heartbeat and waits until it has.
func (h *heartbeat) stop() {
	if h == nil {
		return
	}
	h.cancel()
	<-h.done
}

// refusedErr is the server's refusal of the session's token that ended the heartbeat (nil:
// none). It is set before gone closes.
func (h *heartbeat) refusedErr() error {
	if !h.isGone() {
		return nil
	}
	return h.refused
}

func isLoggedOut(err error) bool {
	var lo *LoggedOutError
	return errors.As(err, &lo)
}

// isGone says whether the heartbeat found the environment gone.
func (h *heartbeat) isGone() bool {
	if h == nil {
		return false
	}
	select {
	case <-h.gone:
		return true
	default:
		return false
	}
}
