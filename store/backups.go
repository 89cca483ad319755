package store

import (
	"context"
	"time"
)

// Audit kinds of backup freshness transitions (issue 11, point 3).
const (
	// AuditBackupStale: a backup location's newest backup became older than
	// its `every` plus a tenth (or it has none).
	AuditBackupStale = "backup.stale"
	// AuditBackupRecovered: a stale backup location has a fresh backup again.
	AuditBackupRecovered = "backup.recovered"
)

// KindBackupsCheck is the periodic job that checks every backup location.
const KindBackupsCheck = "backups.check"

// BackupState is what the last check found at one backup location of the
// runbook config: a database's backups or a service's model backups.
type BackupState struct {
	Service   string
	Kind      string // "database" or "models"
	Name      string // the database name, or "models"
	Location  string // s3://… or file://…
	NewestKey string // the newest backup's name; "" when there is none
	NewestAt  time.Time
	CheckedAt time.Time
	Stale     bool
}

// BackupStates keeps the freshness state of backup locations, so that a
// change is announced once whichever process checks, and across restarts.
type BackupStates interface {
	// RecordBackupState writes s as the location's state. When its Stale
	// differs from the recorded one (a location seen for the first time
	// counts as fresh), ev is appended and jobs inserted in the same
	// transaction and changed is true; otherwise neither is written.
	RecordBackupState(ctx context.Context, s BackupState, ev AuditEvent, jobs ...Job) (changed bool, err error)
	// BackupStatesOf returns the recorded states of service's locations.
	BackupStatesOf(ctx context.Context, service string) ([]BackupState, error)
}
