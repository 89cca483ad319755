package commands

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/bot/chat"
	"github.com/drbot-dev/drbot/store"
)

// Requests is what the recovery commands need from the bot's request
// lifecycle (bot.Requests implements it).
type Requests interface {
	// Submit records an approval-gated request for s and posts its approval
	// card in s.Channel; the returned message is the requester's reply.
	Submit(ctx context.Context, s Submission) (chat.Message, error)
	// Cancel withdraws request id for user (its requester) before it runs.
	Cancel(ctx context.Context, user chat.User, id int64) (chat.Message, error)
	// Deny records user's denial of request id with a reason (the card's
	// Deny button cannot carry one).
	Deny(ctx context.Context, user chat.User, id int64, reason string) (chat.Message, error)
	// Recent returns up to limit requests of service, newest first.
	Recent(ctx context.Context, service string, limit int) ([]store.ActionRequest, error)
}

// Submission is a planned destructive command waiting to become a request.
type Submission struct {
	User    chat.User
	Channel string
	Service string
	Kind    string
	Params  actions.Params
	Plan    actions.Plan
	Reason  string
}

// Flags every recovery command takes.
var (
	flagDryRun = Flag{Name: "dry-run", Help: "Show the plan only: nothing changes and no approval is needed.", Bool: true}
	flagReason = Flag{Name: "reason", Help: "Why; shown on the approval card and recorded in the audit log.", Value: "TEXT"}
)

// recoveryCommands are the approval-gated commands, one per action kind, in
// the order of the runbooks.
func recoveryCommands() []Command {
	return []Command{
		{
			Name:    "restore-db",
			Summary: "Restore a database from a backup (into a side database, checked, then swapped in)",
			Description: "Plans the restore: which backup object and version, how old against the RPO, which database. " +
				"After approval it restores into a side database, runs the configured checks, swaps it in and verifies. " +
				"The pre-restore database is kept (see /dr rollback).",
			Service:  ServiceImplied,
			Approval: true,
			Flags: []Flag{
				{Name: "db", Help: "Database to restore; the service's only database if omitted.", Value: "NAME"},
				{Name: "backup", Help: "Backup object key; the newest backup if omitted.", Value: "KEY"},
				flagDryRun, flagReason,
			},
			Examples: []string{
				"/dr restore-db lstm-pfd --dry-run",
				`/dr restore-db lstm-pfd --backup db/2026-11-23.dump --reason "db corrupted at 14:02"`,
			},
		},
		{
			Name:        "restore-models",
			Summary:     "Restore model files from a backup prefix, then restart the workloads that load them",
			Description: "Copies one backup snapshot (or a mirror, whole) onto the target prefix (only changed objects), restarts the configured deployments and verifies.",
			Service:     ServiceImplied,
			Approval:    true,
			Flags: []Flag{
				{Name: "backup", Help: "Snapshot folder (e.g. models-20260114-020000) or, for a mirror, a prefix; the newest snapshot if omitted.", Value: "PREFIX"},
				flagDryRun, flagReason,
			},
			Examples: []string{"/dr restore-models lstm-pfd --dry-run"},
		},
		{
			Name:        "rollout-restart",
			Summary:     "Restart a deployment's pods and wait for the rollout",
			Description: "Like kubectl rollout restart, then waits for the rollout as kubectl rollout status does.",
			Service:     ServiceImplied,
			Approval:    true,
			Args:        []Arg{{Name: "deployment", Help: "Kubernetes deployment (name or deployment/name)."}},
			Flags:       []Flag{flagDryRun, flagReason},
			Examples:    []string{"/dr rollout-restart lstm-pfd lstm-pfd-dashboard"},
		},
		{
			Name:        "scale",
			Summary:     "Scale a deployment and wait for the rollout",
			Description: "Sets the deployment's replica count and waits until the replicas are ready.",
			Service:     ServiceImplied,
			Approval:    true,
			Args: []Arg{
				{Name: "deployment", Help: "Kubernetes deployment (name or deployment/name)."},
				{Name: "replicas", Help: "Desired replica count."},
			},
			Flags:    []Flag{flagDryRun, flagReason},
			Examples: []string{"/dr scale inflow inflow-api 6"},
		},
		{
			Name:    "failover",
			Summary: "Fail over to the secondary region: promote the replica, switch DNS, check health",
			Description: "Preflight (runbook step 1: the service's health URL must not answer 2xx, i.e. the primary is unreachable; " +
				"replica available; current DNS value), then promotes the RDS read replica, switches the configured DNS record " +
				"and checks that the same health URL answers 2xx again. Needs two approvals unless configured otherwise.",
			Service:  ServiceImplied,
			Approval: true,
			Flags: []Flag{
				{Name: "force", Help: "Fail over although the health URL still answers 2xx (the primary looks up). The card shows it in red and it needs one more approval than usual.", Bool: true},
				flagDryRun, flagReason,
			},
			Examples: []string{"/dr failover inflow --dry-run", `/dr failover inflow --reason "us-east-1 down"`, `/dr failover inflow --force --reason "primary answers but corrupts writes"`},
		},
		{
			Name:    "rollback",
			Summary: "Swap the pre-restore database of an earlier restore back in",
			Description: "Undoes a restore-db request whose swap happened, whatever its final state (a restore that failed after the swap left its copy live): " +
				"the database kept before it is swapped back in and verified. Without a request number it undoes the newest such restore of the database " +
				"that was not rolled back yet; the card names the request, its backup and when it swapped.",
			Service:  ServiceImplied,
			Approval: true,
			Args:     []Arg{{Name: "request", Help: "The restore-db request number to roll back; the newest restore whose swap happened if omitted.", Optional: true}},
			Flags: []Flag{
				{Name: "db", Help: "Database to roll back; the service's only database if omitted.", Value: "NAME"},
				flagDryRun, flagReason,
			},
			Examples: []string{"/dr rollback lstm-pfd", "/dr rollback lstm-pfd 42 --dry-run"},
		},
	}
}

// RegisterRecovery registers the recovery commands (restore-db,
// restore-models, rollout-restart, scale, failover, rollback, verify, cancel, deny)
// on r. They plan through the registry's Deps.Actions and submit requests
// through Deps.Requests; a kind missing from Deps.Actions refuses clearly.
// Commands already registered by name (by another part of the bot) are left
// as they are.
func RegisterRecovery(r *Registry) {
	for _, c := range recoveryCommands() {
		c.Run = runAction(c.Name)
		c.Gate = GateRequesters // recovery actions and their dry runs
		if r.Lookup(c.Name) == nil {
			r.MustRegister(c)
		}
	}
	for _, c := range []Command{verifyCommand(), cancelCommand(), denyCommand()} {
		if r.Lookup(c.Name) == nil {
			r.MustRegister(c)
		}
	}
}

// action returns the action for kind, or a refusal naming what is missing.
func (r *Registry) action(kind string) (actions.Action, error) {
	if a := r.deps.Actions[kind]; a != nil {
		return a, nil
	}
	return nil, Refusef("/dr %s is not available: this drbot has no %s action configured, so nothing was planned or changed.", kind, kind)
}

// paramsOf turns a call into action parameters (without the request-level
// flags --dry-run and --reason).
func paramsOf(c *Call) actions.Params {
	p := actions.Params{Service: c.Service, Args: map[string]string{}, Flags: map[string]string{}, DryRun: c.Has("dry-run")}
	for k, v := range c.Args {
		p.Args[k] = v
	}
	for k, v := range c.Flags {
		if k == "dry-run" || k == "reason" {
			continue
		}
		p.Flags[k] = v
	}
	return p
}

// runAction plans kind; --dry-run shows the plan, otherwise the plan is
// submitted for approval.
func runAction(kind string) func(ctx context.Context, c *Call) (chat.Message, error) {
	return func(ctx context.Context, c *Call) (chat.Message, error) {
		a, err := c.Registry.action(kind)
		if err != nil {
			return chat.Message{}, err
		}
		p := paramsOf(c)
		plan, err := a.Plan(ctx, p)
		if err != nil {
			return chat.Message{}, fmt.Errorf("plan %s: %w", kind, err)
		}
		if plan.Kind == "" {
			plan.Kind = kind
		}
		if plan.Service == "" {
			plan.Service = c.Service
		}
		if p.DryRun {
			blocks := append([]chat.Block{chat.Header{Text: "Dry run: " + plan.Summary}}, PlanBlocks(plan)...)
			blocks = append(blocks, chat.Context{Text: "Dry run: nothing was changed and no approval was requested. Run it without --dry-run to request it."})
			return chat.Message{Text: "Dry run of /dr " + kind + ": " + plan.Summary, Blocks: blocks, Ephemeral: true}, nil
		}
		if c.Registry.deps.Requests == nil {
			return chat.Message{}, fmt.Errorf("/dr %s: no request lifecycle is wired into the command registry", kind)
		}
		p.DryRun = false
		return c.Registry.deps.Requests.Submit(ctx, Submission{
			User: c.User, Channel: c.Channel, Service: c.Service, Kind: kind, Params: p, Plan: plan, Reason: c.Flags["reason"],
		})
	}
}

// PlanBlocks renders a plan: overridden safety checks (alerts), target,
// pinned facts, warnings and numbered steps.
func PlanBlocks(p actions.Plan) []chat.Block {
	fields := []chat.Field{{Label: "Service", Value: p.Service}, {Label: "Target", Value: p.Target}}
	for _, f := range p.Facts {
		fields = append(fields, chat.Field{Label: f.Label, Value: f.Value})
	}
	var blocks []chat.Block
	for _, d := range p.Danger {
		blocks = append(blocks, chat.Alert{Text: d})
	}
	blocks = append(blocks, chat.Fields{Fields: fields})
	for _, w := range p.Warnings {
		blocks = append(blocks, chat.Text{Text: "⚠ " + w})
	}
	if len(p.Steps) > 0 {
		var b strings.Builder
		b.WriteString("*Steps*")
		for i, s := range p.Steps {
			fmt.Fprintf(&b, "\n%d. %s", i+1, stepText(s))
		}
		blocks = append(blocks, chat.Text{Text: b.String()})
	}
	return blocks
}

func stepText(s actions.Step) string {
	if s.Description != "" {
		return s.Description
	}
	return s.Name
}

func verifyCommand() Command {
	return Command{
		Name:        "verify",
		Gate:        GateRequesters, // shows hosts, databases and metrics
		Summary:     "Run a service's checks and show a pass/fail table",
		Description: "Read-only: runs every configured check (HTTP health, metrics, SQL, pod readiness) and shows what was observed.",
		Service:     ServiceImplied,
		Examples:    []string{"/dr verify lstm-pfd"},
		Run: func(ctx context.Context, c *Call) (chat.Message, error) {
			a, err := c.Registry.action("verify")
			if err != nil {
				return chat.Message{}, err
			}
			plan, err := a.Plan(ctx, paramsOf(c))
			if err != nil {
				return chat.Message{}, fmt.Errorf("plan verify: %w", err)
			}
			rep, err := a.Verify(ctx, plan)
			if err != nil {
				return chat.Message{}, fmt.Errorf("verify %s: %w", c.Service, err)
			}
			head := fmt.Sprintf("Verification of %s: %s", c.Service, verdict(rep))
			blocks := []chat.Block{chat.Header{Text: head}}
			blocks = append(blocks, ReportBlocks(rep)...)
			return chat.Message{Text: head, Blocks: blocks}, nil
		},
	}
}

func verdict(rep actions.Report) string {
	switch {
	case len(rep.Checks) == 0:
		return "no checks ran"
	case rep.OK():
		return fmt.Sprintf("all %d checks passed", len(rep.Checks))
	default:
		return fmt.Sprintf("%d of %d checks failed", len(rep.Failed()), len(rep.Checks))
	}
}

// ReportBlocks renders a verification report as a pass/fail table.
func ReportBlocks(rep actions.Report) []chat.Block {
	if len(rep.Checks) == 0 {
		return []chat.Block{chat.Text{Text: "No checks ran."}}
	}
	var b strings.Builder
	for i, ch := range rep.Checks {
		if i > 0 {
			b.WriteString("\n")
		}
		mark := "✅"
		if !ch.OK {
			mark = "❌"
		}
		fmt.Fprintf(&b, "%s *%s* (%s %s): %s", mark, ch.Name, ch.Kind, ch.Target, ch.Observed)
		if ch.Expected != "" {
			fmt.Fprintf(&b, ", expected %s", ch.Expected)
		}
		if ch.Error != "" {
			fmt.Fprintf(&b, " — %s", ch.Error)
		}
	}
	return []chat.Block{chat.Text{Text: b.String()}}
}

func cancelCommand() Command {
	return Command{
		Name:        "cancel",
		Summary:     "Withdraw your request before it runs",
		Description: "Cancels a pending or approved request that has not started; only its requester can.",
		Args:        []Arg{{Name: "request", Help: "The request number (shown on its card)."}},
		Examples:    []string{"/dr cancel 42"},
		Run: func(ctx context.Context, c *Call) (chat.Message, error) {
			id, err := RequestID(c.Args["request"])
			if err != nil {
				return chat.Message{}, err
			}
			if c.Registry.deps.Requests == nil {
				return chat.Message{}, fmt.Errorf("/dr cancel: no request lifecycle is wired into the command registry")
			}
			return c.Registry.deps.Requests.Cancel(ctx, c.User, id)
		},
	}
}

func denyCommand() Command {
	return Command{
		Name:        "deny",
		Summary:     "Deny a request, saying why",
		Description: "Denies a pending request as the card's Deny button does, with a reason that the card and the audit log show. Only listed approvers other than the requester can deny.",
		Args: []Arg{
			{Name: "request", Help: "The request number (shown on its card)."},
			{Name: "reason", Help: "Why: shown on the card and kept in the audit log.", Variadic: true},
		},
		Examples: []string{`/dr deny 42 the 02:00 backup predates the corruption: request the 2026-11-22 one`},
		Run: func(ctx context.Context, c *Call) (chat.Message, error) {
			id, err := RequestID(c.Args["request"])
			if err != nil {
				return chat.Message{}, err
			}
			if c.Registry.deps.Requests == nil {
				return chat.Message{}, fmt.Errorf("/dr deny: no request lifecycle is wired into the command registry")
			}
			return c.Registry.deps.Requests.Deny(ctx, c.User, id, c.Args["reason"])
		},
	}
}

// RequestID parses a request number as users type it ("42" or "#42").
func RequestID(s string) (int64, error) {
	id, err := strconv.ParseInt(strings.TrimPrefix(strings.TrimSpace(s), "#"), 10, 64)
	if err != nil || id <= 0 {
		return 0, Refusef("%s is not a request number (the number on the request's card, e.g. 42)", quoteUser(s))
	}
	return id, nil
}
