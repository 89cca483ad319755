package commands

import (
	"context"

	"github.com/drbot-dev/drbot/bot/chat"
)

func timelineCommand(ops IncidentOps) Command {
	return Command{
		Name:        "timeline",
		Summary:     "Post this channel's incident timeline",
		Description: "Every recorded event of the incident, oldest first. `drbot timeline export INCIDENT` writes it as a Markdown post-mortem skeleton.",
		Examples:    []string{"/dr timeline"},
		Run: func(ctx context.Context, c *Call) (chat.Message, error) {
			return ops.Timeline(ctx, c.Channel)
		},
	}
}
