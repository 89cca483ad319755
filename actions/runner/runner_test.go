package runner_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/runner"
	"github.com/drbot-dev/drbot/actions/runner/runnertest"
	"github.com/drbot-dev/drbot/internal/testenv"
	"github.com/drbot-dev/drbot/store"
	"github.com/drbot-dev/drbot/store/postgres"
)

func TestMain(m *testing.M) {
	testenv.SetTemplateSetup(func(ctx context.Context, url string) error { return postgres.Migrate(ctx, url) })
	testenv.Main(m)
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// cardLog records what the runner shows: the states and statuses in order.
type cardLog struct {
	mu    sync.Mutex
	shows []string
	notes []string
	last  runner.Status
}

func (c *cardLog) Show(_ context.Context, req store.ActionRequest, st runner.Status) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := string(req.State)
	if st.StepIndex > 0 {
		s += ":" + st.Step
	}
	if st.Progress != nil {
		s += "+progress"
	}
	c.shows = append(c.shows, s)
	c.last = st
}

func (c *cardLog) Note(_ context.Context, _ store.ActionRequest, text string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.notes = append(c.notes, text)
}

type fixture struct {
	url    string
	db     *postgres.DB
	action *runnertest.Action
	cards  *cardLog
	run    *runner.Runner
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	url := testenv.PostgresURL(t)
	db, err := postgres.Open(ctx, url, postgres.Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	a, err := runnertest.New(ctx, "restore-db", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	f := &fixture{url: url, db: db, action: a, cards: &cardLog{}}
	f.run = f.runnerOn(db)
	return f
}

func (f *fixture) runnerOn(db *postgres.DB) *runner.Runner {
	return runner.New(runner.Options{Store: db, Actions: actions.Registry{"restore-db": f.action}, Cards: f.cards, Logger: quiet(), ProgressEvery: time.Hour})
}

// approved creates a request for the current plan and moves it to approved.
func (f *fixture) approved(t *testing.T) store.ActionRequest {
	t.Helper()
	ctx := context.Background()
	params := actions.Params{Service: "inflow"}
	plan, err := f.action.Plan(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	pj, _ := json.Marshal(plan)
	par, _ := json.Marshal(params)
	r, err := f.db.CreateRequest(ctx, store.ActionRequest{Service: "inflow", Kind: "restore-db", Target: plan.Target, Params: par, Plan: pj, RequestedBy: "UALICE"}, store.AuditEvent{})
	if err != nil {
		t.Fatal(err)
	}
	h, _ := plan.Hash()
	if h != r.PlanHash {
		t.Fatalf("plan hash %s != stored hash %s", h, r.PlanHash)
	}
	r, err = f.db.TransitionRequest(ctx, r.ID, []store.RequestState{store.RequestPending}, store.RequestApproved, store.AuditEvent{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (f *fixture) state(t *testing.T, id int64) store.ActionRequest {
	t.Helper()
	r, err := f.db.Request(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (f *fixture) executions(t *testing.T) []string {
	t.Helper()
	ex, err := f.action.Executions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ex
}

func auditKinds(t *testing.T, db *postgres.DB, id int64) []string {
	t.Helper()
	evs, err := db.AuditEvents(context.Background(), store.AuditFilter{RequestID: &id})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ev := range evs {
		out = append(out, ev.Kind)
	}
	return out
}

func TestRunExecutesOnceAndVerifies(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	if err := f.action.AddBackup(ctx, "b1"); err != nil {
		t.Fatal(err)
	}
	r := f.approved(t)
	if err := f.run.Run(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if got := f.state(t, r.ID).State; got != store.RequestSucceeded {
		t.Fatalf("state = %s, want succeeded (cards %v)", got, f.cards.shows)
	}
	if err := f.run.Run(ctx, r.ID); err != nil { // a retried job
		t.Fatal(err)
	}
	if ex := f.executions(t); !slices.Equal(ex, []string{"b1"}) {
		t.Errorf("executions = %v, want [b1]", ex)
	}
	kinds := auditKinds(t, f.db, r.ID)
	want := []string{"request.created", "request.approved", "request.running",
		"step.started", "step.finished", "step.started", "step.finished", "step.started", "step.finished",
		"request.verifying", "request.succeeded"}
	if !slices.Equal(kinds, want) {
		t.Errorf("audit = %v\nwant    %v", kinds, want)
	}
	f.cards.mu.Lock()
	defer f.cards.mu.Unlock()
	for _, want := range []string{"running", "running:check", "running:record", "running:record+progress", "verifying:verify", "succeeded"} {
		if !slices.Contains(f.cards.shows, want) {
			t.Errorf("card never showed %q: %v", want, f.cards.shows)
		}
	}
	if f.cards.last.Report == nil || !f.cards.last.Report.OK() {
		t.Errorf("final card has no passing report: %+v", f.cards.last)
	}
}

func TestRunPinnedPlanWhenWorldChanged(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	if err := f.action.AddBackup(ctx, "b1"); err != nil {
		t.Fatal(err)
	}
	r := f.approved(t)
	if err := f.action.AddBackup(ctx, "b2"); err != nil { // a newer backup appears after approval
		t.Fatal(err)
	}
	if err := f.run.Run(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if ex := f.executions(t); !slices.Equal(ex, []string{"b1"}) {
		t.Errorf("executions = %v, want the approved backup b1 only", ex)
	}
	if got := f.state(t, r.ID).State; got != store.RequestSucceeded {
		t.Errorf("state = %s", got)
	}
	if !slices.Contains(auditKinds(t, f.db, r.ID), "plan.changed") {
		t.Error("no plan.changed audit row")
	}
	if len(f.cards.notes) != 1 || !strings.Contains(f.cards.notes[0], "exactly as approved") {
		t.Errorf("notes = %q", f.cards.notes)
	}
}

func TestRunFailsWhenPinnedObjectGone(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	for _, b := range []string{"b1", "b2"} {
		if err := f.action.AddBackup(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	r := f.approved(t) // pins b2
	if err := f.action.DeleteBackup(ctx, "b2"); err != nil {
		t.Fatal(err)
	}
	if err := f.run.Run(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if got := f.state(t, r.ID).State; got != store.RequestFailed {
		t.Fatalf("state = %s, want failed", got)
	}
	if ex := f.executions(t); len(ex) != 0 {
		t.Errorf("something ran instead: %v", ex)
	}
	if !strings.Contains(f.cards.last.Reason, "the approved backup b2 is gone") {
		t.Errorf("failure reason = %q", f.cards.last.Reason)
	}
}

func TestRunNoActionFails(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	if err := f.action.AddBackup(ctx, "b1"); err != nil {
		t.Fatal(err)
	}
	r := f.approved(t)
	empty := runner.New(runner.Options{Store: f.db, Actions: actions.Registry{}, Cards: f.cards, Logger: quiet()})
	if err := empty.Run(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if got := f.state(t, r.ID).State; got != store.RequestFailed || !strings.Contains(f.cards.last.Reason, "no restore-db action") {
		t.Errorf("state %s, reason %q", got, f.cards.last.Reason)
	}
}

// TestRunResumesAfterInterruption: an execution stopped mid-step (its
// process went away) is resumed from the journal: done steps are skipped and
// the execution happens once.
func TestRunResumesAfterInterruption(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	if err := f.action.AddBackup(ctx, "b1"); err != nil {
		t.Fatal(err)
	}
	r := f.approved(t)
	entered := f.action.Hold()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- f.run.Run(runCtx, r.ID) }()
	<-entered
	stop()
	if err := <-done; err == nil {
		t.Fatal("interrupted run reported success")
	}
	f.action.Release()
	if got := f.state(t, r.ID).State; got != store.RequestRunning {
		t.Fatalf("state after interruption = %s, want running", got)
	}
	n, err := f.run.Resume(ctx)
	if err != nil || n != 1 {
		t.Fatalf("Resume = %d, %v", n, err)
	}
	var resumeJobs int
	if err := f.db.Pool().QueryRow(ctx, "SELECT count(*) FROM river_job WHERE kind = $1 AND args->>'resume' <> ''", store.KindExecuteRequest).Scan(&resumeJobs); err != nil || resumeJobs != 1 {
		t.Fatalf("resume jobs = %d, %v", resumeJobs, err)
	}
	if err := f.run.Run(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if got := f.state(t, r.ID).State; got != store.RequestSucceeded {
		t.Fatalf("state = %s", got)
	}
	if ex := f.executions(t); !slices.Equal(ex, []string{"b1"}) {
		t.Errorf("executions = %v", ex)
	}
	kinds := auditKinds(t, f.db, r.ID)
	if c := count(kinds, "step.started"); c != 4 { // check, create, record, record again
		t.Errorf("step.started rows = %d (%v)", c, kinds)
	}
	if !slices.ContainsFunc(f.cards.notes, func(s string) bool { return strings.Contains(s, "Resumed after a restart") }) {
		t.Errorf("notes = %q", f.cards.notes)
	}
}

// TestRunTwoProcessesExecuteOnce: two stores (two processes' pools) run the
// same approved request at once; it executes once.
func TestRunTwoProcessesExecuteOnce(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	if err := f.action.AddBackup(ctx, "b1"); err != nil {
		t.Fatal(err)
	}
	db2, err := postgres.Open(ctx, f.url, postgres.Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	runners := []*runner.Runner{f.run, f.runnerOn(db2)}
	for round := range 5 {
		if round > 0 {
			if err := f.action.AddBackup(ctx, "b"+string(rune('1'+round))); err != nil {
				t.Fatal(err)
			}
		}
		r := f.approved(t)
		var wg sync.WaitGroup
		for i := range 6 {
			wg.Go(func() {
				if err := runners[i%2].Run(ctx, r.ID); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		// A run refused by the lock leaves the work to the holder, which finished.
		if got := f.state(t, r.ID).State; got != store.RequestSucceeded {
			t.Errorf("round %d: state %s", round, got)
		}
	}
	if ex := f.executions(t); len(ex) != 5 {
		t.Errorf("executions = %v, want 5 (one per request)", ex)
	}
}

func count(ss []string, s string) int {
	n := 0
	for _, x := range ss {
		if x == s {
			n++
		}
	}
	return n
}
