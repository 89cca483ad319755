package commands

import (
	"context"

	"github.com/drbot-dev/drbot/bot/chat"
)

// IncidentOps runs the incident commands against the incident whose channel
// a command was typed in. bot/incident implements it (*incident.Lifecycle).
// Errors follow Run's rules: a *Refusal is shown, anything else is a failure.
type IncidentOps interface {
	// Acknowledge acknowledges the incident (in PagerDuty too).
	Acknowledge(ctx context.Context, channel string, user chat.User) (chat.Message, error)
	// Resolve resolves the incident (in PagerDuty too) with an optional summary.
	Resolve(ctx context.Context, channel string, user chat.User, summary string) (chat.Message, error)
	// MarkSecurity marks the incident a security incident.
	MarkSecurity(ctx context.Context, channel string, user chat.User, reason string) (chat.Message, error)
	// Timeline returns the incident's timeline.
	Timeline(ctx context.Context, channel string) (chat.Message, error)
	// Status returns the incident's current state, or the open incidents
	// outside an incident channel.
	Status(ctx context.Context, channel string) (chat.Message, error)
}

// incidentCommands are registered when Deps.Incidents is set.
var incidentCommands = []func(IncidentOps) Command{
	ackCommand, resolveCommand, securityCommand, timelineCommand, statusCommand,
}

func statusCommand(ops IncidentOps) Command {
	return Command{
		Name:    "status",
		Summary: "Show the incident's state and RTO clock, or the open incidents",
		Description: "In an incident channel: status, who acknowledged, elapsed and remaining time against the RTO. " +
			"Elsewhere: every open incident with its channel.",
		Examples: []string{"/dr status"},
		Run: func(ctx context.Context, c *Call) (chat.Message, error) {
			return ops.Status(ctx, c.Channel)
		},
	}
}
