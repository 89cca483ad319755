package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/runner/runnertest"
	"github.com/drbot-dev/drbot/bot/chat"
	"github.com/drbot-dev/drbot/internal/fakeslack"
	"github.com/drbot-dev/drbot/store"
	"github.com/drbot-dev/drbot/store/postgres"
)

// testClock is real time moved forward by Advance: jobs due "now" run as
// usual, and a test reaches a timer minutes away by advancing the clock
// instead of sleeping.
type testClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.off += d
}

// serveInProcess runs `drbot serve` (ServeCmd.Run, as the binary does) in
// this process against the world's fakes and database, with now as the
// clock of its timers and jobs. It stops at the end of the test.
func (w *incidentWorld) serveInProcess(now func() time.Time) *server {
	t := w.t
	t.Helper()
	addr := freeAddr(t)
	for k, v := range map[string]string{
		"DATABASE_URL":             w.dbURL,
		"SLACK_BOT_TOKEN":          w.slack.BotToken(),
		"SLACK_SIGNING_SECRET":     "slack-secret",
		"SLACK_APP_TOKEN":          "",
		"SLACK_API_URL":            w.slack.APIURL(),
		"PAGERDUTY_WEBHOOK_SECRET": pdSecret,
		"PAGERDUTY_API_TOKEN":      "pd-api-token",
		"PAGERDUTY_API_URL":        w.pd.URL(),
		"PAGERDUTY_FROM_EMAIL":     "drbot@example.com",
	} {
		t.Setenv(k, v)
	}
	s := &server{base: "http://" + addr, logs: &lockedBuffer{}, exited: make(chan error, 1)}
	logger := slog.New(slog.NewJSONHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, cancel := context.WithCancel(context.Background())
	cmd := ServeCmd{ConfigFlags: ConfigFlags{Config: w.config}, StoreFlags: StoreFlags{DataDir: t.TempDir()}, Listen: addr, now: now}
	go func() { s.exited <- cmd.Run(ctx, logger) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-s.exited:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Errorf("serve did not stop within 60s")
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		if resp, err := http.Get(s.base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		select {
		case err := <-s.exited:
			t.Fatalf("serve exited before it was ready: %v\n%s", err, s.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve not ready within 60s:\n%s", s.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// headerMessage is the incident header in channel (the message with the RTO clock).
func (w *incidentWorld) headerMessage(channel string) (fakeslack.Message, string) {
	for _, m := range w.slack.Messages(channel) {
		if b := unescape(m.Blocks); strings.Contains(b, "RTO clock") {
			return m, m.Text + "\n" + b
		}
	}
	return fakeslack.Message{}, ""
}

// waitHeader waits until the header in channel contains every one of want.
func (w *incidentWorld) waitHeader(s *server, channel string, want ...string) string {
	w.t.Helper()
	var got string
	if w.slack.WaitFor(wait, func() bool {
		_, got = w.headerMessage(channel)
		for _, s := range want {
			if !strings.Contains(got, s) {
				return false
			}
		}
		return true
	}) {
		return got
	}
	w.t.Fatalf("header never showed %q; it is:\n%s\nephemerals: %+v\n%s\n%s", want, got, w.slack.Ephemerals(), s.logs.String(), w.jobsDump())
	return ""
}

// headerUpdates counts the chat.update calls on the header message ts.
func (w *incidentWorld) headerUpdates(ts string) int {
	n := 0
	for _, c := range w.slack.Calls("chat.update") {
		if c.Params["ts"] == ts && c.Error == "" {
			n++
		}
	}
	return n
}

// TestServeHeaderIsALiveDashboard runs `drbot serve` in process with the
// seed's lstm-pfd numbers (escalations after 15m to the Platform Lead and
// after 30m to the Database Admin, RTO 1h) and an injected clock: the header
// is pinned, counts the escalations down as the clock moves (the periodic
// refresh, not an event, moves them), shows the acknowledgement, a request
// pending approval and then running step 3 of 3, marks the Platform Lead's
// escalation fired with its time, and after the resolution shows the
// duration and is never updated again however far the clock moves.
func TestServeHeaderIsALiveDashboard(t *testing.T) {
	w := newIncidentWorld(t)
	clock := &testClock{}
	w.pd.SetClock(clock.Now)
	cfg := fmt.Sprintf(`slack:
  announce_channel: %s
  approvers: [%s]
services:
  - name: lstm-pfd
    pagerduty:
      service_ids: [PLSTMPF]
      escalation_policy_id: PESCLST
    objectives: {rto: 1h, rpo: 4h}
    escalation:
      - after: 15m
        role: Platform Lead
        notify: [platform-lead@example.com]
      - after: 30m
        role: Database Admin
        notify: [dba@example.com]
`, w.announce, w.lead)
	if err := os.WriteFile(w.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	// restore-db is the request engine's test action (three steps, the last
	// held until released), on this test's database.
	var (
		restore *runnertest.Action
		held    <-chan struct{}
	)
	overrideAction("restore-db", func(ctx context.Context, _ actionEnv) (actions.Action, error) {
		a, err := runnertest.New(ctx, "restore-db", w.dbURL)
		if err != nil {
			return nil, err
		}
		if err := a.AddBackup(ctx, "b1"); err != nil {
			return nil, err
		}
		restore, held = a, a.Hold()
		return a, nil
	})
	t.Cleanup(func() {
		overridesMu.Lock()
		delete(overrides, "restore-db")
		overridesMu.Unlock()
		if restore != nil {
			restore.Release()
			restore.Close()
		}
	})

	s := w.serveInProcess(clock.Now)
	_, ch := w.openIncident(s, "lstm_pfd unreachable")
	alice := w.onCall(ch.ID)

	// Pinned, with both escalations to come.
	w.waitHeader(s, ch.ID, "Platform Lead in 15 min · Database Admin in 30 min", "Triggered", "elapsed, 1h left")
	hdr, _ := w.headerMessage(ch.ID)
	if !w.slack.WaitFor(wait, func() bool { p := w.slack.Pins(ch.ID); return len(p) == 1 && p[0] == hdr.TS }) {
		t.Fatalf("header %s not pinned: pins %v", hdr.TS, w.slack.Pins(ch.ID))
	}

	// Nothing happens but time: the minute tick moves the countdowns.
	clock.Advance(time.Minute)
	got := w.waitHeader(s, ch.ID, "Platform Lead in 14 min · Database Admin in 29 min")
	// The clock also runs: the RTO clock rounds to the minute.
	if !regexp.MustCompile(`RTO clock\*\\n[12]m elapsed, 5[89]m left`).MatchString(got) {
		t.Errorf("RTO clock at +1m:\n%s", got)
	}
	clock.Advance(5 * time.Minute)
	got = w.waitHeader(s, ch.ID, "Platform Lead in 9 min · Database Admin in 24 min")
	if !regexp.MustCompile(`RTO clock\*\\n[67]m elapsed, 5[34]m left \(1[01]% of 1h\)`).MatchString(got) {
		t.Errorf("RTO clock at +6m:\n%s", got)
	}

	// Acknowledged, and a request in flight.
	w.slash(s, alice, ch.ID, "ack")
	w.waitHeader(s, ch.ID, "Acknowledged by")
	w.slash(s, alice, ch.ID, "restore-db")
	probe, err := postgres.Open(context.Background(), w.dbURL, postgres.Options{Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(probe.Close)
	var req store.ActionRequest
	if !w.slack.WaitFor(wait, func() bool {
		rs, err := probe.RecentRequests(context.Background(), "lstm-pfd", 1)
		if err != nil || len(rs) == 0 || rs[0].MessageTS == "" {
			return false
		}
		req = rs[0]
		return true
	}) {
		t.Fatalf("no approval card; ephemerals %+v\n%s", w.slack.Ephemerals(), s.logs.String())
	}
	if req.IncidentID == nil {
		t.Fatalf("request %d belongs to no incident", req.ID)
	}
	w.waitHeader(s, ch.ID, fmt.Sprintf("#%d restore-db", req.ID), "pending approval")

	// 16 minutes in: the Platform Lead's escalation fires and is marked with its time.
	clock.Advance(10 * time.Minute)
	got = w.waitHeader(s, ch.ID, "Escalated", "Platform Lead at ")
	firedAt := regexp.MustCompile(`Platform Lead at (\d\d:\d\d) UTC`).FindStringSubmatch(got)
	if firedAt == nil {
		t.Fatalf("no fired time for the Platform Lead:\n%s", got)
	}
	if want := clock.Now().UTC().Format("15:04"); firedAt[1] != want && firedAt[1] != clock.Now().Add(-time.Minute).UTC().Format("15:04") {
		t.Errorf("Platform Lead fired at %s, the clock says %s", firedAt[1], want)
	}
	if strings.Contains(got, "Platform Lead in") || !regexp.MustCompile(`Database Admin in 1[34] min`).MatchString(got) {
		t.Errorf("after the first escalation the countdowns are wrong:\n%s", got)
	}

	// The Platform Lead (invited by the escalation) approves: the header follows the run.
	p, err := w.slack.ClickButton(ch.ID, req.MessageTS, w.lead, chat.ActionApprove, strconv.FormatInt(req.ID, 10))
	if err != nil {
		t.Fatal(err)
	}
	if resp := postSigned(t, s.base+"/slack/interactions", "slack-secret", time.Now(), fakeslack.InteractionForm(p).Encode()); resp.StatusCode != http.StatusOK {
		t.Fatalf("approve = %d", resp.StatusCode)
	}
	select {
	case <-held:
	case <-time.After(wait):
		t.Fatalf("the execution never reached its held step\n%s", s.logs.String())
	}
	w.waitHeader(s, ch.ID, fmt.Sprintf("#%d restore-db", req.ID), "running step 3 of 3 (record)")
	restore.Release()
	if !w.slack.WaitFor(wait, func() bool {
		_, got := w.headerMessage(ch.ID)
		return !strings.Contains(got, fmt.Sprintf("#%d restore-db", req.ID))
	}) {
		_, got := w.headerMessage(ch.ID)
		t.Fatalf("the finished request stays on the header:\n%s", got)
	}

	// Resolved: the final header, then silence however the clock moves.
	w.slash(s, alice, ch.ID, "resolve restored from b1")
	final := w.waitHeader(s, ch.ID, "[RESOLVED]", "Resolved at", "after it opened", "verified healthy", "RTO 1h met")
	if strings.Contains(final, "Escalations to come") || !strings.Contains(final, "Platform Lead at "+firedAt[1]) {
		t.Errorf("final header:\n%s", final)
	}
	if n := w.count(`SELECT count(*) FROM river_job WHERE kind = 'incident.header_tick'
		AND state IN ('available', 'pending', 'running', 'retryable', 'scheduled')`); n != 0 {
		t.Errorf("%d header ticks still armed after the resolution", n)
	}
	// Let the resolution's own refresh land (it is debounced), then count.
	if !w.slack.WaitFor(wait, func() bool {
		return w.count(`SELECT count(*) FROM river_job WHERE kind = 'incident.header'
			AND state IN ('available', 'pending', 'running', 'retryable', 'scheduled')`) == 0
	}) {
		t.Fatal("header refreshes still queued after the resolution")
	}
	before := w.headerUpdates(hdr.TS)
	for range 3 {
		clock.Advance(10 * time.Minute)
		// A negative can only be observed over time: River's scheduler looks
		// for due jobs every 5s, so 6s per step would have run a tick.
		if w.slack.WaitFor(6*time.Second, func() bool { return w.headerUpdates(hdr.TS) != before }) {
			_, got := w.headerMessage(ch.ID)
			t.Fatalf("the header was updated after the resolution:\n%s", got)
		}
	}
	if n := w.countMessages(ch.ID, "Escalating to Database Admin"); n != 0 {
		t.Errorf("the Database Admin was escalated to after the resolution")
	}

	// A card that changes after the resolution (a request made in the
	// resolved incident's channel, then cancelled) leaves the final header
	// as it is: the resolution's refresh was the last.
	w.slash(s, alice, ch.ID, "restore-db")
	var late store.ActionRequest
	if !w.slack.WaitFor(wait, func() bool {
		rs, err := probe.RecentRequests(context.Background(), "lstm-pfd", 1)
		if err != nil || len(rs) == 0 || rs[0].ID == req.ID || rs[0].MessageTS == "" {
			return false
		}
		late = rs[0]
		return true
	}) {
		t.Fatalf("no card for the request after the resolution; ephemerals %+v", w.slack.Ephemerals())
	}
	w.slash(s, alice, ch.ID, fmt.Sprintf("cancel %d", late.ID))
	if !w.slack.WaitFor(wait, func() bool {
		r, err := probe.Request(context.Background(), late.ID)
		return err == nil && r.State == store.RequestCancelled
	}) {
		t.Fatalf("request %d not cancelled", late.ID)
	}
	for range 2 {
		clock.Advance(time.Minute)
		if w.slack.WaitFor(6*time.Second, func() bool { return w.headerUpdates(hdr.TS) != before }) {
			_, got := w.headerMessage(ch.ID)
			t.Fatalf("a card changed after the resolution updated the header:\n%s", got)
		}
	}
}

// jobsDump lists the world's River jobs and leader, for failure messages.
func (w *incidentWorld) jobsDump() string {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, w.dbURL)
	if err != nil {
		return err.Error()
	}
	defer conn.Close(ctx)
	var b strings.Builder
	rows, err := conn.Query(ctx, `SELECT format('%s %s %s scheduled %s args %s attempt %s', id, kind, state, scheduled_at, args, attempt) FROM river_job
		UNION ALL SELECT format('leader %s until %s (database clock %s)', leader_id, expires_at, now()) FROM river_leader`)
	if err != nil {
		return err.Error()
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err.Error()
	}
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	return b.String()
}
