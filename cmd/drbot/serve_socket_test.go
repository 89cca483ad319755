package main

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/drbot-dev/drbot/bot/chat"
	"github.com/drbot-dev/drbot/internal/demo"
	"github.com/drbot-dev/drbot/internal/fakepagerduty"
	"github.com/drbot-dev/drbot/internal/fakeslack"
	"github.com/drbot-dev/drbot/internal/pglocal"
	"github.com/drbot-dev/drbot/internal/testenv"
	"github.com/drbot-dev/drbot/store"
	"github.com/drbot-dev/drbot/store/postgres"
)

// TestServeWithoutIngress is the no-ingress install: `drbot serve` with
// SLACK_APP_TOKEN (Socket Mode) and PagerDuty polling, and nothing inbound
// but /healthz, /readyz and /metrics, even when the Slack signing secret is
// in its environment too (a shared Kubernetes secret). The demo runbook,
// unchanged, goes from a PagerDuty incident found by polling to an incident
// channel, a /dr restore-db over the socket, an approval click over the socket
// and a real restore from a pg_dump backup that is verified by its checks.
func TestServeWithoutIngress(t *testing.T) {
	ctx := context.Background()
	storeURL := testenv.PostgresURL(t)

	// The database to restore and its backup: the demo's, on the test cluster.
	c := testenv.Cluster(t)
	demoEnv, err := demo.Prepare(ctx, quietLog(), c.URL("postgres"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dropDemoDatabases(t, c) })

	sl := fakeslack.New()
	t.Cleanup(sl.Close)
	alice := sl.AddUser(fakeslack.User{Name: "alice", Email: "alice@example.com"})
	bob := sl.AddUser(fakeslack.User{Name: "bob", Email: "bob@example.com"})
	for _, n := range []string{"carol", "dave", "erin"} {
		sl.AddUser(fakeslack.User{Name: n, Email: n + "@example.com"})
	}
	pd := fakepagerduty.New(t, "pd-api-token")
	pd.AddUser("PALICE", "Alice", "alice@example.com")
	pd.AddUser("PBOT", "drbot", "drbot@example.com")
	pd.AddEscalationPolicy("PESCDEMO", "Demo shop")
	pd.AddOnCall("PESCDEMO", 1, "PALICE")
	pd.AddService("PDEMO01", "Demo shop", "PESCDEMO")

	addr := freeAddr(t)
	cmd := command(t, []string{
		"DATABASE_URL=" + storeURL,
		"DRBOT_LISTEN=" + addr,
		"SLACK_BOT_TOKEN=" + sl.BotToken(),
		"SLACK_APP_TOKEN=" + sl.AppToken(),
		"SLACK_SIGNING_SECRET=also-in-the-secret", // ignored in Socket Mode
		"SLACK_API_URL=" + sl.APIURL(),
		"PAGERDUTY_API_TOKEN=pd-api-token",
		"PAGERDUTY_API_URL=" + pd.URL(),
		"PAGERDUTY_FROM_EMAIL=drbot@example.com",
		demo.URLEnv + "=" + demoEnv[demo.URLEnv],
		demo.BackupsEnv + "=" + demoEnv[demo.BackupsEnv],
	}, "serve", "--config", repoFile("deploy", "examples", "demo.yaml"), "--pagerduty-poll", "1s", "--log-format", "json")
	srv := startServer(t, cmd, addr)
	if !sl.WaitSocketConnected(wait) {
		t.Fatalf("drbot never opened a Socket Mode connection:\n%s", srv.logs.String())
	}

	// Nothing inbound but the probes and the metrics.
	for _, path := range []string{"/slack/commands", "/slack/interactions", "/slack/events", "/webhooks/pagerduty"} {
		resp, err := http.Post(srv.base+path, "application/x-www-form-urlencoded", strings.NewReader("x=1"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("POST %s = %d: served without ingress", path, resp.StatusCode)
		}
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		resp, err := http.Get(srv.base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s = %d", path, resp.StatusCode)
		}
	}

	// Alert → channel, found by polling.
	pd.CreateIncident("PDEMO01", "Orders table corrupted", "high")
	var ch fakeslack.Channel
	if !sl.WaitFor(wait, func() bool {
		for _, x := range sl.Channels() {
			if strings.HasPrefix(x.Name, "incident-demo-shop-") && countIn(sl.Messages(x.ID), "Incident: Orders table corrupted") == 1 {
				ch = x
				return true
			}
		}
		return false
	}) {
		t.Fatalf("no incident channel from the poller:\n%s", srv.logs.String())
	}

	// /dr restore-db over the socket, in the channel (the service is implied).
	env, err := sl.SendSlashCommand(fakeslack.SlashCommand{Text: `restore-db --reason "orders corrupted"`, UserID: alice, UserName: "alice", ChannelID: ch.ID, ChannelName: ch.Name})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := sl.WaitAck(env, wait); !ok {
		t.Fatalf("slash command envelope %s never acked:\n%s", env, srv.logs.String())
	}
	probe, err := postgres.Open(ctx, storeURL, postgres.Options{Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(probe.Close)
	var req store.ActionRequest
	if !sl.WaitFor(wait, func() bool {
		rs, err := probe.RecentRequests(ctx, "demo-shop", 1)
		if err != nil || len(rs) == 0 || rs[0].MessageTS == "" {
			return false
		}
		req = rs[0]
		return true
	}) {
		t.Fatalf("no approval card; ephemerals %+v\n%s", sl.Ephemerals(), srv.logs.String())
	}
	if req.Kind != "restore-db" || req.State != store.RequestPending {
		t.Fatalf("request = %s %s", req.Kind, req.State)
	}

	// Bob approves with the card's button, over the socket.
	payload, err := sl.ClickButton(ch.ID, req.MessageTS, bob, chat.ActionApprove, strconv.FormatInt(req.ID, 10))
	if err != nil {
		t.Fatal(err)
	}
	env, err = sl.SendInteraction(payload)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := sl.WaitAck(env, wait); !ok {
		t.Fatalf("click envelope %s never acked", env)
	}
	deadline := time.Now().Add(2 * wait)
	for {
		r, err := probe.Request(ctx, req.ID)
		if err != nil {
			t.Fatal(err)
		}
		if r.State == store.RequestSucceeded {
			break
		}
		if r.State == store.RequestFailed || time.Now().After(deadline) {
			t.Fatalf("request #%d is %s, want succeeded:\n%s", req.ID, r.State, srv.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The card says what was verified: the runbook's checks, passed.
	if !sl.WaitFor(wait, func() bool {
		m, ok := sl.Message(ch.ID, req.MessageTS)
		s := m.Text + unescape(m.Blocks)
		return ok && strings.Contains(s, "succeeded") && strings.Contains(s, "orders present") && strings.Contains(s, "every order has a customer")
	}) {
		m, _ := sl.Message(ch.ID, req.MessageTS)
		t.Fatalf("the card does not show the verification:\n%s\n%s", m.Text, m.Blocks)
	}
	if as := approvalsOf(t, probe, req.ID); len(as) != 1 || as[0].Approver != bob {
		t.Errorf("approvals = %+v", as)
	}
	if err := srv.terminate(t); err != nil {
		t.Fatalf("serve exited with %v after SIGTERM:\n%s", err, srv.logs.String())
	}
	if !strings.Contains(srv.logs.String(), `"slack_mode":"socket"`) {
		t.Errorf("serve did not say it runs in Socket Mode only:\n%s", srv.logs.String())
	}
}

func countIn(ms []fakeslack.Message, s string) int {
	n := 0
	for _, m := range ms {
		if strings.Contains(m.Text+unescape(m.Blocks), s) {
			n++
		}
	}
	return n
}

// dropDemoDatabases drops the demo database and what restores kept of it.
func dropDemoDatabases(t *testing.T, c *pglocal.Cluster) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		t.Error(err)
		return
	}
	rows, _ := conn.Query(ctx, `SELECT datname FROM pg_database WHERE datname LIKE $1`, demo.Database+"%")
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	conn.Close(ctx)
	if err != nil {
		t.Error(err)
	}
	for _, n := range names {
		if err := c.DropDatabase(ctx, n); err != nil {
			t.Error(err)
		}
	}
}
