package restoredb

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/drbot-dev/drbot/internal/testenv"
	"github.com/drbot-dev/drbot/runbook"
	"github.com/drbot-dev/drbot/store"
	"github.com/drbot-dev/drbot/store/postgres"
)

func TestIsDrillCopyName(t *testing.T) {
	for _, tc := range []struct {
		live, name string
		want       bool
	}{
		{"lstm_pfd", "lstm_pfd_drill_20261201120000", true},
		{"lstm_pfd", "lstm_pfd", false},
		{"lstm_pfd", "lstm_pfd_restore_20261201120000", false},
		{"lstm_pfd", "lstm_pfd_pre_restore_20261201120000", false},
		{"lstm_pfd", "other_drill_20261201120000", false},
		{"lstm_pfd", "lstm_pfd_drill_2026120112000", false},    // 13 digits
		{"lstm_pfd", "lstm_pfd_drill_20261301120000", false},   // month 13
		{"lstm_pfd", "lstm_pfd_drill_20261201120000x", false},  // trailing
		{"lstm_pfd", "x_lstm_pfd_drill_20261201120000", false}, // prefix
		{"lstm_pfd", `lstm_pfd_drill_20261201120000"; DROP DATABASE lstm_pfd; --`, false},
		{"lstm_pfd", "lstm_pfd\x00_drill_20261201120000", false},
		{"lstm_pfd", "LSTM_PFD_drill_20261201120000", false},
		{strings.Repeat("a", 63), DrillCopyName(strings.Repeat("a", 63), "20261201120000"), true}, // shortened to fit
	} {
		if got := IsDrillCopyName(tc.live, tc.name); got != tc.want {
			t.Errorf("IsDrillCopyName(%q, %q) = %v, want %v", tc.live, tc.name, got, tc.want)
		}
	}
}

// TestDropDrillCopyDropsOnlyItsOwn: the only database drbot drops is a drill
// copy of live that the store records drbot creating. Live itself, another
// database, a name shaped like a copy that drbot did not create, hostile
// names, and a copy already dropped are refused, and every one of them
// still exists afterwards.
func TestDropDrillCopyDropsOnlyItsOwn(t *testing.T) {
	ctx := context.Background()
	liveURL := testenv.PostgresURL(t)
	u, _ := url.Parse(liveURL)
	live := strings.TrimPrefix(u.Path, "/")
	tgt, err := parseTarget(liveURL)
	if err != nil {
		t.Fatal(err)
	}
	db, err := postgres.Open(ctx, testenv.PostgresURL(t), postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	admin, err := pgx.Connect(ctx, testenv.Cluster(t).URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	create := func(name string) {
		t.Helper()
		if _, err := admin.Exec(ctx, "CREATE DATABASE "+ident(name)); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = testenv.Cluster(t).DropDatabase(context.Background(), name) })
	}
	exists := func(name string) bool {
		t.Helper()
		ok, err := dbExists(ctx, admin, name)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}

	own := DrillCopyName(live, "20261201120000")
	notRecorded := DrillCopyName(live, "20261201120001")
	other := live + "_other"
	hostile := live + `_drill_20261201120002"; DROP DATABASE ` + live + `; --`
	for _, n := range []string{own, notRecorded, other, hostile} {
		create(n)
	}
	if err := db.RecordDrillCopy(ctx, store.DrillCopy{Server: tgt.Server, Name: own, Service: "shop", Database: live}); err != nil {
		t.Fatal(err)
	}
	// Recording a name that is not a drill copy's is refused by the store too.
	if err := db.RecordDrillCopy(ctx, store.DrillCopy{Server: tgt.Server, Name: other, Service: "shop", Database: live}); err == nil {
		t.Error("the store recorded a non-drill name as a drill copy")
	}

	for _, name := range []string{live, other, notRecorded, hostile, "postgres", "template1", ""} {
		err := dropCopy(ctx, db, tgt, live, name)
		if !errors.Is(err, store.ErrNotDrillCopy) {
			t.Errorf("dropCopy(%q) = %v, want ErrNotDrillCopy", name, err)
		}
	}
	if err := dropCopy(ctx, nil, tgt, live, own); !errors.Is(err, store.ErrNotDrillCopy) {
		t.Errorf("dropCopy without a store = %v, want ErrNotDrillCopy", err)
	}
	for _, n := range []string{live, other, notRecorded, hostile, own} {
		if !exists(n) {
			t.Errorf("%q was dropped by a refused drop", n)
		}
	}

	if err := dropCopy(ctx, db, tgt, live, own); err != nil {
		t.Fatalf("dropping its own copy: %v", err)
	}
	if exists(own) {
		t.Error("its own drill copy still exists")
	}
	// Once dropped, the record no longer allows a drop (a new database of
	// the same name is not drbot's).
	create(own)
	if err := dropCopy(ctx, db, tgt, live, own); !errors.Is(err, store.ErrNotDrillCopy) {
		t.Errorf("second drop = %v, want ErrNotDrillCopy", err)
	}
	if !exists(own) || !exists(live) {
		t.Error("a refused second drop dropped something")
	}
}

// TestSweepDrillCopies: the sweep drops a recorded drill copy no drill is
// working on, marks dropped one recorded but never created, and leaves
// alone a copy kept with --keep, a copy whose target has a drill in flight,
// a drill-named database drbot did not record, and live.
func TestSweepDrillCopies(t *testing.T) {
	ctx := context.Background()
	liveURL := testenv.PostgresURL(t)
	u, _ := url.Parse(liveURL)
	live := strings.TrimPrefix(u.Path, "/")
	t.Setenv("SWEEP_DB_URL", liveURL)
	tgt, err := parseTarget(liveURL)
	if err != nil {
		t.Fatal(err)
	}
	db, err := postgres.Open(ctx, testenv.PostgresURL(t), postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	admin, err := pgx.Connect(ctx, testenv.Cluster(t).URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	orphan, kept, never, stranger := DrillCopyName(live, "20261201120000"), DrillCopyName(live, "20261201120001"),
		DrillCopyName(live, "20261201120002"), DrillCopyName(live, "20261201120003")
	for _, n := range []string{orphan, kept, stranger} {
		if _, err := admin.Exec(ctx, "CREATE DATABASE "+ident(n)); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = testenv.Cluster(t).DropDatabase(context.Background(), n) })
	}
	for _, c := range []store.DrillCopy{{Name: orphan}, {Name: kept, Keep: true}, {Name: never}} {
		c.Server, c.Service, c.Database = tgt.Server, "shop", "main"
		if err := db.RecordDrillCopy(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	cfg := &runbook.Config{Services: []runbook.Service{{Name: "shop", Databases: []runbook.Database{{Name: "main", URLEnv: "SWEEP_DB_URL"}}}}}
	a := New(Options{Config: func() *runbook.Config { return cfg }, Drills: db})
	exists := func(name string) bool {
		ok, err := dbExists(ctx, admin, name)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}

	// A drill in flight on the target: nothing is touched.
	n, err := a.SweepDrillCopies(ctx, func(target string) bool { return target == DrillTarget(tgt.Server, live) })
	if err != nil || n != 0 || !exists(orphan) {
		t.Fatalf("sweep with a drill in flight: %d, %v, orphan exists %v", n, err, exists(orphan))
	}
	n, err = a.SweepDrillCopies(ctx, func(string) bool { return false })
	if err != nil || n != 2 {
		t.Fatalf("sweep: dropped %d, %v; want the orphan and the never-created one", n, err)
	}
	if exists(orphan) || !exists(kept) || !exists(stranger) || !exists(live) {
		t.Errorf("after the sweep: orphan %v kept %v stranger %v live %v", exists(orphan), exists(kept), exists(stranger), exists(live))
	}
	left, err := db.DrillCopiesLeft(ctx)
	if err != nil || len(left) != 1 || left[0].Name != kept {
		t.Errorf("copies left: %+v, %v", left, err)
	}
}
