package postgres

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/drbot-dev/drbot/store"
)

const requestColumns = `id, incident_id, service, kind, target, params::text, plan::text, plan_hash, requested_by,
	state, reason, idempotency_key, channel, message_ts, created_at, expires_at, updated_at`

func scanRequest(row pgx.Row) (store.ActionRequest, error) {
	var (
		r            store.ActionRequest
		params, plan *string
		expires      *time.Time
	)
	err := row.Scan(&r.ID, &r.IncidentID, &r.Service, &r.Kind, &r.Target, &params, &plan, &r.PlanHash, &r.RequestedBy,
		&r.State, &r.Reason, &r.IdempotencyKey, &r.Channel, &r.MessageTS, &r.CreatedAt, &expires, &r.UpdatedAt)
	if err != nil {
		return store.ActionRequest{}, err
	}
	if params != nil {
		r.Params = json.RawMessage(*params)
	}
	if plan != nil {
		r.Plan = json.RawMessage(*plan)
	}
	if expires != nil {
		r.ExpiresAt = expires.UTC()
	}
	r.CreatedAt, r.UpdatedAt = r.CreatedAt.UTC(), r.UpdatedAt.UTC()
	return r, nil
}

// PlanHash returns the sha256 hex digest of plan, the value ActionRequest.PlanHash holds.
func PlanHash(plan []byte) string {
	sum := sha256.Sum256(plan)
	return hex.EncodeToString(sum[:])
}

// jsonText returns raw as text for a json column, or nil for SQL NULL when raw is empty.
func jsonText(raw json.RawMessage) *string {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil
	}
	s := string(raw)
	return &s
}

// CreateRequest records r in state pending, appends ev (defaults: kind
// request.created, actor r.RequestedBy, RequestID and IncidentID from the
// request, data with kind, target and plan hash) and inserts jobs, in one
// transaction. PlanHash is computed from Plan when empty and must match it
// otherwise. Params and Plan are kept byte for byte.
//
// When r.Target has a request in flight it returns a *store.TargetBusyError
// naming it. When r.IdempotencyKey was used before it returns the earlier
// request together with an error wrapping store.ErrDuplicate.
func (db *DB) CreateRequest(ctx context.Context, r store.ActionRequest, ev store.AuditEvent, jobs ...store.Job) (store.ActionRequest, error) {
	return db.CreateRequestWith(ctx, r, ev, func(store.ActionRequest) []store.Job { return jobs })
}

// CreateRequestWith is CreateRequest for jobs that need the new request (its
// id, its expiry): jobsFor is called inside the transaction with the inserted
// row, and the jobs it returns are inserted in that transaction.
func (db *DB) CreateRequestWith(ctx context.Context, r store.ActionRequest, ev store.AuditEvent, jobsFor func(store.ActionRequest) []store.Job) (store.ActionRequest, error) {
	return db.CreateRequestThen(ctx, r, ev, jobsFor, nil)
}

// CreateRequestThen is CreateRequestWith followed, in the same transaction,
// by the state move then returns for the inserted row (nil: none): a request
// that needs no approval is created and approved at once, each with its
// audit row, or not at all. The move must be one store.CanTransition allows
// from pending.
func (db *DB) CreateRequestThen(ctx context.Context, r store.ActionRequest, ev store.AuditEvent, jobsFor func(store.ActionRequest) []store.Job,
	then func(store.ActionRequest) *store.RequestMove) (store.ActionRequest, error) {
	if err := checkNewRequest(&r); err != nil {
		return store.ActionRequest{}, fmt.Errorf("create request: %w", err)
	}
	var expires *time.Time
	if !r.ExpiresAt.IsZero() {
		expires = &r.ExpiresAt
	}
	params := jsonText(r.Params)
	if params == nil {
		params = new("{}")
	}
	for attempt := 0; ; attempt++ {
		var out store.ActionRequest
		err := db.inTx(ctx, func(tx pgx.Tx) error {
			var err error
			out, err = scanRequest(tx.QueryRow(ctx, `
				INSERT INTO action_requests (incident_id, service, kind, target, params, plan, plan_hash, requested_by,
				                             state, reason, idempotency_key, channel, message_ts, expires_at)
				VALUES ($1, $2, $3, $4, $5::json, $6::json, $7, $8, 'pending', $9, $10, $11, $12, $13)
				RETURNING `+requestColumns,
				r.IncidentID, r.Service, r.Kind, r.Target, params, jsonText(r.Plan), r.PlanHash, r.RequestedBy,
				r.Reason, r.IdempotencyKey, r.Channel, r.MessageTS, expires))
			if err != nil {
				return err
			}
			if jobsFor != nil {
				if err := db.insertJobsTx(ctx, tx, jobsFor(out)); err != nil {
					return err
				}
			}
			ev := ev
			ev.RequestID = &out.ID
			if ev.IncidentID == nil {
				ev.IncidentID = out.IncidentID
			}
			if ev.Kind == "" {
				ev.Kind = store.AuditRequestCreated
			}
			if ev.Actor == "" {
				ev.Actor = out.RequestedBy
			}
			if len(ev.Data) == 0 {
				ev.Data, err = json.Marshal(map[string]any{"kind": out.Kind, "target": out.Target, "plan_hash": out.PlanHash, "service": out.Service})
				if err != nil {
					return err
				}
			}
			if _, err = appendAuditTx(ctx, tx, ev); err != nil {
				return err
			}
			if then == nil {
				return nil
			}
			mv := then(out)
			if mv == nil {
				return nil
			}
			if !store.CanTransition(out.State, mv.To) {
				return &store.StateConflictError{What: fmt.Sprintf("request %d", out.ID), Current: string(out.State), To: string(mv.To)}
			}
			out, err = moveTx(ctx, db, tx, out, mv.To, mv.Event, mv.Jobs)
			return err
		})
		if err == nil {
			return out, nil
		}
		code, cons := pgErr(err)
		switch {
		case code == codeForeignKeyViolation:
			return store.ActionRequest{}, fmt.Errorf("create request: incident %d: %w", derefOr(r.IncidentID), store.ErrNotFound)
		case code != codeUniqueViolation:
			return store.ActionRequest{}, fmt.Errorf("create %s request for %s: %w", r.Kind, r.Target, err)
		}
		// A unique index refused the row. The transaction is gone; look at
		// what holds the key now (the holder may have finished meanwhile, so
		// try again a few times).
		if r.IdempotencyKey != "" {
			prev, err := scanRequest(db.pool.QueryRow(ctx, "SELECT "+requestColumns+" FROM action_requests WHERE idempotency_key = $1", r.IdempotencyKey))
			if err == nil {
				return prev, fmt.Errorf("request with idempotency key %s exists as request %d: %w", r.IdempotencyKey, prev.ID, store.ErrDuplicate)
			}
			if !errors.Is(err, pgx.ErrNoRows) {
				return store.ActionRequest{}, fmt.Errorf("create request: read existing request: %w", err)
			}
		}
		if cons == "action_requests_in_flight_key" {
			busy := &store.TargetBusyError{Target: r.Target}
			err := db.pool.QueryRow(ctx, `
				SELECT id, state, kind, requested_by FROM action_requests
				WHERE target = $1 AND state IN ('pending', 'approved', 'running', 'verifying')`, r.Target).
				Scan(&busy.RequestID, &busy.State, &busy.Kind, &busy.By)
			if err == nil {
				return store.ActionRequest{}, busy
			}
			if !errors.Is(err, pgx.ErrNoRows) {
				return store.ActionRequest{}, fmt.Errorf("create request: read request holding %s: %w", r.Target, err)
			}
		}
		if attempt >= 2 {
			return store.ActionRequest{}, fmt.Errorf("create %s request for %s: conflicting requests kept changing: %w", r.Kind, r.Target, err)
		}
	}
}

func derefOr(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

func checkNewRequest(r *store.ActionRequest) error {
	if strings.TrimSpace(r.Kind) == "" {
		return errors.New("request has no kind")
	}
	if strings.TrimSpace(r.Target) == "" {
		return errors.New("request has no target")
	}
	if r.State != "" && r.State != store.RequestPending {
		return fmt.Errorf("a new request starts pending, not %s", r.State)
	}
	if len(r.Params) > 0 && !json.Valid(r.Params) {
		return errors.New("request params are not valid JSON")
	}
	if len(r.Plan) > 0 {
		if !json.Valid(r.Plan) {
			return errors.New("request plan is not valid JSON")
		}
		h := PlanHash(r.Plan)
		if r.PlanHash == "" {
			r.PlanHash = h
		} else if r.PlanHash != h {
			return fmt.Errorf("plan hash %s does not match the plan (sha256 %s)", r.PlanHash, h)
		}
	}
	return nil
}

// Request returns the request with id.
func (db *DB) Request(ctx context.Context, id int64) (store.ActionRequest, error) {
	r, err := scanRequest(db.pool.QueryRow(ctx, "SELECT "+requestColumns+" FROM action_requests WHERE id = $1", id))
	if err != nil {
		return store.ActionRequest{}, notFound(fmt.Sprintf("request %d", id), err)
	}
	return r, nil
}

// RequestsForIncident returns the requests made during an incident, oldest first.
func (db *DB) RequestsForIncident(ctx context.Context, incidentID int64) ([]store.ActionRequest, error) {
	rows, err := db.pool.Query(ctx, "SELECT "+requestColumns+" FROM action_requests WHERE incident_id = $1 ORDER BY id", incidentID)
	if err != nil {
		return nil, fmt.Errorf("list requests of incident %d: %w", incidentID, err)
	}
	rs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.ActionRequest, error) { return scanRequest(r) })
	if err != nil {
		return nil, fmt.Errorf("list requests of incident %d: %w", incidentID, err)
	}
	return rs, nil
}

// TransitionRequest moves request id to state to when its current state is one
// of from and store.CanTransition allows the move; otherwise it returns a
// *store.StateConflictError holding the current state. The row is locked, so
// of concurrent transitions from the same state exactly one wins. ev (defaults:
// kind request.<to>, actor drbot, data {from, to}) and jobs are written in the
// same transaction.
func (db *DB) TransitionRequest(ctx context.Context, id int64, from []store.RequestState, to store.RequestState, ev store.AuditEvent, jobs ...store.Job) (store.ActionRequest, error) {
	var out store.ActionRequest
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		cur, err := scanRequest(tx.QueryRow(ctx, "SELECT "+requestColumns+" FROM action_requests WHERE id = $1 FOR UPDATE", id))
		if err != nil {
			return notFound(fmt.Sprintf("request %d", id), err)
		}
		if !slices.Contains(from, cur.State) || !store.CanTransition(cur.State, to) {
			return &store.StateConflictError{What: fmt.Sprintf("request %d", id), Current: string(cur.State), To: string(to)}
		}
		out, err = moveTx(ctx, db, tx, cur, to, ev, jobs)
		return err
	})
	if err != nil {
		var sc *store.StateConflictError
		if errors.As(err, &sc) {
			return store.ActionRequest{}, err
		}
		return store.ActionRequest{}, fmt.Errorf("move request %d to %s: %w", id, to, err)
	}
	return out, nil
}

// moveTx moves cur (locked by the caller) to state to, inserts jobs and
// appends ev (defaults: kind request.<to>, actor drbot, data {from, to}) in tx.
func moveTx(ctx context.Context, db *DB, tx pgx.Tx, cur store.ActionRequest, to store.RequestState, ev store.AuditEvent, jobs []store.Job) (store.ActionRequest, error) {
	id := cur.ID
	out, err := scanRequest(tx.QueryRow(ctx,
		"UPDATE action_requests SET state = $2, updated_at = now() WHERE id = $1 RETURNING "+requestColumns, id, to))
	if err != nil {
		return store.ActionRequest{}, fmt.Errorf("update state: %w", err)
	}
	if err := db.insertJobsTx(ctx, tx, jobs); err != nil {
		return store.ActionRequest{}, err
	}
	ev.RequestID = &id
	if ev.IncidentID == nil {
		ev.IncidentID = out.IncidentID
	}
	if ev.Kind == "" {
		ev.Kind = store.RequestMovedKind(to)
	}
	if ev.Actor == "" {
		ev.Actor = "drbot"
	}
	if len(ev.Data) == 0 {
		ev.Data, err = json.Marshal(map[string]string{"from": string(cur.State), "to": string(to)})
		if err != nil {
			return store.ActionRequest{}, err
		}
	}
	if _, err := appendAuditTx(ctx, tx, ev); err != nil {
		return store.ActionRequest{}, err
	}
	return out, nil
}

// SetRequestMessage records where the request's approval card was posted, so
// it can be updated in place, with a request.card_posted audit row.
func (db *DB) SetRequestMessage(ctx context.Context, id int64, channel, ts string) error {
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		var incidentID *int64
		err := tx.QueryRow(ctx, "UPDATE action_requests SET channel = $2, message_ts = $3, updated_at = now() WHERE id = $1 RETURNING incident_id",
			id, channel, ts).Scan(&incidentID)
		if err != nil {
			return notFound(fmt.Sprintf("request %d", id), err)
		}
		data, err := json.Marshal(map[string]string{"channel": channel, "message_ts": ts})
		if err != nil {
			return err
		}
		_, err = appendAuditTx(ctx, tx, store.AuditEvent{IncidentID: incidentID, RequestID: &id, Actor: "drbot", Kind: store.AuditRequestCardPosted, Data: data})
		return err
	})
	if err != nil {
		return fmt.Errorf("set message of request %d: %w", id, err)
	}
	return nil
}

const approvalColumns = `id, request_id, plan_hash, approver, decision, reason, at`

func scanApproval(row pgx.Row) (store.Approval, error) {
	var a store.Approval
	if err := row.Scan(&a.ID, &a.RequestID, &a.PlanHash, &a.Approver, &a.Decision, &a.Reason, &a.At); err != nil {
		return store.Approval{}, err
	}
	a.At = a.At.UTC()
	return a, nil
}

// Approvals returns the decisions on request requestID, oldest first.
func (db *DB) Approvals(ctx context.Context, requestID int64) ([]store.Approval, error) {
	rows, err := db.pool.Query(ctx, "SELECT "+approvalColumns+" FROM approvals WHERE request_id = $1 ORDER BY at, id", requestID)
	if err != nil {
		return nil, fmt.Errorf("list approvals of request %d: %w", requestID, err)
	}
	as, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Approval, error) { return scanApproval(r) })
	if err != nil {
		return nil, fmt.Errorf("list approvals of request %d: %w", requestID, err)
	}
	return as, nil
}

// RequestsInState returns the requests in any of states, oldest first.
func (db *DB) RequestsInState(ctx context.Context, states ...store.RequestState) ([]store.ActionRequest, error) {
	names := make([]string, len(states))
	for i, s := range states {
		names[i] = string(s)
	}
	rows, err := db.pool.Query(ctx, "SELECT "+requestColumns+" FROM action_requests WHERE state = ANY($1) ORDER BY id", names)
	if err != nil {
		return nil, fmt.Errorf("list requests in states %v: %w", states, err)
	}
	rs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.ActionRequest, error) { return scanRequest(r) })
	if err != nil {
		return nil, fmt.Errorf("list requests in states %v: %w", states, err)
	}
	return rs, nil
}

// RecentRequests returns up to limit requests for service (all services when
// service is empty), newest first.
func (db *DB) RecentRequests(ctx context.Context, service string, limit int) ([]store.ActionRequest, error) {
	if limit <= 0 {
		limit = 10
	}
	rows, err := db.pool.Query(ctx, "SELECT "+requestColumns+` FROM action_requests
		WHERE $1 = '' OR service = $1 ORDER BY id DESC LIMIT $2`, service, limit)
	if err != nil {
		return nil, fmt.Errorf("list recent requests of %q: %w", service, err)
	}
	rs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.ActionRequest, error) { return scanRequest(r) })
	if err != nil {
		return nil, fmt.Errorf("list recent requests of %q: %w", service, err)
	}
	return rs, nil
}

// RequestsOfKind returns up to limit requests of kind for service, newest
// first (rollback looks for the restores it can undo).
func (db *DB) RequestsOfKind(ctx context.Context, service, kind string, limit int) ([]store.ActionRequest, error) {
	if limit <= 0 {
		limit = 10
	}
	rows, err := db.pool.Query(ctx, "SELECT "+requestColumns+` FROM action_requests
		WHERE service = $1 AND kind = $2 ORDER BY id DESC LIMIT $3`, service, kind, limit)
	if err != nil {
		return nil, fmt.Errorf("list %s requests of %q: %w", kind, service, err)
	}
	rs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.ActionRequest, error) { return scanRequest(r) })
	if err != nil {
		return nil, fmt.Errorf("list %s requests of %q: %w", kind, service, err)
	}
	return rs, nil
}
