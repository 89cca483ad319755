package slack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"
)

// slogAdapter lets slack-go's internal logger write to slog at debug level.
type slogAdapter struct{ log *slog.Logger }

func (a slogAdapter) Output(_ int, s string) error {
	a.log.Debug("slack-go: " + strings.TrimSpace(s))
	return nil
}

// RunSocketMode connects to Slack over Socket Mode and serves commands,
// interactions and events until ctx ends (then it returns nil) or the connection
// fails for good (invalid app token, …). Every envelope is acked at once with an
// empty payload, then dispatched through the same code path as HTTP mode.
// It uses opts.AppToken, Client, Handler, Logger, HandlerTimeout and Command.
func RunSocketMode(ctx context.Context, opts Options) error {
	if !strings.HasPrefix(opts.AppToken, "xapp-") {
		return errors.New("slack: Socket Mode needs an app-level token (xapp-…) in SLACK_APP_TOKEN")
	}
	d, err := newDispatcher(opts)
	if err != nil {
		return err
	}
	if opts.Command == "" {
		opts.Command = "/dr"
	}
	api := opts.Client.newAPI(slack.OptionAppLevelToken(opts.AppToken))
	sm := socketmode.New(api, socketmode.OptionLog(slogAdapter{d.log}))
	h := socketmode.NewSocketmodeHandler(sm)

	ack := func(evt *socketmode.Event, c *socketmode.Client) bool {
		if evt.Request == nil || evt.Request.EnvelopeID == "" {
			return false
		}
		if err := c.Ack(*evt.Request); err != nil {
			d.log.Error("slack: socket mode ack", "envelope_id", evt.Request.EnvelopeID, "err", err)
		}
		return true
	}

	h.HandleSlashCommand(opts.Command, func(evt *socketmode.Event, c *socketmode.Client) {
		ack(evt, c)
		if sc, ok := evt.Data.(slack.SlashCommand); ok {
			d.slash(sc)
		}
	})
	h.HandleInteraction(slack.InteractionTypeBlockActions, func(evt *socketmode.Event, c *socketmode.Client) {
		ack(evt, c)
		if cb, ok := evt.Data.(slack.InteractionCallback); ok {
			d.interaction(cb)
		}
	})
	h.Handle(socketmode.EventTypeEventsAPI, func(evt *socketmode.Event, c *socketmode.Client) {
		ack(evt, c)
		if ev, ok := evt.Data.(slackevents.EventsAPIEvent); ok {
			d.event(ev)
		}
	})
	h.Handle(socketmode.EventTypeConnected, func(*socketmode.Event, *socketmode.Client) {
		d.log.Info("slack: socket mode connected")
	})
	h.Handle(socketmode.EventTypeConnectionError, func(evt *socketmode.Event, _ *socketmode.Client) {
		if ce, ok := evt.Data.(*slack.ConnectionErrorEvent); ok {
			d.log.Warn("slack: socket mode connection error; retrying", "attempt", ce.Attempt, "backoff", ce.Backoff, "err", ce.Error())
		}
	})
	h.Handle(socketmode.EventTypeHello, func(*socketmode.Event, *socketmode.Client) {})
	h.Handle(socketmode.EventTypeConnecting, func(*socketmode.Event, *socketmode.Client) {})
	h.Handle(socketmode.EventTypeDisconnect, func(*socketmode.Event, *socketmode.Client) {})
	h.Handle(socketmode.EventTypeIncomingError, func(evt *socketmode.Event, _ *socketmode.Client) {
		d.log.Warn("slack: socket mode read error", "err", fmt.Sprint(evt.Data))
	})
	// Anything else that arrives in an envelope (other commands, view
	// submissions, …) is acked so that Slack does not redeliver it.
	h.HandleDefault(func(evt *socketmode.Event, c *socketmode.Client) {
		if ack(evt, c) {
			d.log.Debug("slack: socket mode envelope ignored", "type", evt.Type)
		}
	})

	err = h.RunEventLoopContext(ctx)
	d.wait()
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return nil
	}
	return &apiError{op: "socket mode", err: err, token: []string{opts.Client.opts.Token, opts.AppToken}}
}
