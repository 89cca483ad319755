package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/runner/runnertest"
	"github.com/drbot-dev/drbot/bot/chat"
	"github.com/drbot-dev/drbot/bot/incident"
	"github.com/drbot-dev/drbot/bot/slack"
	"github.com/drbot-dev/drbot/internal/fakeslack"
	"github.com/drbot-dev/drbot/internal/testenv"
	"github.com/drbot-dev/drbot/runbook"
	"github.com/drbot-dev/drbot/store"
	"github.com/drbot-dev/drbot/store/postgres"
)

const e2eSecret = "e2e-signing-secret"

// e2eConfig is a runbook whose approvers are a user id (bob), a user group
// (dave, through usergroups.users.list) and an e-mail (carol, through
// users.lookupByEmail).
func e2eConfig(t testing.TB, expires string) *runbook.Config {
	t.Helper()
	cfg, err := runbook.Parse("e2e.yaml", []byte(`
slack:
  approvers: [UBOB, SDBA, carol@example.com]
approvals:
  required: 1
  expires_after: `+expires+`
services:
  - name: inflow
    pagerduty:
      service_ids: [PINFLOW]
`))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// world is a fake Slack workspace, a database and the test actions, shared by
// one or more bot instances.
type world struct {
	slack    *fakeslack.Server
	url      string
	channel  string
	incident int64
	restore  *runnertest.Action // kind restore-db: one approval
	failover *runnertest.Action // kind failover: two approvals
	cfg      *runbook.Config
}

const (
	alice   = "UALICE"
	bob     = "UBOB"
	carol   = "UCAROL"
	dave    = "UDAVE"
	mallory = "UMALLORY"
)

func newWorld(t testing.TB, expires string) *world {
	t.Helper()
	ctx := context.Background()
	w := &world{slack: fakeslack.New(), url: testenv.PostgresURL(t), cfg: e2eConfig(t, expires)}
	t.Cleanup(w.slack.Close)
	for _, u := range []fakeslack.User{{ID: alice, Name: "alice"}, {ID: bob, Name: "bob"}, {ID: carol, Name: "carol", Email: "carol@example.com"},
		{ID: dave, Name: "dave"}, {ID: mallory, Name: "mallory"}} {
		w.slack.AddUser(u)
	}
	w.slack.AddUserGroup("SDBA", dave)
	w.channel = w.slack.AddChannel("incident-inflow-20261123", fakeslack.BotUserID, alice, bob, carol, dave, mallory)

	db, err := postgres.Open(ctx, w.url, postgres.Options{Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	inc, _, err := db.OpenIncident(ctx, store.Incident{PagerDutyID: "PD-E2E-1", Service: "inflow", Title: "inflow API 500s", Status: store.IncidentTriggered, OpenedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.SetIncidentChannel(ctx, inc.ID, w.channel); err != nil {
		t.Fatal(err)
	}
	w.incident = inc.ID
	for _, a := range []**runnertest.Action{&w.restore, &w.failover} {
		kind := "restore-db"
		if a == &w.failover {
			kind = "failover"
		}
		act, err := runnertest.New(ctx, kind, w.url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(act.Close)
		*a = act
	}
	if err := w.restore.AddBackup(ctx, "b1"); err != nil {
		t.Fatal(err)
	}
	return w
}

func quietLog() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelError}))
}

func (w *world) registry() actions.Registry {
	reg := actions.Registry{}
	reg.Register(w.restore)
	reg.Register(w.failover)
	return reg
}

// instance is one bot process: `drbot serve`'s wiring (Slack client, store,
// runtime with jobs, signed HTTP handlers) on an httptest server.
type instance struct {
	rt  *runtime
	db  *postgres.DB
	srv *httptest.Server
}

func startInstance(t testing.TB, w *world) *instance {
	t.Helper()
	return serveWith(t, w, func(ctx context.Context, log *slog.Logger, db *postgres.DB, client *slack.Client) *runtime {
		return newRuntimeWith(ctx, log, w.cfg, db, client, w.registry())
	})
}

// serveWith starts the runtime build makes on its own store and Slack client,
// with its jobs and signed Slack HTTP handlers on an httptest server.
func serveWith(t testing.TB, w *world, build func(ctx context.Context, log *slog.Logger, db *postgres.DB, client *slack.Client) *runtime) *instance {
	t.Helper()
	ctx := context.Background()
	log := quietLog()
	client, err := slack.NewClient(slack.Options{Token: w.slack.BotToken(), APIURL: w.slack.APIURL(), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	db, err := postgres.Open(ctx, w.url, postgres.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	rt := build(ctx, log, db, client)
	if err := rt.startJobs(ctx); err != nil {
		t.Fatal(err)
	}
	handlers, err := slack.NewHTTPHandlers(slack.Options{SigningSecret: e2eSecret, Client: client, Handler: rt.bot, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /slack/commands", handlers.Commands())
	mux.Handle("POST /slack/interactions", handlers.Interactions())
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		srv.Close()
		handlers.Wait()
		rt.stopJobs(log)
		db.Close()
	})
	return &instance{rt: rt, db: db, srv: srv}
}

// startProbe opens a store on the world's database without working jobs.
func startProbe(t testing.TB, w *world) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(context.Background(), w.url, postgres.Options{Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return db
}

func signedPost(t testing.TB, u string, body string) {
	t.Helper()
	req, err := fakeslack.NewSignedRequest(context.Background(), u, e2eSecret, time.Now(), "application/x-www-form-urlencoded", []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := slackSide.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s = %d", u, resp.StatusCode)
	}
}

// slackSide is Slack's side of the HTTP connections: kept alive, as Slack does.
var slackSide = &http.Client{Transport: &http.Transport{MaxIdleConns: 1000, MaxIdleConnsPerHost: 1000, IdleConnTimeout: time.Minute}}

// command posts a signed /dr command as user in the incident channel.
func (in *instance) command(t testing.TB, w *world, user, text string) {
	t.Helper()
	form := fakeslack.SlashCommand{Text: text, UserID: user, UserName: strings.ToLower(user[1:]), ChannelID: w.channel, ChannelName: "incident-inflow-20261123"}.Form()
	signedPost(t, in.srv.URL+"/slack/commands", form.Encode())
}

// clickPayload builds the signed-payload body of user pressing actionID on the card.
func clickPayload(t testing.TB, w *world, card fakeslack.Message, user, actionID string, id int64) string {
	t.Helper()
	p, err := w.slack.ClickButton(w.channel, card.TS, user, actionID, strconv.FormatInt(id, 10))
	if err != nil {
		t.Fatal(err)
	}
	return fakeslack.InteractionForm(p).Encode()
}

func (in *instance) click(t testing.TB, body string) {
	t.Helper()
	signedPost(t, in.srv.URL+"/slack/interactions", body)
}

const wait = 30 * time.Second

// card waits for the approval card of the newest request and returns it with the request id.
func (w *world) card(t testing.TB, db *postgres.DB, after int64) (fakeslack.Message, int64) {
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
		t.Fatalf("no approval card; ephemerals %+v", w.slack.Ephemerals())
	}
	m, ok := w.slack.Message(w.channel, req.MessageTS)
	if !ok || !bytes.Contains(m.Blocks, []byte(chat.ActionApprove)) {
		t.Fatalf("card %s has no Approve button: %+v", req.MessageTS, m)
	}
	return m, req.ID
}

func (w *world) waitState(t testing.TB, db *postgres.DB, id int64, state store.RequestState) store.ActionRequest {
	t.Helper()
	var r store.ActionRequest
	deadline := time.Now().Add(wait)
	for {
		var err error
		r, err = db.Request(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if r.State == state {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("request %d is %s, want %s", id, r.State, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitEphemeral waits for a private message to user containing want.
func (w *world) waitEphemeral(t testing.TB, user, want string) {
	t.Helper()
	if !w.slack.WaitFor(wait, func() bool {
		for _, e := range w.slack.Ephemerals() {
			if e.User == user && strings.Contains(e.Text+unescape(e.Blocks), want) {
				return true
			}
		}
		return false
	}) {
		t.Fatalf("no ephemeral to %s containing %q; got %+v", user, want, w.slack.Ephemerals())
	}
}

// waitCard waits until the card's stored text contains want.
func (w *world) waitCard(t testing.TB, ts, want string) fakeslack.Message {
	t.Helper()
	var m fakeslack.Message
	if !w.slack.WaitFor(wait, func() bool {
		var ok bool
		m, ok = w.slack.Message(w.channel, ts)
		return ok && strings.Contains(m.Text+unescape(m.Blocks), want)
	}) {
		t.Fatalf("card never showed %q; it is %s\n%s", want, m.Text, m.Blocks)
	}
	return m
}

// unescape undoes encoding/json's HTML escaping of <, > and &.
func unescape(b []byte) string {
	return strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&").Replace(string(b))
}

func executions(t testing.TB, a *runnertest.Action) []string {
	t.Helper()
	ex, err := a.Executions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ex
}

func approvalsOf(t testing.TB, db *postgres.DB, id int64) []store.Approval {
	t.Helper()
	as, err := db.Approvals(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return as
}

// TestApprovalEndToEnd: request → the requester's approval refused →
// a non-approver refused (privately, nothing changes) → an approver
// approves → executes once, card updated through every state; a Slack retry
// of the approval and a late approval change nothing; the audit trail exports
// and verifies, and tampering with it is detected by `drbot audit verify`.
func TestApprovalEndToEnd(t *testing.T) {
	w := newWorld(t, "15m")
	in := startInstance(t, w)

	in.command(t, w, alice, `restore-db --reason "db corrupted at 14:02"`)
	card, id := w.card(t, in.db, 0)
	if !strings.Contains(string(card.Blocks), "db corrupted at 14:02") || !strings.Contains(string(card.Blocks), "b1") {
		t.Errorf("card lacks the reason or the pinned backup:\n%s", card.Blocks)
	}
	w.waitEphemeral(t, alice, fmt.Sprintf("Request #%d is waiting for approval", id))

	in.click(t, clickPayload(t, w, card, alice, chat.ActionApprove, id))
	w.waitEphemeral(t, alice, "you cannot approve it")
	in.click(t, clickPayload(t, w, card, mallory, chat.ActionApprove, id))
	w.waitEphemeral(t, mallory, "Only the configured approvers")
	if r, _ := in.db.Request(context.Background(), id); r.State != store.RequestPending || len(approvalsOf(t, in.db, id)) != 0 {
		t.Fatalf("refused clicks changed the request: %s, %+v", r.State, approvalsOf(t, in.db, id))
	}

	// Payloads of clicks on the card as everyone sees it now (Slack clients
	// can click a card that has changed since).
	bobClick := clickPayload(t, w, card, bob, chat.ActionApprove, id)
	lateCarol := clickPayload(t, w, card, carol, chat.ActionApprove, id)
	in.click(t, bobClick)
	w.waitState(t, in.db, id, store.RequestSucceeded)
	final := w.waitCard(t, card.TS, "succeeded")
	if !strings.Contains(string(final.Blocks), "restored") || strings.Contains(string(final.Blocks), chat.ActionApprove) {
		t.Errorf("final card lacks the verification table or still has buttons:\n%s", final.Blocks)
	}
	in.click(t, bobClick) // Slack retries the same delivery
	in.click(t, lateCarol)
	w.waitEphemeral(t, carol, "already executed")
	if ex := executions(t, w.restore); !slices.Equal(ex, []string{"b1"}) {
		t.Errorf("executions = %v, want exactly one of b1", ex)
	}
	if as := approvalsOf(t, in.db, id); len(as) != 1 || as[0].Approver != bob {
		t.Errorf("approvals = %+v", as)
	}
	if final.Updates < 4 { // approved, running, steps…, verifying, succeeded
		t.Errorf("card updated %d times", final.Updates)
	}

	// Audit: export and verify with the real binary, then tamper.
	env := []string{"DATABASE_URL=" + w.url}
	out, err := command(t, env, "audit", "export", "--incident", strconv.FormatInt(w.incident, 10), "--format", "json").Output()
	if err != nil {
		t.Fatalf("audit export: %v\n%s", err, out)
	}
	var exp incident.AuditExport
	if err := json.Unmarshal(out, &exp); err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, ev := range exp.Events {
		kinds = append(kinds, ev.Kind)
	}
	for _, want := range []string{"request.created", "approval.approved", "request.approved", "request.running", "step.started", "step.finished", "request.verifying", "request.succeeded"} {
		if !slices.Contains(kinds, want) {
			t.Errorf("export lacks %s: %v", want, kinds)
		}
	}
	if !exp.Chain.OK || len(exp.Requests) != 1 || len(exp.Requests[0].Approvals) != 1 {
		t.Errorf("export: chain %+v, requests %+v", exp.Chain, exp.Requests)
	}
	md, err := command(t, env, "audit", "export", "--incident", strconv.FormatInt(w.incident, 10)).Output()
	if err != nil || !strings.Contains(string(md), "## Timeline") || !strings.Contains(string(md), "approval.approved") {
		t.Errorf("markdown export: %v\n%s", err, md)
	}
	if out, err := command(t, env, "audit", "verify").CombinedOutput(); err != nil || !strings.Contains(string(out), "audit chain OK") {
		t.Fatalf("audit verify: %v\n%s", err, out)
	}
	var seq int64
	for _, ev := range exp.Events {
		if ev.Kind == "approval.approved" {
			seq = ev.Seq
		}
	}
	if _, err := in.db.Pool().Exec(context.Background(), `
		ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update_delete;
		UPDATE audit_events SET actor = 'UMALLORY' WHERE seq = `+strconv.FormatInt(seq, 10)+`;
		ALTER TABLE audit_events ENABLE TRIGGER audit_events_no_update_delete;`); err != nil {
		t.Fatal(err)
	}
	vout, err := command(t, env, "audit", "verify").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(vout), fmt.Sprintf("BROKEN at row %d", seq)) {
		t.Errorf("audit verify after tampering with row %d: %v\n%s", seq, err, vout)
	}
}

func TestDenyCancelAndExpiry(t *testing.T) {
	w := newWorld(t, "2s")
	in := startInstance(t, w)
	ctx := context.Background()

	// Deny.
	in.command(t, w, alice, "restore-db")
	card, id := w.card(t, in.db, 0)
	in.click(t, clickPayload(t, w, card, dave, chat.ActionDeny, id)) // dave approves through the SDBA group
	w.waitState(t, in.db, id, store.RequestDenied)
	w.waitCard(t, card.TS, "Denied by <@UDAVE>")

	// A second request on the busy target is refused naming the holder; the
	// denied one no longer holds it.
	in.command(t, w, alice, "restore-db")
	card, id = w.card(t, in.db, id)
	bobCancel := clickPayload(t, w, card, bob, chat.ActionCancel, id)
	aliceCancel := clickPayload(t, w, card, alice, chat.ActionCancel, id)
	in.command(t, w, bob, "restore-db")
	w.waitEphemeral(t, bob, fmt.Sprintf("request #%d (restore-db, pending) by <@UALICE> holds it", id))

	// Cancel: only the requester.
	in.click(t, bobCancel)
	w.waitEphemeral(t, bob, "Only the requester")
	in.click(t, aliceCancel)
	w.waitState(t, in.db, id, store.RequestCancelled)
	w.waitCard(t, card.TS, "Cancelled by <@UALICE>")

	// Deny by command, with a reason the card shows; the requester cannot.
	in.command(t, w, alice, "restore-db")
	card, id = w.card(t, in.db, id)
	in.command(t, w, alice, fmt.Sprintf("deny %d changed my mind", id))
	w.waitEphemeral(t, alice, fmt.Sprintf("You asked for request #%d: use Cancel", id))
	in.command(t, w, dave, fmt.Sprintf(`deny #%d "the backup predates the corruption"`, id))
	w.waitState(t, in.db, id, store.RequestDenied)
	w.waitCard(t, card.TS, "the backup predates the corruption")

	// Expiry: a River timer expires the request and updates the card; a late
	// approval is refused.
	in.command(t, w, alice, "restore-db")
	card, id = w.card(t, in.db, id)
	lateCarol := clickPayload(t, w, card, carol, chat.ActionApprove, id) // carol approves through her e-mail
	w.waitState(t, in.db, id, store.RequestExpired)
	w.waitCard(t, card.TS, "Expired at")
	in.click(t, lateCarol)
	w.waitEphemeral(t, carol, "expired")
	if ex := executions(t, w.restore); len(ex) != 0 {
		t.Errorf("something ran: %v", ex)
	}

	// Dry run: the plan, no request.
	in.command(t, w, alice, "restore-db --dry-run")
	w.waitEphemeral(t, alice, "Dry run")
	if rs, _ := in.db.RecentRequests(ctx, "inflow", 10); len(rs) != 4 {
		t.Errorf("a dry run created a request: %d requests", len(rs))
	}
	// A kind without an action refuses clearly.
	in.command(t, w, alice, "scale web 3")
	w.waitEphemeral(t, alice, "/dr scale is not available")
}

func TestPlanChangeRunsApprovedPlanOrFails(t *testing.T) {
	w := newWorld(t, "15m")
	in := startInstance(t, w)
	ctx := context.Background()

	in.command(t, w, alice, "restore-db")
	card, id := w.card(t, in.db, 0)
	if err := w.restore.AddBackup(ctx, "b2"); err != nil { // a newer backup appears
		t.Fatal(err)
	}
	in.click(t, clickPayload(t, w, card, bob, chat.ActionApprove, id))
	w.waitState(t, in.db, id, store.RequestSucceeded)
	if ex := executions(t, w.restore); !slices.Equal(ex, []string{"b1"}) {
		t.Errorf("executions = %v, want the approved b1", ex)
	}
	if !w.slack.WaitFor(wait, func() bool {
		for _, m := range w.slack.Messages(w.channel) {
			if strings.Contains(m.Text, "running the approved plan exactly as approved") {
				return true
			}
		}
		return false
	}) {
		t.Error("no note that the plan changed")
	}

	// The pinned object disappears before execution: the request fails with that reason.
	in.command(t, w, alice, "restore-db") // pins b2
	card, id = w.card(t, in.db, id)
	if err := w.restore.DeleteBackup(ctx, "b2"); err != nil {
		t.Fatal(err)
	}
	in.click(t, clickPayload(t, w, card, bob, chat.ActionApprove, id))
	w.waitState(t, in.db, id, store.RequestFailed)
	w.waitCard(t, card.TS, "the approved backup b2 is gone")
	if ex := executions(t, w.restore); !slices.Equal(ex, []string{"b1"}) {
		t.Errorf("executions = %v: something ran instead of the gone backup", ex)
	}
}

// TestConcurrentApprovalsTwoInstances: two bot processes on one database; a
// failover needs two approvals. Both approvers click at the same instant on
// different instances, each double-clicks, and Slack retries one delivery:
// two approvals, one execution.
func TestConcurrentApprovalsTwoInstances(t *testing.T) {
	w := newWorld(t, "15m")
	a, b := startInstance(t, w), startInstance(t, w)
	ctx := context.Background()
	if err := w.failover.AddBackup(ctx, "f1"); err != nil {
		t.Fatal(err)
	}
	a.command(t, w, alice, "failover")
	card, id := w.card(t, a.db, 0)
	if !strings.Contains(card.Text, "0 of 2 approvals") {
		t.Errorf("failover card does not ask for two approvals: %s", card.Text)
	}
	bobClick := clickPayload(t, w, card, bob, chat.ActionApprove, id)
	bodies := []struct {
		in   *instance
		body string
	}{
		{a, bobClick}, {b, bobClick}, // a retry delivered to the other instance
		{b, clickPayload(t, w, card, carol, chat.ActionApprove, id)},
		{a, clickPayload(t, w, card, carol, chat.ActionApprove, id)}, // double click
		{b, clickPayload(t, w, card, bob, chat.ActionApprove, id)},
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, c := range bodies {
		wg.Go(func() {
			<-start
			c.in.click(t, c.body)
		})
	}
	close(start)
	wg.Wait()
	w.waitState(t, a.db, id, store.RequestSucceeded)
	if as := approvalsOf(t, a.db, id); len(as) != 2 {
		t.Errorf("approvals = %+v, want bob's and carol's once each", as)
	}
	// Both instances resume whatever is left running: nothing is.
	for _, in := range []*instance{a, b} {
		if err := in.rt.req.resume(ctx); err != nil {
			t.Fatal(err)
		}
	}
	w.waitCard(t, card.TS, "succeeded")
	if ex := executions(t, w.failover); !slices.Equal(ex, []string{"f1"}) {
		t.Errorf("executions = %v, want exactly one", ex)
	}
}
