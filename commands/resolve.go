package commands

import (
	"context"

	"github.com/drbot-dev/drbot/bot/chat"
)

func resolveCommand(ops IncidentOps) Command {
	return Command{
		Name:    "resolve",
		Gate:    GateResponders,
		Summary: "Resolve this channel's incident (in PagerDuty too) and post the summary",
		Description: "Resolves the incident in PagerDuty, cancels pending escalation timers and RTO warnings, and posts a summary " +
			"(time to acknowledge, time to resolve against the RTO, actions taken) and the post-incident checklist.",
		Args:     []Arg{{Name: "summary", Help: "What fixed it, for the summary and the post-mortem.", Optional: true, Variadic: true}},
		Examples: []string{"/dr resolve", "/dr resolve restored lstm_pfd from the 02:00 backup"},
		Run: func(ctx context.Context, c *Call) (chat.Message, error) {
			return ops.Resolve(ctx, c.Channel, c.User, c.Args["summary"])
		},
	}
}
