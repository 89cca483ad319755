package slack

// The one inbound code path shared by HTTP mode and Socket Mode: Slack payload →
// chat.Command / chat.Click, deduplication, a background handler run with a
// detached context, and delivery of the handler's reply.

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"

	"github.com/drbot-dev/drbot/bot/chat"
)

const (
	defaultHandlerTimeout = 5 * time.Minute
	dedupeSize            = 4096
)

// dedupe is a bounded LRU set of delivery keys (event_id, trigger_id).
type dedupe struct {
	mu    sync.Mutex
	max   int
	order *list.List
	items map[string]*list.Element
}

func newDedupe(n int) *dedupe {
	return &dedupe{max: n, order: list.New(), items: map[string]*list.Element{}}
}

// firstTime records kind:id and reports whether it was not seen before. An
// empty id cannot be deduplicated and always counts as new.
func (d *dedupe) firstTime(kind, id string) bool {
	if id == "" {
		return true
	}
	key := kind + ":" + id
	d.mu.Lock()
	defer d.mu.Unlock()
	if e, ok := d.items[key]; ok {
		d.order.MoveToFront(e)
		return false
	}
	d.items[key] = d.order.PushFront(key)
	for d.order.Len() > d.max {
		last := d.order.Back()
		d.order.Remove(last)
		delete(d.items, last.Value.(string))
	}
	return true
}

// dispatcher runs the chat.Handler for inbound deliveries.
type dispatcher struct {
	handler chat.Handler
	client  *Client
	log     *slog.Logger
	now     func() time.Time
	timeout time.Duration
	seen    *dedupe
	wg      sync.WaitGroup
	deliver func(ctx context.Context, channel, user string, m chat.Message) error
}

func newDispatcher(opts Options) (*dispatcher, error) {
	if opts.Handler == nil {
		return nil, errors.New("slack: no chat handler configured")
	}
	if opts.Client == nil {
		return nil, errors.New("slack: no Web API client configured for replies")
	}
	d := &dispatcher{
		handler: opts.Handler,
		client:  opts.Client,
		log:     opts.logger(),
		now:     opts.Now,
		timeout: opts.HandlerTimeout,
		seen:    newDedupe(dedupeSize),
		deliver: opts.Deliver,
	}
	if d.now == nil {
		d.now = time.Now
	}
	if d.timeout <= 0 {
		d.timeout = defaultHandlerTimeout
	}
	return d, nil
}

// wait blocks until background handler runs finish (for shutdown and tests).
func (d *dispatcher) wait() { d.wg.Wait() }

// textLen is what logs say about user text: its length, never its content.
func textLen(s string) slog.Attr { return slog.Int("text_len", len(s)) }

// commandFromSlash converts a slash command. Identity comes only from the
// (signed or Socket Mode) payload's user id.
func (d *dispatcher) commandFromSlash(sc slack.SlashCommand) chat.Command {
	return chat.Command{
		User:       chat.User{ID: sc.UserID, Name: sc.UserName},
		Channel:    sc.ChannelID,
		Text:       strings.TrimSpace(sc.Text),
		ReceivedAt: d.now(),
	}
}

// slash accepts a slash command; it returns false for a duplicate delivery.
func (d *dispatcher) slash(sc slack.SlashCommand) bool {
	if !d.seen.firstTime("trigger", sc.TriggerID) {
		d.log.Info("slack: duplicate slash command ignored", "trigger_id", sc.TriggerID)
		return false
	}
	cmd := d.commandFromSlash(sc)
	d.log.Info("slack: command", "user", cmd.User.ID, "channel", cmd.Channel, textLen(cmd.Text))
	d.run(cmd.Channel, cmd.User.ID, func(ctx context.Context) chat.Message { return d.handler.HandleCommand(ctx, cmd) })
	return true
}

// clicksFromInteraction converts a block_actions payload: a button is one click;
// a checkboxes change is one click per item whose state changed, with Value
// encoded by CheckboxValue.
func clicksFromInteraction(cb slack.InteractionCallback) []chat.Click {
	if cb.Type != slack.InteractionTypeBlockActions {
		return nil
	}
	channel := cb.Container.ChannelID
	if channel == "" {
		channel = cb.Channel.ID
	}
	ts := cb.Container.MessageTs
	if ts == "" {
		ts = cb.Message.Timestamp
	}
	base := chat.Click{
		User:    chat.User{ID: cb.User.ID, Name: cb.User.Name},
		Channel: channel,
		Message: chat.MessageRef{Channel: channel, TS: ts},
	}
	var out []chat.Click
	for _, a := range cb.ActionCallback.BlockActions {
		if a == nil {
			continue
		}
		switch a.Type {
		case slack.ActionType(slack.METButton):
			c := base
			c.ActionID, c.Value = a.ActionID, a.Value
			out = append(out, c)
		case slack.ActionType(slack.METCheckboxGroups):
			before := initialOptions(cb.Message.Blocks, a.BlockID, a.ActionID)
			var after []string
			for _, o := range a.SelectedOptions {
				after = append(after, o.Value)
			}
			for _, v := range after {
				if !slices.Contains(before, v) {
					c := base
					c.ActionID, c.Value = a.ActionID, CheckboxValue(v, true)
					out = append(out, c)
				}
			}
			for _, v := range before {
				if !slices.Contains(after, v) {
					c := base
					c.ActionID, c.Value = a.ActionID, CheckboxValue(v, false)
					out = append(out, c)
				}
			}
		}
	}
	return out
}

// initialOptions returns the values ticked in the posted message's checkbox
// element (blockID, actionID): the state before the user's change.
func initialOptions(blocks slack.Blocks, blockID, actionID string) []string {
	for _, b := range blocks.BlockSet {
		ab, ok := b.(*slack.ActionBlock)
		if !ok || ab.Elements == nil || (blockID != "" && ab.BlockID != blockID) {
			continue
		}
		for _, e := range ab.Elements.ElementSet {
			cg, ok := e.(*slack.CheckboxGroupsBlockElement)
			if !ok || cg.ActionID != actionID {
				continue
			}
			var out []string
			for _, o := range cg.InitialOptions {
				out = append(out, o.Value)
			}
			return out
		}
	}
	return nil
}

// interaction accepts an interaction payload; it returns false for a duplicate.
func (d *dispatcher) interaction(cb slack.InteractionCallback) bool {
	key := cb.TriggerID
	if key == "" && len(cb.ActionCallback.BlockActions) > 0 && cb.ActionCallback.BlockActions[0] != nil {
		key = cb.ActionCallback.BlockActions[0].ActionTs
	}
	if !d.seen.firstTime("trigger", key) {
		d.log.Info("slack: duplicate interaction ignored", "trigger_id", cb.TriggerID)
		return false
	}
	clicks := clicksFromInteraction(cb)
	if len(clicks) == 0 {
		d.log.Debug("slack: interaction without actions for drbot", "type", cb.Type)
		return true
	}
	for _, c := range clicks {
		d.log.Info("slack: click", "user", c.User.ID, "channel", c.Channel, "action_id", c.ActionID)
	}
	d.run(clicks[0].Channel, clicks[0].User.ID, func(ctx context.Context) chat.Message {
		// Clicks of one payload run in order; the last non-empty reply wins.
		var reply chat.Message
		for _, c := range clicks {
			if r := d.handler.HandleClick(ctx, c); !isZero(r) {
				reply = r
			}
		}
		return reply
	})
	return true
}

var leadingMention = regexp.MustCompile(`^\s*<@[A-Z0-9]+(\|[^>]*)?>\s*`)

// event accepts an Events API callback; app_mention becomes a command with the
// mention stripped ("@drbot status" ≡ "/dr status"). Other events are ignored.
func (d *dispatcher) event(ev slackevents.EventsAPIEvent) bool {
	cb, ok := ev.Data.(*slackevents.EventsAPICallbackEvent)
	if !ok {
		return false
	}
	if !d.seen.firstTime("event", cb.EventID) {
		d.log.Info("slack: duplicate event ignored", "event_id", cb.EventID)
		return false
	}
	am, ok := ev.InnerEvent.Data.(*slackevents.AppMentionEvent)
	if !ok || am.User == "" {
		return true
	}
	cmd := chat.Command{
		User:       chat.User{ID: am.User},
		Channel:    am.Channel,
		Text:       strings.TrimSpace(leadingMention.ReplaceAllString(am.Text, "")),
		ReceivedAt: d.now(),
	}
	d.log.Info("slack: mention command", "user", cmd.User.ID, "channel", cmd.Channel, "event_id", cb.EventID, textLen(cmd.Text))
	d.run(cmd.Channel, cmd.User.ID, func(ctx context.Context) chat.Message { return d.handler.HandleCommand(ctx, cmd) })
	return true
}

func isZero(m chat.Message) bool { return m.Text == "" && len(m.Blocks) == 0 }

// run calls fn in the background with a detached, bounded context and delivers
// its reply: ephemeral replies to user, others to the channel. A panic in the
// handler is logged and answered with a generic apology, never a stack trace.
func (d *dispatcher) run(channel, user string, fn func(ctx context.Context) chat.Message) {
	d.wg.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), d.timeout)
		defer cancel()
		reply := func() (m chat.Message) {
			defer func() {
				if r := recover(); r != nil {
					d.log.Error("slack: handler panicked", "user", user, "channel", channel, "panic", fmt.Sprint(r))
					m = chat.Message{Text: "Sorry, something went wrong while handling that. The error has been logged.", Ephemeral: true}
				}
			}()
			return fn(ctx)
		}()
		if isZero(reply) {
			return
		}
		if err := d.reply(ctx, channel, user, reply); err != nil {
			d.log.Error("slack: deliver reply", "user", user, "channel", channel, "err", err)
		}
	})
}

func (d *dispatcher) reply(ctx context.Context, channel, user string, m chat.Message) error {
	if d.deliver != nil {
		if !m.Ephemeral {
			user = ""
		}
		return d.deliver(ctx, channel, user, m)
	}
	if m.Ephemeral {
		return d.client.PostEphemeral(ctx, channel, user, m)
	}
	_, err := d.client.Post(ctx, channel, m)
	return err
}
