package commands

import (
	"context"
	"fmt"
	"slices"

	"github.com/drbot-dev/drbot/approvals"
	"github.com/drbot-dev/drbot/bot/chat"
	"github.com/drbot-dev/drbot/runbook"
)

// Gate says who may run a command. Dispatch enforces it before the command
// runs (and before it plans anything), so no command of a gated category can
// forget the check.
type Gate int

const (
	// GateNone lets everyone run the command (help, status, timeline, and
	// commands with their own check: cancel, deny).
	GateNone Gate = iota
	// GateRequesters is for recovery actions, their dry runs and the
	// commands that reveal infrastructure (backups, verify): slack.requesters,
	// everyone when unset. Every Approval command is requester-gated.
	GateRequesters
	// GateResponders is for the incident commands (ack, resolve, security):
	// slack.responders, the incident channel's members when unset.
	GateResponders
)

// Access decides whether a user may run a gated command.
type Access interface {
	// Allow returns nil when user may run command (its name) behind gate in
	// channel, and a *Refusal that says who may otherwise.
	Allow(ctx context.Context, gate Gate, user chat.User, channel, command string) error
}

// PeopleAccess is Access from the runbook's slack.requesters and
// slack.responders, resolved like slack.approvers (user ids, user group ids,
// e-mail addresses).
type PeopleAccess struct {
	// Config returns the runbook config.
	Config func() *runbook.Config
	// Resolver turns the lists into user ids (and caches them).
	Resolver *approvals.Resolver
	// Members returns the user ids in a channel (chat.MemberLister); nil
	// means channel membership cannot be checked and unset responders allow
	// everyone.
	Members func(ctx context.Context, channel string) ([]string, error)
}

// Allow implements Access.
func (a *PeopleAccess) Allow(ctx context.Context, gate Gate, user chat.User, channel, command string) error {
	if gate == GateNone {
		return nil
	}
	var cfg *runbook.Config
	if a.Config != nil {
		cfg = a.Config()
	}
	var list []string
	role := ""
	switch gate {
	case GateRequesters:
		if cfg != nil {
			list = cfg.Slack.Requesters
		}
		role = "requesters"
	case GateResponders:
		if cfg != nil {
			list = cfg.Slack.Responders
		}
		role = "responders"
	default:
		return fmt.Errorf("access to /dr %s: unknown gate %d", command, gate)
	}
	if list != nil {
		if a.Resolver == nil {
			return fmt.Errorf("access to /dr %s: slack.%s is set but no resolver is wired", command, role)
		}
		set, err := a.Resolver.Resolve(ctx, list)
		if err != nil {
			return fmt.Errorf("access to /dr %s: resolve slack.%s: %w", command, role, err)
		}
		if set.Has(user.ID) {
			return nil
		}
		return Refusef("Only the %s (%s) may run /dr %s; ask one of them. Nothing was done.", role, chat.People(list), command)
	}
	if gate == GateRequesters || a.Members == nil || channel == "" {
		return nil // unset requesters: everyone, as before
	}
	members, err := a.Members(ctx, channel)
	if err != nil {
		return fmt.Errorf("access to /dr %s: members of channel %s: %w", command, channel, err)
	}
	if slices.Contains(members, user.ID) {
		return nil
	}
	return Refusef("Only members of this channel may run /dr %s (no slack.responders are configured); ask a member to invite you. Nothing was done.", command)
}
