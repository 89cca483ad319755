package commands

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/runner"
	"github.com/drbot-dev/drbot/approvals"
	"github.com/drbot-dev/drbot/bot/chat"
	"github.com/drbot-dev/drbot/store"
)

// cardText flattens a card for assertions.
func cardText(m chat.Message) string {
	var b strings.Builder
	b.WriteString(m.Text + "\n")
	for _, blk := range m.Blocks {
		switch v := blk.(type) {
		case chat.Header:
			b.WriteString(v.Text + "\n")
		case chat.Text:
			b.WriteString(v.Text + "\n")
		case chat.Fields:
			for _, f := range v.Fields {
				fmt.Fprintf(&b, "%s: %s\n", f.Label, f.Value)
			}
		case chat.Actions:
			for _, bt := range v.Buttons {
				fmt.Fprintf(&b, "[%s %s=%s]\n", bt.Label, bt.ActionID, bt.Value)
			}
		case chat.Progress:
			fmt.Fprintf(&b, "%s %d/%d %s\n", v.Label, v.Done, v.Total, v.Unit)
		case chat.Context:
			b.WriteString(v.Text + "\n")
		}
	}
	return b.String()
}

func TestRequestCardStates(t *testing.T) {
	now := time.Date(2026, 11, 23, 16, 0, 0, 0, time.UTC)
	plan := actions.Plan{Kind: "restore-db", Service: "lstm-pfd", Target: "db:lstm-pfd/lstm_pfd", Summary: "Restore lstm_pfd from db/2026-11-23.dump (3h12m old)",
		Steps:    []actions.Step{{Name: "restore-side", Description: "Restore into lstm_pfd_restore_x"}, {Name: "swap", Description: "Swap it in"}},
		Facts:    []actions.Fact{{Label: "Backup", Value: "db/2026-11-23.dump (ETag abc)"}, {Label: "Age", Value: "3h12m, RPO 4h: OK"}},
		Warnings: []string{"writers are scaled to zero during the swap"}}
	req := store.ActionRequest{ID: 42, Kind: "restore-db", Service: "lstm-pfd", Target: plan.Target, PlanHash: "0123456789abcdef",
		RequestedBy: "UALICE", Reason: "db corrupted at 14:02", State: store.RequestPending, ExpiresAt: now.Add(15 * time.Minute)}
	pol := approvals.Policy{Required: 2}
	bob := store.Approval{Approver: "UBOB", PlanHash: req.PlanHash, Decision: store.DecisionApprove}
	stale := store.Approval{Approver: "UCAROL", PlanHash: "old", Decision: store.DecisionApprove}
	with := func(state store.RequestState) store.ActionRequest { r := req; r.State = state; return r }
	rep := actions.Report{Checks: []actions.CheckResult{{Name: "experiments present", Kind: "sql", Target: "lstm_pfd", Expected: "> 0", Observed: "1523", OK: true}}}

	cases := []struct {
		name   string
		in     CardInput
		want   []string
		absent []string
	}{
		{"pending", CardInput{Request: req, Plan: plan, Approvals: []store.Approval{bob, stale}, Policy: pol, Now: now},
			[]string{"Request #42: restore-db lstm-pfd", "waiting for approval", "Requested by: <@UALICE>", "Approvals: 1 of 2 (<@UBOB>)",
				"Expires: 16:15 UTC (in 0h15m)", "Reason: db corrupted at 14:02", "Backup: db/2026-11-23.dump (ETag abc)", "Age: 3h12m, RPO 4h: OK",
				"⚠ writers are scaled to zero", "1. Restore into lstm_pfd_restore_x", "[Approve dr_approve=42]", "[Deny dr_deny=42]", "[Cancel dr_cancel=42]", "plan 0123456789ab"},
			[]string{"<@UCAROL>"}},
		{"denied", CardInput{Request: with(store.RequestDenied), Plan: plan, Approvals: []store.Approval{{Approver: "UBOB", PlanHash: req.PlanHash, Decision: store.DecisionDeny, Reason: "wrong backup"}}, Policy: pol},
			[]string{"denied", "Denied by <@UBOB>: wrong backup. Nothing was run."}, []string{"dr_approve", "Expires"}},
		{"expired", CardInput{Request: with(store.RequestExpired), Plan: plan, Policy: pol},
			[]string{"expired", "Expired at 16:15 UTC"}, []string{"dr_approve"}},
		{"cancelled", CardInput{Request: with(store.RequestCancelled), Plan: plan, Policy: pol},
			[]string{"Cancelled by <@UALICE>"}, []string{"dr_approve"}},
		{"running", CardInput{Request: with(store.RequestRunning), Plan: plan, Approvals: []store.Approval{bob}, Policy: pol,
			Status: runner.Status{Step: "swap", StepIndex: 2, Steps: 2, Progress: &actions.Progress{Step: "swap", Done: 512, Total: 1024, Unit: "bytes"}}},
			[]string{"running", "Step 2 of 2: swap 1/2 steps", "swap 512/1024 bytes"}, []string{"dr_approve"}},
		{"succeeded", CardInput{Request: with(store.RequestSucceeded), Plan: plan, Policy: pol, Status: runner.Status{Report: &rep}},
			[]string{"succeeded", "Verification", "✅ *experiments present* (sql lstm_pfd): 1523, expected > 0"}, []string{"Failed:"}},
		{"failed", CardInput{Request: with(store.RequestFailed), Plan: plan, Policy: pol, Status: runner.Status{Reason: "the approved backup db/x is gone"}},
			[]string{"failed", "*Failed:* the approved backup db/x is gone"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := cardText(RequestCard(tc.in))
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("card lacks %q:\n%s", w, got)
				}
			}
			for _, a := range tc.absent {
				if strings.Contains(got, a) {
					t.Errorf("card has %q:\n%s", a, got)
				}
			}
		})
	}
}
