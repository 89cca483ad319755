package restoredb_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/restoredb"
	"github.com/drbot-dev/drbot/actions/runner"
	"github.com/drbot-dev/drbot/internal/testenv"
	"github.com/drbot-dev/drbot/runbook"
	"github.com/drbot-dev/drbot/store"
	"github.com/drbot-dev/drbot/store/postgres"
)

// cards records what the runner shows and notes.
type cards struct {
	mu     sync.Mutex
	notes  []string
	reason map[int64]string
}

func (c *cards) Show(_ context.Context, req store.ActionRequest, st runner.Status) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st.Reason != "" {
		c.reason[req.ID] = st.Reason
	}
}

func (c *cards) Note(_ context.Context, _ store.ActionRequest, text string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.notes = append(c.notes, text)
}

// bot is the request side of drbot on a real store: requests are planned,
// recorded, approved and executed by the real runner, whose journal writes
// the audit rows rollback reads.
type bot struct {
	f     *fixture
	db    *postgres.DB
	run   *runner.Runner
	cards *cards
	acts  actions.Registry
}

func newBot(f *fixture) *bot {
	f.t.Helper()
	url := testenv.PostgresURL(f.t)
	if err := postgres.Migrate(f.ctx, url); err != nil {
		f.t.Fatal(err)
	}
	db, err := postgres.Open(f.ctx, url, postgres.Options{})
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(db.Close)
	opts := f.options()
	opts.History = db
	b := &bot{f: f, db: db, cards: &cards{reason: map[int64]string{}}, acts: actions.Registry{}}
	b.acts.Register(restoredb.New(opts))
	b.acts.Register(restoredb.NewRollback(opts))
	b.run = runner.New(runner.Options{Store: db, Actions: b.acts, Cards: b.cards, Now: func() time.Time { return f.now }, ProgressEvery: time.Hour})
	return b
}

// plan plans kind as /dr <kind> would.
func (b *bot) plan(kind string, args, flags map[string]string) (actions.Plan, error) {
	b.f.now = b.f.now.Add(time.Second) // fresh derived names
	return b.acts[kind].Plan(b.f.ctx, actions.Params{Service: service, Args: args, Flags: flags})
}

// do plans kind, records the request, approves it and runs it to its end.
func (b *bot) do(kind string, args, flags map[string]string) store.ActionRequest {
	b.f.t.Helper()
	p, err := b.plan(kind, args, flags)
	if err != nil {
		b.f.t.Fatalf("plan %s: %v", kind, err)
	}
	pj, _ := json.Marshal(p)
	par, _ := json.Marshal(actions.Params{Service: service, Args: args, Flags: flags})
	r, err := b.db.CreateRequest(b.f.ctx, store.ActionRequest{Service: service, Kind: kind, Target: p.Target, Params: par, Plan: pj, RequestedBy: "UALICE"}, store.AuditEvent{Kind: "request.created"})
	if err != nil {
		b.f.t.Fatal(err)
	}
	if _, err := b.db.TransitionRequest(b.f.ctx, r.ID, []store.RequestState{store.RequestPending}, store.RequestApproved, store.AuditEvent{Kind: "request.approved"}); err != nil {
		b.f.t.Fatal(err)
	}
	if err := b.run.Run(b.f.ctx, r.ID); err != nil {
		b.f.t.Fatal(err)
	}
	r, err = b.db.Request(b.f.ctx, r.ID)
	if err != nil {
		b.f.t.Fatal(err)
	}
	return r
}

func fact(p actions.Plan, label string) string {
	for _, f := range p.Facts {
		if f.Label == label {
			return f.Value
		}
	}
	return ""
}

// TestRollbackUndoesRestoresWhoseSwapHappened: a restore whose checks fail
// on live after the swap ends failed with its copy live; /dr rollback
// without a number picks it (the card names it), the suggested command is
// what a user can paste, and with its number it qualifies too. Once rolled
// back it does not qualify again; a restore that stopped before its swap
// never qualifies; the newest swapped restore wins.
func TestRollbackUndoesRestoresWhoseSwapHappened(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	f.dump(dir, "good.dump", restoredb.FormatCustom)
	f.afterBackup()
	if err := os.WriteFile(filepath.Join(dir, "corrupt.dump"), []byte("not a dump"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := f.now.Add(-time.Hour)
	if err := os.Chtimes(filepath.Join(dir, "corrupt.dump"), old, old); err != nil {
		t.Fatal(err)
	}
	f.useDir(dir)
	// Passes on the side database and on data written after the backup;
	// fails on live once the backup's data is live.
	f.db.Checks = []runbook.Check{{Name: "marker or side", SQL: `SELECT count(*) FROM experiments WHERE id = -1 OR current_database() LIKE '%\_restore\_%'`, Expect: runbook.Expect{Op: ">", Value: 0}}}
	b := newBot(f)

	// Nothing to roll back yet.
	if _, err := b.plan("rollback", nil, nil); err == nil || !isRefusal(err) || !strings.Contains(err.Error(), "nothing to roll back") {
		t.Fatalf("rollback before any restore = %v, want a refusal saying there is nothing to roll back", err)
	}

	r1 := b.do("restore-db", nil, nil)
	if r1.State != store.RequestFailed || !strings.Contains(b.cards.reason[r1.ID], "checks failed on the live database") {
		t.Fatalf("restore #%d: %s (%q), want failed after the swap", r1.ID, r1.State, b.cards.reason[r1.ID])
	}
	if rows, marker := f.count(f.live); rows != seedRows || marker {
		t.Fatalf("live after the failed restore: %d rows, marker %v; want the backup's copy live", rows, marker)
	}
	// The suggestion is exactly /dr rollback <service>.
	want := "`/dr rollback " + service + "` puts the previous database back"
	if !strings.Contains(b.cards.reason[r1.ID], want) {
		t.Errorf("failure reason %q does not suggest %q", b.cards.reason[r1.ID], want)
	}

	rp, err := b.plan("rollback", nil, nil)
	if err != nil {
		t.Fatalf("rollback without a number after a failed-after-swap restore: %v", err)
	}
	rs := spec(t, rp)
	s1 := spec(t, mustPlan(t, r1))
	if rs.Restore != r1.ID || rs.Incoming != s1.Outgoing {
		t.Fatalf("rollback picks restore %d bringing back %s; want #%d and %s", rs.Restore, rs.Incoming, r1.ID, s1.Outgoing)
	}
	rb := fact(rp, "Rolls back")
	for _, w := range []string{fmt.Sprintf("request #%d", r1.ID), "good.dump", "swapped in " + f.now.UTC().Format("2006-01-02"), "failed"} {
		if !strings.Contains(rb, w) {
			t.Errorf("card fact 'Rolls back' = %q, want it to name %q", rb, w)
		}
	}
	if !strings.Contains(rp.Summary, fmt.Sprintf("request #%d", r1.ID)) {
		t.Errorf("summary %q does not name the request", rp.Summary)
	}
	if p, err := b.plan("rollback", map[string]string{"request": fmt.Sprint(r1.ID)}, nil); err != nil || spec(t, p).Restore != r1.ID {
		t.Fatalf("rollback %d: %v", r1.ID, err)
	}

	r2 := b.do("rollback", nil, nil)
	if r2.State != store.RequestSucceeded {
		t.Fatalf("rollback #%d is %s (%q)", r2.ID, r2.State, b.cards.reason[r2.ID])
	}
	if rows, marker := f.count(f.live); rows != seedRows+1 || !marker {
		t.Errorf("live after the rollback: %d rows, marker %v; want the data from before the restore", rows, marker)
	}
	if f.replicas() != replicas {
		t.Errorf("writers at %d after the rollback", f.replicas())
	}
	// Already rolled back: by number and without.
	_, err = b.plan("rollback", map[string]string{"request": fmt.Sprint(r1.ID)}, nil)
	if err == nil || !isRefusal(err) || !strings.Contains(err.Error(), fmt.Sprintf("already rolled back by request #%d", r2.ID)) {
		t.Errorf("rollback %d again = %v, want a refusal naming rollback #%d", r1.ID, err, r2.ID)
	}
	if _, err := b.plan("rollback", nil, nil); err == nil || !isRefusal(err) || !strings.Contains(err.Error(), "nothing to roll back") {
		t.Errorf("rollback without a number after everything was rolled back = %v", err)
	}

	// A restore that stopped before its swap: nothing to roll back.
	r3 := b.do("restore-db", nil, map[string]string{"backup": "corrupt.dump"})
	if r3.State != store.RequestFailed {
		t.Fatalf("corrupt restore #%d is %s", r3.ID, r3.State)
	}
	_, err = b.plan("rollback", map[string]string{"request": "#" + fmt.Sprint(r3.ID)}, nil)
	if err == nil || !isRefusal(err) || !strings.Contains(err.Error(), "never replaced") {
		t.Errorf("rollback of a restore that stopped before its swap = %v, want a refusal saying live was never replaced", err)
	}
	_, err = b.plan("rollback", nil, nil)
	if err == nil || !isRefusal(err) || !strings.Contains(err.Error(), "nothing to roll back") || !strings.Contains(err.Error(), fmt.Sprintf("request #%d", r3.ID)) {
		t.Errorf("rollback without a number = %v, want nothing to roll back, naming the newest restore #%d", err, r3.ID)
	}
	for arg, want := range map[string]string{"999": "there is no request #999", "abc": "not a request number", fmt.Sprint(r2.ID): "is a rollback, not a restore-db"} {
		if _, err := b.plan("rollback", map[string]string{"request": arg}, nil); err == nil || !isRefusal(err) || !strings.Contains(err.Error(), want) {
			t.Errorf("rollback %s = %v, want a refusal containing %q", arg, err, want)
		}
	}

	// Two swapped restores: the newest is picked.
	r4 := b.do("restore-db", nil, map[string]string{"backup": "good.dump"})
	if r4.State != store.RequestFailed {
		t.Fatalf("restore #%d is %s", r4.ID, r4.State)
	}
	r5 := b.do("restore-db", nil, map[string]string{"backup": "good.dump"})
	if r5.State != store.RequestFailed {
		t.Fatalf("restore #%d is %s", r5.ID, r5.State)
	}
	if p, err := b.plan("rollback", nil, nil); err != nil || spec(t, p).Restore != r5.ID {
		t.Errorf("rollback with two swapped restores picks %v (%v), want #%d", p.Spec, err, r5.ID)
	}
	f.databases(f.live + "_") // drop what the restores kept
}

func pgxIdent(s string) string { return pgx.Identifier{s}.Sanitize() }

func mustPlan(t *testing.T, r store.ActionRequest) actions.Plan {
	t.Helper()
	var p actions.Plan
	if err := json.Unmarshal(r.Plan, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRollbackOfARestoreInterruptedMidSwap: the journal of a restore that
// ended while its swap step had started and never finished (a crash mid-swap,
// then the request failed) leaves the catalog to decide: when the database it
// would keep exists the rename committed and the restore is rolled back;
// otherwise live was never replaced and rollback says so.
func TestRollbackOfARestoreInterruptedMidSwap(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	f.dump(dir, "good.dump", restoredb.FormatCustom)
	f.useDir(dir)
	b := newBot(f)
	p, err := b.plan("restore-db", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := spec(t, p)
	pj, _ := json.Marshal(p)
	r, err := b.db.CreateRequest(f.ctx, store.ActionRequest{Service: service, Kind: "restore-db", Target: p.Target, Plan: pj, RequestedBy: "UALICE"}, store.AuditEvent{Kind: "request.created"})
	if err != nil {
		t.Fatal(err)
	}
	for _, to := range []store.RequestState{store.RequestApproved, store.RequestRunning, store.RequestFailed} {
		from := map[store.RequestState]store.RequestState{store.RequestApproved: store.RequestPending, store.RequestRunning: store.RequestApproved, store.RequestFailed: store.RequestRunning}[to]
		if _, err := b.db.TransitionRequest(f.ctx, r.ID, []store.RequestState{from}, to, store.AuditEvent{Kind: store.RequestMovedKind(to)}); err != nil {
			t.Fatal(err)
		}
		if to == store.RequestRunning {
			data, _ := json.Marshal(actions.StepRecord{Step: restoredb.StepSwap})
			if _, err := b.db.AppendAudit(f.ctx, store.AuditEvent{RequestID: &r.ID, Actor: "drbot", Kind: actions.AuditStepStarted, Data: data}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := b.plan("rollback", map[string]string{"request": fmt.Sprint(r.ID)}, nil); err == nil || !isRefusal(err) || !strings.Contains(err.Error(), "never replaced") {
		t.Errorf("rollback with no kept database = %v, want a refusal saying live was never replaced", err)
	}
	// The rename had committed: the kept database exists.
	f.exec(f.admin, "CREATE DATABASE "+pgxIdent(s.Outgoing))
	f.databases(s.Outgoing) // dropped at the end
	rp, err := b.plan("rollback", nil, nil)
	if err != nil {
		t.Fatalf("rollback after an interrupted swap that committed: %v", err)
	}
	if rs := spec(t, rp); rs.Restore != r.ID || rs.Incoming != s.Outgoing {
		t.Errorf("rollback picks #%d (%s), want #%d (%s)", rs.Restore, rs.Incoming, r.ID, s.Outgoing)
	}
	if got := fact(rp, "Rolls back"); !strings.Contains(got, "interrupted mid-swap") {
		t.Errorf("'Rolls back' = %q, want it to say the swap was interrupted", got)
	}
}

// TestRestoreWhoseWritersDoNotComeBackSuggestsRollback: the writer cannot be
// scaled back up after the swap, so the restore fails with its copy live; the
// note says so with the rollback command, and that command's rollback runs.
func TestRestoreWhoseWritersDoNotComeBackSuggestsRollback(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	f.dump(dir, "good.dump", restoredb.FormatCustom)
	f.afterBackup()
	f.useDir(dir)
	var refuse atomic.Bool
	refuse.Store(true)
	f.kube.Intercept("patch", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
		var ops []struct {
			Op    string `json:"op"`
			Value int32  `json:"value"`
		}
		_ = json.Unmarshal(a.(k8stesting.PatchAction).GetPatch(), &ops)
		for _, op := range ops {
			if op.Op == "replace" && op.Value > 0 && refuse.Load() {
				return true, nil, fmt.Errorf("admission webhook denied the request")
			}
		}
		return false, nil, nil
	})
	b := newBot(f)
	r := b.do("restore-db", nil, nil)
	if r.State != store.RequestFailed {
		t.Fatalf("restore #%d is %s, want failed (writers not back)", r.ID, r.State)
	}
	if rows, marker := f.count(f.live); rows != seedRows || marker {
		t.Fatalf("live: %d rows, marker %v; want the restored copy live", rows, marker)
	}
	want := "WARNING: could not scale every writer back up"
	var note string
	for _, n := range b.cards.notes {
		if strings.Contains(n, want) {
			note = n
		}
	}
	if !strings.Contains(note, "`/dr rollback "+service+"` puts the previous database back") {
		t.Errorf("notes %q: want a note saying writers did not come back with the rollback command", b.cards.notes)
	}
	refuse.Store(false)
	rb := b.do("rollback", nil, nil)
	if rb.State != store.RequestSucceeded {
		t.Fatalf("rollback #%d is %s (%q)", rb.ID, rb.State, b.cards.reason[rb.ID])
	}
	if rows, marker := f.count(f.live); rows != seedRows+1 || !marker {
		t.Errorf("live after the rollback: %d rows, marker %v", rows, marker)
	}
	// The writers come back to what they ran before the restore, not to the 0
	// its failed scale-up left: a rollback must not leave the service down.
	if got := f.replicas(); got != replicas {
		t.Errorf("writer replicas after the rollback = %d, want %d (before the restore)", got, replicas)
	}
	f.databases(f.live + "_")
}
