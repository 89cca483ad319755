package postgres_test

import (
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/internal/testenv"
	"github.com/drbot-dev/drbot/store"
	"github.com/drbot-dev/drbot/store/postgres"
)

func TestMigrateConcurrentOpenAndIdempotent(t *testing.T) {
	ctx := ctxT(t)
	c := testenv.NewCluster(t)
	if err := c.CreateDatabase(ctx, "fresh"); err != nil {
		t.Fatal(err)
	}
	url := c.URL("fresh")

	// Two processes starting at once on an empty database.
	var (
		wg   sync.WaitGroup
		dbs  [2]*postgres.DB
		errs [2]error
	)
	for i := range dbs {
		wg.Go(func() {
			dbs[i], errs[i] = postgres.Open(ctx, url, postgres.Options{Logger: quietLogger()})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Open %d: %v", i, err)
		}
		t.Cleanup(dbs[i].Close)
		if err := dbs[i].Ping(ctx); err != nil {
			t.Fatalf("Ping %d after Open: %v", i, err)
		}
	}

	// Running them again changes nothing.
	for range 2 {
		if err := postgres.Migrate(ctx, url); err != nil {
			t.Fatalf("Migrate again: %v", err)
		}
	}
	conn := sqlConn(t, url)
	latest, err := fs.Glob(os.DirFS("migrations"), "*.sql")
	if err != nil || len(latest) == 0 {
		t.Fatalf("migrations: %v, %v", latest, err)
	}
	if n := count(t, conn, "SELECT version FROM drbot_schema_version"); n != len(latest) {
		t.Errorf("drbot schema version = %d, want %d", n, len(latest))
	}
	if n := count(t, conn, "SELECT count(*) FROM drbot_schema_version"); n != 1 {
		t.Errorf("drbot_schema_version has %d rows, want 1", n)
	}
	riverVersions := count(t, conn, "SELECT count(*) FROM river_migration")
	if riverVersions < 6 {
		t.Errorf("river_migration has %d versions, want the full set", riverVersions)
	}
	if err := postgres.Migrate(ctx, url); err != nil {
		t.Fatal(err)
	}
	if n := count(t, conn, "SELECT count(*) FROM river_migration"); n != riverVersions {
		t.Errorf("river_migration went from %d to %d versions on a second Migrate", riverVersions, n)
	}

	// The store works on the migrated database.
	if _, _, err := dbs[0].OpenIncident(ctx, store.Incident{PagerDutyID: "PMIG"}); err != nil {
		t.Fatal(err)
	}

	// Ping notices a schema that is behind.
	if _, err := conn.Exec(ctx, "UPDATE drbot_schema_version SET version = 0"); err != nil {
		t.Fatal(err)
	}
	err = dbs[1].Ping(ctx)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("drbot schema is at version 0, want %d", len(latest))) {
		t.Errorf("Ping with schema behind = %v, want a version error", err)
	}
	if _, err := conn.Exec(ctx, "UPDATE drbot_schema_version SET version = $1", len(latest)); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "DELETE FROM river_migration WHERE version = (SELECT max(version) FROM river_migration)"); err != nil {
		t.Fatal(err)
	}
	err = dbs[1].Ping(ctx)
	if err == nil || !strings.Contains(err.Error(), "job queue schema is not up to date") {
		t.Errorf("Ping with River schema behind = %v, want a job queue schema error", err)
	}
}

func TestOpenBadURL(t *testing.T) {
	ctx := ctxT(t)
	_, err := postgres.Open(ctx, "postgres://drbot:s3cret@127.0.0.1:1/x?sslmode=disable&connect_timeout=2", postgres.Options{Logger: quietLogger()})
	if err == nil {
		t.Fatal("Open on a closed port succeeded")
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error leaks the password: %v", err)
	}
	_, err = postgres.Open(ctx, "postgres://drbot:s3cret@host:notaport/x", postgres.Options{})
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("Open with a malformed URL = %v, want an error without the password", err)
	}
}

func TestRestartKeepsData(t *testing.T) {
	ctx := ctxT(t)
	c := testenv.NewCluster(t)
	if err := c.CreateDatabase(ctx, "drbot"); err != nil {
		t.Fatal(err)
	}
	db, err := postgres.Open(ctx, c.URL("drbot"), postgres.Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	inc, created, err := db.OpenIncident(ctx, store.Incident{PagerDutyID: "PRESTART", Service: "inflow", Title: "db down", RTO: 90 * time.Minute}, noteJob("page"))
	if err != nil || !created {
		t.Fatalf("OpenIncident = %v, %v", created, err)
	}
	ev, err := db.AppendAudit(ctx, store.AuditEvent{IncidentID: &inc.ID, Actor: "U1", Kind: "note.added", Data: []byte(`{"text":"before restart"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := db.RecordDelivery(ctx, "delivery-1"); err != nil || !ok {
		t.Fatalf("RecordDelivery = %v, %v", ok, err)
	}
	db.Close()

	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}

	db, err = postgres.Open(ctx, c.URL("drbot"), postgres.Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got, err := db.IncidentByPagerDutyID(ctx, "PRESTART")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != inc.ID || got.Title != "db down" || got.RTO != 90*time.Minute {
		t.Errorf("after restart incident = %+v, want %+v", got, inc)
	}
	evs, err := db.AuditEvents(ctx, store.AuditFilter{IncidentID: &inc.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || evs[1].Seq != ev.Seq || string(evs[1].Data) != `{"text": "before restart"}` {
		t.Errorf("after restart audit events = %+v", evs)
	}
	rep, err := db.VerifyAudit(ctx)
	if err != nil || !rep.OK() || rep.Rows != 2 {
		t.Errorf("VerifyAudit after restart = %+v, %v", rep, err)
	}
	if ok, err := db.RecordDelivery(ctx, "delivery-1"); err != nil || ok {
		t.Errorf("RecordDelivery of a delivery seen before the restart = %v, %v; want false", ok, err)
	}
	conn := sqlConn(t, c.URL("drbot"))
	if n := count(t, conn, "SELECT count(*) FROM river_job WHERE kind = 'test.note'"); n != 1 {
		t.Errorf("jobs after restart = %d, want 1", n)
	}
}
