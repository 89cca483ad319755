package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/drbot-dev/drbot/bot/chat"
	"github.com/drbot-dev/drbot/internal/fakeslack"
	"github.com/drbot-dev/drbot/internal/testenv"
	"github.com/drbot-dev/drbot/store"
)

// TestServeRefusesHostilePlainBackup (issue 8, point 1) drives the real
// `drbot serve`, with the real restore-db, psql and PostgreSQL: a plain SQL
// backup whose line holds `SELECT 1; \! touch FILE` is approved and run; the
// request fails saying the backup holds a psql meta-command, the file never
// appears, the live database is unchanged and no side database is left. psql
// (wrapped to record its environment) saw none of drbot's secrets.
func TestServeRefusesHostilePlainBackup(t *testing.T) {
	w := newWorld(t, "15m")
	ctx := context.Background()
	cluster := testenv.Cluster(t)
	const live = "inflow_e2e_hostile"
	if err := cluster.CreateDatabase(ctx, live); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cluster.DropDatabase(context.Background(), live) })
	hostileExec(t, cluster.URL(live), "CREATE TABLE orders (id int PRIMARY KEY); INSERT INTO orders SELECT generate_series(1, 5)")

	dir, pwned := t.TempDir(), filepath.Join(t.TempDir(), "pwned")
	backup := "CREATE TABLE orders (id int PRIMARY KEY);\nINSERT INTO orders VALUES (1);\nSELECT 1; \\! touch " + pwned + "\n"
	if err := os.WriteFile(filepath.Join(dir, "inflow-20261201.sql"), []byte(backup), 0o600); err != nil {
		t.Fatal(err)
	}
	bin, envDir := t.TempDir(), t.TempDir()
	realPsql, err := exec.LookPath("psql")
	if err != nil {
		t.Fatal(err)
	}
	wrapper := fmt.Sprintf("#!/bin/sh\n/usr/bin/env > %s/psql.$$.env\nexec %s \"$@\"\n", envDir, realPsql)
	if err := os.WriteFile(filepath.Join(bin, "psql"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}

	cfgFile := filepath.Join(t.TempDir(), "e2e.yaml")
	if err := os.WriteFile(cfgFile, []byte(`
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
      - name: inflow
        url_env: INFLOW_DATABASE_URL
        backups:
          location: file://`+dir+`/
`), 0o600); err != nil {
		t.Fatal(err)
	}
	secrets := map[string]string{
		"SLACK_BOT_TOKEN": w.slack.BotToken(), "SLACK_SIGNING_SECRET": e2eSecret,
		"PAGERDUTY_API_TOKEN": "pd-e2e-child-must-not-see", "PAGERDUTY_WEBHOOK_SECRET": "pdw-e2e-child-must-not-see",
		"AWS_SECRET_ACCESS_KEY": "aws-e2e-child-must-not-see", "DATABASE_URL": w.url,
	}
	addr := freeAddr(t)
	env := []string{"PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH"), "DRBOT_LISTEN=" + addr,
		"SLACK_API_URL=" + w.slack.APIURL(), "INFLOW_DATABASE_URL=" + cluster.URL(live)}
	for k, v := range secrets {
		env = append(env, k+"="+v)
	}
	srv := startServer(t, command(t, env, "serve", "--config", cfgFile, "--log-format", "json"), addr)

	form := fakeslack.SlashCommand{Text: "restore-db", UserID: alice, UserName: "alice", ChannelID: w.channel}.Form()
	signedPost(t, srv.base+"/slack/commands", form.Encode())
	probe := startProbe(t, w)
	card, id := w.card(t, probe, 0)
	signedPost(t, srv.base+"/slack/interactions", clickPayload(t, w, card, bob, chat.ActionApprove, id))
	w.waitState(t, probe, id, store.RequestFailed)
	if !w.slack.WaitFor(wait, func() bool {
		for _, m := range w.slack.Messages(w.channel) {
			if text := m.Text + unescape(m.Blocks); strings.Contains(text, "holds a psql meta-command") && strings.Contains(text, "inflow-20261201.sql") {
				return true
			}
		}
		return false
	}) {
		t.Errorf("the channel was not told the backup holds a psql meta-command:\n%+v\nlogs:\n%s", w.slack.Messages(w.channel), srv.logs.String())
	}

	if _, err := os.Stat(pwned); err == nil {
		t.Errorf("the backup's \\! ran: %s exists", pwned)
	}
	var sides []string
	conn, err := pgx.Connect(ctx, cluster.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	r, err := conn.Query(ctx, "SELECT datname FROM pg_database WHERE starts_with(datname, $1)", live+"_")
	if err != nil {
		t.Fatal(err)
	}
	if sides, err = pgx.CollectRows(r, pgx.RowTo[string]); err != nil {
		t.Fatal(err)
	}
	if len(sides) != 0 {
		t.Errorf("databases left behind: %v", sides)
	}
	if got := hostileCount(t, cluster.URL(live), "SELECT count(*) FROM orders"); got != 5 {
		t.Errorf("live orders = %d, want the untouched 5", got)
	}

	files, _ := filepath.Glob(filepath.Join(envDir, "*.env"))
	ran := false
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range secrets {
			if strings.Contains(string(b), k+"=") || strings.Contains(string(b), v) {
				t.Errorf("psql's environment holds %s", k)
			}
		}
		if strings.Contains(string(b), "INFLOW_DATABASE_URL") {
			t.Error("psql's environment holds INFLOW_DATABASE_URL")
		}
		ran = ran || strings.Contains(string(b), "PGHOST=")
	}
	if !ran {
		t.Errorf("psql never ran for the restore (recorded %v)", files)
	}
}

func hostileExec(t *testing.T, url, sql string) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func hostileCount(t *testing.T, url, sql string) int {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), sql).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}
