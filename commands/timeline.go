package commands

import (
	"context"

	"github.com/drbot-dev/drbot/bot/chat"
)

func timelineCommand(ops IncidentOps) Command {
	return Command{
		Name:        "timeline",
		Summary:     "Post this channel's incident timeline",
		Description: "The incident's timeline from its audit log, oldest first: each step in words with how long it took and who acted (\"restore-db lstm_pfd: streamed 8.4 KiB in 1.2 s\", \"approved by @bob\", \"Escalated to Platform Lead\"), repeated rows folded into one line (×N). `drbot timeline export INCIDENT` writes the post-mortem in Markdown, with the achieved RTO and RPO.",
		Examples:    []string{"/dr timeline"},
		Run: func(ctx context.Context, c *Call) (chat.Message, error) {
			return ops.Timeline(ctx, c.Channel)
		},
	}
}
