package bot_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/drbot-dev/drbot/bot"
	"github.com/drbot-dev/drbot/bot/chat"
	"github.com/drbot-dev/drbot/bot/shell"
	"github.com/drbot-dev/drbot/commands"
	"github.com/drbot-dev/drbot/internal/testenv"
	"github.com/drbot-dev/drbot/runbook"
	"github.com/drbot-dev/drbot/store"
	"github.com/drbot-dev/drbot/store/postgres"
)

func TestMain(m *testing.M) {
	testenv.SetTemplateSetup(func(ctx context.Context, url string) error {
		return postgres.Migrate(ctx, url)
	})
	testenv.Main(m)
}

// syncBuffer is an io.Writer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// triggeredAt is when the tests' incidents open: channel names end in 20261123.
var triggeredAt = time.Date(2026, 11, 23, 14, 0, 0, 0, time.UTC)

type harness struct {
	t    *testing.T
	ctx  context.Context
	cfg  *runbook.Config
	db   *postgres.DB
	sh   *shell.Shell
	bot  *bot.Bot
	out  *syncBuffer
	logs *syncBuffer
	reg  *prometheus.Registry
	mark int
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	cfg, err := runbook.Load("../deploy/examples/drbot.yaml")
	if err != nil {
		t.Fatalf("load reference config: %v", err)
	}
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	db, err := postgres.Open(ctx, testenv.PostgresURL(t), postgres.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(db.Close)

	reg := commands.NewRegistry(commands.Deps{
		Services:          cfg.ServiceNames,
		ServiceForChannel: bot.ServiceForChannel(db),
	})
	reg.MustRegister(commands.Command{
		Name:    "explode",
		Summary: "Fail with an internal error (test).",
		Flags:   []commands.Flag{{Name: "password", Help: "a secret"}},
		Run: func(ctx context.Context, c *commands.Call) (chat.Message, error) {
			return chat.Message{}, errors.New("dial tcp 10.0.0.7:5432: connection refused")
		},
	})
	reg.MustRegister(commands.Command{
		Name:    "crash",
		Summary: "Panic (test).",
		Run: func(ctx context.Context, c *commands.Call) (chat.Message, error) {
			var m map[string]int
			m["boom"]++ //nolint:staticcheck // nil map write: a real runtime panic
			return chat.Message{}, nil
		},
	})
	reg.MustRegister(commands.Command{
		Name:    "where",
		Summary: "Say which service this channel belongs to (test).",
		Service: commands.ServiceImplied,
		Run: func(ctx context.Context, c *commands.Call) (chat.Message, error) {
			return chat.Plain("service " + c.Service), nil
		},
	})
	reg.MustRegister(commands.Command{
		Name:    "forbidden",
		Summary: "Refuse (test).",
		Run: func(ctx context.Context, c *commands.Call) (chat.Message, error) {
			return chat.Message{}, fmt.Errorf("policy: %w", commands.Refusef("You may not do that here."))
		},
	})

	h := &harness{t: t, ctx: ctx, cfg: cfg, db: db, out: &syncBuffer{}, logs: logs, reg: prometheus.NewRegistry()}
	h.sh = shell.New(shell.Options{
		Out:  h.out,
		User: "alice",
		Now:  func() time.Time { return triggeredAt },
		// The test's Trigger is what bot/pagerduty does with a webhook: build an
		// IncidentEvent. The PagerDuty id comes from the title so that the same
		// /trigger twice is the same incident.
		Trigger: func(ctx context.Context, service, title string) error {
			svc, ok := cfg.Service(service)
			if !ok {
				svc = &runbook.Service{Name: service, PagerDuty: runbook.PagerDuty{ServiceIDs: []string{"PUNKNOWN"}}}
			}
			return h.bot.HandleIncidentEvent(ctx, bot.IncidentEvent{
				DeliveryID:  "delivery-" + title,
				Kind:        bot.EventTriggered,
				PagerDutyID: pdID(title),
				ServiceID:   svc.PagerDuty.ServiceIDs[0],
				Title:       title,
				Urgency:     "high",
				URL:         "https://example.pagerduty.com/incidents/" + pdID(title),
				At:          triggeredAt,
			})
		},
	})
	h.bot = bot.New(bot.Options{
		Config:   cfg,
		Store:    db,
		Commands: reg,
		Chat:     h.sh,
		Logger:   logger,
		Now:      func() time.Time { return triggeredAt.Add(5 * time.Minute) },
		Metrics:  h.reg,
	})
	h.sh.SetHandler(h.bot)
	return h
}

func pdID(title string) string {
	return "P" + strings.ToUpper(regexp.MustCompile(`[^a-zA-Z0-9]`).ReplaceAllString(title, ""))
}

// do runs input lines through the shell and returns the output they produced.
func (h *harness) do(lines ...string) string {
	h.t.Helper()
	for _, l := range lines {
		if quit := h.sh.Exec(h.ctx, l); quit {
			h.t.Fatalf("%q quit the shell", l)
		}
	}
	all := h.out.String()
	got := all[h.mark:]
	h.mark = len(all)
	return got
}

func mustContain(t *testing.T, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("output lacks %q:\n%s", w, got)
		}
	}
}

// counter returns a counter's value from the bot's registry.
func (h *harness) counter(name string, labels map[string]string) float64 {
	h.t.Helper()
	fams, err := h.reg.Gather()
	if err != nil {
		h.t.Fatalf("gather: %v", err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue next
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

var refRE = regexp.MustCompile(`Something went wrong on drbot's side \(ref ([0-9a-f]{6})\)\. The details are in drbot's log\.`)

func TestCommands(t *testing.T) {
	h := newHarness(t)

	got := h.do("/dr help")
	mustContain(t, got, "[#general 14:00] drbot:", "explode", "Fail with an internal error (test).", "help")
	if h.counter("drbot_commands_total", map[string]string{"command": "help", "outcome": "ok"}) != 1 {
		t.Errorf("help not counted as ok")
	}

	got = h.do("/dr forbidden")
	mustContain(t, got, "(only you) [#general 14:00] drbot: You may not do that here.")
	got = h.do("/dr where")
	mustContain(t, got, "(only you) [#general 14:00] drbot: ")
	got = h.do("/dr frobnicate")
	mustContain(t, got, "(only you)", "frobnicate")
	if v := h.counter("drbot_commands_total", map[string]string{"command": "unknown", "outcome": "refused"}); v != 1 {
		t.Errorf("unknown command counted %v times as refused", v)
	}
	if v := h.counter("drbot_commands_total", map[string]string{"command": "where", "outcome": "refused"}); v != 1 {
		t.Errorf("where refusal counted %v", v)
	}
	if v := h.counter("drbot_commands_total", map[string]string{"command": "forbidden", "outcome": "refused"}); v != 1 {
		t.Errorf("forbidden refusal counted %v", v)
	}

	got = h.do("/dr explode --password=hunter2")
	m := refRE.FindStringSubmatch(got)
	if m == nil {
		t.Fatalf("no reference id in reply:\n%s", got)
	}
	if strings.Contains(got, "10.0.0.7") || strings.Contains(got, "hunter2") {
		t.Fatalf("internal details shown to the user:\n%s", got)
	}
	mustContain(t, got, "(only you)")
	logs := h.logs.String()
	logLine := ""
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, "ref="+m[1]) {
			logLine = l
		}
	}
	if logLine == "" {
		t.Fatalf("ref %s not logged:\n%s", m[1], logs)
	}
	mustContain(t, logLine, "level=ERROR", "command=explode", "user=alice", "connection refused")
	if strings.Contains(logs, "hunter2") {
		t.Fatalf("the command text (with a secret flag) was logged:\n%s", logs)
	}
	if h.counter("drbot_commands_total", map[string]string{"command": "explode", "outcome": "failed"}) != 1 {
		t.Errorf("failure not counted")
	}

	got = h.do("/dr crash")
	if refRE.FindStringSubmatch(got) == nil || strings.Contains(got, "goroutine") || strings.Contains(got, "nil map") {
		t.Fatalf("panic not turned into a reference id:\n%s", got)
	}
	if h.counter("drbot_commands_total", map[string]string{"command": "crash", "outcome": "failed"}) != 1 {
		t.Errorf("panic not counted as failed")
	}
	// The bot still answers after the panic.
	mustContain(t, h.do("/dr help"), "explode")
}

func TestClicks(t *testing.T) {
	h := newHarness(t)
	var clicked chat.Click
	h.bot.OnClick(chat.ActionApprove, func(ctx context.Context, c chat.Click) (chat.Message, error) {
		clicked = c
		return chat.Message{Text: "approved by " + c.User.ID, Ephemeral: true}, nil
	})
	h.bot.OnClick(chat.ActionDeny, func(ctx context.Context, c chat.Click) (chat.Message, error) {
		return chat.Message{}, commands.Refusef("You cannot deny your own request.")
	})
	h.bot.OnClick(chat.ActionCancel, func(ctx context.Context, c chat.Click) (chat.Message, error) {
		panic("cancel handler bug")
	})
	card := chat.Message{Text: "Request 7", Blocks: []chat.Block{
		chat.Text{Text: "Restore lstm_pfd?"},
		chat.Actions{Buttons: []chat.Button{
			{ActionID: chat.ActionApprove, Label: "Approve", Value: "7", Style: chat.StylePrimary},
			{ActionID: chat.ActionDeny, Label: "Deny", Value: "7", Style: chat.StyleDanger},
			{ActionID: chat.ActionCancel, Label: "Cancel", Value: "7"},
			{ActionID: chat.ActionChecklist, Label: "Stale", Value: "x"},
		}},
	}}
	ref, err := h.sh.Post(h.ctx, shell.GeneralID, card)
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, h.do(), "[1] Approve   [2] Deny (!)   [3] Cancel   [4] Stale")

	got := h.do("/as Bob", "/click 1")
	mustContain(t, got, "* you are now bob", "(only you) [#general 14:00] drbot: approved by bob")
	if clicked.ActionID != chat.ActionApprove || clicked.Value != "7" || clicked.User.ID != "bob" || clicked.Message != ref {
		t.Fatalf("click = %+v, card %+v", clicked, ref)
	}
	mustContain(t, h.do("/click 2"), "You cannot deny your own request.")
	got = h.do("/click 3")
	if refRE.FindStringSubmatch(got) == nil || strings.Contains(got, "cancel handler bug") {
		t.Fatalf("click panic:\n%s", got)
	}
	mustContain(t, h.logs.String(), "cancel handler bug", "action=dr_cancel")
	mustContain(t, h.do("/click 4"), "This button is no longer active")
	mustContain(t, h.do("/click 12"), "! there is no button 12: buttons shown so far are numbered 1 to 4")

	for _, c := range []struct {
		action, outcome string
	}{{"dr_approve", "ok"}, {"dr_deny", "refused"}, {"dr_cancel", "failed"}, {"unknown", "refused"}} {
		if v := h.counter("drbot_clicks_total", map[string]string{"action": c.action, "outcome": c.outcome}); v != 1 {
			t.Errorf("drbot_clicks_total{%s,%s} = %v", c.action, c.outcome, v)
		}
	}
}

func TestTriggerOpensIncident(t *testing.T) {
	h := newHarness(t)
	got := h.do("/trigger lstm-pfd Dashboard down")
	mustContain(t, got,
		"* drbot created #incident-lstm-pfd-20261123",
		"* drbot set the topic of #incident-lstm-pfd-20261123: lstm-pfd · RTO deadline 15:00 UTC · Dashboard down",
		"*Incident: Dashboard down*",
		"Service: lstm-pfd",
		"Urgency: high",
		"PagerDuty: https://example.pagerduty.com/incidents/PDASHBOARDDOWN",
		"RTO target: 1h: restore service by 15:00 UTC",
		"RPO target: 4h",
		"* you are now in #incident-lstm-pfd-20261123",
	)

	inc, err := h.db.IncidentByPagerDutyID(h.ctx, "PDASHBOARDDOWN")
	if err != nil {
		t.Fatalf("incident row: %v", err)
	}
	chID, ok := h.sh.ChannelByName("incident-lstm-pfd-20261123")
	if !ok || inc.Channel != chID {
		t.Fatalf("incident channel %q, shell channel %q (%v)", inc.Channel, chID, ok)
	}
	if inc.Service != "lstm-pfd" || inc.Status != store.IncidentTriggered || inc.RTO != time.Hour || inc.RPO != 4*time.Hour || !inc.OpenedAt.Equal(triggeredAt) {
		t.Fatalf("incident = %+v", inc)
	}
	evs, err := h.db.AuditEvents(h.ctx, store.AuditFilter{IncidentID: &inc.ID})
	if err != nil {
		t.Fatal(err)
	}
	kinds := auditKinds(evs)
	if !strings.Contains(kinds, "incident.opened") || !strings.Contains(kinds, "incident.channel_set") {
		t.Fatalf("audit kinds = %s", kinds)
	}

	// Commands in the incident channel know its service.
	mustContain(t, h.do("/dr where"), "[#incident-lstm-pfd-20261123 14:00] drbot: service lstm-pfd")

	// The same event again: one incident, one channel, no second header.
	got = h.do("/join general", "/trigger lstm-pfd Dashboard down")
	if strings.Contains(got, "created #") || strings.Contains(got, "Incident: Dashboard down") {
		t.Fatalf("second delivery created or announced again:\n%s", got)
	}
	if n := len(h.sh.Channels()); n != 2 {
		t.Fatalf("%d channels after a repeated trigger, want 2", n)
	}
	evs2, err := h.db.AuditEvents(h.ctx, store.AuditFilter{IncidentID: &inc.ID})
	if err != nil || len(evs2) != len(evs) {
		t.Fatalf("audit rows %d → %d (%v)", len(evs), len(evs2), err)
	}
	list, err := h.db.ListIncidents(h.ctx, false)
	if err != nil || len(list) != 1 {
		t.Fatalf("incidents = %d (%v)", len(list), err)
	}
	if v := h.counter("drbot_incidents_opened_total", map[string]string{"service": "lstm-pfd"}); v != 1 {
		t.Errorf("drbot_incidents_opened_total = %v", v)
	}

	// A second incident the same day collides on the name: -2.
	mustContain(t, h.do("/trigger lstm-pfd Model not loading"),
		"* drbot created #incident-lstm-pfd-20261123-2", "* you are now in #incident-lstm-pfd-20261123-2")
}

func TestChannelNameCollisionWithExistingChannel(t *testing.T) {
	h := newHarness(t)
	for i, name := range []string{"incident-inflow-20261123", "incident-inflow-20261123-2"} {
		id, err := h.sh.CreateChannel(h.ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		// Owned by older incidents (of another service and day, so the new one
		// still starts at the plain name): an unowned channel the bot created
		// would be adopted as the orphan of a crashed setup.
		older := store.Incident{PagerDutyID: fmt.Sprintf("POLD%d", i), Service: "legacy", Title: "older", Channel: id, OpenedAt: triggeredAt.Add(-72 * time.Hour)}
		if _, _, err := h.db.OpenIncident(h.ctx, older); err != nil {
			t.Fatal(err)
		}
	}
	h.do()
	mustContain(t, h.do("/trigger inflow API 5xx"), "* drbot created #incident-inflow-20261123-3", "RTO target: 4h: restore service by 18:00 UTC")
	inc, err := h.db.IncidentByPagerDutyID(h.ctx, "PAPI5XX")
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := h.sh.ChannelByName("incident-inflow-20261123-3"); inc.Channel != id {
		t.Fatalf("incident channel %q, want %q", inc.Channel, id)
	}
}

func TestUnknownServiceIgnored(t *testing.T) {
	h := newHarness(t)
	got := h.do("/trigger billing Invoices stuck")
	if strings.Contains(got, "created #") || strings.Contains(got, "! trigger failed") {
		t.Fatalf("unknown service handled:\n%s", got)
	}
	list, err := h.db.ListIncidents(h.ctx, false)
	if err != nil || len(list) != 0 {
		t.Fatalf("incidents = %v (%v)", list, err)
	}
	if v := h.counter("drbot_incidents_ignored_total", nil); v != 1 {
		t.Fatalf("drbot_incidents_ignored_total = %v", v)
	}
	mustContain(t, h.logs.String(), "level=WARN", "pagerduty_service=PUNKNOWN")
}

func TestLifecycleEvents(t *testing.T) {
	h := newHarness(t)
	h.do("/trigger lstm-pfd Dashboard down")
	ev := func(kind string, at time.Duration, mod func(*bot.IncidentEvent)) {
		t.Helper()
		e := bot.IncidentEvent{Kind: kind, PagerDutyID: "PDASHBOARDDOWN", ServiceID: "PLSTMPF", Actor: "dba@example.com", At: triggeredAt.Add(at)}
		if mod != nil {
			mod(&e)
		}
		if err := h.bot.HandleIncidentEvent(h.ctx, e); err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
	}
	ev(bot.EventAcknowledged, 3*time.Minute, nil)
	ev(bot.EventAcknowledged, 4*time.Minute, nil) // repeated: no change
	ev(bot.EventAnnotated, 10*time.Minute, func(e *bot.IncidentEvent) { e.Note = "restoring from last night's backup" })
	ev(bot.EventResolved, 75*time.Minute, func(e *bot.IncidentEvent) { e.Raw = []byte(`{"event":{"event_type":"incident.resolved"}}`) })
	got := h.do()
	mustContain(t, got,
		"drbot: Acknowledged in PagerDuty by dba@example.com.",
		"drbot: PagerDuty note by dba@example.com: restoring from last night's backup",
		"drbot: Resolved in PagerDuty by dba@example.com, 1h15m after it opened. RTO of 1h missed by 15m.",
		"* drbot set the topic of #incident-lstm-pfd-20261123: RESOLVED · lstm-pfd · Dashboard down",
	)
	if n := strings.Count(got, "Acknowledged in PagerDuty"); n != 1 {
		t.Fatalf("acknowledged announced %d times", n)
	}
	inc, err := h.db.IncidentByPagerDutyID(h.ctx, "PDASHBOARDDOWN")
	if err != nil {
		t.Fatal(err)
	}
	if inc.Status != store.IncidentResolved || inc.AckedAt == nil || !inc.AckedAt.Equal(triggeredAt.Add(3*time.Minute)) ||
		inc.ResolvedAt == nil || !inc.ResolvedAt.Equal(triggeredAt.Add(75*time.Minute)) {
		t.Fatalf("incident = %+v", inc)
	}
	evs, err := h.db.AuditEvents(h.ctx, store.AuditFilter{IncidentID: &inc.ID})
	if err != nil {
		t.Fatal(err)
	}
	if kinds := auditKinds(evs); kinds != "incident.opened,incident.channel_set,incident.acknowledged,incident.annotated,incident.resolved" {
		t.Fatalf("audit kinds = %s", kinds)
	}
	last := evs[len(evs)-1]
	if last.Actor != "dba@example.com" || !strings.Contains(string(last.Data), "incident.resolved") {
		t.Fatalf("resolved audit row = %+v (%s)", last, last.Data)
	}
	// Events for incidents drbot never opened are ignored without error.
	ev(bot.EventAcknowledged, time.Minute, func(e *bot.IncidentEvent) { e.PagerDutyID = "PNEVERSEEN" })
	if rep, err := h.db.VerifyAudit(h.ctx); err != nil || !rep.OK() {
		t.Fatalf("audit chain: %+v %v", rep, err)
	}
}

func TestSimulateTrigger(t *testing.T) {
	h := newHarness(t)
	if err := h.bot.SimulateTrigger(h.ctx, "nope", "x"); err == nil || !strings.Contains(err.Error(), "lstm-pfd") {
		t.Fatalf("unknown service: %v", err)
	}
	if err := h.bot.SimulateTrigger(h.ctx, "inflow", "API down"); err != nil {
		t.Fatal(err)
	}
	if err := h.bot.SimulateTrigger(h.ctx, "inflow", "API down"); err != nil {
		t.Fatal(err)
	}
	// Now() is 14:05, so the date is still 20261123; each simulation is a new incident.
	mustContain(t, h.do(), "created #incident-inflow-20261123", "created #incident-inflow-20261123-2")
}

// TestShellRun drives the bot through the shell's own input loop, as `drbot shell` does.
func TestShellRun(t *testing.T) {
	h := newHarness(t)
	out := &syncBuffer{}
	sh := shell.New(shell.Options{
		In:      strings.NewReader("/dr help\n/as carol\n/click 5\n/trigger lstm-pfd Dashboard down\n/channels\n/join #general\n/dr where\n"),
		Out:     out,
		User:    "alice",
		Handler: h.bot,
	})
	b := bot.New(bot.Options{Config: h.cfg, Store: h.db, Commands: commands.NewRegistry(commands.Deps{Services: h.cfg.ServiceNames, ServiceForChannel: bot.ServiceForChannel(h.db)}), Chat: sh, Logger: slog.New(slog.DiscardHandler)})
	sh.SetHandler(b)
	sh.SetTrigger(b.SimulateTrigger)
	if err := sh.Run(h.ctx); err != nil {
		t.Fatal(err)
	}
	mustContain(t, out.String(),
		"* you are now carol",
		"! there is no button 5: no buttons have been shown yet",
		"* you are now in #incident-lstm-pfd-",
		"  #general (C0000)\n* #incident-lstm-pfd-",
		"* you are now in #general",
		`unknown command "where"`,
	)
}

func auditKinds(evs []store.AuditEvent) string {
	var k []string
	for _, e := range evs {
		k = append(k, e.Kind)
	}
	return strings.Join(k, ",")
}

func TestConcurrentDeliveries(t *testing.T) {
	h := newHarness(t)
	ev := bot.IncidentEvent{Kind: bot.EventTriggered, PagerDutyID: "PCONCURRENT", ServiceID: "PINFLOW", Title: "API down", At: triggeredAt}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- h.bot.HandleIncidentEvent(h.ctx, ev)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := len(h.sh.Channels()); n != 2 {
		t.Fatalf("%d channels, want general + one incident channel", n)
	}
	if n := strings.Count(h.do(), "*Incident: API down*"); n != 1 {
		t.Fatalf("header posted %d times", n)
	}
}
