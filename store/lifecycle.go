package store

import "context"

// IncidentTx is one transaction of the incident lifecycle: a webhook delivery,
// a timer firing or a command changes an incident, its marks, audit rows and
// jobs together or not at all (house style 6). Audit rows take the chain's lock
// until commit, so they are written last, at commit.
type IncidentTx interface {
	// RecordDelivery records a webhook delivery id; false when it was seen before.
	RecordDelivery(ctx context.Context, id string) (bool, error)
	// OpenIncident inserts inc (keyed by PagerDutyID) with an incident.opened
	// audit row, or returns the existing one; either way the row is locked
	// until the transaction ends. created reports an insert. Concurrent calls
	// for one PagerDuty id create it once.
	OpenIncident(ctx context.Context, inc Incident) (out Incident, created bool, err error)
	// LockIncident returns incident id locked until the transaction ends, or ErrNotFound.
	LockIncident(ctx context.Context, id int64) (Incident, error)
	// LockIncidentByPagerDutyID is LockIncident by PagerDuty id.
	LockIncidentByPagerDutyID(ctx context.Context, pdID string) (Incident, error)
	// SaveIncident writes a locked incident's fields (not its id or PagerDuty id).
	SaveIncident(ctx context.Context, inc Incident) (Incident, error)
	// Marks returns the incident's marks: the latest value of each key.
	Marks(ctx context.Context, incidentID int64) (map[string]string, error)
	// AppendAudit queues ev; queued rows are appended to the chain in order
	// just before commit (the chain's lock is then held only briefly).
	AppendAudit(ctx context.Context, ev AuditEvent) error
	// InsertJobs inserts durable jobs that exist only if the transaction commits.
	InsertJobs(ctx context.Context, jobs ...Job) error
	// CancelJobs cancels the incident's jobs of the given kinds that have not
	// started (scheduled, available, retryable, pending) and returns how many.
	CancelJobs(ctx context.Context, incidentID int64, kinds ...string) (int, error)
}

// Lifecycle runs incident transactions. *postgres.DB implements it.
type Lifecycle interface {
	// InIncidentTx runs fn in one transaction and commits when fn returns nil.
	InIncidentTx(ctx context.Context, fn func(tx IncidentTx) error) error
	// IncidentMarks returns the incident's marks outside a transaction.
	IncidentMarks(ctx context.Context, incidentID int64) (map[string]string, error)
}

// Marks are audit rows whose data holds {"mark": KEY, "value": VALUE} (and/or
// {"marks": {KEY: VALUE, …}}): durable facts about an incident's lifecycle (a
// timer fired, the header's message reference, a checklist tick, who
// acknowledged) that also read as its timeline. The latest row wins.
const (
	MarkKey   = "mark"
	MarkValue = "value"
	MarksKey  = "marks"
)

// QueueIncidentEvents is the job queue of recorded incident events waiting to
// be applied; the store runs it with one worker per process, so events apply
// in the order they were recorded.
const QueueIncidentEvents = "incident_events"
