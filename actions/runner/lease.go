package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/drbot-dev/drbot/store"
)

// holding is one runner's execution lease on a target: renewed in the
// background every lease/3, checked (fenced) before every step and state
// move. When it is lost the execution's context is cancelled and the runner
// stops before its next step, saying so.
type holding struct {
	r      *Runner
	ctx    context.Context
	cancel context.CancelCauseFunc
	done   chan struct{}
	wg     sync.WaitGroup

	mu     sync.Mutex
	lease  store.Lease
	lost   *store.LeaseError
	before string // the step the runner stopped before
}

// hold takes req's target lease for a holder unique to this run.
func (r *Runner) hold(ctx context.Context, req store.ActionRequest) (*holding, error) {
	l, err := r.store.AcquireLease(ctx, req.Target, req.ID, r.host+"/"+store.NewRef(), r.lease)
	if err != nil {
		return nil, err
	}
	hctx, cancel := context.WithCancelCause(ctx)
	h := &holding{r: r, ctx: hctx, cancel: cancel, done: make(chan struct{}), lease: l}
	h.wg.Add(1)
	go h.heartbeat()
	return h, nil
}

func (h *holding) current() store.Lease {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lease
}

// lose records le (the first loss wins) and cancels the execution.
func (h *holding) lose(le *store.LeaseError, before string) *store.LeaseError {
	h.mu.Lock()
	if h.lost == nil {
		h.lost, h.before = le, before
	} else if h.before == "" {
		h.before = before
	}
	le = h.lost
	h.mu.Unlock()
	h.cancel(le)
	return le
}

func (h *holding) heartbeat() {
	defer h.wg.Done()
	t := time.NewTicker(h.r.lease / 3)
	defer t.Stop()
	for {
		select {
		case <-h.done:
			return
		case <-h.ctx.Done():
			return
		case <-t.C:
		}
		cur := h.current()
		// cutoff is when a holder that could not renew must have stopped:
		// a sixth of a lease before it expires and another runner may take
		// it. No renewal attempt runs past it.
		cutoff := cur.ExpiresAt.Add(-h.r.lease / 6)
		ctx, cancel := context.WithDeadline(context.WithoutCancel(h.ctx), earliest(time.Now().Add(h.r.lease/3), cutoff))
		l, err := h.r.store.RenewLease(ctx, cur, h.r.lease)
		cancel()
		var le *store.LeaseError
		switch {
		case err == nil:
			h.mu.Lock()
			h.lease = l
			h.mu.Unlock()
		case errors.As(err, &le):
			h.r.log.WarnContext(h.ctx, "execution lease lost", "target", cur.Target, "request", cur.RequestID, "err", err)
			_ = h.lose(le, "") // the execution is cancelled with it; fence reports it
			return
		default:
			// The store did not answer (a failover, a proxy closing the
			// connection): try again at the next tick (a third of a lease
			// on) only if it comes before the cutoff; else stop now, while
			// the lease is still ours.
			h.r.log.WarnContext(h.ctx, "renew execution lease", "target", cur.Target, "request", cur.RequestID, "err", err)
			if !time.Now().Add(h.r.lease / 3).Before(cutoff) {
				_ = h.lose(&store.LeaseError{Target: cur.Target, Lost: true}, "")
				return
			}
		}
	}
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// fence checks the lease is still this run's before next (a step name) starts.
func (h *holding) fence(ctx context.Context, next string) error {
	h.mu.Lock()
	lost := h.lost
	h.mu.Unlock()
	if lost != nil {
		return h.lose(lost, next)
	}
	// A store that just failed over answers the next query: retry a little
	// before giving the step up.
	var err error
	for attempt := range 4 {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt) * 100 * time.Millisecond)
		}
		err = h.r.store.CheckLease(context.WithoutCancel(ctx), h.current())
		var le *store.LeaseError
		if errors.As(err, &le) {
			return h.lose(le, next)
		}
		if err == nil {
			return nil
		}
	}
	return err
}

// lostErr returns the lease loss behind err or ctx's end, if any.
func (h *holding) lostErr(ctx context.Context, err error) *store.LeaseError {
	var le *store.LeaseError
	if errors.As(err, &le) && le.Lost {
		return le
	}
	if errors.As(context.Cause(ctx), &le) && le.Lost {
		return le
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lost
}

// stopped turns an execution that ended with err into Run's result: a lost
// lease is reported in the channel and the audit log and is not retried (the
// new holder, or the resume once the lease expires, carries on); anything else
// is returned as it is.
func (h *holding) stopped(ctx context.Context, req store.ActionRequest, err error) error {
	le := h.lostErr(ctx, err)
	if le == nil {
		return err
	}
	h.mu.Lock()
	before := h.before
	h.mu.Unlock()
	if before == "" {
		before = "its next step"
	} else {
		before = "step " + before
	}
	text := fmt.Sprintf("lost the execution lease for %s to %s (request #%d); stopped before %s and left the request to it.",
		le.Target, le.Holder, le.RequestID, before)
	if le.Holder == "" {
		text = fmt.Sprintf("lost the execution lease for %s (the store did not answer in time to renew it); stopped before %s. It resumes within a minute once the store answers.",
			le.Target, before)
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	data, _ := json.Marshal(map[string]any{"target": le.Target, "holder": le.Holder, "holder_request": le.RequestID, "stopped_before": before})
	if _, aerr := h.r.store.AppendAudit(rctx, store.AuditEvent{IncidentID: req.IncidentID, RequestID: &req.ID, Actor: "drbot", Kind: store.AuditRequestLeaseLost, Data: data}); aerr != nil {
		h.r.log.WarnContext(rctx, "record lost lease", "request", req.ID, "err", aerr)
	}
	h.r.log.WarnContext(rctx, "execution stopped: lease lost", "request", req.ID, "target", le.Target, "holder", le.Holder, "cause", err)
	h.r.cards.Note(rctx, req, fmt.Sprintf("Request #%d (%s): %s", req.ID, req.Kind, text))
	return nil
}

// release stops the heartbeat and gives the lease up.
func (h *holding) release() {
	close(h.done)
	h.wg.Wait()
	h.cancel(nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.r.store.ReleaseLease(ctx, h.current()); err != nil {
		h.r.log.WarnContext(ctx, "release execution lease (it expires by itself)", "target", h.current().Target, "err", err)
	}
}
