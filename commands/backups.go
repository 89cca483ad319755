package commands

import (
	"context"
	"time"

	"github.com/drbot-dev/drbot/actions/backups"
	"github.com/drbot-dev/drbot/bot/chat"
	"github.com/drbot-dev/drbot/runbook"
)

// backupsOpener opens backup locations for /dr backups; tests replace it.
var backupsOpener backups.Opener = backups.DefaultOpener

// backupsCommand is /dr backups <service> [db|models]: read-only, not
// approval-gated.
func backupsCommand(cfg func() *runbook.Config) Command {
	return Command{
		Name:    "backups",
		Gate:    GateRequesters,
		Summary: "List a service's backups, newest first, and whether the newest is within the RPO",
		Description: "Lists the database backups (or with models, the model backups) from the configured locations " +
			"(s3:// or file://) with size and age, and checks the newest against the service's RPO.",
		Service:  ServiceImplied,
		Args:     []Arg{{Name: "what", Help: "db (default) or models.", Optional: true}},
		Examples: []string{"/dr backups lstm-pfd", "/dr backups lstm-pfd models"},
		Run: func(ctx context.Context, c *Call) (chat.Message, error) {
			return backups.Message(ctx, cfg(), c.Service, c.Args["what"], backupsOpener, time.Now())
		},
	}
}
