package approvals

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/drbot-dev/drbot/runbook"
	"github.com/drbot-dev/drbot/store"
)

// Store is what the request lifecycle needs from the store; *postgres.DB implements it.
type Store interface {
	store.Requests
	// CreateRequestWith is CreateRequest with jobs built from the inserted row.
	CreateRequestWith(ctx context.Context, r store.ActionRequest, ev store.AuditEvent, jobsFor func(store.ActionRequest) []store.Job) (store.ActionRequest, error)
	// CreateRequestThen is CreateRequestWith followed, in the same
	// transaction, by the move then returns for the inserted row (a request
	// that needs no approval is approved as it is made).
	CreateRequestThen(ctx context.Context, r store.ActionRequest, ev store.AuditEvent, jobsFor func(store.ActionRequest) []store.Job,
		then func(store.ActionRequest) *store.RequestMove) (store.ActionRequest, error)
	// DecideRequest records a decision and the state move it causes (its
	// audit row, its job) in one transaction; move sees every decision.
	DecideRequest(ctx context.Context, a store.Approval, ev store.AuditEvent,
		move func(req store.ActionRequest, all []store.Approval) (*store.RequestMove, error)) (store.ActionRequest, error)
}

// Engine moves requests through their lifecycle. Every change is one store
// transaction holding the new state, its audit row and its next job (the
// expiry timer on creation, the execution on approval).
type Engine struct {
	store    Store
	cfg      *runbook.Config
	resolver *Resolver
	now      func() time.Time
	log      *slog.Logger
}

// EngineOptions configure NewEngine.
type EngineOptions struct {
	Store    Store
	Config   *runbook.Config
	Resolver *Resolver // nil: approvers entries are taken as user ids only
	Now      func() time.Time
	Logger   *slog.Logger
}

// NewEngine returns an Engine; Store and Config are required.
func NewEngine(o EngineOptions) *Engine {
	if o.Store == nil || o.Config == nil {
		panic("approvals.NewEngine: Store and Config are required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Resolver == nil {
		o.Resolver = NewResolver(Directory{}, 0, o.Now, o.Logger)
	}
	return &Engine{store: o.Store, cfg: o.Config, resolver: o.Resolver, now: o.Now, log: o.Logger}
}

// Policy returns the policy of command.
func (e *Engine) Policy(command string) Policy { return PolicyFor(e.cfg, command) }

// PolicyOf returns the policy of request r: its command's, plus what its
// plan adds (PolicyForRequest).
func (e *Engine) PolicyOf(r store.ActionRequest) Policy {
	return PolicyForRequest(e.cfg, r.Kind, r.Plan)
}

// Approvers resolves the configured approvers.
func (e *Engine) Approvers(ctx context.Context) (Approvers, error) {
	return e.resolver.Resolve(ctx, e.cfg.Slack.Approvers)
}

// NewRequest is a request to create.
type NewRequest struct {
	IncidentID  *int64
	Service     string
	Kind        string
	Target      string
	Params      json.RawMessage
	Plan        json.RawMessage // the plan's JSON, kept byte for byte
	RequestedBy string
	Reason      string
	Channel     string
}

// Create records a pending request with its expiry timer. A target with a
// request in flight is refused naming the holder. A request whose policy
// requires no approval (a drill, by default) is approved in the same
// transaction, with a request.approved audit row saying why, and its
// execution enqueued; it has no expiry timer.
func (e *Engine) Create(ctx context.Context, n NewRequest) (store.ActionRequest, error) {
	if n.RequestedBy == "" {
		return store.ActionRequest{}, errors.New("create request: no requester")
	}
	pol := PolicyForRequest(e.cfg, n.Kind, n.Plan)
	expires := e.now().Add(pol.Expires).UTC()
	data, err := json.Marshal(map[string]any{
		"kind": n.Kind, "service": n.Service, "target": n.Target, "reason": n.Reason,
		"required": pol.Required, "expires_at": expires.Format(time.RFC3339),
	})
	if err != nil {
		return store.ActionRequest{}, fmt.Errorf("create request: %w", err)
	}
	jobsFor := func(r store.ActionRequest) []store.Job {
		return []store.Job{{Args: store.ExpireRequestArgs{RequestID: r.ID}, RunAt: r.ExpiresAt, UniqueByArgs: true}}
	}
	var then func(store.ActionRequest) *store.RequestMove
	if pol.Required == 0 {
		jobsFor = nil
		why := NoApprovalReason(n.Kind, n.Service)
		approved, err := json.Marshal(map[string]any{"from": store.RequestPending, "to": store.RequestApproved,
			"approvals": 0, "required": 0, store.AuditRequestAutoApproved: true, "reason": why})
		if err != nil {
			return store.ActionRequest{}, fmt.Errorf("create request: %w", err)
		}
		then = func(r store.ActionRequest) *store.RequestMove {
			return &store.RequestMove{To: store.RequestApproved,
				Event: store.AuditEvent{Kind: store.AuditRequestApproved, Actor: "drbot", Data: approved},
				Jobs:  []store.Job{{Args: store.ExecuteRequestArgs{RequestID: r.ID}, UniqueByArgs: true}}}
		}
	}
	r, err := e.store.CreateRequestThen(ctx, store.ActionRequest{
		IncidentID: n.IncidentID, Service: n.Service, Kind: n.Kind, Target: n.Target,
		Params: n.Params, Plan: n.Plan, RequestedBy: n.RequestedBy, Reason: n.Reason,
		Channel: n.Channel, ExpiresAt: expires,
	}, store.AuditEvent{Kind: store.AuditRequestCreated, Actor: n.RequestedBy, Data: data}, jobsFor, then)
	if err != nil {
		var busy *store.TargetBusyError
		if errors.As(err, &busy) {
			return store.ActionRequest{}, BusyMessage(busy)
		}
		return store.ActionRequest{}, err
	}
	return r, nil
}

// Result is the outcome of an accepted decision or change.
type Result struct {
	Request store.ActionRequest // as it is after the change
	Verdict Verdict
}

// Decide records actor's decision (store.DecisionApprove or DecisionDeny) on
// request id. A decision the policy refuses returns a *Refusal and changes
// nothing (except that a request found past its expiry is expired). The
// approval that reaches the required count moves the request to approved and
// enqueues its execution in the same transaction; of concurrent approvals
// exactly one does.
func (e *Engine) Decide(ctx context.Context, id int64, actor string, decision store.Decision, reason string) (Result, error) {
	req, err := e.store.Request(ctx, id)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return Result{}, refuse(CodeNotPending, "Request #%d does not exist.", id)
		}
		return Result{}, err
	}
	approvals, err := e.store.Approvals(ctx, id)
	if err != nil {
		return Result{}, err
	}
	approvers, err := e.Approvers(ctx)
	if err != nil {
		return Result{}, err
	}
	pol := e.PolicyOf(req)
	v, err := Evaluate(Decision{Request: req, Approvals: approvals, Actor: actor, Decision: decision,
		Approvers: approvers, Policy: pol, Now: e.now()})
	if err != nil {
		var rf *Refusal
		if errors.As(err, &rf) && rf.Code == CodeExpired && req.State == store.RequestPending {
			if _, _, xerr := e.Expire(ctx, id); xerr != nil {
				e.log.WarnContext(ctx, "expire request on a late click", "request", id, "err", xerr)
			}
		}
		return Result{}, err
	}
	// One transaction: the decision, its audit row and, when it settles the
	// request, the state move with its audit row and the execution job. The
	// store locks the request, so of concurrent approvers the last sees every
	// approval and exactly one moves it.
	out, err := e.store.DecideRequest(ctx, store.Approval{RequestID: id, PlanHash: req.PlanHash, Approver: actor, Decision: decision, Reason: reason},
		store.AuditEvent{}, func(cur store.ActionRequest, all []store.Approval) (*store.RequestMove, error) {
			if decision == store.DecisionDeny {
				data, _ := json.Marshal(map[string]string{"from": string(store.RequestPending), "to": string(store.RequestDenied), "reason": reason})
				return &store.RequestMove{To: store.RequestDenied, Event: store.AuditEvent{Kind: store.AuditRequestDenied, Actor: actor, Data: data}}, nil
			}
			v.Count = Count(cur, all, approvers)
			v.Approved = v.Count >= pol.Required
			if !v.Approved {
				return nil, nil
			}
			data, _ := json.Marshal(map[string]any{"from": store.RequestPending, "to": store.RequestApproved, "approvals": v.Count, "required": pol.Required})
			return &store.RequestMove{To: store.RequestApproved,
				Event: store.AuditEvent{Kind: store.AuditRequestApproved, Actor: actor, Data: data},
				Jobs:  []store.Job{{Args: store.ExecuteRequestArgs{RequestID: id}, UniqueByArgs: true}}}, nil
		})
	if err != nil {
		return Result{}, e.conflict(ctx, id, err)
	}
	return Result{Request: out, Verdict: v}, nil
}

// conflict turns store conflicts into refusals.
func (e *Engine) conflict(ctx context.Context, id int64, err error) error {
	if errors.Is(err, store.ErrDuplicate) {
		return refuse(CodeDuplicate, "You already decided on request #%d; each approver counts once.", id)
	}
	if errors.Is(err, store.ErrStateConflict) {
		cur, rerr := e.store.Request(ctx, id)
		if rerr != nil {
			return errors.Join(err, rerr)
		}
		return notPending(cur)
	}
	return err
}

// Cancel withdraws request id for actor, who must be its requester, before it runs.
func (e *Engine) Cancel(ctx context.Context, id int64, actor string) (store.ActionRequest, error) {
	req, err := e.store.Request(ctx, id)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return store.ActionRequest{}, refuse(CodeNotPending, "Request #%d does not exist.", id)
		}
		return store.ActionRequest{}, err
	}
	if err := CanCancel(req, actor); err != nil {
		return store.ActionRequest{}, err
	}
	out, err := e.store.TransitionRequest(ctx, id, []store.RequestState{store.RequestPending, store.RequestApproved}, store.RequestCancelled,
		store.AuditEvent{Kind: store.AuditRequestCancelled, Actor: actor})
	if err != nil {
		return store.ActionRequest{}, e.conflict(ctx, id, err)
	}
	return out, nil
}

// ErrNotYet is returned by Expire when the request's expiry is still ahead
// (the timer fired early); the job is retried.
var ErrNotYet = errors.New("request has not expired yet")

// Expire moves request id from pending to expired when its expiry has passed.
// changed is false when the request is no longer pending (nothing to do).
func (e *Engine) Expire(ctx context.Context, id int64) (req store.ActionRequest, changed bool, err error) {
	req, err = e.store.Request(ctx, id)
	if err != nil {
		return store.ActionRequest{}, false, err
	}
	if req.State != store.RequestPending {
		return req, false, nil
	}
	if now := e.now(); !req.ExpiresAt.IsZero() && now.Add(time.Second).Before(req.ExpiresAt) {
		return req, false, fmt.Errorf("expire request %d at %s (now %s): %w", id, req.ExpiresAt.Format(time.RFC3339), now.UTC().Format(time.RFC3339), ErrNotYet)
	}
	out, err := e.store.TransitionRequest(ctx, id, []store.RequestState{store.RequestPending}, store.RequestExpired,
		store.AuditEvent{Kind: store.AuditRequestExpired, Actor: "drbot"})
	if err != nil {
		if errors.Is(err, store.ErrStateConflict) {
			cur, rerr := e.store.Request(ctx, id)
			return cur, false, rerr
		}
		return store.ActionRequest{}, false, err
	}
	return out, true, nil
}
