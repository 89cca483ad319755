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

// triggeredAt is the shell's clock in these tests.
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
		ServiceForChannel: commands.ChannelServices(db),
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
	})
	h.bot = bot.New(bot.Options{
		Commands: reg,
		Logger:   logger,
		Metrics:  h.reg,
	})
	h.sh.SetHandler(h.bot)
	return h
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
	return testenv.Counter(h.t, h.reg, name, labels)
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

// TestShellRun drives the bot through the shell's own input loop, as `drbot shell` does.
func TestShellRun(t *testing.T) {
	h := newHarness(t)
	out := &syncBuffer{}
	sh := shell.New(shell.Options{
		In:      strings.NewReader("/dr help\n/as carol\n/click 5\n/channels\n/dr where\n"),
		Out:     out,
		User:    "alice",
		Handler: h.bot,
	})
	b := bot.New(bot.Options{Commands: commands.NewRegistry(commands.Deps{Services: h.cfg.ServiceNames, ServiceForChannel: commands.ChannelServices(h.db)}), Logger: slog.New(slog.DiscardHandler)})
	sh.SetHandler(b)
	if err := sh.Run(h.ctx); err != nil {
		t.Fatal(err)
	}
	mustContain(t, out.String(),
		"* you are now carol",
		"! there is no button 5: no buttons have been shown yet",
		"* #general (C0000)",
		`unknown command "where"`,
	)
}
