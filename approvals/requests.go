package approvals

import (
	"context"
	"errors"
	"fmt"

	"github.com/drbot-dev/drbot/store"
)

// RequestStore is what the request lifecycle keeps; *postgres.DB implements it.
type RequestStore interface {
	Store
	store.Incidents
	// SetRequestMessage records where a request's card was posted.
	SetRequestMessage(ctx context.Context, id int64, channel, ts string) error
	// RecentRequests lists a service's requests, newest first.
	RecentRequests(ctx context.Context, service string, limit int) ([]store.ActionRequest, error)
}

// Requests is the state side of approval-gated requests: submit, decide,
// cancel, expire and read them back. It knows nothing of chat; the commands
// package renders and posts the cards.
type Requests struct {
	store  RequestStore
	engine *Engine
}

// NewRequests returns the request lifecycle over st, moved by e.
func NewRequests(st RequestStore, e *Engine) *Requests {
	if st == nil || e == nil {
		panic("approvals.NewRequests: store and engine are required")
	}
	return &Requests{store: st, engine: e}
}

// Submit records a new pending request (refusing a busy target) and
// returns it with its approval policy. A request made in an incident's
// channel belongs to that incident.
func (r *Requests) Submit(ctx context.Context, n NewRequest) (store.ActionRequest, Policy, error) {
	if n.IncidentID == nil && n.Channel != "" {
		inc, err := r.store.IncidentByChannel(ctx, n.Channel)
		switch {
		case err == nil:
			n.IncidentID = &inc.ID
		case !errors.Is(err, store.ErrNotFound):
			return store.ActionRequest{}, Policy{}, fmt.Errorf("incident of channel %s: %w", n.Channel, err)
		}
	}
	req, err := r.engine.Create(ctx, n)
	if err != nil {
		return store.ActionRequest{}, Policy{}, err
	}
	return req, r.engine.PolicyOf(req), nil
}

// Posted records where request id's card is.
func (r *Requests) Posted(ctx context.Context, id int64, channel, ts string) error {
	return r.store.SetRequestMessage(ctx, id, channel, ts)
}

// Decide records actor's decision on request id (see Engine.Decide).
func (r *Requests) Decide(ctx context.Context, id int64, actor string, decision store.Decision, reason string) (Result, error) {
	return r.engine.Decide(ctx, id, actor, decision, reason)
}

// Cancel withdraws request id for actor, its requester (see Engine.Cancel).
func (r *Requests) Cancel(ctx context.Context, id int64, actor string) (store.ActionRequest, error) {
	return r.engine.Cancel(ctx, id, actor)
}

// Expire expires request id if it is still pending (see Engine.Expire).
func (r *Requests) Expire(ctx context.Context, id int64) (store.ActionRequest, bool, error) {
	return r.engine.Expire(ctx, id)
}

// Recent returns up to limit requests of service, newest first.
func (r *Requests) Recent(ctx context.Context, service string, limit int) ([]store.ActionRequest, error) {
	return r.store.RecentRequests(ctx, service, limit)
}

// Request returns request id as stored now.
func (r *Requests) Request(ctx context.Context, id int64) (store.ActionRequest, error) {
	return r.store.Request(ctx, id)
}

// Approvals returns the decisions on request id.
func (r *Requests) Approvals(ctx context.Context, id int64) ([]store.Approval, error) {
	return r.store.Approvals(ctx, id)
}

// PolicyOf returns the approval policy request req is held to.
func (r *Requests) PolicyOf(req store.ActionRequest) Policy { return r.engine.PolicyOf(req) }
