package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/drbot-dev/drbot/store"
)

// DecideRequest records a decision on a pending request and what it moves, in
// ONE transaction: the approval row and its audit row (ev, defaulting to kind
// approval.approved or approval.denied and actor the approver), then move's
// state change, audit row and jobs when move (called with the request and
// every decision on it, this one included) returns one. A crash or error
// anywhere leaves nothing of the decision behind.
//
// The request row is locked for update, so decisions on one request are
// serialised and the last one sees every earlier decision. It fails with
// ErrNotFound, a *store.StateConflictError when the request is no longer
// pending, or ErrDuplicate when the approver already decided on this plan
// hash; an error from move aborts the transaction and is returned wrapped.
func (db *DB) DecideRequest(ctx context.Context, a store.Approval, ev store.AuditEvent,
	move func(req store.ActionRequest, all []store.Approval) (*store.RequestMove, error),
) (store.ActionRequest, error) {
	if a.Decision != store.DecisionApprove && a.Decision != store.DecisionDeny {
		return store.ActionRequest{}, fmt.Errorf("decide request %d: decision must be %q or %q, not %q", a.RequestID, store.DecisionApprove, store.DecisionDeny, a.Decision)
	}
	if strings.TrimSpace(a.Approver) == "" || a.PlanHash == "" {
		return store.ActionRequest{}, fmt.Errorf("decide request %d: approver and plan hash are required", a.RequestID)
	}
	var at *time.Time
	if !a.At.IsZero() {
		at = &a.At
	}
	var out store.ActionRequest
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		cur, err := scanRequest(tx.QueryRow(ctx, "SELECT "+requestColumns+" FROM action_requests WHERE id = $1 FOR UPDATE", a.RequestID))
		if err != nil {
			return notFound(fmt.Sprintf("request %d", a.RequestID), err)
		}
		if cur.State != store.RequestPending {
			return &store.StateConflictError{What: fmt.Sprintf("request %d", a.RequestID), Current: string(cur.State), To: "take a decision"}
		}
		_, err = scanApproval(tx.QueryRow(ctx, `
			INSERT INTO approvals (request_id, plan_hash, approver, decision, reason, at)
			VALUES ($1, $2, $3, $4, $5, COALESCE($6, now()))
			ON CONFLICT ON CONSTRAINT approvals_once_key DO NOTHING
			RETURNING `+approvalColumns, a.RequestID, a.PlanHash, a.Approver, a.Decision, a.Reason, at))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("%s already decided on this plan of request %d: %w", a.Approver, a.RequestID, store.ErrDuplicate)
		}
		if err != nil {
			return err
		}
		ev.RequestID = &a.RequestID
		if ev.IncidentID == nil {
			ev.IncidentID = cur.IncidentID
		}
		if ev.Kind == "" {
			ev.Kind = store.AuditApprovalApproved
			if a.Decision == store.DecisionDeny {
				ev.Kind = store.AuditApprovalDenied
			}
		}
		if ev.Actor == "" {
			ev.Actor = a.Approver
		}
		if len(ev.Data) == 0 {
			ev.Data, err = json.Marshal(map[string]string{"decision": string(a.Decision), "plan_hash": a.PlanHash, "reason": a.Reason})
			if err != nil {
				return err
			}
		}
		if _, err := appendAuditTx(ctx, tx, ev); err != nil {
			return err
		}
		out = cur
		if move == nil {
			return nil
		}
		rows, err := tx.Query(ctx, "SELECT "+approvalColumns+" FROM approvals WHERE request_id = $1 ORDER BY at, id", a.RequestID)
		if err != nil {
			return fmt.Errorf("list approvals: %w", err)
		}
		all, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Approval, error) { return scanApproval(r) })
		if err != nil {
			return fmt.Errorf("list approvals: %w", err)
		}
		m, err := move(cur, all)
		if err != nil || m == nil {
			return err
		}
		if !store.CanTransition(cur.State, m.To) {
			return &store.StateConflictError{What: fmt.Sprintf("request %d", a.RequestID), Current: string(cur.State), To: string(m.To)}
		}
		out, err = moveTx(ctx, db, tx, cur, m.To, m.Event, m.Jobs)
		return err
	})
	if err != nil {
		var sc *store.StateConflictError
		if errors.As(err, &sc) {
			return store.ActionRequest{}, err
		}
		return store.ActionRequest{}, fmt.Errorf("decide request %d: %w", a.RequestID, err)
	}
	return out, nil
}
