package runner_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/restoredb"
	"github.com/drbot-dev/drbot/actions/runner"
	"github.com/drbot-dev/drbot/internal/testenv"
	"github.com/drbot-dev/drbot/runbook"
	"github.com/drbot-dev/drbot/store"
)

var replanEnvSeq atomic.Int64

// restoreWorld is a real restore-db: a live PostgreSQL database, a pg_dump
// backup in a file:// location and the action with an injected clock.
type restoreWorld struct {
	t    *testing.T
	f    *fixture
	dir  string
	now  time.Time
	act  *restoredb.RestoreDB
	run  *runner.Runner
	live string
}

func newRestoreWorld(t *testing.T) *restoreWorld {
	t.Helper()
	ctx := context.Background()
	w := &restoreWorld{t: t, f: newFixture(t), dir: t.TempDir(), now: time.Date(2026, 12, 1, 14, 0, 0, 0, time.UTC)}
	liveURL := testenv.PostgresURL(t)
	conn, err := pgx.Connect(ctx, liveURL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE orders (id int PRIMARY KEY); INSERT INTO orders SELECT generate_series(1, 10)`); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	w.live = strings.TrimPrefix(liveURL[strings.LastIndex(liveURL, "/"):], "/")
	if i := strings.IndexByte(w.live, '?'); i >= 0 {
		w.live = w.live[:i]
	}
	if out, err := exec.Command("pg_dump", "--dbname", liveURL, "--format", "custom", "--file", filepath.Join(w.dir, "orders.dump")).CombinedOutput(); err != nil {
		t.Fatalf("pg_dump: %v: %s", err, out)
	}
	env := fmt.Sprintf("REPLAN_DB_URL_%d", replanEnvSeq.Add(1))
	t.Setenv(env, liveURL)
	loc, err := runbook.ParseLocation("file://" + w.dir + "/")
	if err != nil {
		t.Fatal(err)
	}
	cfg := &runbook.Config{Services: []runbook.Service{{
		Name:       "inflow",
		Objectives: runbook.Objectives{RPO: runbook.Duration{Duration: 4 * time.Hour}},
		Databases: []runbook.Database{{
			Name: "orders", URLEnv: env, Backups: &runbook.Backups{Location: loc},
			Checks: []runbook.Check{{Name: "orders present", SQL: "SELECT count(*) FROM orders", Expect: runbook.Expect{Op: ">", Value: 0}}},
		}},
	}}}
	w.act = restoredb.New(restoredb.Options{Config: func() *runbook.Config { return cfg }, Now: func() time.Time { return w.now }, Logger: quiet()})
	w.run = runner.New(runner.Options{Store: w.f.db, Actions: actions.Registry{"restore-db": w.act}, Cards: w.f.cards, Logger: quiet(), ProgressEvery: time.Hour})
	t.Cleanup(func() { w.dropDerived() })
	return w
}

// approved plans restore-db with flags, records the request and approves it.
func (w *restoreWorld) approved(flags map[string]string) store.ActionRequest {
	w.t.Helper()
	ctx := context.Background()
	params := actions.Params{Service: "inflow", Flags: flags}
	plan, err := w.act.Plan(ctx, params)
	if err != nil {
		w.t.Fatal(err)
	}
	pj, _ := json.Marshal(plan)
	par, _ := json.Marshal(params)
	r, err := w.f.db.CreateRequest(ctx, store.ActionRequest{Service: "inflow", Kind: "restore-db", Target: plan.Target, Params: par, Plan: pj, RequestedBy: "UALICE"}, store.AuditEvent{})
	if err != nil {
		w.t.Fatal(err)
	}
	r, err = w.f.db.TransitionRequest(ctx, r.ID, []store.RequestState{store.RequestPending}, store.RequestApproved, store.AuditEvent{})
	if err != nil {
		w.t.Fatal(err)
	}
	return r
}

// dropDerived drops the side, pre-restore databases the restores made.
func (w *restoreWorld) dropDerived() {
	ctx := context.Background()
	c := testenv.Cluster(w.t)
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT datname FROM pg_database WHERE starts_with(datname, $1) AND datname <> $1`, w.live)
	if err != nil {
		return
	}
	names, _ := pgx.CollectRows(rows, pgx.RowTo[string])
	for _, n := range names {
		_ = c.DropDatabase(ctx, n)
	}
}

func (w *restoreWorld) driftNotes() []string {
	w.f.cards.mu.Lock()
	defer w.f.cards.mu.Unlock()
	var out []string
	for _, n := range w.f.cards.notes {
		if strings.Contains(n, "plan would be different") {
			out = append(out, n)
		}
	}
	return out
}

// TestReplanOfUnchangedRestoreIsSilent: a real restore-db approved a few
// minutes before it runs re-plans to the same backup, target and steps; only
// the age and the timestamped side database name differ, and those are not
// drift.
func TestReplanOfUnchangedRestoreIsSilent(t *testing.T) {
	w := newRestoreWorld(t)
	r := w.approved(nil)
	w.now = w.now.Add(3*time.Minute + 7*time.Second) // approval took a while
	if err := w.run.Run(context.Background(), r.ID); err != nil {
		t.Fatal(err)
	}
	if got := w.f.state(t, r.ID).State; got != store.RequestSucceeded {
		t.Fatalf("state = %s (reason %q, notes %q)", got, w.f.cards.last.Reason, w.f.cards.notes)
	}
	if d := w.driftNotes(); len(d) != 0 {
		t.Errorf("an unchanged world reported drift: %q", d)
	}
	for _, k := range auditKinds(t, w.f.db, r.ID) {
		if k == "plan.changed" {
			t.Error("plan.changed recorded for an unchanged world")
		}
	}
}

// TestReplanReportsAReplacedBackup: the pinned backup file is replaced
// between approval and execution (a new ETag): drift is reported, naming the
// backup, and the approved plan still runs exactly as approved, which refuses
// to read anything but the pinned object.
func TestReplanReportsAReplacedBackup(t *testing.T) {
	w := newRestoreWorld(t)
	r := w.approved(map[string]string{"backup": "orders.dump"})
	path := filepath.Join(w.dir, "orders.dump")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil { // a new file under the same name
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
	w.now = w.now.Add(time.Minute)
	if err := w.run.Run(context.Background(), r.ID); err != nil {
		t.Fatal(err)
	}
	d := w.driftNotes()
	if len(d) != 1 || !strings.Contains(d[0], "backup changed") || !strings.Contains(d[0], "exactly as approved") {
		t.Fatalf("drift notes = %q, want one naming the backup", d)
	}
	if got := w.f.state(t, r.ID); got.State != store.RequestFailed || !strings.Contains(w.f.cards.last.Reason, "changed") {
		t.Errorf("state %s, reason %q: the approved plan must refuse the replaced object", got.State, w.f.cards.last.Reason)
	}
}
