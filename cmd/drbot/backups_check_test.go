package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	dto "github.com/prometheus/client_model/go"

	"github.com/drbot-dev/drbot/bot/chat"
	"github.com/drbot-dev/drbot/bot/incident"
	"github.com/drbot-dev/drbot/bot/slack"
	"github.com/drbot-dev/drbot/internal/fakeslack"
	"github.com/drbot-dev/drbot/internal/testenv"
	"github.com/drbot-dev/drbot/runbook"
	"github.com/drbot-dev/drbot/store"
	"github.com/drbot-dev/drbot/store/postgres"
)

// backupsWorld is a database, file:// backup locations and a clock.
type backupsWorld struct {
	ctx    context.Context
	db     *postgres.DB
	cfg    *runbook.Config
	dbDir  string
	models string
	now    time.Time
}

func newBackupsWorld(t *testing.T) *backupsWorld {
	t.Helper()
	ctx := context.Background()
	w := &backupsWorld{ctx: ctx, dbDir: t.TempDir(), models: t.TempDir(), now: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	cfg, err := runbook.Parse("backups.yaml", []byte(`
slack:
  announce_channel: CANNOUNCE
services:
  - name: inflow
    pagerduty:
      service_ids: [PINFLOW]
    objectives:
      rto: 2h
      rpo: 1h
    databases:
      - name: inflow_db
        url_env: INFLOW_DATABASE_URL
        backups:
          location: file://`+w.dbDir+`/
          every: 24h
    models:
      backups: file://`+w.models+`/
      snapshots: models-*/checkpoints/
      every: 24h
      target: file:///nonexistent/target/
`))
	if err != nil {
		t.Fatal(err)
	}
	w.cfg = cfg
	db, err := postgres.Open(ctx, testenv.PostgresURL(t), postgres.Options{Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	w.db = db
	return w
}

// backup writes a backup file made at `at`.
func (w *backupsWorld) backup(t *testing.T, dir, name string, at time.Time) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("backup"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, at, at); err != nil {
		t.Fatal(err)
	}
}

// watch is a new backups.check job instance (as after a restart) on w's clock.
func (w *backupsWorld) watch() *backupWatch {
	bw := newBackupWatch(w.cfg, w.db, quietLog())
	bw.now = func() time.Time { return w.now }
	return bw
}

func (w *backupsWorld) check(t *testing.T, bw *backupWatch) {
	t.Helper()
	if err := bw.check(w.ctx); err != nil {
		t.Fatal(err)
	}
}

// announcements are the texts of the post jobs to the announce channel.
func (w *backupsWorld) announcements(t *testing.T) []string {
	t.Helper()
	rows, err := w.db.Pool().Query(w.ctx, "SELECT args->'message' FROM river_job WHERE kind = $1 AND args->>'channel' = 'CANNOUNCE' ORDER BY id", store.KindIncidentPost)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			t.Fatal(err)
		}
		m, err := incident.DecodeMessage(raw)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m.Text)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// gauge reads drbot_backup_age_seconds for one location.
func gauge(t *testing.T, bw *backupWatch, labels ...string) float64 {
	t.Helper()
	var m dto.Metric
	if err := bw.age.WithLabelValues(labels...).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetGauge().GetValue()
}

func (w *backupsWorld) auditKinds(t *testing.T) map[string]int {
	t.Helper()
	evs, err := w.db.AuditEvents(w.ctx, store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	n := map[string]int{}
	for _, ev := range evs {
		n[ev.Kind]++
	}
	return n
}

// A stale backup is announced once however often it is checked, not again
// by a new job instance (a restart), and its recovery is announced once.
func TestBackupsCheckAnnouncesStaleOnceAndRecoveryOnce(t *testing.T) {
	w := newBackupsWorld(t)
	w.backup(t, w.dbDir, "inflow-20261130.dump", w.now.Add(-30*time.Hour))
	w.backup(t, w.models, "models-20261201-020000/checkpoints/lstm.pt", w.now.Add(-10*time.Hour))
	w.backup(t, w.models, "README.txt", w.now) // not in a snapshot folder: not a backup

	bw := w.watch()
	for range 3 {
		w.check(t, bw)
		w.now = w.now.Add(time.Minute)
	}
	got := w.announcements(t)
	if len(got) != 1 {
		t.Fatalf("announcements after 3 checks of a stale location = %q, want exactly 1", got)
	}
	for _, want := range []string{"inflow database inflow_db backups are stale", "inflow-20261130.dump", "30h", "every 24h"} {
		if !strings.Contains(got[0], want) {
			t.Errorf("announcement %q does not say %q", got[0], want)
		}
	}
	if k := w.auditKinds(t); k[store.AuditBackupStale] != 1 || k[store.AuditBackupRecovered] != 0 {
		t.Errorf("audit rows = %v, want one %s", k, store.AuditBackupStale)
	}
	// The metric has each location's age as of the last check (two minutes on).
	if age := gauge(t, bw, "inflow", "database", "inflow_db"); age != (30*time.Hour + 2*time.Minute).Seconds() {
		t.Errorf("drbot_backup_age_seconds{database} = %v, want %v", age, (30*time.Hour + 2*time.Minute).Seconds())
	}
	if age := gauge(t, bw, "inflow", "models", "models"); age != (10*time.Hour + 2*time.Minute).Seconds() {
		t.Errorf("drbot_backup_age_seconds{models} = %v, want %v", age, (10*time.Hour + 2*time.Minute).Seconds())
	}

	// A restart: a new job instance finds the state recorded.
	w.check(t, w.watch())
	if got := w.announcements(t); len(got) != 1 {
		t.Fatalf("a new job instance announced again: %q", got)
	}

	// A new backup: recovered, announced once.
	w.backup(t, w.dbDir, "inflow-20261201.dump", w.now.Add(-time.Hour))
	bw = w.watch()
	for range 3 {
		w.check(t, bw)
	}
	w.check(t, w.watch())
	got = w.announcements(t)
	if len(got) != 2 || !strings.Contains(got[1], "inflow database inflow_db backups have recovered") || !strings.Contains(got[1], "inflow-20261201.dump") {
		t.Fatalf("announcements after the recovery = %q, want the stale one and one recovery", got)
	}
	if k := w.auditKinds(t); k[store.AuditBackupStale] != 1 || k[store.AuditBackupRecovered] != 1 {
		t.Errorf("audit rows = %v, want one stale and one recovered", k)
	}
}

// Two replicas checking at the same moment announce a change once.
func TestBackupsCheckTwoReplicasAnnounceOnce(t *testing.T) {
	w := newBackupsWorld(t)
	w.backup(t, w.dbDir, "inflow-20261129.dump", w.now.Add(-50*time.Hour))
	w.backup(t, w.models, "models-20261201-020000/checkpoints/lstm.pt", w.now.Add(-time.Hour))
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- w.watch().check(w.ctx)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := w.announcements(t); len(got) != 1 {
		t.Fatalf("announcements from 4 concurrent checks = %q, want 1", got)
	}
}

// No backup at all is stale too, and says so.
func TestBackupsCheckNoBackupIsStale(t *testing.T) {
	w := newBackupsWorld(t)
	w.backup(t, w.models, "models-20261201-020000/checkpoints/lstm.pt", w.now.Add(-time.Hour))
	w.check(t, w.watch())
	got := w.announcements(t)
	if len(got) != 1 || !strings.Contains(got[0], "no backup found in file://"+w.dbDir) {
		t.Fatalf("announcements = %q, want one saying no backup was found", got)
	}
}

// The header of an incident of the service shows the RPO at risk from the
// state the job recorded, and nothing when the newest backup is within the RPO.
func TestIncidentHeaderShowsRPOAtRisk(t *testing.T) {
	w := newBackupsWorld(t)
	w.backup(t, w.dbDir, "inflow-20261201.dump", w.now.Add(-3*time.Hour)) // fresh for every: 24h, but older than the 1h RPO
	w.backup(t, w.models, "models-20261201-020000/checkpoints/lstm.pt", w.now.Add(-30*time.Minute))
	w.check(t, w.watch())
	// A database since removed from the config: its old state is not shown.
	if _, err := w.db.RecordBackupState(w.ctx, store.BackupState{Service: "inflow", Kind: "database", Name: "gone_db", Location: "file:///gone/",
		NewestKey: "gone.dump", NewestAt: w.now.Add(-100 * time.Hour), CheckedAt: w.now.Add(-90 * time.Hour)}, store.AuditEvent{}); err != nil {
		t.Fatal(err)
	}

	inc, _, err := w.db.OpenIncident(w.ctx, store.Incident{PagerDutyID: "PD-RPO-1", Service: "inflow", Title: "inflow down", Status: store.IncidentTriggered, OpenedAt: w.now, RPO: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.db.SetIncidentChannel(w.ctx, inc.ID, "CINC"); err != nil {
		t.Fatal(err)
	}
	sl := fakeslack.New()
	t.Cleanup(sl.Close)
	client, err := slack.NewClient(slack.Options{Token: sl.BotToken(), APIURL: sl.APIURL(), Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	lc := incident.New(incident.Options{Config: w.cfg, Store: w.db, Chat: client, Logger: quietLog(), Now: func() time.Time { return w.now }})
	m, err := lc.Status(w.ctx, "CINC")
	if err != nil {
		t.Fatal(err)
	}
	var risks []string
	for _, b := range m.Blocks {
		if f, ok := b.(chat.Fields); ok {
			for _, fl := range f.Fields {
				if fl.Label == "RPO at risk" {
					risks = append(risks, fl.Value)
				}
			}
		}
	}
	if want := "newest backup of inflow_db is 3h old (RPO 1h)"; len(risks) != 1 || risks[0] != want {
		t.Fatalf("RPO at risk fields = %q, want exactly [%q]", risks, want)
	}
}

// Through the real `drbot serve`: the check runs at start, announces a stale
// backup in the announce channel and exports its age; a restarted process
// checks again (RunOnStart) without announcing it again.
func TestServeAnnouncesStaleBackupOnceAcrossRestarts(t *testing.T) {
	w := newIncidentWorld(t)
	dir := t.TempDir()
	p := filepath.Join(dir, "inflow-20261101.dump")
	if err := os.WriteFile(p, []byte("backup"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-50 * time.Hour)
	if err := os.Chtimes(p, old, old); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`slack:
  announce_channel: %s
services:
  - name: inflow
    pagerduty:
      service_ids: [PINFLOW]
    objectives: {rto: 1h, rpo: 1h}
    databases:
      - name: inflow_db
        url_env: INFLOW_DATABASE_URL
        backups:
          location: file://%s/
          every: 24h
`, w.announce, dir)
	if err := os.WriteFile(w.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	stale := "inflow database inflow_db backups are stale: the newest backup, inflow-20261101.dump, is 2d2h old"
	s := w.serve()
	w.waitFor("stale announcement", 90*time.Second, func() bool { return w.countMessages(w.announce, stale) == 1 }, s.logs)
	metrics := get(t, s.base+"/metrics")
	const series = `drbot_backup_age_seconds{kind="database",name="inflow_db",service="inflow"} `
	var age float64
	for _, line := range strings.Split(metrics, "\n") {
		if v, ok := strings.CutPrefix(line, series); ok {
			if _, err := fmt.Sscan(v, &age); err != nil {
				t.Fatal(err)
			}
		}
	}
	if age < (50*time.Hour).Seconds() || age > (51*time.Hour).Seconds() {
		t.Errorf("drbot_backup_age_seconds of inflow_db = %v, want about 50h:\n%s", age, metrics)
	}
	if err := s.terminate(t); err != nil {
		t.Fatalf("serve exited with %v\n%s", err, s.logs.String())
	}
	conn, err := pgx.Connect(context.Background(), w.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	var checked time.Time
	err = conn.QueryRow(context.Background(), "SELECT checked_at FROM backup_states WHERE name = 'inflow_db'").Scan(&checked)
	conn.Close(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	s = w.serve()
	w.waitFor("the restarted process's check", 90*time.Second, func() bool {
		return w.count("SELECT count(*) FROM backup_states WHERE name = 'inflow_db' AND checked_at > $1", checked) == 1
	}, s.logs)
	if n := w.count("SELECT count(*) FROM river_job WHERE kind = 'incident.post' AND args->>'channel' = $1", w.announce); n != 1 {
		t.Errorf("announcement jobs after a restart = %d, want 1", n)
	}
	if n := w.countMessages(w.announce, "backups are stale"); n != 1 {
		t.Errorf("stale announcements after a restart = %d, want 1", n)
	}
}
