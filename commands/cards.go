package commands

import (
	"fmt"
	"strings"
	"time"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/drill"
	"github.com/drbot-dev/drbot/actions/runner"
	"github.com/drbot-dev/drbot/approvals"
	"github.com/drbot-dev/drbot/bot/chat"
	"github.com/drbot-dev/drbot/store"
)

// CardInput is everything a request's approval card shows.
type CardInput struct {
	Request   store.ActionRequest
	Plan      actions.Plan
	Approvals []store.Approval
	Policy    approvals.Policy
	Status    runner.Status
	Now       time.Time // for the expiry's "in 12m"
}

var stateLabel = map[store.RequestState]string{
	store.RequestPending:   "⏳ waiting for approval",
	store.RequestApproved:  "✅ approved, starting",
	store.RequestRunning:   "🔄 running",
	store.RequestVerifying: "🔎 verifying",
	store.RequestSucceeded: "✅ succeeded",
	store.RequestFailed:    "❌ failed",
	store.RequestDenied:    "🚫 denied",
	store.RequestExpired:   "⌛ expired",
	store.RequestCancelled: "✖ cancelled",
}

// RequestCard renders a request's card: the plan, who asked, the approvals
// so far and needed, the expiry, and its state (live progress while running,
// the verification report when done). Buttons are shown only while pending.
func RequestCard(in CardInput) chat.Message {
	r, p := in.Request, in.Plan
	count := approvals.Count(r, in.Approvals, nil)
	kind := r.Kind
	if r.Kind == store.KindDrill && p.Kind != "" && p.Kind != r.Kind {
		kind = "drill " + drill.Procedure(p) // the drilled procedure (a playbook by its name)
	}
	title := fmt.Sprintf("Request #%d: %s %s", r.ID, kind, r.Service)
	label := stateLabel[r.State]
	text := fmt.Sprintf("%s — %s (%d of %d approvals)", title, label, count, in.Policy.Required)
	approvalsValue := approvalsLine(r, in.Approvals, count, in.Policy.Required)
	if in.Policy.Required == 0 {
		text = fmt.Sprintf("%s — %s (no approval needed)", title, label)
		approvalsValue = "none needed: " + r.Kind + "s never touch live (drills.approval is off)"
	}

	blocks := []chat.Block{chat.Header{Text: title}, chat.Text{Text: "*" + label + "* — " + p.Summary}}
	fields := []chat.Field{
		{Label: "Requested by", Value: chat.Mention(r.RequestedBy)},
		{Label: "Approvals", Value: approvalsValue},
	}
	if r.State == store.RequestPending && !r.ExpiresAt.IsZero() {
		fields = append(fields, chat.Field{Label: "Expires", Value: expiry(r.ExpiresAt, in.Now)})
	}
	if r.Reason != "" {
		fields = append(fields, chat.Field{Label: "Reason", Value: r.Reason})
	}
	blocks = append(blocks, chat.Fields{Fields: fields})
	blocks = append(blocks, PlanBlocks(p)...)

	switch r.State {
	case store.RequestPending:
		approve := chat.Button{ActionID: chat.ActionApprove, Label: "Approve", Value: fmt.Sprint(r.ID), Style: chat.StylePrimary}
		if len(p.Danger) > 0 {
			// The plan overrides a safety check: approving it is the dangerous act.
			approve.Label, approve.Style = "Approve (forced)", chat.StyleDanger
		}
		blocks = append(blocks, chat.Actions{Buttons: []chat.Button{
			approve,
			{ActionID: chat.ActionDeny, Label: "Deny", Value: fmt.Sprint(r.ID), Style: chat.StyleDanger},
			{ActionID: chat.ActionCancel, Label: "Cancel", Value: fmt.Sprint(r.ID)},
		}})
	case store.RequestDenied:
		for _, a := range in.Approvals {
			if a.Decision == store.DecisionDeny {
				line := "Denied by " + chat.Mention(a.Approver)
				if a.Reason != "" {
					line += ": " + a.Reason
				}
				blocks = append(blocks, chat.Text{Text: line + ". Nothing was run."})
				break
			}
		}
	case store.RequestExpired:
		blocks = append(blocks, chat.Text{Text: fmt.Sprintf("Expired at %s without enough approvals. Nothing was run.", r.ExpiresAt.UTC().Format("15:04 MST"))})
	case store.RequestCancelled:
		blocks = append(blocks, chat.Text{Text: "Cancelled by " + chat.Mention(r.RequestedBy) + ". Nothing was run."})
	case store.RequestRunning, store.RequestVerifying:
		st := in.Status
		if st.Steps > 0 && st.StepIndex > 0 {
			blocks = append(blocks, chat.Progress{Label: fmt.Sprintf("Step %d of %d: %s", st.StepIndex, st.Steps, st.Step), Done: int64(st.StepIndex - 1), Total: int64(st.Steps), Unit: "steps"})
		} else if st.Step != "" {
			blocks = append(blocks, chat.Text{Text: "Step: " + st.Step})
		}
		if pr := st.Progress; pr != nil {
			blocks = append(blocks, chat.Progress{Label: pr.Step, Done: pr.Done, Total: pr.Total, Unit: pr.Unit})
		}
	case store.RequestSucceeded, store.RequestFailed:
		if in.Status.Reason != "" {
			blocks = append(blocks, chat.Text{Text: "*Failed:* " + in.Status.Reason})
		}
		if in.Status.Report != nil {
			blocks = append(blocks, chat.Text{Text: "*Verification*"})
			blocks = append(blocks, ReportBlocks(*in.Status.Report)...)
		}
	}
	hash := r.PlanHash
	if len(hash) > 12 {
		hash = hash[:12]
	}
	blocks = append(blocks, chat.Context{Text: fmt.Sprintf("request #%d · plan %s · target %s", r.ID, hash, r.Target)})
	return chat.Message{Text: text, Blocks: blocks}
}

func approvalsLine(r store.ActionRequest, as []store.Approval, count, required int) string {
	var who []string
	for _, a := range as {
		if a.Decision == store.DecisionApprove && a.PlanHash == r.PlanHash {
			who = append(who, chat.Mention(a.Approver))
		}
	}
	s := fmt.Sprintf("%d of %d", count, required)
	if len(who) > 0 {
		s += " (" + strings.Join(who, ", ") + ")"
	}
	return s
}

func expiry(at, now time.Time) string {
	s := at.UTC().Format("15:04 MST")
	if !now.IsZero() && at.After(now) {
		left := at.Sub(now).Round(time.Minute)
		if left < time.Minute {
			s += " (in less than a minute)"
		} else {
			s += fmt.Sprintf(" (in %dh%02dm)", int(left.Hours()), int(left.Minutes())%60)
		}
	}
	return s
}
