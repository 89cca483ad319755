package approvals

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/drbot-dev/drbot/internal/testenv"
	"github.com/drbot-dev/drbot/runbook"
	"github.com/drbot-dev/drbot/store"
	"github.com/drbot-dev/drbot/store/postgres"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newEngine(t *testing.T, required int) (*Engine, *postgres.DB, *clock) {
	t.Helper()
	db, err := postgres.Open(context.Background(), testenv.PostgresURL(t), postgres.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	cfg := &runbook.Config{
		Slack:     runbook.Slack{Approvers: []string{"UBOB", "UCAROL", "UDAVE"}},
		Approvals: runbook.Approvals{Required: required, ExpiresAfter: runbook.Duration{Duration: 15 * time.Minute}},
	}
	c := &clock{now: time.Now()}
	return NewEngine(EngineOptions{Store: db, Config: cfg, Now: c.Now}), db, c
}

func create(t *testing.T, e *Engine, target string) store.ActionRequest {
	t.Helper()
	r, err := e.Create(context.Background(), NewRequest{Service: "inflow", Kind: "restore-db", Target: target,
		Plan: json.RawMessage(`{"kind":"restore-db","target":"` + target + `"}`), RequestedBy: "UALICE", Channel: "C1"})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// jobs returns the River jobs of kind with their args, in insertion order.
func jobs(t *testing.T, db *postgres.DB, kind string) []string {
	t.Helper()
	rows, err := db.Pool().Query(context.Background(), "SELECT args::text FROM river_job WHERE kind = $1 ORDER BY id", kind)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func refusalCode(err error) string {
	var rf *Refusal
	if errors.As(err, &rf) {
		return rf.Code
	}
	return ""
}

func TestEngineLifecycle(t *testing.T) {
	ctx := context.Background()
	e, db, _ := newEngine(t, 1)
	r := create(t, e, "db:inflow/main")
	if got := jobs(t, db, store.KindExpireRequest); len(got) != 1 {
		t.Fatalf("expiry jobs after create = %v, want one", got)
	}

	// One in flight per target: the refusal names the holder and the request.
	_, err := e.Create(ctx, NewRequest{Service: "inflow", Kind: "scale", Target: "db:inflow/main", Plan: json.RawMessage(`{}`), RequestedBy: "UBOB"})
	if refusalCode(err) != CodeTargetBusy || !contains(err.Error(), fmt.Sprintf("request #%d", r.ID), "UALICE", "restore-db") {
		t.Fatalf("second request on a busy target: %v", err)
	}

	if _, err := e.Decide(ctx, r.ID, "UALICE", store.DecisionApprove, ""); refusalCode(err) != CodeOwnRequest {
		t.Fatalf("requester's approval: %v", err)
	}
	if _, err := e.Decide(ctx, r.ID, "UMALLORY", store.DecisionApprove, ""); refusalCode(err) != CodeNotApprover {
		t.Fatalf("non-approver's approval: %v", err)
	}
	if as, _ := db.Approvals(ctx, r.ID); len(as) != 0 {
		t.Fatalf("refused decisions were recorded: %+v", as)
	}
	res, err := e.Decide(ctx, r.ID, "UBOB", store.DecisionApprove, "")
	if err != nil {
		t.Fatal(err)
	}
	if res.Request.State != store.RequestApproved || !res.Verdict.Approved {
		t.Fatalf("after the approval: %+v", res)
	}
	if got := jobs(t, db, store.KindExecuteRequest); len(got) != 1 {
		t.Fatalf("execute jobs = %v, want one", got)
	}
	if _, err := e.Decide(ctx, r.ID, "UCAROL", store.DecisionApprove, ""); refusalCode(err) != CodeNotPending {
		t.Fatalf("approval of an approved request: %v", err)
	}
}

func TestEngineDenyCancelExpire(t *testing.T) {
	ctx := context.Background()
	e, db, c := newEngine(t, 1)

	denied := create(t, e, "t:deny")
	res, err := e.Decide(ctx, denied.ID, "UBOB", store.DecisionDeny, "wrong backup")
	if err != nil || res.Request.State != store.RequestDenied {
		t.Fatalf("deny: %+v, %v", res, err)
	}
	if _, err := e.Decide(ctx, denied.ID, "UCAROL", store.DecisionApprove, ""); refusalCode(err) != CodeNotPending {
		t.Fatalf("approval of a denied request: %v", err)
	}

	cancelled := create(t, e, "t:cancel")
	if _, err := e.Cancel(ctx, cancelled.ID, "UBOB"); refusalCode(err) != CodeNotOwner {
		t.Fatalf("cancel by someone else: %v", err)
	}
	if r, err := e.Cancel(ctx, cancelled.ID, "UALICE"); err != nil || r.State != store.RequestCancelled {
		t.Fatalf("cancel: %+v, %v", r, err)
	}
	if _, err := e.Decide(ctx, cancelled.ID, "UBOB", store.DecisionApprove, ""); refusalCode(err) != CodeNotPending {
		t.Fatalf("approval of a cancelled request: %v", err)
	}

	expiring := create(t, e, "t:expire")
	if _, _, err := e.Expire(ctx, expiring.ID); !errors.Is(err, ErrNotYet) {
		t.Fatalf("early expiry: %v", err)
	}
	c.Add(16 * time.Minute)
	if _, err := e.Decide(ctx, expiring.ID, "UBOB", store.DecisionApprove, ""); refusalCode(err) != CodeExpired {
		t.Fatalf("approval after expiry: %v", err)
	}
	// The late click expired it; the timer then finds nothing to do.
	r, changed, err := e.Expire(ctx, expiring.ID)
	if err != nil || changed || r.State != store.RequestExpired {
		t.Fatalf("expiry after the late click: %+v changed=%t err=%v", r, changed, err)
	}
	evs, err := db.AuditEvents(ctx, store.AuditFilter{RequestID: &expiring.ID})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, ev := range evs {
		kinds = append(kinds, ev.Kind)
	}
	if fmt.Sprint(kinds) != "[request.created request.expired]" {
		t.Errorf("audit of the expired request = %v", kinds)
	}
}

// TestEngineConcurrentApprovals: two approvers clicking in the same instant
// (and each double-clicking) give one approval each and exactly one move to
// approved with one execution job.
func TestEngineConcurrentApprovals(t *testing.T) {
	ctx := context.Background()
	for round := range 5 {
		e, db, _ := newEngine(t, 2)
		r := create(t, e, fmt.Sprintf("t:race%d", round))
		var wg sync.WaitGroup
		start := make(chan struct{})
		var mu sync.Mutex
		approvedBy := 0
		for _, who := range []string{"UBOB", "UCAROL", "UBOB", "UCAROL", "UBOB"} {
			wg.Go(func() {
				<-start
				res, err := e.Decide(ctx, r.ID, who, store.DecisionApprove, "")
				if err != nil && refusalCode(err) != CodeDuplicate && refusalCode(err) != CodeNotPending {
					t.Errorf("approval by %s: %v", who, err)
				}
				if err == nil && res.Verdict.Approved {
					mu.Lock()
					approvedBy++
					mu.Unlock()
				}
			})
		}
		close(start)
		wg.Wait()
		as, err := db.Approvals(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(as) != 2 {
			t.Errorf("round %d: %d approvals recorded, want 2: %+v", round, len(as), as)
		}
		cur, _ := db.Request(ctx, r.ID)
		if cur.State != store.RequestApproved || approvedBy != 1 {
			t.Errorf("round %d: state %s, %d decisions moved it to approved (want approved by exactly one)", round, cur.State, approvedBy)
		}
		if got := jobs(t, db, store.KindExecuteRequest); len(got) != 1 {
			t.Errorf("round %d: execute jobs = %v, want one", round, got)
		}
	}
}

func contains(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
