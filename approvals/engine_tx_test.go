package approvals

import (
	"context"
	"testing"

	"github.com/drbot-dev/drbot/store"
	"github.com/drbot-dev/drbot/store/postgres"
)

// decisionTrace is what a decision left in the database.
type decisionTrace struct {
	state     store.RequestState
	approvals int
	audit     []string
	execute   int
}

func traceOf(t *testing.T, db *postgres.DB, id int64) decisionTrace {
	t.Helper()
	ctx := context.Background()
	var tr decisionTrace
	if err := db.Pool().QueryRow(ctx, "SELECT state FROM action_requests WHERE id = $1", id).Scan(&tr.state); err != nil {
		t.Fatal(err)
	}
	if err := db.Pool().QueryRow(ctx, "SELECT count(*) FROM approvals WHERE request_id = $1", id).Scan(&tr.approvals); err != nil {
		t.Fatal(err)
	}
	evs, err := db.AuditEvents(ctx, store.AuditFilter{RequestID: &id})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if ev.Kind != "request.created" {
			tr.audit = append(tr.audit, ev.Kind)
		}
	}
	tr.execute = len(jobs(t, db, store.KindExecuteRequest))
	return tr
}

// failOn installs a trigger that makes the statement fail the way a crash
// between the parts of a decision would cut it short.
func failOn(t *testing.T, db *postgres.DB, table, when string) {
	t.Helper()
	_, err := db.Pool().Exec(context.Background(), `
		CREATE FUNCTION drbot_test_fail() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'injected failure'; END $$;
		CREATE TRIGGER drbot_test_fail BEFORE INSERT OR UPDATE ON `+table+`
		FOR EACH ROW WHEN (`+when+`) EXECUTE FUNCTION drbot_test_fail()`)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = db.Pool().Exec(context.Background(), "DROP TRIGGER IF EXISTS drbot_test_fail ON "+table+"; DROP FUNCTION IF EXISTS drbot_test_fail()")
	})
}

// TestDecideApprovalIsOneTransaction: when the execute job cannot be
// inserted, nothing of the approval persists (no approval row, no audit row,
// the request still pending), and the same approval succeeds afterwards.
func TestDecideApprovalIsOneTransaction(t *testing.T) {
	ctx := context.Background()
	e, db, _ := newEngine(t, 1)
	r := create(t, e, "db:inflow/tx-approve")
	failOn(t, db, "river_job", "NEW.kind = 'request.execute'")
	if _, err := e.Decide(ctx, r.ID, "UBOB", store.DecisionApprove, ""); err == nil {
		t.Fatal("the approval succeeded although its execute job could not be inserted")
	}
	if tr := traceOf(t, db, r.ID); tr.state != store.RequestPending || tr.approvals != 0 || len(tr.audit) != 0 || tr.execute != 0 {
		t.Fatalf("a failed approval left a half-decision: %+v", tr)
	}
	_, _ = db.Pool().Exec(ctx, "DROP TRIGGER drbot_test_fail ON river_job")
	res, err := e.Decide(ctx, r.ID, "UBOB", store.DecisionApprove, "")
	if err != nil {
		t.Fatalf("the approval after the failure: %v", err)
	}
	if res.Request.State != store.RequestApproved {
		t.Fatalf("state after the approval = %s", res.Request.State)
	}
	if tr := traceOf(t, db, r.ID); tr.approvals != 1 || tr.execute != 1 || len(tr.audit) != 2 {
		t.Fatalf("after the approval: %+v (want one approval row, one execute job, approval.approved and request.approved)", tr)
	}
}

// TestDecideDenialIsOneTransaction: when the move to denied fails, the deny
// is not recorded either, so the request is not left pending with a denial
// that the next approver could run past.
func TestDecideDenialIsOneTransaction(t *testing.T) {
	ctx := context.Background()
	e, db, _ := newEngine(t, 1)
	r := create(t, e, "db:inflow/tx-deny")
	failOn(t, db, "action_requests", "NEW.state = 'denied'")
	if _, err := e.Decide(ctx, r.ID, "UBOB", store.DecisionDeny, "wrong backup"); err == nil {
		t.Fatal("the denial succeeded although the request could not move to denied")
	}
	if tr := traceOf(t, db, r.ID); tr.state != store.RequestPending || tr.approvals != 0 || len(tr.audit) != 0 {
		t.Fatalf("a failed denial left a half-decision: %+v", tr)
	}
	_, _ = db.Pool().Exec(ctx, "DROP TRIGGER drbot_test_fail ON action_requests")
	res, err := e.Decide(ctx, r.ID, "UBOB", store.DecisionDeny, "wrong backup")
	if err != nil || res.Request.State != store.RequestDenied {
		t.Fatalf("the denial after the failure: %+v, %v", res.Request, err)
	}
	if tr := traceOf(t, db, r.ID); tr.approvals != 1 || len(tr.audit) != 2 || tr.execute != 0 {
		t.Fatalf("after the denial: %+v", tr)
	}
}

// TestDecideBelowQuorumRecordsOnlyTheApproval: an approval that does not
// reach the count is recorded alone, with its audit row, and moves nothing.
func TestDecideBelowQuorumRecordsOnlyTheApproval(t *testing.T) {
	ctx := context.Background()
	e, db, _ := newEngine(t, 2)
	r := create(t, e, "db:inflow/tx-quorum")
	res, err := e.Decide(ctx, r.ID, "UBOB", store.DecisionApprove, "")
	if err != nil || res.Request.State != store.RequestPending || res.Verdict.Approved || res.Verdict.Count != 1 {
		t.Fatalf("first of two approvals: %+v, %v", res, err)
	}
	if tr := traceOf(t, db, r.ID); tr.approvals != 1 || len(tr.audit) != 1 || tr.audit[0] != "approval.approved" || tr.execute != 0 {
		t.Fatalf("after one of two approvals: %+v", tr)
	}
	res, err = e.Decide(ctx, r.ID, "UCAROL", store.DecisionApprove, "")
	if err != nil || res.Request.State != store.RequestApproved || !res.Verdict.Approved || res.Verdict.Count != 2 {
		t.Fatalf("second of two approvals: %+v, %v", res, err)
	}
	if tr := traceOf(t, db, r.ID); tr.approvals != 2 || tr.execute != 1 {
		t.Fatalf("after two of two approvals: %+v", tr)
	}
}
