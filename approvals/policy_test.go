package approvals

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/internal/testenv"
	"github.com/drbot-dev/drbot/runbook"
	"github.com/drbot-dev/drbot/store"
	"github.com/drbot-dev/drbot/store/postgres"
)

func TestMain(m *testing.M) {
	testenv.SetTemplateSetup(func(ctx context.Context, url string) error { return postgres.Migrate(ctx, url) })
	testenv.Main(m)
}

func TestEvaluate(t *testing.T) {
	now := time.Date(2026, 11, 23, 16, 0, 0, 0, time.UTC)
	pending := store.ActionRequest{ID: 7, Kind: "restore-db", State: store.RequestPending, RequestedBy: "UALICE",
		PlanHash: "h1", ExpiresAt: now.Add(10 * time.Minute)}
	with := func(f func(*store.ActionRequest)) store.ActionRequest { r := pending; f(&r); return r }
	approvers := Approvers{"UALICE": true, "UBOB": true, "UCAROL": true, "UDAVE": true}
	one, two := Policy{Required: 1}, Policy{Required: 2}
	appr := func(who, hash string, decision store.Decision) store.Approval {
		return store.Approval{RequestID: 7, Approver: who, PlanHash: hash, Decision: decision}
	}

	cases := []struct {
		name      string
		req       store.ActionRequest
		approvals []store.Approval
		actor     string
		decision  store.Decision
		policy    Policy
		refusal   string // expected refusal code; "" = accepted
		count     int
		approved  bool
		denied    bool
	}{
		{name: "approver approves, one needed", req: pending, actor: "UBOB", decision: store.DecisionApprove, policy: one, count: 1, approved: true},
		{name: "requester never approves own request", req: pending, actor: "UALICE", decision: store.DecisionApprove, policy: one, refusal: CodeOwnRequest},
		{name: "requester cannot deny either (cancel instead)", req: pending, actor: "UALICE", decision: store.DecisionDeny, policy: one, refusal: CodeOwnRequest},
		{name: "non-approver refused", req: pending, actor: "UMALLORY", decision: store.DecisionApprove, policy: one, refusal: CodeNotApprover},
		{name: "non-approver cannot deny", req: pending, actor: "UMALLORY", decision: store.DecisionDeny, policy: one, refusal: CodeNotApprover},
		{name: "first of two", req: pending, actor: "UBOB", decision: store.DecisionApprove, policy: two, count: 1},
		{name: "second of two approves", req: pending, approvals: []store.Approval{appr("UBOB", "h1", store.DecisionApprove)},
			actor: "UCAROL", decision: store.DecisionApprove, policy: two, count: 2, approved: true},
		{name: "each approver once", req: pending, approvals: []store.Approval{appr("UBOB", "h1", store.DecisionApprove)},
			actor: "UBOB", decision: store.DecisionApprove, policy: two, refusal: CodeDuplicate},
		{name: "approver who denied cannot decide again", req: pending, approvals: []store.Approval{appr("UBOB", "h1", store.DecisionDeny)},
			actor: "UBOB", decision: store.DecisionApprove, policy: one, refusal: CodeDuplicate},
		{name: "approval of another plan hash does not count", req: pending, approvals: []store.Approval{appr("UBOB", "h0", store.DecisionApprove)},
			actor: "UCAROL", decision: store.DecisionApprove, policy: two, count: 1},
		{name: "requester's own approval row never counts", req: pending, approvals: []store.Approval{appr("UALICE", "h1", store.DecisionApprove)},
			actor: "UCAROL", decision: store.DecisionApprove, policy: two, count: 1},
		{name: "approval by someone no longer listed does not count", req: pending, approvals: []store.Approval{appr("UEVE", "h1", store.DecisionApprove)},
			actor: "UCAROL", decision: store.DecisionApprove, policy: two, count: 1},
		{name: "deny accepted", req: pending, actor: "UBOB", decision: store.DecisionDeny, policy: one, denied: true},
		{name: "expired request", req: with(func(r *store.ActionRequest) { r.ExpiresAt = now }), actor: "UBOB", decision: store.DecisionApprove, policy: one, refusal: CodeExpired},
		{name: "expired state", req: with(func(r *store.ActionRequest) { r.State = store.RequestExpired }), actor: "UBOB", decision: store.DecisionApprove, policy: one, refusal: CodeExpired},
		{name: "denied request", req: with(func(r *store.ActionRequest) { r.State = store.RequestDenied }), actor: "UBOB", decision: store.DecisionApprove, policy: one, refusal: CodeNotPending},
		{name: "cancelled request", req: with(func(r *store.ActionRequest) { r.State = store.RequestCancelled }), actor: "UBOB", decision: store.DecisionApprove, policy: one, refusal: CodeNotPending},
		{name: "executed request", req: with(func(r *store.ActionRequest) { r.State = store.RequestSucceeded }), actor: "UBOB", decision: store.DecisionApprove, policy: one, refusal: CodeNotPending},
		{name: "failed request", req: with(func(r *store.ActionRequest) { r.State = store.RequestFailed }), actor: "UBOB", decision: store.DecisionApprove, policy: one, refusal: CodeNotPending},
		{name: "running request", req: with(func(r *store.ActionRequest) { r.State = store.RequestRunning }), actor: "UBOB", decision: store.DecisionApprove, policy: one, refusal: CodeNotPending},
		{name: "already approved", req: with(func(r *store.ActionRequest) { r.State = store.RequestApproved }), actor: "UCAROL", decision: store.DecisionApprove, policy: one, refusal: CodeNotPending},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, err := Evaluate(Decision{Request: tc.req, Approvals: tc.approvals, Actor: tc.actor, Decision: tc.decision,
				Approvers: approvers, Policy: tc.policy, Now: now})
			if tc.refusal != "" {
				var rf *Refusal
				if !errors.As(err, &rf) || rf.Code != tc.refusal {
					t.Fatalf("Evaluate = %+v, %v; want refusal %s", v, err, tc.refusal)
				}
				if rf.UserMessage() == "" {
					t.Error("refusal has no message for the user")
				}
				return
			}
			if err != nil {
				t.Fatalf("Evaluate: %v", err)
			}
			if v.Count != tc.count || v.Approved != tc.approved || v.Denied != tc.denied {
				t.Errorf("verdict = %+v, want count %d approved %t denied %t", v, tc.count, tc.approved, tc.denied)
			}
		})
	}
}

func TestPolicyFor(t *testing.T) {
	cfg := &runbook.Config{Approvals: runbook.Approvals{
		Required: 1, ExpiresAfter: runbook.Duration{Duration: 20 * time.Minute},
		Commands: map[string]runbook.CommandApprovals{"restore-db": {Required: 3, ExpiresAfter: runbook.Duration{Duration: time.Hour}}},
	}}
	for _, tc := range []struct {
		cmd      string
		required int
		expires  time.Duration
	}{
		{"scale", 1, 20 * time.Minute},
		{"failover", 2, 20 * time.Minute}, // failover defaults to two
		{"restore-db", 3, time.Hour},      // per-command override
	} {
		if got := PolicyFor(cfg, tc.cmd); got.Required != tc.required || got.Expires != tc.expires {
			t.Errorf("PolicyFor(%s) = %+v, want %d, %s", tc.cmd, got, tc.required, tc.expires)
		}
	}
	if got := PolicyFor(nil, "failover"); got.Required != 2 {
		t.Errorf("PolicyFor(nil, failover) = %+v, want 2 approvals", got)
	}
}

func TestCanCancel(t *testing.T) {
	r := store.ActionRequest{ID: 1, RequestedBy: "UALICE", State: store.RequestPending}
	if err := CanCancel(r, "UALICE"); err != nil {
		t.Errorf("requester cannot cancel: %v", err)
	}
	var rf *Refusal
	if err := CanCancel(r, "UBOB"); !errors.As(err, &rf) || rf.Code != CodeNotOwner {
		t.Errorf("someone else cancelled: %v", err)
	}
	r.State = store.RequestRunning
	if err := CanCancel(r, "UALICE"); !errors.As(err, &rf) || rf.Code != CodeNotPending {
		t.Errorf("cancelled a running request: %v", err)
	}
}
