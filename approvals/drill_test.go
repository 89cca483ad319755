package approvals

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/drbot-dev/drbot/runbook"
	"github.com/drbot-dev/drbot/store"
)

// TestDrillIsApprovedAsItIsMade: a drill request needs no approval by
// default: it is created and approved in one transaction (request.created
// then request.approved by drbot, saying why), its execution is enqueued
// and it has no expiry timer. With drills.approval: true it waits for
// approval like any request.
func TestDrillIsApprovedAsItIsMade(t *testing.T) {
	e, db, _ := newEngine(t, 1)
	e.cfg.Services = []runbook.Service{{Name: "inflow"}, {Name: "lstm-pfd", Drills: runbook.Drills{Approval: true}}}
	ctx := context.Background()
	mk := func(service, target string) store.ActionRequest {
		t.Helper()
		r, err := e.Create(ctx, NewRequest{Service: service, Kind: store.KindDrill, Target: target,
			Plan: json.RawMessage(`{"kind":"restore-db","service":"` + service + `","target":"` + target + `"}`), RequestedBy: "UALICE", Channel: "C1"})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	r := mk("inflow", "drill:db:inflow")
	if r.State != store.RequestApproved {
		t.Fatalf("drill is %s, want approved", r.State)
	}
	if p := e.PolicyOf(r); p.Required != 0 {
		t.Errorf("drill policy requires %d approvals", p.Required)
	}
	evs, err := db.AuditEvents(ctx, store.AuditFilter{RequestID: &r.ID})
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Auto   bool   `json:"auto"`
		Reason string `json:"reason"`
	}
	if len(evs) == 2 {
		_ = json.Unmarshal(evs[1].Data, &d)
	}
	if len(evs) != 2 || evs[0].Kind != store.AuditRequestCreated || evs[1].Kind != store.AuditRequestApproved || evs[1].Actor != "drbot" ||
		!d.Auto || !strings.Contains(d.Reason, "drills.approval is off for inflow") {
		t.Errorf("audit rows: %d, approved %s", len(evs), evs[len(evs)-1].Data)
	}
	if got := jobs(t, db, store.KindExecuteRequest); len(got) != 1 {
		t.Errorf("execute jobs %v, want one", got)
	}
	if got := jobs(t, db, store.KindExpireRequest); len(got) != 0 {
		t.Errorf("expire jobs %v, want none", got)
	}
	// drills.approval: true — pending, like any request.
	r2 := mk("lstm-pfd", "drill:db:lstm-pfd")
	if r2.State != store.RequestPending || e.PolicyOf(r2).Required != 1 {
		t.Errorf("drill with drills.approval: %s, policy %+v", r2.State, e.PolicyOf(r2))
	}
	// Other kinds still need one approval at least.
	if r3 := create(t, e, "db:inflow/x"); r3.State != store.RequestPending {
		t.Errorf("restore-db is %s", r3.State)
	}
}
