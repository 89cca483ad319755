package bot

import (
	"strings"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/approvals"
	"github.com/drbot-dev/drbot/bot/chat"
	"github.com/drbot-dev/drbot/bot/incident"
	"github.com/drbot-dev/drbot/bot/shell"
	"github.com/drbot-dev/drbot/commands"
	"github.com/drbot-dev/drbot/store"
)

// A plan with danger lines (a forced failover) shows them as alerts before
// its facts, and its Approve button is the dangerous one; alerts survive the
// outbox and render in the shell.
func TestForcedPlanCard(t *testing.T) {
	plan := actions.Plan{Kind: "failover", Service: "inflow", Target: "failover:inflow", Summary: "FORCED: fail inflow over",
		Facts:          []actions.Fact{{Label: "Primary health (step 1)", Value: "GET https://api/health answered 200 OK: still healthy"}},
		Danger:         []string{"FORCED with --force: the primary still answers. Needs 3 approvals instead of 2."},
		ExtraApprovals: 1}
	req := store.ActionRequest{ID: 7, Kind: "failover", Service: "inflow", Target: plan.Target, PlanHash: "abc",
		RequestedBy: "UALICE", State: store.RequestPending, ExpiresAt: time.Now().Add(time.Hour)}
	card := commands.RequestCard(commands.CardInput{Request: req, Plan: plan, Policy: approvals.Policy{Required: 3}, Now: time.Now()})
	alert, fields := -1, -1
	var approve chat.Button
	for i, b := range card.Blocks {
		switch b := b.(type) {
		case chat.Alert:
			if alert < 0 && strings.Contains(b.Text, "FORCED with --force") {
				alert = i
			}
		case chat.Fields:
			for _, f := range b.Fields {
				if f.Label == "Primary health (step 1)" {
					fields = i
				}
			}
		case chat.Actions:
			approve = b.Buttons[0]
		}
	}
	if alert < 0 || fields < 0 || alert > fields {
		t.Fatalf("alert at %d, facts at %d: %+v", alert, fields, card.Blocks)
	}
	if approve.ActionID != chat.ActionApprove || approve.Style != chat.StyleDanger {
		t.Fatalf("approve button %+v", approve)
	}
	if !strings.Contains(card.Text, "0 of 3 approvals") {
		t.Fatalf("card text %q", card.Text)
	}

	raw, err := incident.EncodeMessage(card)
	if err != nil {
		t.Fatal(err)
	}
	back, err := incident.DecodeMessage(raw)
	if err != nil || back.Blocks[alert] != card.Blocks[alert] {
		t.Fatalf("outbox round trip: %v, %+v", err, back.Blocks)
	}
	if out := shell.Render(card, nil); !strings.Contains(out, "(!) FORCED with --force") {
		t.Fatalf("shell render:\n%s", out)
	}

	// The same card without danger keeps the usual primary Approve.
	plan.Danger = nil
	card = commands.RequestCard(commands.CardInput{Request: req, Plan: plan, Policy: approvals.Policy{Required: 2}})
	for _, b := range card.Blocks {
		if a, ok := b.(chat.Actions); ok && (a.Buttons[0].Style != chat.StylePrimary || a.Buttons[0].Label != "Approve") {
			t.Fatalf("plain approve %+v", a.Buttons[0])
		}
	}
}
