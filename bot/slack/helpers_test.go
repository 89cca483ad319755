package slack

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/drbot-dev/drbot/bot/chat"
	"github.com/drbot-dev/drbot/internal/fakeslack"
)

// recorder is a chat.Handler that records what it receives and answers with reply.
type recorder struct {
	mu       sync.Mutex
	commands []chat.Command
	clicks   []chat.Click
	changed  chan struct{}
	reply    func(any) chat.Message
}

func newRecorder(reply func(any) chat.Message) *recorder {
	if reply == nil {
		reply = func(any) chat.Message { return chat.Message{} }
	}
	return &recorder{changed: make(chan struct{}, 1), reply: reply}
}

func (r *recorder) HandleCommand(_ context.Context, c chat.Command) chat.Message {
	r.mu.Lock()
	r.commands = append(r.commands, c)
	r.mu.Unlock()
	r.notify()
	return r.reply(c)
}

func (r *recorder) HandleClick(_ context.Context, c chat.Click) chat.Message {
	r.mu.Lock()
	r.clicks = append(r.clicks, c)
	r.mu.Unlock()
	r.notify()
	return r.reply(c)
}

func (r *recorder) notify() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func (r *recorder) Commands() []chat.Command {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]chat.Command(nil), r.commands...)
}

func (r *recorder) Clicks() []chat.Click {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]chat.Click(nil), r.clicks...)
}

// waitN waits until n calls (commands + clicks) were recorded.
func (r *recorder) waitN(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		r.mu.Lock()
		got := len(r.commands) + len(r.clicks)
		r.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-r.changed:
		case <-deadline:
			t.Fatalf("handler called %d times, want %d", got, n)
		}
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newTestClient starts a fake Slack and a client for it without pacing.
func newTestClient(t testing.TB) (*fakeslack.Server, *Client) {
	t.Helper()
	fs := fakeslack.New()
	t.Cleanup(fs.Close)
	c, err := NewClient(Options{Token: fs.BotToken(), APIURL: fs.APIURL(), Logger: quietLogger(), ChannelLimit: rate.Inf})
	if err != nil {
		t.Fatal(err)
	}
	return fs, c
}

// blocksOf decodes stored blocks into generic JSON.
func blocksOf(t *testing.T, raw json.RawMessage) []map[string]any {
	t.Helper()
	var out []map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("stored blocks are not JSON: %v\n%s", err, raw)
	}
	return out
}
