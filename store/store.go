// Package store holds drbot's domain records and the interfaces to keep them.
// The PostgreSQL implementation is in store/postgres.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// ErrNotFound is returned when a record does not exist.
var ErrNotFound = errors.New("not found")

// Incident statuses.
const (
	IncidentTriggered    = "triggered"
	IncidentAcknowledged = "acknowledged"
	IncidentResolved     = "resolved"
)

// Incident is one PagerDuty incident that drbot handles.
type Incident struct {
	ID          int64
	PagerDutyID string // unique; the deduplication key for deliveries
	Service     string // runbook service name
	Title       string
	Urgency     string
	URL         string // PagerDuty link
	Status      string
	Channel     string // chat channel id, once created
	Security    bool
	OpenedAt    time.Time
	AckedAt     *time.Time
	ResolvedAt  *time.Time
	RTO         time.Duration
	RPO         time.Duration
}

// Action request states. A request moves forward only along
// pending → approved → running → verifying → succeeded|failed, or ends
// denied|expired|cancelled from pending.
const (
	RequestPending   = "pending"
	RequestApproved  = "approved"
	RequestRunning   = "running"
	RequestVerifying = "verifying"
	RequestSucceeded = "succeeded"
	RequestFailed    = "failed"
	RequestDenied    = "denied"
	RequestExpired   = "expired"
	RequestCancelled = "cancelled"
)

// ActionRequest is a request to run a destructive action, gated by approvals.
type ActionRequest struct {
	ID             int64
	IncidentID     *int64
	Service        string
	Kind           string          // restore-db, failover, …
	Target         string          // what the action changes; one in-flight request per target
	Params         json.RawMessage // the parsed command arguments
	Plan           json.RawMessage // the exact plan shown to approvers
	PlanHash       string          // sha256 hex of Plan
	RequestedBy    string          // chat user id
	State          string
	Reason         string
	IdempotencyKey string
	Channel        string
	MessageTS      string // the approval card, for updates in place
	CreatedAt      time.Time
	ExpiresAt      time.Time
	UpdatedAt      time.Time
}

// Approval is one person's decision on a request. It counts only for PlanHash.
type Approval struct {
	ID        int64
	RequestID int64
	PlanHash  string
	Approver  string // chat user id
	Decision  string // "approve" or "deny"
	Reason    string
	At        time.Time
}

// AuditEvent is one row of the append-only, hash-chained audit log.
// Hash = sha256(PrevHash || canonical content); the first row's PrevHash is 32 zero bytes.
type AuditEvent struct {
	Seq        int64
	IncidentID *int64
	RequestID  *int64
	Actor      string // chat user id, "pagerduty", "drbot", …
	Kind       string // incident.opened, request.created, approval.approved, step.started, …
	Data       json.RawMessage
	At         time.Time
	PrevHash   []byte
	Hash       []byte
}

// ChainReport is the result of verifying the audit chain.
type ChainReport struct {
	Rows int64
	// FirstBroken is the Seq of the first row whose hash or link does not verify;
	// 0 when the chain is intact.
	FirstBroken int64
	Problem     string
}

// OK reports whether the chain verified.
func (r ChainReport) OK() bool { return r.FirstBroken == 0 }
