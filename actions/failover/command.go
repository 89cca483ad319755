package failover

import "github.com/drbot-dev/drbot/actions"

// flagForce is --force, declared once: the parser binds it and Plan reads it.
var flagForce = actions.Flag{Name: FlagForce, Help: "Fail over although the health URL still answers 2xx (the primary looks up). The card shows it in red and it needs one more approval than usual.", Bool: true}

// Command declares /dr failover.
var Command = actions.Command{
	Name:    Kind,
	Summary: "Fail over to the secondary region: promote the replica, switch DNS, check health",
	Description: "Preflight (runbook step 1: the service's health URL must not answer 2xx, i.e. the primary is unreachable; " +
		"replica available; current DNS value), then promotes the RDS read replica, switches the configured DNS record " +
		"and checks that the same health URL answers 2xx again. Needs two approvals unless configured otherwise.",
	Approval: true,
	Flags:    []actions.Flag{flagForce},
	Examples: []string{"/dr failover inflow --dry-run", `/dr failover inflow --reason "us-east-1 down"`, `/dr failover inflow --force --reason "primary answers but corrupts writes"`},
}

// Command implements actions.Action.
func (a *Action) Command() actions.Command { return Command }
