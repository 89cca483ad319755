package commands

import (
	"context"

	"github.com/drbot-dev/drbot/bot/chat"
)

func securityCommand(ops IncidentOps) Command {
	return Command{
		Name:        "security",
		Gate:        GateResponders,
		Summary:     "Mark this channel's incident a security incident and notify security",
		Description: "Fires the service's escalations with `on: security`: their people are mentioned and invited, and PagerDuty gets a note.",
		Args:        []Arg{{Name: "reason", Help: "Why, for the timeline.", Optional: true, Variadic: true}},
		Examples:    []string{"/dr security", "/dr security credentials found in a public bucket"},
		Run: func(ctx context.Context, c *Call) (chat.Message, error) {
			return ops.MarkSecurity(ctx, c.Channel, c.User, c.Args["reason"])
		},
	}
}
