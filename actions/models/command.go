package models

import "github.com/drbot-dev/drbot/actions"

// flagBackup is --backup, declared once: the parser binds it and Plan reads it.
var flagBackup = actions.Flag{Name: FlagBackup, Help: "Snapshot folder (e.g. models-20260114-020000) or, for a mirror, a prefix; the newest snapshot if omitted.", Value: "PREFIX"}

// Command declares /dr restore-models.
var Command = actions.Command{
	Name:        Kind,
	Summary:     "Restore model files from a backup prefix, then restart the workloads that load them",
	Description: "Copies one backup snapshot (or a mirror, whole) onto the target prefix (only changed objects), restarts the configured deployments and verifies.",
	Approval:    true,
	Flags:       []actions.Flag{flagBackup},
	Examples:    []string{"/dr restore-models lstm-pfd --dry-run"},
}

// Command implements actions.Action.
func (a *Action) Command() actions.Command { return Command }
