package main

import (
	"context"
	"log/slog"
	"sync/atomic"

	"github.com/drbot-dev/drbot/bot/chat"
	"github.com/drbot-dev/drbot/commands"
)

// requestPoster is the poster of the request cards: after every card post or
// update (a request created, decided, started a step, finished) it asks the
// incident lifecycle to refresh the header of the incident whose channel the
// card is in, so the header's "Requests" line follows the cards. Refreshes
// are debounced and coalesced by the lifecycle.
type requestPoster struct {
	commands.Poster
	log     *slog.Logger
	changed atomic.Pointer[func(ctx context.Context, channel string) error]
}

// onChange sets what is called after a card changed in channel.
func (p *requestPoster) onChange(fn func(ctx context.Context, channel string) error) {
	p.changed.Store(&fn)
}

func (p *requestPoster) Post(ctx context.Context, channel string, m chat.Message) (chat.MessageRef, error) {
	ref, err := p.Poster.Post(ctx, channel, m)
	if err == nil {
		p.notify(ctx, channel)
	}
	return ref, err
}

func (p *requestPoster) Update(ctx context.Context, ref chat.MessageRef, m chat.Message) error {
	err := p.Poster.Update(ctx, ref, m)
	if err == nil {
		p.notify(ctx, ref.Channel)
	}
	return err
}

func (p *requestPoster) notify(ctx context.Context, channel string) {
	fn := p.changed.Load()
	if fn == nil {
		return
	}
	if err := (*fn)(context.WithoutCancel(ctx), channel); err != nil {
		// The periodic refresh catches up within a minute.
		p.log.WarnContext(ctx, "could not queue the incident header refresh after a request change", "channel", channel, "err", err)
	}
}
