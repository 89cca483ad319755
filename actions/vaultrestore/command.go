package vaultrestore

import "github.com/drbot-dev/drbot/actions"

// flagBackup names the snapshot to restore.
var flagBackup = actions.Flag{
	Name:  "backup",
	Help:  "Snapshot to restore, by name under vault.snapshots; the newest if omitted (pre-restore-* snapshots are only restored when named).",
	Value: "NAME",
}

// Command declares /dr restore-vault.
var Command = actions.Command{
	Name:    Kind,
	Summary: "Restore Vault from a raft snapshot (the current state is saved first and kept)",
	Description: "Runbook 000 \"Secret Recovery\" (vault operator raft snapshot restore). Plans the restore: which snapshot object and " +
		"version or ETag, its size and age against vault.every, and the Vault it goes to (address from vault.address_env, token " +
		"from vault.token_env; neither is ever shown). After approval it saves Vault's current state next to the snapshots as " +
		"pre-restore-<yyyymmddhhmmss>.snap (kept; restore it with --backup to undo), fetches the pinned snapshot and checks its " +
		"checksums, installs it (sys/storage/raft/snapshot-force), then verifies that Vault is initialized, unsealed and active " +
		"and that every vault.verify path lists keys.",
	Approval: true,
	Flags:    []actions.Flag{flagBackup},
	Examples: []string{
		"/dr restore-vault inflow --dry-run",
		`/dr restore-vault inflow --backup vault-20261130-020000.snap --reason "secrets engine wiped"`,
	},
}

// Command implements actions.Action.
func (*Action) Command() actions.Command { return Command }
