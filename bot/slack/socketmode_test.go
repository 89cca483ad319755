package slack

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/bot/chat"
	"github.com/drbot-dev/drbot/internal/fakeslack"
)

func TestSocketModeEndToEnd(t *testing.T) {
	fs, c := newTestClient(t)
	user := fs.AddUser(fakeslack.User{Name: "alice", Email: "alice@example.com"})
	ch := fs.AddChannel("incident-inflow-20261101", fakeslack.BotUserID, user)
	rec := newRecorder(func(v any) chat.Message {
		if _, ok := v.(chat.Command); ok {
			return chat.Plain("on it")
		}
		return chat.Message{}
	})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- RunSocketMode(ctx, Options{AppToken: fs.AppToken(), Client: c, Handler: rec, Logger: quietLogger()})
	}()
	if !fs.WaitSocketConnected(10 * time.Second) {
		t.Fatal("socket mode client did not connect")
	}

	// Slash command: acked (small ack), handler called, reply posted.
	env, err := fs.SendSlashCommand(fakeslack.SlashCommand{Text: "failover inflow", UserID: user, UserName: "alice", ChannelID: ch})
	if err != nil {
		t.Fatal(err)
	}
	ack, ok := fs.WaitAck(env, 5*time.Second)
	if !ok {
		t.Fatal("slash command not acked")
	}
	if ack.Size > 200 {
		t.Errorf("ack is %d bytes; keep acks small", ack.Size)
	}
	rec.waitN(t, 1)
	if cmd := rec.Commands()[0]; cmd.User.ID != user || cmd.Channel != ch || cmd.Text != "failover inflow" {
		t.Fatalf("command = %+v", cmd)
	}
	if !fs.WaitFor(5*time.Second, func() bool { return len(fs.Messages(ch)) == 1 }) {
		t.Fatal("reply not posted")
	}

	// Button click through an interactive envelope.
	ref, err := c.Post(context.Background(), ch, approvalMessage())
	if err != nil {
		t.Fatal(err)
	}
	payload, err := fs.ClickButton(ch, ref.TS, user, chat.ActionApprove, "req-42")
	if err != nil {
		t.Fatal(err)
	}
	env, err = fs.SendInteraction(payload)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := fs.WaitAck(env, 5*time.Second); !ok {
		t.Fatal("interaction not acked")
	}
	rec.waitN(t, 2)
	if cl := rec.Clicks()[0]; cl.ActionID != chat.ActionApprove || cl.Value != "req-42" || cl.User.ID != user || cl.Message != ref {
		t.Fatalf("click = %+v", cl)
	}

	// Events API mention, delivered twice (a retry): handled once.
	ev, _ := fakeslack.EventCallback("EvSock1", map[string]any{
		"type": "app_mention", "user": user, "text": "<@" + fakeslack.BotUserID + "> status", "channel": ch, "ts": "2.000001", "event_ts": "2.000001",
	})
	e1, _ := fs.SendEventsAPI(ev, 0)
	e2, _ := fs.SendEventsAPI(ev, 1)
	for _, id := range []string{e1, e2} {
		if _, ok := fs.WaitAck(id, 5*time.Second); !ok {
			t.Fatalf("event %s not acked", id)
		}
	}
	rec.waitN(t, 3)

	// An unknown slash command is still acked, never handled.
	env, _ = fs.SendSlashCommand(fakeslack.SlashCommand{Command: "/other", Text: "x", UserID: user, ChannelID: ch})
	if _, ok := fs.WaitAck(env, 5*time.Second); !ok {
		t.Fatal("unknown command not acked")
	}

	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("RunSocketMode after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("RunSocketMode did not stop")
	}
	cmds := rec.Commands()
	if len(cmds) != 2 || cmds[1].Text != "status" {
		t.Fatalf("commands = %+v", cmds)
	}
	for _, a := range fs.Acks() {
		if a.Payload != nil && string(a.Payload) != "null" {
			var v any
			_ = json.Unmarshal(a.Payload, &v)
			t.Errorf("ack carries a payload: %s", a.Payload)
		}
	}
}

func TestSocketModeBadAppToken(t *testing.T) {
	fs, c := newTestClient(t)
	rec := newRecorder(nil)
	if err := RunSocketMode(context.Background(), Options{AppToken: "xoxb-not-an-app-token", Client: c, Handler: rec}); err == nil || !strings.Contains(err.Error(), "SLACK_APP_TOKEN") {
		t.Fatalf("non-xapp token: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := RunSocketMode(ctx, Options{AppToken: "xapp-1-wrong", Client: c, Handler: rec, Logger: quietLogger()})
	if err == nil || !strings.Contains(err.Error(), "invalid_auth") || strings.Contains(err.Error(), "xapp-1-wrong") {
		t.Fatalf("wrong app token: %v", err)
	}
	_ = fs
}
