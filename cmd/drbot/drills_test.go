package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/drbot-dev/drbot/actions/drill"
	"github.com/drbot-dev/drbot/internal/fakeslack"
	"github.com/drbot-dev/drbot/internal/testenv"
	"github.com/drbot-dev/drbot/runbook"
	"github.com/drbot-dev/drbot/store"
	"github.com/drbot-dev/drbot/store/postgres"
)

// drillWorld is a world whose inflow service has a real PostgreSQL database
// (orders: 20 rows in the backup, 21 live) with a pg_dump backup in a
// file:// location, drilled by the real restore-db as `drbot serve` wires it.
type drillWorld struct {
	*world
	liveURL string
	live    string
	backups string
	cfgText string // the runbook config, as YAML
}

// drillConfig is the runbook of drill tests: RTO 1h, a scenario whose
// playbook is restore-db (estimate 30m), restore-db planned for quarter q.
func drillConfig(env, dir string, q int, extra string) string {
	return `
slack:
  approvers: [UBOB]
  announce_channel: CANNOUNCE
approvals:
  required: 1
  expires_after: 15m
services:
  - name: inflow
    pagerduty:
      service_ids: [PINFLOW]
    objectives:
      rto: 1h
      rpo: 24h
    databases:
      - name: orders
        url_env: ` + env + `
        backups:
          location: file://` + dir + `/
        checks:
          - name: orders restored
            sql: SELECT count(*) FROM orders
            expect: "== 20"
    scenarios:
      - name: Database corruption
        match: [corrupt]
        estimate: 30m
        playbook: restore-db
    drills:
      every: 2160h
` + extra + `      plan:
        - quarter: ` + fmt.Sprint(q) + `
          procedure: restore-db
`
}

func newDrillWorld(t *testing.T, extra string) *drillWorld {
	t.Helper()
	ctx := context.Background()
	w := &drillWorld{world: newWorld(t, "15m"), liveURL: testenv.PostgresURL(t), backups: t.TempDir()}
	u, _ := url.Parse(w.liveURL)
	w.live = strings.TrimPrefix(u.Path, "/")
	execSQL(t, w.liveURL, `CREATE TABLE orders (id int PRIMARY KEY); INSERT INTO orders SELECT generate_series(1, 20)`)
	if out, err := exec.Command("pg_dump", "--dbname", w.liveURL, "--format", "custom", "--file", filepath.Join(w.backups, "orders-20261201.dump")).CombinedOutput(); err != nil {
		t.Fatalf("pg_dump: %v: %s", err, out)
	}
	execSQL(t, w.liveURL, `INSERT INTO orders VALUES (-1)`) // live, not in the backup
	env := "E2E_DRILL_URL_" + strings.ToUpper(w.live)
	t.Setenv(env, w.liveURL)
	q, _ := drill.Quarter(time.Now())
	w.cfgText = drillConfig(env, w.backups, q, extra)
	cfg, err := runbook.Parse("drill.yaml", []byte(w.cfgText))
	if err != nil {
		t.Fatal(err)
	}
	w.cfg = cfg
	t.Cleanup(func() {
		for _, n := range databases(t) {
			if strings.HasPrefix(n, w.live+"_") {
				_ = testenv.Cluster(t).DropDatabase(ctx, n)
			}
		}
	})
	return w
}

func execSQL(t *testing.T, dsn, sql string) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), sql); err != nil {
		t.Fatal(err)
	}
}

// databases lists the test cluster's databases.
func databases(t *testing.T) []string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, testenv.Cluster(t).URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT datname FROM pg_database ORDER BY datname`)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// liveState is live's identity and content: its oid, row count and the row
// written after the backup.
func (w *drillWorld) liveState(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, w.liveURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var oid uint32
	var n, marker int
	if err := conn.QueryRow(ctx, `SELECT (SELECT oid FROM pg_database WHERE datname = current_database()), count(*), count(*) FILTER (WHERE id = -1) FROM orders`).Scan(&oid, &n, &marker); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("oid %d, %d rows, marker %d", oid, n, marker)
}

// newestDrill waits for a drill request newer than after with its card.
func (w *drillWorld) newestDrill(t *testing.T, db *postgres.DB, after int64) store.ActionRequest {
	t.Helper()
	var req store.ActionRequest
	if !w.slack.WaitFor(wait, func() bool {
		rs, err := db.RecentRequests(context.Background(), "inflow", 1)
		if err != nil || len(rs) == 0 || rs[0].ID <= after || rs[0].MessageTS == "" {
			return false
		}
		req = rs[0]
		return true
	}) {
		t.Fatalf("no drill request; ephemerals %+v", w.slack.Ephemerals())
	}
	if req.Kind != store.KindDrill {
		t.Fatalf("request %d is a %s, want a drill", req.ID, req.Kind)
	}
	return req
}

// waitSaid waits for a channel message or an ephemeral containing want.
func (w *drillWorld) waitSaid(t *testing.T, want string) string {
	t.Helper()
	var got string
	if !w.slack.WaitFor(wait, func() bool {
		for _, m := range w.slack.Messages(w.channel) {
			if s := m.Text + "\n" + unescape(m.Blocks); strings.Contains(s, want) {
				got = s
				return true
			}
		}
		for _, e := range w.slack.Ephemerals() {
			if s := e.Text + "\n" + unescape(e.Blocks); strings.Contains(s, want) {
				got = s
				return true
			}
		}
		return false
	}) {
		t.Fatalf("nothing said %q; messages %+v ephemerals %+v", want, w.slack.Messages(w.channel), w.slack.Ephemerals())
	}
	return got
}

// TestServeRestoreDBDrill: `/dr drill restore-db inflow` through drbot serve
// with real PostgreSQL runs without a second person (auto-approved, with an
// audit row saying why), restores the real backup into a drill copy, runs
// the database's check on it and drops it: the live database and the
// database list are exactly as before. The card reports the time against
// the RTO and the scenario's estimate; /dr drills shows restore-db as last
// tested today; a drill is no restore for rollback; --keep keeps the copy;
// a procedure without a drill form is refused naming the drillable ones.
func TestServeRestoreDBDrill(t *testing.T) {
	w := newDrillWorld(t, "")
	in := startServeInstance(t, w.world)
	ctx := context.Background()
	dbsBefore, liveBefore := databases(t), w.liveState(t)
	// drills.check ran at start: restore-db, planned for this quarter and
	// never drilled, is due.
	if !w.slack.WaitFor(wait, func() bool { return len(announced(t, in.db, "restore-db drill of inflow is due")) == 1 }) {
		t.Fatalf("no due reminder at start: %q", announced(t, in.db, ""))
	}

	in.command(t, w.world, alice, "drill restore-db inflow")
	req := w.newestDrill(t, in.db, 0)
	w.waitState(t, in.db, req.ID, store.RequestSucceeded)

	if dbs := databases(t); !slices.Equal(dbs, dbsBefore) {
		t.Errorf("databases after the drill = %v, want %v", dbs, dbsBefore)
	}
	if got := w.liveState(t); got != liveBefore {
		t.Errorf("live after the drill: %s, before: %s", got, liveBefore)
	}
	if as := approvalsOf(t, in.db, req.ID); len(as) != 0 {
		t.Errorf("a drill took approvals: %+v", as)
	}
	evs, err := in.db.AuditEvents(ctx, store.AuditFilter{RequestID: &req.ID})
	if err != nil {
		t.Fatal(err)
	}
	var auto bool
	var steps []string
	for _, ev := range evs {
		if ev.Kind == store.AuditRequestApproved {
			var d map[string]any
			_ = json.Unmarshal(ev.Data, &d)
			auto = d[store.AuditRequestAutoApproved] == true && ev.Actor == "drbot" && strings.Contains(fmt.Sprint(d["reason"]), "drills.approval is off")
		}
		if ev.Kind == store.AuditStepFinished {
			var d struct{ Step string }
			_ = json.Unmarshal(ev.Data, &d)
			steps = append(steps, d.Step)
		}
	}
	if !auto {
		t.Error("no request.approved audit row saying why the drill needed no approval")
	}
	if want := []string{"restore-side", "check-side", "drop-copy"}; !slices.Equal(steps, want) {
		t.Errorf("steps = %v, want %v", steps, want)
	}
	var copies, dropped int
	if err := in.db.Pool().QueryRow(ctx, `SELECT count(*), count(dropped_at) FROM drill_copies WHERE name LIKE $1`, w.live+"_drill_%").Scan(&copies, &dropped); err != nil {
		t.Fatal(err)
	}
	if copies != 1 || dropped != 1 {
		t.Errorf("drill copies recorded %d, dropped %d; want 1, 1", copies, dropped)
	}
	card := w.waitCard(t, req.MessageTS, "restore-db drill: ")
	t.Logf("card: %s", unescape(card.Blocks))
	for _, want := range []string{"no approval needed", "RTO 1h", "scenario estimate 30m", "restore-side", "orders restored", "drill copy dropped", "live database untouched"} {
		if !strings.Contains(card.Text+unescape(card.Blocks), want) {
			t.Errorf("card lacks %q:\n%s", want, unescape(card.Blocks))
		}
	}

	// The runner's re-plan finds the same drill (its copy's name is the
	// planning time, not the world): no "plan would be different" note.
	for _, m := range w.slack.Messages(w.channel) {
		if strings.Contains(m.Text, "would be different") {
			t.Errorf("re-plan note for a drill: %s", m.Text)
		}
	}

	// Drilled this quarter: no new reminder.
	if err := in.rt.drills.check(ctx); err != nil {
		t.Fatal(err)
	}
	if got := announced(t, in.db, "drill of inflow"); len(got) != 1 {
		t.Errorf("reminders after the drill: %q", got)
	}

	// /dr drills: last tested today.
	in.command(t, w.world, alice, "drills")
	today := time.Now().UTC().Format("2006-01-02") + " (today)"
	got := w.waitSaid(t, "last tested "+today)
	t.Logf("/dr drills: %s", got)
	if !strings.Contains(got, "restore-db") || !strings.Contains(got, "succeeded") {
		t.Errorf("/dr drills: %s", got)
	}

	// drbot drills report: the runbooks' Last Test Date filled in.
	cfgFile := filepath.Join(t.TempDir(), "drill.yaml")
	if err := writeFile(cfgFile, w.cfgText); err != nil {
		t.Fatal(err)
	}
	out, err := command(t, []string{"DATABASE_URL=" + w.url}, "drills", "report", "--config", cfgFile).CombinedOutput()
	if err != nil {
		t.Fatalf("drbot drills report: %v\n%s", err, out)
	}
	for _, want := range []string{"## inflow", "**Last Test Date:** " + time.Now().UTC().Format("2006-01-02") + " (restore-db, succeeded in ", "| restore-db | Q"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("drbot drills report lacks %q:\n%s", want, out)
		}
	}

	// A drill is no restore: nothing to roll back.
	in.command(t, w.world, alice, "rollback inflow --dry-run")
	w.waitSaid(t, "nothing to roll back")

	// --keep keeps the copy (and only it is new).
	in.command(t, w.world, alice, "drill restore-db --keep")
	kept := w.newestDrill(t, in.db, req.ID)
	w.waitState(t, in.db, kept.ID, store.RequestSucceeded)
	var extra []string
	for _, n := range databases(t) {
		if !slices.Contains(dbsBefore, n) {
			extra = append(extra, n)
		}
	}
	if len(extra) != 1 || !strings.HasPrefix(extra[0], w.live+"_drill_") {
		t.Errorf("after a --keep drill the new databases are %v, want one drill copy", extra)
	}
	if got := w.liveState(t); got != liveBefore {
		t.Errorf("live after the --keep drill: %s, before: %s", got, liveBefore)
	}

	// No drill form: refused, naming what can be drilled.
	in.command(t, w.world, alice, "drill scale inflow")
	if got := w.waitSaid(t, `"scale" has no drill form here`); !strings.Contains(got, "restore-db") || !strings.Contains(got, "drillable: ") {
		t.Errorf("refusal does not list the drillable procedures: %s", got)
	}
}

// announced returns the texts posted (as post jobs) to CANNOUNCE that contain s.
func announced(t *testing.T, db *postgres.DB, s string) []string {
	t.Helper()
	bw := &backupsWorld{ctx: context.Background(), db: db}
	var out []string
	for _, a := range bw.announcements(t) {
		if strings.Contains(a, s) {
			out = append(out, a)
		}
	}
	return out
}

// TestDrillRemindersAnnouncedOnce: drills.check on an injected clock posts
// to the announce channel once when a planned drill becomes due and once
// when it is overdue, however often it checks and after a restart (a new
// watch on the same store, as a second replica or a new process).
func TestDrillRemindersAnnouncedOnce(t *testing.T) {
	ctx := context.Background()
	db, err := postgres.Open(ctx, testenv.PostgresURL(t), postgres.Options{Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	cfg, err := runbook.Parse("drill.yaml", []byte(drillConfig("UNUSED_URL", t.TempDir(), 2, "")))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2027, 3, 30, 9, 0, 0, 0, time.UTC) // Q1: restore-db is planned for Q2
	watch := func() *drillWatch {
		w := newDrillWatch(cfg, db, quietLog())
		w.now = func() time.Time { return now }
		return w
	}
	check := func(w *drillWatch) {
		t.Helper()
		if err := w.check(ctx); err != nil {
			t.Fatal(err)
		}
	}
	w := watch()
	// Q1 2027: the latest planned Q2 is Q2 2026, never drilled: overdue
	// already. Both reminders for that quarter, once.
	check(w)
	check(w)
	check(watch())
	if due, over := announced(t, db, "is due"), announced(t, db, "is overdue"); len(due) != 1 || len(over) != 1 {
		t.Fatalf("after three checks: due %q, overdue %q; want one each", due, over)
	}
	// Q2 2027 starts: due again (a new quarter), once.
	now = time.Date(2027, 4, 1, 0, 5, 0, 0, time.UTC)
	check(w)
	check(watch())
	due := announced(t, db, "is due")
	if len(due) != 2 || !strings.Contains(due[1], "restore-db drill of inflow is due by 2027-07-01") || !strings.Contains(due[1], "`/dr drill restore-db inflow`") {
		t.Fatalf("Q2 due reminders: %q", due)
	}
	if over := announced(t, db, "is overdue"); len(over) != 1 {
		t.Fatalf("overdue reminders in Q2: %q", over)
	}
	// Not drilled by the end of Q2: overdue, once.
	now = time.Date(2027, 7, 1, 0, 5, 0, 0, time.UTC)
	check(w)
	check(w)
	over := announced(t, db, "is overdue")
	if len(over) != 2 || !strings.Contains(over[1], "overdue since 2027-07-01") {
		t.Fatalf("overdue reminders after Q2: %q", over)
	}
	// Every reminder has its audit row.
	evs, err := db.AuditEvents(ctx, store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, ev := range evs {
		kinds[ev.Kind]++
	}
	if kinds[store.AuditDrillDue] != 2 || kinds[store.AuditDrillOverdue] != 2 {
		t.Errorf("audit rows: %v", kinds)
	}
}

// TestKilledServeCleansUpDrillCopy: `drbot serve` is killed with SIGKILL
// while a restore-db drill streams a (slow) plain SQL backup into its copy;
// the copy is left behind. The next process resumes the drill from its
// journal: it restores the copy again, checks it and drops it, so no drill
// database is left and live and the database list are as before.
func TestKilledServeCleansUpDrillCopy(t *testing.T) {
	w := newDrillWorld(t, "")
	ctx := context.Background()
	// A plain SQL backup that takes a few seconds to restore.
	plain := filepath.Join(w.backups, "orders-20261202.sql")
	if out, err := exec.Command("pg_dump", "--dbname", w.liveURL, "--file", plain, "--exclude-table-data", "orders").CombinedOutput(); err != nil {
		t.Fatalf("pg_dump: %v: %s", err, out)
	}
	appendFile(t, plain, "INSERT INTO public.orders SELECT generate_series(1, 20);\nSELECT pg_sleep(4);\n")
	dbsBefore, liveBefore := databases(t), w.liveState(t)

	cfgFile := filepath.Join(t.TempDir(), "drill.yaml")
	q, _ := drill.Quarter(time.Now())
	u, _ := url.Parse(w.liveURL)
	env := "E2E_DRILL_URL_" + strings.ToUpper(strings.TrimPrefix(u.Path, "/"))
	if err := writeFile(cfgFile, drillConfig(env, w.backups, q, "")); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	cmd := exec.Command(drbotBinary(t), "serve", "--config", cfgFile, "--log-format", "json")
	cmd.Env = []string{
		"PATH=" + pathEnv(), "HOME=" + t.TempDir(),
		"DATABASE_URL=" + w.url, "DRBOT_LISTEN=" + addr, env + "=" + w.liveURL,
		"SLACK_BOT_TOKEN=" + w.slack.BotToken(), "SLACK_SIGNING_SECRET=" + e2eSecret, "SLACK_API_URL=" + w.slack.APIURL(),
		"DRBOT_EXECUTION_LEASE=3s",
	}
	srv := startServer(t, cmd, addr)
	form := fakeslackCommand(alice, w.channel, "drill restore-db inflow --backup orders-20261202.sql")
	signedPost(t, srv.base+"/slack/commands", form)
	probe := startProbe(t, w.world)
	req := w.newestDrill(t, probe, 0)
	copyName := ""
	if !w.slack.WaitFor(wait, func() bool {
		for _, n := range databases(t) {
			if strings.HasPrefix(n, w.live+"_drill_") {
				copyName = n
				return true
			}
		}
		return false
	}) {
		t.Fatalf("the drill copy never appeared:\n%s", srv.logs.String())
	}
	time.Sleep(500 * time.Millisecond) // into pg_sleep: the restore is under way
	srv.kill()
	if r, err := probe.Request(ctx, req.ID); err != nil || r.State != store.RequestRunning {
		t.Fatalf("after the kill the drill is %v (%v), want running", r.State, err)
	}
	if !slices.Contains(databases(t), copyName) {
		t.Fatalf("the copy %s is gone before the restart: the kill came too late", copyName)
	}

	// The next process resumes it and cleans up.
	in := startServeInstance(t, w.world)
	t.Cleanup(func() {
		if t.Failed() {
			evs, _ := in.db.AuditEvents(context.Background(), store.AuditFilter{RequestID: &req.ID})
			for _, ev := range evs {
				t.Logf("audit %s %s %s %s", ev.At.Format("15:04:05.000"), ev.Actor, ev.Kind, ev.Data)
			}
			t.Logf("killed serve's log:\n%s", srv.logs.String())
		}
	})
	// Longer than wait: the lease of the killed process runs out first, and
	// every step's card update is paced at one a second per channel.
	deadline := time.Now().Add(3 * wait)
	for r, _ := in.db.Request(ctx, req.ID); r.State != store.RequestSucceeded; r, _ = in.db.Request(ctx, req.ID) {
		if store.Final(r.State) || time.Now().After(deadline) {
			t.Fatalf("resumed drill is %s, want succeeded", r.State)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if dbs := databases(t); !slices.Equal(dbs, dbsBefore) {
		t.Errorf("databases after the resumed drill = %v, want %v (no orphan copy)", dbs, dbsBefore)
	}
	if got := w.liveState(t); got != liveBefore {
		t.Errorf("live after the drill: %s, before: %s", got, liveBefore)
	}
	w.waitSaid(t, "resumed after a restart")
	var dropped bool
	if err := in.db.Pool().QueryRow(ctx, `SELECT dropped_at IS NOT NULL FROM drill_copies WHERE name = $1`, copyName).Scan(&dropped); err != nil || !dropped {
		t.Errorf("drill copy %s recorded dropped = %v (%v)", copyName, dropped, err)
	}
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	b, err := readFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeFile(path, string(b)+s); err != nil {
		t.Fatal(err)
	}
}

func pathEnv() string { return os.Getenv("PATH") }

func fakeslackCommand(user, channel, text string) string {
	return fakeslack.SlashCommand{Text: text, UserID: user, UserName: strings.ToLower(user[1:]), ChannelID: channel, ChannelName: "incident-inflow-20261123"}.Form().Encode()
}
