package restoredb_test

import (
	"context"
	"encoding/json"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/restoredb"
	"github.com/drbot-dev/drbot/actions/storage"
	"github.com/drbot-dev/drbot/internal/testenv"
	"github.com/drbot-dev/drbot/runbook"
	"github.com/drbot-dev/drbot/store/postgres"
)

// stepTimer is an actions.Journal that records each step's wall time.
type stepTimer struct {
	mu    sync.Mutex
	began map[string]time.Time
	took  map[string]time.Duration
}

func (s *stepTimer) Begin(_ context.Context, step string) (json.RawMessage, bool, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.began[step] = time.Now()
	return nil, false, false, nil
}

func (s *stepTimer) Finish(_ context.Context, step string, _ any, _ error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.took[step] += time.Since(s.began[step])
	return nil
}

func (s *stepTimer) Progress(context.Context, actions.Progress) {}
func (s *stepTimer) Note(context.Context, string)               {}

// BenchmarkRestoreDBDrillOverhead measures a restore-db drill's own
// overhead: everything but streaming the data. The backup is a custom dump
// of one table holding one row, so the restore step is pg_restore's start
// and the schema; the drill's work is the plan (list and pin the backup,
// read the catalog), recording the copy in drbot's store, CREATE DATABASE,
// the checks on the copy, the guarded DROP DATABASE and the verification.
// It reports each part and the total (drill-s, the figure issue 11 holds
// under 2 s) and never fails on timing.
func BenchmarkRestoreDBDrillOverhead(b *testing.B) {
	ctx := context.Background()
	liveURL := testenv.PostgresURL(b)
	u, _ := url.Parse(liveURL)
	live := strings.TrimPrefix(u.Path, "/")
	conn, err := pgx.Connect(ctx, liveURL)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE events (id int PRIMARY KEY, at timestamptz DEFAULT now()); INSERT INTO events (id) VALUES (1)`); err != nil {
		b.Fatal(err)
	}
	conn.Close(ctx)
	dir := b.TempDir()
	if out, err := exec.Command("pg_dump", "--format", "custom", "--dbname", liveURL, "--file", filepath.Join(dir, "bench.dump")).CombinedOutput(); err != nil {
		b.Fatalf("pg_dump: %v: %s", err, out)
	}
	st, err := postgres.Open(ctx, testenv.PostgresURL(b), postgres.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(st.Close)
	b.Setenv("BENCH_DRILL_URL", liveURL)
	loc, _ := runbook.ParseLocation("file://" + dir + "/")
	rb := &runbook.Config{Services: []runbook.Service{{Name: "bench", Databases: []runbook.Database{{
		Name: live, URLEnv: "BENCH_DRILL_URL", Backups: &runbook.Backups{Location: loc},
		Checks: []runbook.Check{{Name: "events", SQL: "SELECT count(*) FROM events", Expect: runbook.Expect{Op: "==", Value: 1}}},
	}}}}}
	now := time.Now()
	a := restoredb.New(restoredb.Options{
		Config: func() *runbook.Config { return rb },
		Storage: func(ctx context.Context, loc runbook.Location) (storage.Store, error) {
			return storage.New(ctx, loc, storage.Options{})
		},
		Drills: st,
		Now:    func() time.Time { return now },
	})
	var plan, exec, verify time.Duration
	steps := map[string]time.Duration{}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		now = now.Add(time.Second) // a new copy name each time
		began := time.Now()
		p, err := a.DrillPlan(ctx, actions.Params{Service: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		plan += time.Since(began)
		j := &stepTimer{began: map[string]time.Time{}, took: map[string]time.Duration{}}
		began = time.Now()
		if err := a.Execute(ctx, p, j); err != nil {
			b.Fatal(err)
		}
		exec += time.Since(began)
		began = time.Now()
		rep, err := a.Verify(ctx, p)
		if err != nil || !rep.OK() {
			b.Fatalf("verify: %+v, %v", rep, err)
		}
		verify += time.Since(began)
		for k, v := range j.took {
			steps[k] += v
		}
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(plan.Seconds()/n, "plan-s")
	b.ReportMetric(steps[restoredb.StepRestoreSide].Seconds()/n, "restore-step-s")
	b.ReportMetric(steps[restoredb.StepCheckSide].Seconds()/n, "check-s")
	b.ReportMetric(steps[restoredb.StepDropCopy].Seconds()/n, "drop-s")
	b.ReportMetric(verify.Seconds()/n, "verify-s")
	b.ReportMetric((plan+exec+verify).Seconds()/n, "drill-s")
}
