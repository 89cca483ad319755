package approvals

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/drbot-dev/drbot/runbook"
	"github.com/drbot-dev/drbot/store"
)

// A plan that asks for extra approvals (a forced failover) needs them from
// distinct approvers other than the requester, on the real store: failover
// needs two by default, so a forced one needs three.
func TestPlanExtraApprovalsRaiseTheRequiredCount(t *testing.T) {
	ctx := context.Background()
	e, db, _ := newEngine(t, 1)
	forced, err := e.Create(ctx, NewRequest{Service: "inflow", Kind: "failover", Target: "failover:inflow",
		Plan: json.RawMessage(`{"kind":"failover","target":"failover:inflow","danger":["FORCED"],"extra_approvals":1}`), RequestedBy: "UALICE", Channel: "C1"})
	if err != nil {
		t.Fatal(err)
	}
	if got := e.PolicyOf(forced).Required; got != 3 {
		t.Fatalf("forced failover needs %d approvals, want 3", got)
	}
	evs, err := db.AuditEvents(ctx, store.AuditFilter{RequestID: &forced.ID})
	if err != nil {
		t.Fatal(err)
	}
	var created struct {
		Required int `json:"required"`
	}
	if len(evs) == 0 || evs[0].Kind != "request.created" || json.Unmarshal(evs[0].Data, &created) != nil || created.Required != 3 {
		t.Fatalf("request.created does not record 3 required: %+v", evs)
	}
	if _, err := e.Decide(ctx, forced.ID, "UALICE", store.DecisionApprove, ""); refusalCode(err) != CodeOwnRequest {
		t.Fatalf("requester's approval: %v", err)
	}
	for i, who := range []string{"UBOB", "UCAROL"} {
		res, err := e.Decide(ctx, forced.ID, who, store.DecisionApprove, "")
		if err != nil {
			t.Fatal(err)
		}
		if res.Request.State != store.RequestPending || res.Verdict.Approved || res.Verdict.Count != i+1 {
			t.Fatalf("after %d approvals: %+v", i+1, res)
		}
	}
	if _, err := e.Decide(ctx, forced.ID, "UBOB", store.DecisionApprove, ""); refusalCode(err) != CodeDuplicate {
		t.Fatalf("a second approval by the same approver: %v", err)
	}
	if got := jobs(t, db, store.KindExecuteRequest); len(got) != 0 {
		t.Fatalf("executed with two of three approvals: %v", got)
	}
	res, err := e.Decide(ctx, forced.ID, "UDAVE", store.DecisionApprove, "")
	if err != nil || res.Request.State != store.RequestApproved || res.Verdict.Count != 3 {
		t.Fatalf("third approval: %+v, %v", res, err)
	}
	if got := jobs(t, db, store.KindExecuteRequest); len(got) != 1 {
		t.Fatalf("execute jobs = %v, want one", got)
	}

	// The same command without the bump needs the usual two.
	plain, err := e.Create(ctx, NewRequest{Service: "inflow", Kind: "failover", Target: "failover:other",
		Plan: json.RawMessage(`{"kind":"failover","target":"failover:other"}`), RequestedBy: "UALICE", Channel: "C1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, who := range []string{"UBOB", "UCAROL"} {
		if res, err = e.Decide(ctx, plain.ID, who, store.DecisionApprove, ""); err != nil {
			t.Fatal(err)
		}
	}
	if res.Request.State != store.RequestApproved {
		t.Fatalf("plain failover after two approvals: %+v", res)
	}
}

func TestPolicyForRequest(t *testing.T) {
	cfg := &runbook.Config{}
	for plan, want := range map[string]int{
		``:                          2,
		`{}`:                        2,
		`{"extra_approvals":1}`:     3,
		`{"extra_approvals":2}`:     4,
		`{"extra_approvals":-5}`:    2,
		`{"extra_approvals":"one"}`: 2,
	} {
		if got := PolicyForRequest(cfg, "failover", []byte(plan)).Required; got != want {
			t.Errorf("PolicyForRequest(%s) = %d, want %d", plan, got, want)
		}
	}
}
