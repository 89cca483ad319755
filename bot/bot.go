// Package bot is drbot's chat handler: it dispatches /dr commands to the
// command registry and button clicks to their registered handlers, and turns
// their errors into user-safe replies (a refusal as is, anything else as a
// reference id into the log). Chat platforms plug in through chat.Adapter
// (bot/slack, bot/shell) and hand it commands and clicks as a chat.Handler.
// The incident lifecycle lives in bot/incident.
package bot

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/drbot-dev/drbot/bot/chat"
	"github.com/drbot-dev/drbot/commands"
	"github.com/drbot-dev/drbot/store"
)

// Message and the rest of the chat model (Button, Block, …) are re-exported so
// that most code needs only package bot.
//
//nolint:revive // one comment documents the whole re-exported group
type (
	Message    = chat.Message
	Block      = chat.Block
	Header     = chat.Header
	Text       = chat.Text
	Field      = chat.Field
	Fields     = chat.Fields
	Button     = chat.Button
	Actions    = chat.Actions
	CheckItem  = chat.CheckItem
	Checklist  = chat.Checklist
	Progress   = chat.Progress
	Context    = chat.Context
	MessageRef = chat.MessageRef
	User       = chat.User
	Command    = chat.Command
	Click      = chat.Click
	Handler    = chat.Handler
	Adapter    = chat.Adapter
)

// Plain returns a message of one paragraph.
func Plain(text string) Message { return chat.Plain(text) }

// ClickFunc handles a button press or checklist tick. Its error is rendered
// like a command's: a *commands.Refusal is shown, anything else is logged.
type ClickFunc func(ctx context.Context, c chat.Click) (chat.Message, error)

// Options configures a Bot.
type Options struct {
	Commands *commands.Registry
	// Logger receives internal failures; nil = slog.Default().
	Logger *slog.Logger
	// Metrics registers the bot's collectors; nil = not registered.
	Metrics prometheus.Registerer
}

// Bot is the chat handler: commands and clicks in, user-safe replies out.
type Bot struct {
	commands *commands.Registry
	log      *slog.Logger
	metrics  *metrics

	mu     sync.RWMutex
	clicks map[string]ClickFunc
}

var _ chat.Handler = (*Bot)(nil)

// New returns a Bot. It panics when a required option is missing or the metrics
// cannot be registered: both are wiring bugs.
func New(opts Options) *Bot {
	if opts.Commands == nil {
		panic("bot.New: Commands is required")
	}
	b := &Bot{
		commands: opts.Commands,
		log:      opts.Logger,
		metrics:  newMetrics(),
		clicks:   map[string]ClickFunc{},
	}
	if b.log == nil {
		b.log = slog.Default()
	}
	if opts.Metrics != nil {
		if err := b.metrics.register(opts.Metrics); err != nil {
			panic(fmt.Sprintf("bot.New: %v", err))
		}
	}
	return b
}

// OnClick registers the handler for buttons with actionID (one of the chat.Action…
// constants). It panics when actionID already has a handler.
func (b *Bot) OnClick(actionID string, fn ClickFunc) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, dup := b.clicks[actionID]; dup {
		panic(fmt.Sprintf("bot: click handler for %q registered twice", actionID))
	}
	b.clicks[actionID] = fn
}

// Outcomes of commands and clicks, as metric labels.
const (
	outcomeOK      = "ok"
	outcomeRefused = "refused"
	outcomeFailed  = "failed"
)

// HandleCommand runs a /dr command and returns the user's reply. It never
// panics and never shows internal details: a refusal is shown as is, anything
// else as a reference id that points into the log.
func (b *Bot) HandleCommand(ctx context.Context, c chat.Command) (reply chat.Message) {
	name := b.commandLabel(c.Text)
	outcome := outcomeOK
	defer func() {
		if p := recover(); p != nil {
			reply = b.failure(ctx, "command", fmt.Errorf("panic: %v", p),
				"command", name, "user", c.User.ID, "channel", c.Channel, "stack", string(debug.Stack()))
			outcome = outcomeFailed
		}
		b.metrics.commands.WithLabelValues(name, outcome).Inc()
	}()
	msg, err := b.commands.Dispatch(ctx, c)
	if err != nil {
		if r, ok := commands.AsRefusal(err); ok {
			outcome = outcomeRefused
			return refusal(r)
		}
		outcome = outcomeFailed
		return b.failure(ctx, "command", err, "command", name, "user", c.User.ID, "channel", c.Channel)
	}
	return msg
}

// commandLabel is the registered command name in text, for logs and metrics;
// never user text, which may hold secrets and would explode label cardinality.
func (b *Bot) commandLabel(text string) string {
	words := strings.Fields(text)
	if len(words) == 0 {
		return "help"
	}
	name := strings.ToLower(words[0])
	if name == "--help" || name == "-h" {
		return "help"
	}
	if b.commands.Lookup(name) != nil {
		return name
	}
	return "unknown"
}

// HandleClick runs the handler registered for the click's action id.
func (b *Bot) HandleClick(ctx context.Context, c chat.Click) (reply chat.Message) {
	b.mu.RLock()
	fn, ok := b.clicks[c.ActionID]
	b.mu.RUnlock()
	if !ok {
		b.metrics.clicks.WithLabelValues("unknown", outcomeRefused).Inc()
		b.log.InfoContext(ctx, "click on an inactive button", "action", c.ActionID, "user", c.User.ID, "channel", c.Channel)
		return chat.Message{
			Text:      "This button is no longer active. Run the command again to get a fresh one (/dr help lists commands).",
			Blocks:    []chat.Block{chat.Text{Text: "This button is no longer active. Run the command again to get a fresh one (/dr help lists commands)."}},
			Ephemeral: true,
		}
	}
	outcome := outcomeOK
	defer func() {
		if p := recover(); p != nil {
			reply = b.failure(ctx, "click", fmt.Errorf("panic: %v", p),
				"action", c.ActionID, "user", c.User.ID, "channel", c.Channel, "stack", string(debug.Stack()))
			outcome = outcomeFailed
		}
		b.metrics.clicks.WithLabelValues(c.ActionID, outcome).Inc()
	}()
	msg, err := fn(ctx, c)
	if err != nil {
		if r, ok := commands.AsRefusal(err); ok {
			outcome = outcomeRefused
			return refusal(r)
		}
		outcome = outcomeFailed
		return b.failure(ctx, "click", err, "action", c.ActionID, "user", c.User.ID, "channel", c.Channel)
	}
	return msg
}

func refusal(r *commands.Refusal) chat.Message {
	return chat.Message{Text: r.Msg, Blocks: []chat.Block{chat.Text{Text: r.Msg}}, Ephemeral: true}
}

// failure logs an internal error under a fresh reference id and returns the
// user-safe reply that quotes it.
func (b *Bot) failure(ctx context.Context, what string, err error, attrs ...any) chat.Message {
	ref := store.NewRef()
	b.log.ErrorContext(ctx, what+" failed", append([]any{"ref", ref, "err", err}, attrs...)...)
	text := fmt.Sprintf("Something went wrong on drbot's side (ref %s). The details are in drbot's log.", ref)
	return chat.Message{Text: text, Blocks: []chat.Block{chat.Text{Text: text}}, Ephemeral: true}
}
