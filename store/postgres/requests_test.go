package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/store"
	"github.com/drbot-dev/drbot/store/postgres"
)

func newRequest(target string) store.ActionRequest {
	return store.ActionRequest{
		Service: "inflow", Kind: "restore-db", Target: target,
		Params:      json.RawMessage(`{"db":"main","at":"latest"}`),
		Plan:        json.RawMessage(`{"steps":["download s3://backups/main/2026-11-03.dump (version 7)","pg_restore into main"],"z":1,"a":2}`),
		RequestedBy: "U1",
		ExpiresAt:   time.Now().Add(15 * time.Minute),
	}
}

func TestCreateRequestKeepsPlanBytes(t *testing.T) {
	ctx := ctxT(t)
	db, _ := openDB(t)
	inc, _, err := db.OpenIncident(ctx, store.Incident{PagerDutyID: "PREQ"})
	if err != nil {
		t.Fatal(err)
	}
	r := newRequest("postgres/main")
	r.IncidentID = &inc.ID
	r.IdempotencyKey = "slack:trigger-1"
	got, err := db.CreateRequest(ctx, r, store.AuditEvent{})
	if err != nil {
		t.Fatal(err)
	}
	if got.State != store.RequestPending || string(got.Plan) != string(r.Plan) || string(got.Params) != string(r.Params) ||
		got.PlanHash != postgres.PlanHash(r.Plan) || got.IncidentID == nil || *got.IncidentID != inc.ID {
		t.Errorf("created request = %+v", got)
	}
	read, err := db.Request(ctx, got.ID)
	if err != nil || string(read.Plan) != string(r.Plan) || read.PlanHash != got.PlanHash || !read.ExpiresAt.Equal(got.ExpiresAt) {
		t.Errorf("Request = %+v, %v", read, err)
	}

	// Same idempotency key: the first request comes back with ErrDuplicate.
	dup, err := db.CreateRequest(ctx, r, store.AuditEvent{})
	if !errors.Is(err, store.ErrDuplicate) || dup.ID != got.ID {
		t.Errorf("CreateRequest with a used idempotency key = %d, %v; want request %d and ErrDuplicate", dup.ID, err, got.ID)
	}

	bad := newRequest("postgres/other")
	bad.PlanHash = "deadbeef"
	if _, err := db.CreateRequest(ctx, bad, store.AuditEvent{}); err == nil {
		t.Error("CreateRequest with a wrong plan hash succeeded")
	}
	orphan := newRequest("postgres/orphan")
	orphan.IncidentID = new(int64(987654))
	if _, err := db.CreateRequest(ctx, orphan, store.AuditEvent{}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("CreateRequest for a missing incident = %v, want ErrNotFound", err)
	}
	if _, err := db.Request(ctx, 987654); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Request(missing) = %v, want ErrNotFound", err)
	}
	if err := db.SetRequestMessage(ctx, got.ID, "C1", "1730000000.000100"); err != nil {
		t.Fatal(err)
	}
	rs, err := db.RequestsForIncident(ctx, inc.ID)
	if err != nil || len(rs) != 1 || rs[0].MessageTS != "1730000000.000100" || rs[0].Channel != "C1" {
		t.Errorf("RequestsForIncident = %+v, %v", rs, err)
	}
	evs, err := db.AuditEvents(ctx, store.AuditFilter{RequestID: &got.ID})
	if err != nil || len(evs) != 2 || evs[0].Kind != "request.created" || evs[0].Actor != "U1" ||
		evs[0].IncidentID == nil || *evs[0].IncidentID != inc.ID || evs[1].Kind != "request.card_posted" {
		t.Errorf("request audit = %+v, %v", evs, err)
	}
}

func TestTransitionRequestForwardOnly(t *testing.T) {
	ctx := ctxT(t)
	db, _ := openDB(t)
	r, err := db.CreateRequest(ctx, newRequest("postgres/main"), store.AuditEvent{Actor: "U1", Kind: "request.created"})
	if err != nil {
		t.Fatal(err)
	}
	refused := []struct {
		from []store.RequestState
		to   store.RequestState
	}{
		{[]store.RequestState{store.RequestPending}, store.RequestRunning},   // skips approval
		{[]store.RequestState{store.RequestPending}, store.RequestSucceeded}, // skips everything
		{[]store.RequestState{store.RequestApproved}, store.RequestRunning},  // from does not match
		{nil, store.RequestApproved},                                         // no from state
		{[]store.RequestState{store.RequestPending}, store.RequestPending},   // not a move
		{[]store.RequestState{store.RequestPending}, "exploded"},             // unknown state
	}
	for _, c := range refused {
		_, err := db.TransitionRequest(ctx, r.ID, c.from, c.to, store.AuditEvent{})
		sc, ok := isConflict(err)
		if !ok || sc.Current != string(store.RequestPending) {
			t.Errorf("TransitionRequest(%v → %s) = %v, want a state conflict at pending", c.from, c.to, err)
		}
	}
	path := []store.RequestState{store.RequestApproved, store.RequestRunning, store.RequestVerifying, store.RequestSucceeded}
	state := store.RequestPending
	for _, to := range path {
		got, err := db.TransitionRequest(ctx, r.ID, []store.RequestState{state}, to, store.AuditEvent{Actor: "U2"})
		if err != nil {
			t.Fatalf("%s → %s: %v", state, to, err)
		}
		if got.State != to || !got.UpdatedAt.After(r.CreatedAt) && !got.UpdatedAt.Equal(r.CreatedAt) {
			t.Errorf("after %s → %s: %+v", state, to, got)
		}
		// Backwards is refused at every step.
		if _, err := db.TransitionRequest(ctx, r.ID, []store.RequestState{to}, state, store.AuditEvent{}); err == nil {
			t.Errorf("backwards %s → %s allowed", to, state)
		} else if sc, ok := isConflict(err); !ok || sc.Current != string(to) {
			t.Errorf("backwards %s → %s = %v, want a state conflict at %s", to, state, err, to)
		}
		state = to
	}
	for _, to := range []store.RequestState{store.RequestFailed, store.RequestCancelled, store.RequestPending} {
		if _, err := db.TransitionRequest(ctx, r.ID, []store.RequestState{store.RequestSucceeded}, to, store.AuditEvent{}); !errors.Is(err, store.ErrStateConflict) {
			t.Errorf("succeeded → %s = %v, want ErrStateConflict", to, err)
		}
	}
	if _, err := db.TransitionRequest(ctx, 999999, []store.RequestState{store.RequestPending}, store.RequestApproved, store.AuditEvent{}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("transition of a missing request = %v, want ErrNotFound", err)
	}
	evs, err := db.AuditEvents(ctx, store.AuditFilter{RequestID: &r.ID})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, e := range evs {
		kinds = append(kinds, e.Kind)
	}
	want := "[request.created request.approved request.running request.verifying request.succeeded]"
	if fmt.Sprint(kinds) != want {
		t.Errorf("audit kinds = %v, want %s", kinds, want)
	}
	if string(evs[1].Data) != `{"to": "approved", "from": "pending"}` || evs[1].Actor != "U2" {
		t.Errorf("transition audit row = %s by %s", evs[1].Data, evs[1].Actor)
	}
}

func TestTransitionRequestConcurrentOneWins(t *testing.T) {
	ctx := ctxT(t)
	db, url := openDB(t)
	r, err := db.CreateRequest(ctx, newRequest("k8s/api"), store.AuditEvent{})
	if err != nil {
		t.Fatal(err)
	}
	targets := []store.RequestState{store.RequestApproved, store.RequestDenied, store.RequestExpired, store.RequestCancelled}
	var (
		wg        sync.WaitGroup
		wins      atomic.Int32
		conflicts atomic.Int32
		winner    atomic.Value
	)
	for i := range 12 {
		wg.Go(func() {
			to := targets[i%len(targets)]
			_, err := db.TransitionRequest(ctx, r.ID, []store.RequestState{store.RequestPending}, to, store.AuditEvent{Actor: fmt.Sprintf("U%d", i)}, noteJob(string(to)))
			switch {
			case err == nil:
				wins.Add(1)
				winner.Store(to)
			case errors.Is(err, store.ErrStateConflict):
				conflicts.Add(1)
			default:
				t.Errorf("TransitionRequest: %v", err)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 || conflicts.Load() != 11 {
		t.Fatalf("wins = %d, conflicts = %d; want 1 and 11", wins.Load(), conflicts.Load())
	}
	got, _ := db.Request(ctx, r.ID)
	if got.State != winner.Load() {
		t.Errorf("state = %s, winner moved it to %s", got.State, winner.Load())
	}
	conn := sqlConn(t, url)
	if n := count(t, conn, "SELECT count(*) FROM audit_events WHERE request_id = $1", r.ID); n != 2 {
		t.Errorf("audit rows = %d, want 2 (created + the winning move)", n)
	}
	if n := count(t, conn, "SELECT count(*) FROM river_job WHERE kind = 'test.note'"); n != 1 {
		t.Errorf("jobs = %d, want 1 (the winner's)", n)
	}
}

func TestOneInFlightRequestPerTarget(t *testing.T) {
	ctx := ctxT(t)
	db, _ := openDB(t)
	first, err := db.CreateRequest(ctx, newRequest("s3/backups"), store.AuditEvent{})
	if err != nil {
		t.Fatal(err)
	}
	second := newRequest("s3/backups")
	second.RequestedBy = "U9"
	_, err = db.CreateRequest(ctx, second, store.AuditEvent{})
	var busy *store.TargetBusyError
	if !errors.As(err, &busy) || !errors.Is(err, store.ErrTargetBusy) || busy.RequestID != first.ID || busy.State != store.RequestPending || busy.By != "U1" {
		t.Fatalf("second request on a busy target = %v, want TargetBusyError naming request %d", err, first.ID)
	}
	// Moving along keeps the target held; a final state frees it.
	for _, to := range []store.RequestState{store.RequestApproved, store.RequestRunning} {
		cur, _ := db.Request(ctx, first.ID)
		if _, err := db.TransitionRequest(ctx, first.ID, []store.RequestState{cur.State}, to, store.AuditEvent{}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.CreateRequest(ctx, second, store.AuditEvent{}); !errors.Is(err, store.ErrTargetBusy) {
			t.Errorf("with the first request %s: %v, want ErrTargetBusy", to, err)
		}
	}
	if _, err := db.TransitionRequest(ctx, first.ID, []store.RequestState{store.RequestRunning}, store.RequestFailed, store.AuditEvent{}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateRequest(ctx, second, store.AuditEvent{}); err != nil {
		t.Errorf("after the first request failed: %v", err)
	}

	// Concurrent creators on a free target: exactly one gets it.
	var (
		wg         sync.WaitGroup
		ok, denied atomic.Int32
	)
	for i := range 10 {
		wg.Go(func() {
			r := newRequest("route53/zone")
			r.RequestedBy = fmt.Sprintf("U%d", i)
			_, err := db.CreateRequest(ctx, r, store.AuditEvent{}, noteJob("expire"))
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, store.ErrTargetBusy):
				denied.Add(1)
			default:
				t.Errorf("CreateRequest: %v", err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 1 || denied.Load() != 9 {
		t.Errorf("concurrent creators: %d created, %d refused; want 1 and 9", ok.Load(), denied.Load())
	}
}

// decide records a on its request through DecideRequest without moving it.
func decide(ctx context.Context, db *postgres.DB, a store.Approval) error {
	_, err := db.DecideRequest(ctx, a, store.AuditEvent{}, func(store.ActionRequest, []store.Approval) (*store.RequestMove, error) { return nil, nil })
	return err
}

func TestDecideRequestRecordsApprovals(t *testing.T) {
	ctx := ctxT(t)
	db, _ := openDB(t)
	r, err := db.CreateRequest(ctx, newRequest("postgres/main"), store.AuditEvent{})
	if err != nil {
		t.Fatal(err)
	}
	a := store.Approval{RequestID: r.ID, PlanHash: r.PlanHash, Approver: "U2", Decision: store.DecisionApprove}
	if err := decide(ctx, db, a); err != nil {
		t.Fatalf("decide = %v", err)
	}
	// A double click counts once.
	if err := decide(ctx, db, a); !errors.Is(err, store.ErrDuplicate) {
		t.Errorf("second identical approval = %v, want ErrDuplicate", err)
	}
	// The same person may decide again on a different plan.
	a2 := a
	a2.PlanHash = postgres.PlanHash([]byte(`{"steps":["other"]}`))
	if err := decide(ctx, db, a2); err != nil {
		t.Errorf("approval of another plan hash: %v", err)
	}
	if err := decide(ctx, db, store.Approval{RequestID: r.ID, PlanHash: r.PlanHash, Approver: "U3", Decision: "maybe"}); err == nil {
		t.Error("an unknown decision was accepted")
	}
	if err := decide(ctx, db, store.Approval{RequestID: 999999, PlanHash: "x", Approver: "U3", Decision: store.DecisionDeny}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("approval of a missing request = %v, want ErrNotFound", err)
	}
	as, err := db.Approvals(ctx, r.ID)
	if err != nil || len(as) != 2 || as[0].Approver != "U2" || as[0].PlanHash != r.PlanHash || as[0].ID == 0 || as[0].At.IsZero() {
		t.Errorf("Approvals = %+v, %v", as, err)
	}
	if _, err := db.TransitionRequest(ctx, r.ID, []store.RequestState{store.RequestPending}, store.RequestDenied, store.AuditEvent{}); err != nil {
		t.Fatal(err)
	}
	late := store.Approval{RequestID: r.ID, PlanHash: r.PlanHash, Approver: "U4", Decision: store.DecisionApprove}
	if err := decide(ctx, db, late); !errors.Is(err, store.ErrStateConflict) {
		t.Errorf("approval of a denied request = %v, want ErrStateConflict", err)
	}
	evs, _ := db.AuditEvents(ctx, store.AuditFilter{RequestID: &r.ID})
	var approvals int
	for _, e := range evs {
		if e.Kind == "approval.approved" {
			approvals++
		}
	}
	if approvals != 2 {
		t.Errorf("approval.approved audit rows = %d, want 2", approvals)
	}
}
