package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/drbot-dev/drbot/bot/chat"
	"github.com/drbot-dev/drbot/bot/slack"
	"github.com/drbot-dev/drbot/internal/testenv"
	"github.com/drbot-dev/drbot/runbook"
	"github.com/drbot-dev/drbot/store"
	"github.com/drbot-dev/drbot/store/postgres"
)

// restoreDBWorld is a world whose inflow service has a real PostgreSQL
// database with a pg_dump backup in a file:// location, restored by the real
// restore-db and rollback actions as `drbot serve` wires them.
type restoreDBWorld struct {
	*world
	liveURL string
	live    string
}

func newRestoreDBWorld(t *testing.T) *restoreDBWorld {
	t.Helper()
	return newRestoreDBWorldWith(t, "", "")
}

// newRestoreDBWorldWith is newRestoreDBWorld with extra YAML at the end of
// the inflow service (e.g. its playbooks:) and, when check is not "", that
// SQL as the database's check instead of the one that fails after the swap.
func newRestoreDBWorldWith(t *testing.T, check, extra string) *restoreDBWorld {
	t.Helper()
	if check == "" {
		check = `SELECT count(*) FROM orders WHERE id = -1 OR current_database() LIKE '%\_restore\_%'`
	}
	ctx := context.Background()
	w := &restoreDBWorld{world: newWorld(t, "15m"), liveURL: testenv.PostgresURL(t)}
	u, _ := url.Parse(w.liveURL)
	w.live = strings.TrimPrefix(u.Path, "/")
	w.exec(t, `CREATE TABLE orders (id int PRIMARY KEY); INSERT INTO orders SELECT generate_series(1, 20)`)
	dir := t.TempDir()
	if out, err := exec.Command("pg_dump", "--dbname", w.liveURL, "--format", "custom", "--file", filepath.Join(dir, "orders-20261201.dump")).CombinedOutput(); err != nil {
		t.Fatalf("pg_dump: %v: %s", err, out)
	}
	w.exec(t, `INSERT INTO orders VALUES (-1)`) // written after the backup
	env := "E2E_ORDERS_URL_" + strings.ToUpper(w.live)
	t.Setenv(env, w.liveURL)
	// The check passes on the side database and on the data from before the
	// restore, and fails on live once the backup's data is live: the restore
	// fails after its swap.
	cfg, err := runbook.Parse("e2e.yaml", []byte(`
slack:
  approvers: [UBOB]
approvals:
  required: 1
  expires_after: 15m
services:
  - name: inflow
    pagerduty:
      service_ids: [PINFLOW]
    databases:
      - name: orders
        url_env: `+env+`
        backups:
          location: file://`+dir+`/
        checks:
          - name: orders after the backup
            sql: `+check+`
            expect: "> 0"
`+extra))
	if err != nil {
		t.Fatal(err)
	}
	w.cfg = cfg
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, testenv.Cluster(t).URL("postgres"))
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
			_ = testenv.Cluster(t).DropDatabase(ctx, n)
		}
	})
	return w
}

func (w *restoreDBWorld) exec(t *testing.T, sql string) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), w.liveURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), sql); err != nil {
		t.Fatal(err)
	}
}

// marker reports whether live holds the row written after the backup.
func (w *restoreDBWorld) marker(t *testing.T) bool {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), w.liveURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM orders WHERE id = -1`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// startServeInstance is startInstance with the actions `drbot serve` builds
// from the config (buildActions), on the instance's own store.
func startServeInstance(t *testing.T, w *world) *instance {
	t.Helper()
	return serveWith(t, w, func(ctx context.Context, log *slog.Logger, db *postgres.DB, client *slack.Client) *runtime {
		return newRuntime(ctx, log, w.cfg, db, client)
	})
}

// suggestedRE finds the commands the bot suggests: /dr … in backquotes.
var suggestedRE = regexp.MustCompile("`(/dr [^`]+)`")

// suggested returns every command suggested in the channel's messages
// (cards included, as updated) and in ephemerals, once each.
func (w *world) suggested() []string {
	seen := map[string]bool{}
	var out []string
	add := func(s string) {
		for _, m := range suggestedRE.FindAllStringSubmatch(s, -1) {
			if !seen[m[1]] {
				seen[m[1]] = true
				out = append(out, m[1])
			}
		}
	}
	for _, m := range w.slack.Messages(w.channel) {
		add(m.Text + unescape(m.Blocks))
	}
	for _, e := range w.slack.Ephemerals() {
		add(e.Text + unescape(e.Blocks))
	}
	return out
}

// TestRestoreFailedAfterSwapIsRolledBackByTheSuggestedCommand: a restore-db
// whose checks fail on live after the swap ends failed with the restored copy
// live. Every command the bot suggested on the way works when pasted: the
// rollback it suggests plans a rollback of exactly that request (the card
// names it, its backup and when it swapped), and once approved the previous
// data is live again. Nothing says the plan drifted. Asking again says there
// is nothing to roll back; by number it says who rolled it back.
func TestRestoreFailedAfterSwapIsRolledBackByTheSuggestedCommand(t *testing.T) {
	w := newRestoreDBWorld(t)
	in := startServeInstance(t, w.world)

	in.command(t, w.world, alice, `restore-db --reason "orders table corrupted"`)
	card, id := w.card(t, in.db, 0)
	in.click(t, clickPayload(t, w.world, card, bob, chat.ActionApprove, id))
	w.waitState(t, in.db, id, store.RequestFailed)
	w.waitCard(t, card.TS, "checks failed on the live database")
	if w.marker(t) {
		t.Fatal("the row written after the backup is still live: the swap did not happen")
	}

	// Every suggested command parses and works when pasted.
	t.Logf("suggested: %q", w.suggested())
	var rollbacks []string
	for _, cmd := range w.suggested() {
		if strings.HasPrefix(cmd, "/dr rollback") {
			rollbacks = append(rollbacks, cmd)
			continue
		}
		if strings.HasPrefix(cmd, "/dr cancel") {
			continue // names a request waiting for approval; pasted below for a rollback request
		}
		t.Errorf("unexpected suggestion %q: add it to this test", cmd)
	}
	if len(rollbacks) == 0 {
		t.Errorf("no rollback suggested (in backquotes); card: %s", unescape(w.waitCard(t, card.TS, "failed").Blocks))
	}
	// The request number works too, whatever the restore's final state.
	rollbacks = append(rollbacks, fmt.Sprintf("/dr rollback inflow %d", id))
	rbID := id
	for i, cmd := range rollbacks {
		before := len(w.slack.Ephemerals())
		in.command(t, w.world, alice, strings.TrimPrefix(cmd, "/dr "))
		if !w.slack.WaitFor(wait, func() bool {
			rs, err := in.db.RecentRequests(context.Background(), "inflow", 1)
			return err == nil && len(rs) == 1 && rs[0].ID > rbID && rs[0].MessageTS != ""
		}) {
			var said []string
			for _, e := range w.slack.Ephemerals()[before:] {
				said = append(said, e.Text)
			}
			t.Fatalf("pasting %q made no rollback request; the bot said %q", cmd, said)
		}
		rbCard, next := w.card(t, in.db, rbID)
		rbID = next
		text := unescape(rbCard.Blocks)
		for _, want := range []string{"Rolls back", fmt.Sprintf("request #%d: restore-db from orders-20261201.dump", id), "swapped in " + time.Now().UTC().Format("2006-01-02"), "(failed)"} {
			if !strings.Contains(text, want) {
				t.Errorf("rollback card (from %q) does not show %q:\n%s", cmd, want, text)
			}
		}
		if i < len(rollbacks)-1 { // keep the last one for approval; cancel this one as the bot suggests
			cancel := fmt.Sprintf("/dr cancel %d", rbID)
			if !w.slack.WaitFor(wait, func() bool { return slices.Contains(w.suggested(), cancel) }) {
				t.Fatalf("the bot did not suggest %q; it suggested %q", cancel, w.suggested())
			}
			in.command(t, w.world, alice, strings.TrimPrefix(cancel, "/dr "))
			w.waitState(t, in.db, rbID, store.RequestCancelled)
		} else {
			in.click(t, clickPayload(t, w.world, rbCard, bob, chat.ActionApprove, rbID))
			w.waitState(t, in.db, rbID, store.RequestSucceeded)
		}
	}
	if !w.marker(t) {
		t.Error("after the rollback the data from before the restore is not live")
	}

	// No drift: the re-plans at execution found the same backup, target and steps.
	for _, m := range w.slack.Messages(w.channel) {
		if strings.Contains(m.Text, "plan would be different") {
			t.Errorf("drift reported for an unchanged world: %q", m.Text)
		}
	}

	// Nothing left: said clearly, with and without the number.
	in.command(t, w.world, alice, "rollback")
	w.waitEphemeral(t, alice, "nothing to roll back")
	in.command(t, w.world, alice, fmt.Sprintf("rollback inflow %d", id))
	w.waitEphemeral(t, alice, fmt.Sprintf("already rolled back by request #%d", rbID))
}
