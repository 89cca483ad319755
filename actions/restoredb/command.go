package restoredb

import "github.com/drbot-dev/drbot/actions"

// The flags and argument of restore-db and rollback: declared once, read
// through these declarations (flagDB.String(p)), shown by /dr help.
var (
	flagDB      = actions.Flag{Name: "db", Help: "Database to restore; the service's only database if omitted.", Value: "NAME"}
	flagBackup  = actions.Flag{Name: "backup", Help: "Backup object key; the newest backup if omitted.", Value: "KEY"}
	argRequest  = actions.Arg{Name: "request", Help: "The restore-db request number to roll back; the newest restore whose swap happened if omitted.", Optional: true}
	flagRBackDB = actions.Flag{Name: "db", Help: "Database to roll back; the service's only database if omitted.", Value: "NAME"}
)

// RestoreCommand declares /dr restore-db.
var RestoreCommand = actions.Command{
	Name:    KindRestore,
	Summary: "Restore a database from a backup (into a side database, checked, then swapped in)",
	Description: "Plans the restore: which backup object and version, how old against the RPO, which database. " +
		"After approval it restores into a side database, runs the configured checks, swaps it in and verifies. " +
		"The pre-restore database is kept (see /dr rollback).",
	Approval: true,
	Flags:    []actions.Flag{flagDB, flagBackup},
	Examples: []string{
		"/dr restore-db lstm-pfd --dry-run",
		`/dr restore-db lstm-pfd --backup db/2026-11-23.dump --reason "db corrupted at 14:02"`,
	},
}

// RollbackCommand declares /dr rollback.
var RollbackCommand = actions.Command{
	Name:    KindRollback,
	Summary: "Swap the pre-restore database of an earlier restore back in",
	Description: "Undoes a restore-db request whose swap happened, whatever its final state (a restore that failed after the swap left its copy live): " +
		"the database kept before it is swapped back in and verified. Without a request number it undoes the newest such restore of the database " +
		"that was not rolled back yet; the card names the request, its backup and when it swapped.",
	Approval: true,
	Args:     []actions.Arg{argRequest},
	Flags:    []actions.Flag{flagRBackDB},
	Examples: []string{"/dr rollback lstm-pfd", "/dr rollback lstm-pfd 42 --dry-run"},
}

// Command implements actions.Action.
func (*RestoreDB) Command() actions.Command { return RestoreCommand }

// Command implements actions.Action.
func (*Rollback) Command() actions.Command { return RollbackCommand }
