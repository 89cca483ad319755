// Package store holds drbot's domain records and the interfaces to keep them.
// The PostgreSQL implementation is in store/postgres.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// ErrNotFound is returned when a record does not exist.
var ErrNotFound = errors.New("not found")

// IncidentStatus is where an incident is in PagerDuty's lifecycle.
type IncidentStatus string

// Incident statuses.
const (
	IncidentTriggered    IncidentStatus = "triggered"
	IncidentAcknowledged IncidentStatus = "acknowledged"
	IncidentResolved     IncidentStatus = "resolved"
)

// Incident is one PagerDuty incident that drbot handles.
type Incident struct {
	ID          int64
	PagerDutyID string // unique; the deduplication key for deliveries
	Service     string // runbook service name
	Title       string
	Urgency     string
	URL         string // PagerDuty link
	Status      IncidentStatus
	Channel     string // chat channel id, once created
	Security    bool
	OpenedAt    time.Time
	AckedAt     *time.Time
	ResolvedAt  *time.Time
	RTO         time.Duration
	RPO         time.Duration
}

// RequestState is the state of an action request.
type RequestState string

// Action request states. A request moves forward only along
// pending → approved → running → verifying → succeeded|failed, or ends
// denied|expired|cancelled from pending (cancelled|expired also from approved);
// see CanTransition for the exact moves.
const (
	RequestPending   RequestState = "pending"
	RequestApproved  RequestState = "approved"
	RequestRunning   RequestState = "running"
	RequestVerifying RequestState = "verifying"
	RequestSucceeded RequestState = "succeeded"
	RequestFailed    RequestState = "failed"
	RequestDenied    RequestState = "denied"
	RequestExpired   RequestState = "expired"
	RequestCancelled RequestState = "cancelled"
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
	State          RequestState
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
	Approver  string   // chat user id
	Decision  Decision // DecisionApprove or DecisionDeny
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
	Kind       string // one of the Audit… constants (kinds.go): incident.opened, request.created, …
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

// ErrStateConflict is returned (wrapped in a *StateConflictError) when a state
// change is refused because the record is not in a state the change may start from.
var ErrStateConflict = errors.New("state conflict")

// ErrDuplicate is returned when a record that must be unique already exists,
// for example a second approval by the same person for the same plan.
var ErrDuplicate = errors.New("duplicate")

// ErrTargetBusy is returned (wrapped in a *TargetBusyError) when a request is
// created for a target that already has a request in flight.
var ErrTargetBusy = errors.New("target busy")

// StateConflictError says why a state change was refused and what the state is now.
// It matches ErrStateConflict with errors.Is.
type StateConflictError struct {
	What    string // "request 42", "incident 7"
	Current string // the state the record is in now
	To      string // the state that was asked for
}

func (e *StateConflictError) Error() string {
	return fmt.Sprintf("%s is %s and cannot move to %s", e.What, e.Current, e.To)
}

// Is makes errors.Is(err, ErrStateConflict) true.
func (e *StateConflictError) Is(target error) bool { return target == ErrStateConflict }

// TargetBusyError names the in-flight request that holds a target.
// It matches ErrTargetBusy with errors.Is.
type TargetBusyError struct {
	Target    string
	RequestID int64        // the request that holds the target
	State     RequestState // its state
	Kind      string
	By        string // who requested it
}

func (e *TargetBusyError) Error() string {
	return fmt.Sprintf("%s already has request %d (%s, %s by %s) in flight", e.Target, e.RequestID, e.Kind, e.State, e.By)
}

// Is makes errors.Is(err, ErrTargetBusy) true.
func (e *TargetBusyError) Is(target error) bool { return target == ErrTargetBusy }

// requestMoves is the request state machine: the states each state may move to.
var requestMoves = map[RequestState][]RequestState{
	RequestPending:   {RequestApproved, RequestDenied, RequestExpired, RequestCancelled},
	RequestApproved:  {RequestRunning, RequestCancelled, RequestExpired, RequestFailed},
	RequestRunning:   {RequestVerifying, RequestFailed},
	RequestVerifying: {RequestSucceeded, RequestFailed},
}

// CanTransition reports whether a request may move from state from to state to.
// Moves go forward only:
//
//	pending   → approved | denied | expired | cancelled
//	approved  → running | cancelled | expired | failed
//	running   → verifying | failed
//	verifying → succeeded | failed
//
// succeeded, failed, denied, expired and cancelled are final.
func CanTransition(from, to RequestState) bool {
	return slices.Contains(requestMoves[from], to)
}

// InFlight reports whether a request in state s holds its target
// (pending, approved, running or verifying).
func InFlight(s RequestState) bool {
	switch s {
	case RequestPending, RequestApproved, RequestRunning, RequestVerifying:
		return true
	}
	return false
}

// Final reports whether s is a final request state.
func Final(s RequestState) bool {
	switch s {
	case RequestSucceeded, RequestFailed, RequestDenied, RequestExpired, RequestCancelled:
		return true
	}
	return false
}

// Decision is one approver's decision on a request.
type Decision string

// Approval decisions.
const (
	DecisionApprove Decision = "approve"
	DecisionDeny    Decision = "deny"
)

// JobArgs describes a durable job's arguments. It must encode to JSON, and
// Kind names the worker that runs it. Domain code builds jobs with these
// without importing the job queue.
type JobArgs interface {
	Kind() string
}

// Job is a neutral description of a durable job. Store methods that take jobs
// insert them in the same transaction as their state change, so either both
// happen or neither does.
type Job struct {
	Args         JobArgs
	RunAt        time.Time // zero: as soon as possible
	Queue        string    // empty: the default queue
	UniqueByArgs bool      // skip the insert when an unfinished job with the same kind and args exists
}

// RequestMove is a request state change decided inside a store transaction
// (see the approval engine's decisions): the new state, its audit row and the
// jobs that go with it.
type RequestMove struct {
	To    RequestState
	Event AuditEvent
	Jobs  []Job
}

// AuditFilter selects audit events. Nil pointers and zero values select all.
type AuditFilter struct {
	IncidentID *int64
	RequestID  *int64
	AfterSeq   int64 // only events with Seq > AfterSeq
	Limit      int   // 0: a default of 1000
}

// Incidents keeps incidents.
type Incidents interface {
	// OpenIncident records inc (keyed by PagerDutyID) with an incident.opened
	// audit row and jobs, all in one transaction. It is idempotent: when the
	// PagerDuty id is known it returns the existing incident and created=false,
	// and inserts neither audit row nor jobs.
	OpenIncident(ctx context.Context, inc Incident, jobs ...Job) (Incident, bool, error)
	// Incident returns the incident with id, or an error wrapping ErrNotFound.
	Incident(ctx context.Context, id int64) (Incident, error)
	// IncidentByPagerDutyID returns the incident with PagerDuty id pdID, or ErrNotFound.
	IncidentByPagerDutyID(ctx context.Context, pdID string) (Incident, error)
	// IncidentByChannel returns the incident whose chat channel is channel, or ErrNotFound.
	IncidentByChannel(ctx context.Context, channel string) (Incident, error)
	// SetIncidentChannel links a chat channel to the incident (once; setting the
	// same channel again is a no-op). It fails with ErrDuplicate when another
	// incident has the channel and with ErrStateConflict when the incident
	// already has a different one.
	SetIncidentChannel(ctx context.Context, id int64, channel string) error
	// UpdateIncident locks the incident, applies fn, writes the result, appends
	// ev and inserts jobs in one transaction. An error from fn aborts it and is
	// returned unchanged.
	UpdateIncident(ctx context.Context, id int64, fn func(*Incident) error, ev AuditEvent, jobs ...Job) (Incident, error)
	// ListIncidents returns incidents, newest first; openOnly leaves out resolved ones.
	ListIncidents(ctx context.Context, openOnly bool) ([]Incident, error)
}

// Requests keeps action requests and their approvals.
type Requests interface {
	// CreateRequest records r in state pending with ev and jobs in one
	// transaction. It fails with a *TargetBusyError when r.Target has a request
	// in flight, and returns the existing request with an error wrapping
	// ErrDuplicate when r.IdempotencyKey was used before.
	CreateRequest(ctx context.Context, r ActionRequest, ev AuditEvent, jobs ...Job) (ActionRequest, error)
	// Request returns the request with id, or an error wrapping ErrNotFound.
	Request(ctx context.Context, id int64) (ActionRequest, error)
	// TransitionRequest moves request id to state to if its current state is
	// one of from and the move is allowed by CanTransition; ev and jobs are
	// written in the same transaction. Otherwise it returns a *StateConflictError.
	TransitionRequest(ctx context.Context, id int64, from []RequestState, to RequestState, ev AuditEvent, jobs ...Job) (ActionRequest, error)
	// Approvals returns the decisions on a request, oldest first.
	Approvals(ctx context.Context, requestID int64) ([]Approval, error)
}

// Audit keeps the append-only, hash-chained audit log.
type Audit interface {
	// AppendAudit appends ev to the chain and returns it with Seq, At and hashes set.
	AppendAudit(ctx context.Context, ev AuditEvent) (AuditEvent, error)
	// AuditEvents returns events matching f in Seq order.
	AuditEvents(ctx context.Context, f AuditFilter) ([]AuditEvent, error)
	// VerifyAudit recomputes the whole chain and reports the first broken row.
	VerifyAudit(ctx context.Context) (ChainReport, error)
}

// Deliveries deduplicates inbound webhook deliveries.
type Deliveries interface {
	// RecordDelivery records a delivery id and reports whether it is new.
	RecordDelivery(ctx context.Context, id string) (bool, error)
}

// JobQueue inserts durable jobs outside a state change.
type JobQueue interface {
	InsertJobs(ctx context.Context, jobs ...Job) error
}

// Store is everything the bot keeps.
type Store interface {
	Incidents
	Requests
	Audit
	Deliveries
	JobQueue
	// Ping checks the database answers and its schema is at the latest version.
	Ping(ctx context.Context) error
	// Close releases the store's connections.
	Close()
}

// Lease is the right to execute on a target: a row in the store that its
// holder renews while it works. Token is a fencing token: every acquisition
// gets a larger one, so a holder whose lease was taken over can tell.
type Lease struct {
	Target    string
	RequestID int64
	Holder    string
	Token     int64
	ExpiresAt time.Time
}

// ErrLeaseBusy is returned (wrapped in a *LeaseError) when a target's lease is
// held by someone else; ErrLeaseLost when a holder's lease is no longer its own.
var (
	ErrLeaseBusy = errors.New("execution lease busy")
	ErrLeaseLost = errors.New("execution lease lost")
)

// LeaseError names who holds a target's lease now (Holder empty: nobody).
// It matches ErrLeaseBusy or ErrLeaseLost (Lost) with errors.Is.
type LeaseError struct {
	Target    string
	Holder    string
	RequestID int64
	ExpiresAt time.Time
	Lost      bool
}

func (e *LeaseError) Error() string {
	who := "nobody"
	if e.Holder != "" {
		who = fmt.Sprintf("%s (request %d)", e.Holder, e.RequestID)
	}
	if e.Lost {
		return fmt.Sprintf("lost the execution lease for %s to %s", e.Target, who)
	}
	return fmt.Sprintf("%s is being executed by %s until %s", e.Target, who, e.ExpiresAt.UTC().Format(time.RFC3339))
}

// Is makes errors.Is match ErrLeaseBusy or ErrLeaseLost.
func (e *LeaseError) Is(target error) bool {
	if e.Lost {
		return target == ErrLeaseLost
	}
	return target == ErrLeaseBusy
}

// Leases keeps execution leases (one per target). None of these calls keeps
// a database connection after it returns.
type Leases interface {
	// AcquireLease takes target's lease for ttl when it is free or expired,
	// atomically (never get-then-set); otherwise
	// it fails with a *LeaseError naming the holder.
	AcquireLease(ctx context.Context, target string, requestID int64, holder string, ttl time.Duration) (Lease, error)
	// RenewLease extends l for ttl from now while l.Token is current and
	// unexpired; otherwise it fails with a *LeaseError (Lost).
	RenewLease(ctx context.Context, l Lease, ttl time.Duration) (Lease, error)
	// CheckLease fails with a *LeaseError (Lost) unless l.Token is current and unexpired.
	CheckLease(ctx context.Context, l Lease) error
	// ReleaseLease gives l up (nothing when it is no longer l's).
	ReleaseLease(ctx context.Context, l Lease) error
	// LiveLeases returns the unexpired leases by target.
	LiveLeases(ctx context.Context) (map[string]Lease, error)
}
