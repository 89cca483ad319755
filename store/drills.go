package store

import (
	"context"
	"errors"
	"time"
)

// Drills (issue 11, points 1 and 2): a drill is an action request of kind
// KindDrill whose plan is the drill form of a procedure (the plan's own kind
// names the procedure). It is never a restore: rollback and the restore
// history look only at requests of their own kinds.
const (
	// KindDrill is the action request kind of every drill.
	KindDrill = "drill"
	// KindDrillsCheck is the periodic job that reminds of due and overdue drills.
	KindDrillsCheck = "drills.check"

	// AuditDrillDue: a service's drill of a procedure became due (announced once).
	AuditDrillDue = "drill.due"
	// AuditDrillOverdue: a due drill is overdue (announced once).
	AuditDrillOverdue = "drill.overdue"
	// AuditDrillCopyCreated: a drill is about to create its throwaway database.
	AuditDrillCopyCreated = "drill.copy_created"
	// AuditDrillCopyDropped: a drill dropped its throwaway database.
	AuditDrillCopyDropped = "drill.copy_dropped"
	// AuditRequestAutoApproved is the data flag of a request.approved row
	// written for a request that needs no approval (a drill by default).
	AuditRequestAutoApproved = "auto"
)

// DrillRun is one drill request as /dr drills reads it.
type DrillRun struct {
	RequestID   int64
	Service     string
	Procedure   string // the drilled procedure: an action kind or a playbook name
	State       RequestState
	RequestedBy string
	CreatedAt   time.Time
	// StartedAt is when it began running (zero when it never ran);
	// FinishedAt when it reached a final state (zero while in flight).
	StartedAt  time.Time
	FinishedAt time.Time
}

// Duration is how long the drill ran (0 when it did not finish running).
func (r DrillRun) Duration() time.Duration {
	if r.StartedAt.IsZero() || r.FinishedAt.IsZero() {
		return 0
	}
	return r.FinishedAt.Sub(r.StartedAt)
}

// DrillRuns reads drill requests.
type DrillRuns interface {
	// DrillRuns returns the drills of service ("" = every service), newest first.
	DrillRuns(ctx context.Context, service string) ([]DrillRun, error)
}

// DrillReminder is one reminder that a drill is due or overdue.
type DrillReminder struct {
	Service   string
	Procedure string
	Kind      string    // AuditDrillDue or AuditDrillOverdue
	DueAt     time.Time // the due date it is about: one reminder of each kind per due date
}

// DrillReminders keeps which reminders were announced, so each is posted
// once whichever process checks, and across restarts.
type DrillReminders interface {
	// RecordDrillReminder records r; when it is new, ev is appended and jobs
	// inserted in the same transaction and created is true; otherwise
	// nothing is written.
	RecordDrillReminder(ctx context.Context, r DrillReminder, ev AuditEvent, jobs ...Job) (created bool, err error)
}

// ErrNotDrillCopy is returned when the bot is asked to drop a database it
// did not create as a drill copy.
var ErrNotDrillCopy = errors.New("not a drill copy created by drbot")

// DrillCopy is a throwaway database a drill created.
type DrillCopy struct {
	Server    string // host:port
	Name      string // the copy's database name (<db>_drill_<yyyymmddhhmmss>)
	Service   string
	Database  string // the config's database name
	Keep      bool   // --keep: it is kept after the drill
	CreatedAt time.Time
	DroppedAt time.Time // zero while it exists
}

// DrillCopies records the databases drills create: a drill copy is the only
// database drbot ever drops, and only one recorded here.
type DrillCopies interface {
	// RecordDrillCopy records that c is about to be created (idempotent).
	RecordDrillCopy(ctx context.Context, c DrillCopy) error
	// DrillCopyRecorded reports whether server/name was recorded by
	// RecordDrillCopy and not dropped yet.
	DrillCopyRecorded(ctx context.Context, server, name string) (bool, error)
	// DrillCopyDropped records that server/name was dropped.
	DrillCopyDropped(ctx context.Context, server, name string) error
	// DrillCopiesLeft returns the recorded copies not dropped yet, oldest first.
	DrillCopiesLeft(ctx context.Context) ([]DrillCopy, error)
}
