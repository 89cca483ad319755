package commands

import (
	"context"

	"github.com/drbot-dev/drbot/bot/chat"
)

func ackCommand(ops IncidentOps) Command {
	return Command{
		Name:        "ack",
		Gate:        GateResponders,
		Summary:     "Acknowledge this channel's incident (in PagerDuty too)",
		Description: "Acknowledges the incident in PagerDuty as drbot's PagerDuty user and records who did it in the header and the timeline.",
		Examples:    []string{"/dr ack"},
		Run: func(ctx context.Context, c *Call) (chat.Message, error) {
			return ops.Acknowledge(ctx, c.Channel, c.User)
		},
	}
}
