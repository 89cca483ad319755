package actions

import "time"

// MaxBackupRows is how many rows a backup listing shows (the newest).
const MaxBackupRows = 15

// BackupRow is one backup: a database backup object, or a model backup (all
// objects under one top-level prefix, or one object at the top level).
type BackupRow struct {
	Name    string
	Size    int64
	Objects int // 1 for a database backup
	Newest  time.Time
	Age     time.Duration
}

// BackupListing is the backups of one location: the domain report of
// /dr backups (actions/backups lists, commands renders).
type BackupListing struct {
	Title    string // e.g. "lstm_pfd (database)"
	Location string
	Rows     []BackupRow // the newest MaxBackupRows, newest first
	Total    int         // how many backups there are in all
	// Retained is the most rows held in memory at once while listing: the
	// listing pages through the location keeping only the newest
	// MaxBackupRows, so this never exceeds MaxBackupRows however many
	// objects there are.
	Retained int
	// Verdict is the RPO line; OK reports whether the newest backup is within
	// the RPO (true when no RPO is set and a backup exists).
	Verdict string
	OK      bool
}
