package commands

import (
	"context"
	"fmt"
	"slices"
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

// procedureCommand is the command a recovery procedure declares: it acts on
// one service, only requesters may run it, and an Approval command also
// takes --dry-run and --reason and is planned and submitted by dispatch.
func procedureCommand(p actions.Procedure) Command {
	d := p.Command()
	c := Command{
		Name: d.Name, Summary: d.Summary, Description: d.Description,
		Args: slices.Clone(d.Args), Flags: slices.Clone(d.Flags), Examples: slices.Clone(d.Examples),
		Approval:     d.Approval,
		ApprovalNote: d.ApprovalNote,
		Gate:         GateRequesters, // recovery actions, their dry runs, and what reveals infrastructure
		Service:      ServiceImplied,
		ServiceLast:  d.ServiceLast,
	}
	if d.Approval {
		c.Flags = append(c.Flags, flagDryRun, flagReason)
		a, ok := p.(actions.Action)
		c.Plan = func(ctx context.Context, call *Call) (actions.Plan, error) {
			if !ok {
				return actions.Plan{}, fmt.Errorf("/dr %s: %T declares an approval-gated command but is not an actions.Action", d.Name, p)
			}
			return a.Plan(ctx, call.Params())
		}
		return c
	}
	rd, ok := p.(actions.Reader)
	c.Run = func(ctx context.Context, call *Call) (chat.Message, error) {
		if !ok {
			return chat.Message{}, fmt.Errorf("/dr %s: %T declares a read-only command but is not an actions.Reader", d.Name, p)
		}
		res, err := rd.Read(ctx, call.Params())
		if err != nil {
			return chat.Message{}, fmt.Errorf("%s %s: %w", d.Name, call.Service, err)
		}
		if rep, ok := res.(actions.Report); ok && call.Registry != nil && call.Registry.deps.RecordReading != nil {
			// Every verification is on the record (audit log, incident timeline).
			if err := call.Registry.deps.RecordReading(ctx, Reading{Actor: call.User.ID, Channel: call.Channel, Command: d.Name, Service: call.Service, Report: rep}); err != nil {
				return chat.Message{}, fmt.Errorf("%s %s: %w", d.Name, call.Service, err)
			}
		}
		return resultMessage(call.Service, res)
	}
	return c
}

// Params turns the call into action parameters (without the request-level
// flags --dry-run and --reason), with the service resolved in the runbook.
func (c *Call) Params() actions.Params {
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
	if c.Registry != nil && c.Registry.deps.Runbook != nil && c.Service != "" {
		if cfg := c.Registry.deps.Runbook(); cfg != nil {
			p.Resolved, _ = cfg.Service(c.Service)
		}
	}
	return p
}

// request is how dispatch runs an Approval command: it plans; --dry-run
// shows the plan, otherwise the plan is submitted for approval. This is the
// approval gate: an Approval command has nothing else to run.
func (r *Registry) request(ctx context.Context, c *Command, call *Call) (chat.Message, error) {
	plan, err := c.Plan(ctx, call)
	if err != nil {
		return chat.Message{}, fmt.Errorf("plan %s: %w", c.Name, err)
	}
	if plan.Kind == "" {
		plan.Kind = c.Name
	}
	if plan.Service == "" {
		plan.Service = call.Service
	}
	if call.Has("dry-run") {
		return dryRunMessage(c.Name, plan), nil
	}
	if r.deps.Requests == nil {
		return chat.Message{}, fmt.Errorf("/dr %s: no request lifecycle is wired into the command registry", c.Name)
	}
	p := call.Params()
	p.DryRun = false
	return r.deps.Requests.Submit(ctx, Submission{
		User: call.User, Channel: call.Channel, Service: call.Service, Kind: c.Name, Params: p, Plan: plan, Reason: call.Flags["reason"],
	})
}

func dryRunMessage(kind string, plan actions.Plan) chat.Message {
	blocks := append([]chat.Block{chat.Header{Text: "Dry run: " + plan.Summary}}, PlanBlocks(plan)...)
	blocks = append(blocks, chat.Context{Text: "Dry run: nothing was changed and no approval was requested. Run it without --dry-run to request it."})
	return chat.Message{Text: "Dry run of /dr " + kind + ": " + plan.Summary, Blocks: blocks, Ephemeral: true}
}

// resultMessage renders a read-only procedure's domain result.
func resultMessage(service string, res any) (chat.Message, error) {
	switch v := res.(type) {
	case actions.Report:
		return verificationMessage(service, v), nil
	case []actions.BackupListing:
		return BackupsMessage(service, v), nil
	case actions.Diagnosis:
		return DiagnosisMessage(v), nil
	}
	return chat.Message{}, fmt.Errorf("no chat rendering for a %T result", res)
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

func verificationMessage(service string, rep actions.Report) chat.Message {
	head := fmt.Sprintf("Verification of %s: %s", service, verdict(rep))
	blocks := []chat.Block{chat.Header{Text: head}}
	blocks = append(blocks, ReportBlocks(rep)...)
	return chat.Message{Text: head, Blocks: blocks}
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
