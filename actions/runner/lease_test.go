package runner_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/runner"
	"github.com/drbot-dev/drbot/store"
	"github.com/drbot-dev/drbot/store/postgres"
)

// approvedFor is fixture.approved for service (its own target).
func (f *fixture) approvedFor(t *testing.T, db *postgres.DB, service string) store.ActionRequest {
	t.Helper()
	ctx := context.Background()
	params := actions.Params{Service: service}
	plan, err := f.action.Plan(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	pj, _ := json.Marshal(plan)
	par, _ := json.Marshal(params)
	r, err := db.CreateRequest(ctx, store.ActionRequest{Service: service, Kind: "restore-db", Target: plan.Target, Params: par, Plan: pj, RequestedBy: "UALICE"}, store.AuditEvent{})
	if err != nil {
		t.Fatal(err)
	}
	r, err = db.TransitionRequest(ctx, r.ID, []store.RequestState{store.RequestPending}, store.RequestApproved, store.AuditEvent{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// stepStarts counts the step.started rows of step over all requests.
func stepStarts(t *testing.T, pool *pgxpool.Pool, step string) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM audit_events WHERE kind = 'step.started' AND data->>'step' = $1", step).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// eventually polls cond until it holds (true) or a generous deadline passes.
func eventually(cond func() bool) bool {
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// waitUntil is eventually, failing the test with what when cond never holds.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if !eventually(cond) {
		t.Fatalf("timed out waiting for %s", what)
	}
}

// TestRunManyExecutionsDoNotHoldPoolConnections: 20 executions in flight on
// a store whose pool has 4 connections all reach their long step, and the
// store (what /readyz, webhooks and Slack acks need) still answers meanwhile.
// The session advisory lock pinned one connection per execution.
func TestRunManyExecutionsDoNotHoldPoolConnections(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	if err := f.action.AddBackup(ctx, "b1"); err != nil {
		t.Fatal(err)
	}
	small, err := postgres.Open(ctx, f.url, postgres.Options{Logger: quiet(), MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	// With executions pinning connections the pool deadlocks and Close
	// would wait for ever: leave it to the process on failure.
	defer func() {
		if !t.Failed() {
			small.Close()
		}
	}()
	run := f.runnerOn(small)
	const n = 20
	ids := make([]int64, n)
	for i := range n {
		ids[i] = f.approvedFor(t, f.db, "svc"+string(rune('a'+i))).ID
	}
	f.action.Hold()
	released := false
	defer func() {
		if !released {
			f.action.Release()
		}
	}()
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Go(func() {
			if err := run.Run(ctx, id); err != nil {
				t.Error(err)
			}
		})
	}
	if !eventually(func() bool { return stepStarts(t, f.action.Pool, "record") == n }) {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := small.Ping(pctx)
		cancel()
		t.Fatalf("%d of %d executions reached their long step on a pool of 4; store ping: %v", stepStarts(t, f.action.Pool, "record"), n, err)
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := small.Ping(pctx); err != nil {
		t.Fatalf("store ping with %d executions in flight: %v", n, err)
	}
	f.action.Release()
	released = true
	wg.Wait()
	for _, id := range ids {
		// Each ran to its verification (runnertest verifies one execution
		// per backup, so all but one report a failed check).
		if got := f.state(t, id).State; !store.Final(got) || !slices.Contains(auditKinds(t, f.db, id), "request.verifying") {
			t.Errorf("request %d: %s, audit %v", id, got, auditKinds(t, f.db, id))
		}
	}
	if ex := f.executions(t); len(ex) != n {
		t.Errorf("executions = %d, want %d", len(ex), n)
	}
}

// TestRunSurvivesStoreConnectionsTerminated: the bot's store connections are
// terminated (as a failover or a proxy would) while an execution is in its
// long step; a second runner (the periodic resume of another process) does
// not start it again, and the first runner finishes it: one execution.
func TestRunSurvivesStoreConnectionsTerminated(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	if err := f.action.AddBackup(ctx, "b1"); err != nil {
		t.Fatal(err)
	}
	r := f.approved(t)
	entered := f.action.Hold()
	released := false
	defer func() {
		if !released {
			f.action.Release()
		}
	}()
	first := make(chan error, 1)
	go func() { first <- f.run.Run(ctx, r.ID) }()
	<-entered
	// The runnertest action has a pool of its own (application_name unset).
	var killed int
	if err := f.action.Pool.QueryRow(ctx, `SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE application_name = 'drbot' AND datname = current_database()) t`).Scan(&killed); err != nil {
		t.Fatal(err)
	}
	if killed == 0 {
		t.Fatal("terminated no store connection")
	}

	db2, err := postgres.Open(ctx, f.url, postgres.Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	other := f.runnerOn(db2)
	if _, err := other.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	second := make(chan error, 1)
	go func() { second <- other.Run(ctx, r.ID) }()
	var secondDone bool
	waitUntil(t, "the second runner to give up or start the step", func() bool {
		select {
		case err := <-second:
			if err != nil {
				t.Errorf("second runner: %v", err)
			}
			secondDone = true
			return true
		default:
			return stepStarts(t, f.action.Pool, "record") > 1
		}
	})
	if !secondDone {
		t.Errorf("a second runner started the step the first is still running")
	}
	f.action.Release()
	released = true
	if err := <-first; err != nil {
		t.Fatalf("first runner: %v", err)
	}
	if !secondDone {
		<-second
	}
	if ex := f.executions(t); !slices.Equal(ex, []string{"b1"}) {
		t.Errorf("executions = %v, want exactly one of b1", ex)
	}
	if got := f.state(t, r.ID).State; got != store.RequestSucceeded {
		t.Errorf("state = %s", got)
	}
}

// TestRunStopsWhenLeaseStolen: a runner whose lease expired and was taken
// over notices at its next renewal, stops before its next step, says so in
// the channel and the audit log, and leaves the request running for the new
// holder (not failed).
func TestRunStopsWhenLeaseStolen(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	if err := f.action.AddBackup(ctx, "b1"); err != nil {
		t.Fatal(err)
	}
	r := f.approved(t)
	run := runner.New(runner.Options{Store: f.db, Actions: actions.Registry{"restore-db": f.action}, Cards: f.cards, Logger: quiet(),
		ProgressEvery: time.Hour, Lease: 3 * time.Second})
	entered := f.action.Hold()
	defer f.action.Release()
	done := make(chan error, 1)
	go func() { done <- run.Run(ctx, r.ID) }()
	<-entered
	if _, err := f.db.Pool().Exec(ctx, "UPDATE execution_leases SET expires_at = now() - interval '1 second' WHERE target = $1", r.Target); err != nil {
		t.Fatal(err)
	}
	thief, err := f.db.AcquireLease(ctx, r.Target, r.ID, "thief/1", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("a runner that lost its lease returned %v (it should stop and report, not be retried)", err)
	}
	if ex := f.executions(t); len(ex) != 0 {
		t.Errorf("the runner went on after losing its lease: executions %v", ex)
	}
	if got := f.state(t, r.ID).State; got != store.RequestRunning {
		t.Errorf("state = %s, want running (the new holder carries on)", got)
	}
	kinds := auditKinds(t, f.db, r.ID)
	if !slices.Contains(kinds, "request.lease_lost") || slices.Contains(kinds, "request.failed") {
		t.Errorf("audit = %v", kinds)
	}
	f.cards.mu.Lock()
	notes := slices.Clone(f.cards.notes)
	f.cards.mu.Unlock()
	if !slices.ContainsFunc(notes, func(s string) bool {
		return strings.Contains(s, "lost the execution lease for "+r.Target+" to thief/1") && strings.Contains(s, "stopped before step record")
	}) {
		t.Errorf("notes = %q", notes)
	}
	// While the new holder's lease is live the resume leaves the request to it;
	// once it is gone the resume picks the request up.
	if n, err := run.Resume(ctx); err != nil || n != 0 {
		t.Errorf("Resume with a live lease = %d, %v", n, err)
	}
	if err := f.db.ReleaseLease(ctx, thief); err != nil {
		t.Fatal(err)
	}
	if n, err := run.Resume(ctx); err != nil || n != 1 {
		t.Errorf("Resume after the lease was released = %d, %v", n, err)
	}
}

// unreachableRenewals is the real store whose lease renewals fail as when
// the store stops answering this runner (a failover, a proxy dropping its
// connections), while everything else still works. It records when the
// runner reported its lease lost.
type unreachableRenewals struct {
	*postgres.DB
	down      atomic.Bool
	mu        sync.Mutex
	lostAt    time.Time
	lastLease store.Lease
}

func (u *unreachableRenewals) RenewLease(ctx context.Context, l store.Lease, ttl time.Duration) (store.Lease, error) {
	if u.down.Load() {
		return store.Lease{}, errors.New("dial tcp 10.0.0.5:5432: connect: connection refused")
	}
	nl, err := u.DB.RenewLease(ctx, l, ttl)
	if err == nil {
		u.mu.Lock()
		u.lastLease = nl
		u.mu.Unlock()
	}
	return nl, err
}

func (u *unreachableRenewals) AppendAudit(ctx context.Context, ev store.AuditEvent) (store.AuditEvent, error) {
	if ev.Kind == "request.lease_lost" {
		u.mu.Lock()
		if u.lostAt.IsZero() {
			u.lostAt = time.Now()
		}
		u.mu.Unlock()
	}
	return u.DB.AppendAudit(ctx, ev)
}

// TestRunStopsBeforeItsUnrenewableLeaseExpires: a runner that cannot renew
// its lease stops its execution while the lease is still its own, so that a
// runner taking the expired lease over (the resume does, within a minute)
// never works on the target at the same time. It stopped only once the
// lease had already run out, a third of a lease too late.
func TestRunStopsBeforeItsUnrenewableLeaseExpires(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	if err := f.action.AddBackup(ctx, "b1"); err != nil {
		t.Fatal(err)
	}
	r := f.approved(t)
	st := &unreachableRenewals{DB: f.db}
	lease := 6 * time.Second
	run := runner.New(runner.Options{Store: st, Actions: actions.Registry{"restore-db": f.action}, Cards: f.cards, Logger: quiet(),
		ProgressEvery: time.Hour, Lease: lease})
	entered := f.action.Hold()
	defer f.action.Release()
	done := make(chan error, 1)
	go func() { done <- run.Run(ctx, r.ID) }()
	<-entered
	// Wait for one renewal, then the store stops answering renewals.
	waitUntil(t, "a renewal", func() bool {
		st.mu.Lock()
		defer st.mu.Unlock()
		return st.lastLease.Token != 0
	})
	st.down.Store(true)
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	st.mu.Lock()
	lostAt := st.lostAt
	expires := st.lastLease.ExpiresAt // the last renewal's, in the store's clock (this machine's)
	st.mu.Unlock()
	if lostAt.IsZero() {
		t.Fatal("the runner did not report its lease lost")
	}
	t.Logf("stopped %s before the lease expired", expires.Sub(lostAt).Round(time.Millisecond))
	if !lostAt.Before(expires) {
		t.Errorf("the runner stopped at %s, %s after its lease expired at %s: another runner could already hold it",
			lostAt.Format(time.RFC3339Nano), lostAt.Sub(expires), expires.Format(time.RFC3339Nano))
	}
	if ex := f.executions(t); len(ex) != 0 {
		t.Errorf("the runner went on without a lease: executions %v", ex)
	}
}
