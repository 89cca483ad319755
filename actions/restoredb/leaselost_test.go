package restoredb_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/drbot-dev/drbot/actions/restoredb"
	"github.com/drbot-dev/drbot/store"
)

// TestRestoreStopsItsStreamAndLeavesTheSideDatabaseWhenTheLeaseIsLost: the
// runner cancels an execution whose lease it lost (cause *store.LeaseError)
// while psql is still reading the backup. The stream stops at once, and the
// side database is left to the new holder, which restarts the restore into
// it: dropping it (WITH FORCE) would kill the new holder's own stream.
func TestRestoreStopsItsStreamAndLeavesTheSideDatabaseWhenTheLeaseIsLost(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	writeBackup(t, filepath.Join(dir, "slow.sql"), "CREATE TABLE experiments (id int PRIMARY KEY, note text, created timestamptz);\n"+
		"SELECT pg_sleep(600);\nINSERT INTO experiments (id) VALUES (1);\n", false)
	f.useDir(dir)
	a := restoredb.New(f.options())
	p := f.plan(a, map[string]string{"backup": "slow.sql"})
	s := spec(t, p)
	ctx, cancel := context.WithCancelCause(f.ctx)
	defer cancel(nil)
	j := newJournal("")
	done := make(chan error, 1)
	go func() { done <- a.Execute(ctx, p, j) }()
	// Wait until psql sleeps inside the side database.
	conn, err := pgx.Connect(f.ctx, f.admin)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(f.ctx)
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var n int
		if err := conn.QueryRow(f.ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND query LIKE 'SELECT pg_sleep%'`, s.Incoming).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("psql never reached the backup's pg_sleep")
		}
	}
	began := time.Now()
	cancel(&store.LeaseError{Target: p.Target, Holder: "other/1", Lost: true})
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the restore went on streaming after its context was cancelled")
	}
	if err == nil {
		t.Fatal("Execute succeeded after its lease was lost")
	}
	t.Logf("stopped in %s: %v", time.Since(began).Round(time.Millisecond), err)
	if got := f.databases(s.Incoming); len(got) != 1 {
		t.Errorf("side database %s after the lease was lost: %v, want it left for the new holder", s.Incoming, got)
	}
	if notes := strings.Join(j.notes(), "\n"); strings.Contains(notes, "was dropped") {
		t.Errorf("notes %q: a runner without the lease dropped the side database", notes)
	}
	if rows, marker := f.count(f.live); rows != seedRows || marker {
		t.Errorf("live changed: %d rows, marker %v", rows, marker)
	}
}
