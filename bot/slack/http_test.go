package slack

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/bot/chat"
	"github.com/drbot-dev/drbot/internal/fakeslack"
)

const testSecret = "8f742231b10e8888abcd99yyyzzz85a5"

type httpEnv struct {
	fs   *fakeslack.Server
	c    *Client
	rec  *recorder
	h    *HTTPHandlers
	srv  *httptest.Server
	chID string
	user string
}

func newHTTPEnv(t testing.TB, reply func(any) chat.Message) *httpEnv {
	t.Helper()
	fs, c := newTestClient(t)
	rec := newRecorder(reply)
	h, err := NewHTTPHandlers(Options{SigningSecret: testSecret, Handler: rec, Client: c, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/slack/commands", h.Commands())
	mux.Handle("/slack/interactions", h.Interactions())
	mux.Handle("/slack/events", h.Events())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	t.Cleanup(h.Wait)
	user := fs.AddUser(fakeslack.User{Name: "alice", Email: "alice@example.com"})
	ch := fs.AddChannel("incident-inflow-20261101", fakeslack.BotUserID, user)
	return &httpEnv{fs: fs, c: c, rec: rec, h: h, srv: srv, chID: ch, user: user}
}

func (e *httpEnv) post(t testing.TB, path, secret string, ts time.Time, body []byte, hdr map[string]string) *http.Response {
	t.Helper()
	req, err := fakeslack.NewSignedRequest(context.Background(), e.srv.URL+path, secret, ts, "application/x-www-form-urlencoded", body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func TestSlashCommandSignedRunsHandlerAndReplies(t *testing.T) {
	e := newHTTPEnv(t, func(any) chat.Message { return chat.Plain("restore planned") })
	body := []byte(fakeslack.SlashCommand{Text: "  restore-db lstm-pfd --backup x ", UserID: e.user, UserName: "alice", ChannelID: e.chID}.Form().Encode())
	start := time.Now()
	resp := e.post(t, "/slack/commands", testSecret, time.Now(), body, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("ack took %v", d)
	}
	e.rec.waitN(t, 1)
	cmd := e.rec.Commands()[0]
	if cmd.User.ID != e.user || cmd.Channel != e.chID || cmd.Text != "restore-db lstm-pfd --backup x" || cmd.ReceivedAt.IsZero() {
		t.Fatalf("command = %+v", cmd)
	}
	if !e.fs.WaitFor(5*time.Second, func() bool { return len(e.fs.Messages(e.chID)) == 1 }) {
		t.Fatal("reply not posted")
	}
	if m := e.fs.Messages(e.chID)[0]; m.Text != "restore planned" {
		t.Fatalf("reply = %+v", m)
	}
}

func TestSlashCommandEphemeralReply(t *testing.T) {
	e := newHTTPEnv(t, func(any) chat.Message {
		return chat.Message{Text: "only you", Ephemeral: true, Blocks: []chat.Block{chat.Text{Text: "only you"}}}
	})
	body := []byte(fakeslack.SlashCommand{Text: "help", UserID: e.user, ChannelID: e.chID}.Form().Encode())
	e.post(t, "/slack/commands", testSecret, time.Now(), body, nil)
	if !e.fs.WaitFor(5*time.Second, func() bool { return len(e.fs.Ephemerals()) == 1 }) {
		t.Fatal("ephemeral reply not posted")
	}
	eph := e.fs.Ephemerals()[0]
	if eph.User != e.user || eph.Channel != e.chID || eph.Text != "only you" || len(e.fs.Messages(e.chID)) != 0 {
		t.Fatalf("ephemeral = %+v", eph)
	}
}

func TestBadSignaturesAreRejected(t *testing.T) {
	e := newHTTPEnv(t, nil)
	body := []byte(fakeslack.SlashCommand{Text: "failover", UserID: e.user, ChannelID: e.chID}.Form().Encode())
	cases := map[string]func() *http.Response{
		"forged": func() *http.Response { return e.post(t, "/slack/commands", "not-the-secret", time.Now(), body, nil) },
		"expired": func() *http.Response {
			return e.post(t, "/slack/commands", testSecret, time.Now().Add(-6*time.Minute), body, nil)
		},
		"future": func() *http.Response {
			return e.post(t, "/slack/commands", testSecret, time.Now().Add(6*time.Minute), body, nil)
		},
		"missing": func() *http.Response {
			resp, err := http.Post(e.srv.URL+"/slack/commands", "application/x-www-form-urlencoded", bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp
		},
		"tampered body": func() *http.Response {
			req, _ := fakeslack.NewSignedRequest(context.Background(), e.srv.URL+"/slack/interactions", testSecret, time.Now(), "application/x-www-form-urlencoded", body)
			req.Body = io.NopCloser(strings.NewReader(strings.Replace(string(body), "failover", "restore", 1)))
			req.ContentLength = -1
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp
		},
		"events forged": func() *http.Response {
			return e.post(t, "/slack/events", "x", time.Now(), []byte(`{"type":"url_verification","challenge":"c"}`), nil)
		},
	}
	for name, do := range cases {
		if resp := do(); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: status %d, want 401", name, resp.StatusCode)
		}
	}
	e.h.Wait()
	if n := len(e.rec.Commands()) + len(e.rec.Clicks()); n != 0 {
		t.Fatalf("handler called %d times for rejected requests", n)
	}
	// Oversized bodies are refused before signature work is trusted.
	big := bytes.Repeat([]byte("a"), maxBody+10)
	if resp := e.post(t, "/slack/commands", testSecret, time.Now(), big, nil); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("big body: %d", resp.StatusCode)
	}
}

func TestRetriesAreProcessedOnce(t *testing.T) {
	e := newHTTPEnv(t, nil)
	body := []byte(fakeslack.SlashCommand{Text: "status", UserID: e.user, ChannelID: e.chID, TriggerID: "trig-1"}.Form().Encode())
	e.post(t, "/slack/commands", testSecret, time.Now(), body, nil)
	resp := e.post(t, "/slack/commands", testSecret, time.Now(), body, map[string]string{"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("retry status %d", resp.StatusCode)
	}
	ev, err := fakeslack.EventCallback("Ev001", map[string]any{
		"type": "app_mention", "user": e.user, "text": "<@" + fakeslack.BotUserID + "> status lstm-pfd", "channel": e.chID, "ts": "1.000001", "event_ts": "1.000001",
	})
	if err != nil {
		t.Fatal(err)
	}
	e.post(t, "/slack/events", testSecret, time.Now(), ev, nil)
	e.post(t, "/slack/events", testSecret, time.Now(), ev, map[string]string{"X-Slack-Retry-Num": "1"})
	e.post(t, "/slack/events", testSecret, time.Now(), ev, map[string]string{"X-Slack-Retry-Num": "2"})
	e.h.Wait()
	cmds := e.rec.Commands()
	if len(cmds) != 2 {
		t.Fatalf("handler ran %d times, want 2 (one command, one mention): %+v", len(cmds), cmds)
	}
	var texts []string
	for _, c := range cmds {
		texts = append(texts, c.Text)
	}
	if !strings.Contains(strings.Join(texts, "|"), "status lstm-pfd") {
		t.Fatalf("mention not stripped: %q", texts)
	}
}

func TestURLVerification(t *testing.T) {
	e := newHTTPEnv(t, nil)
	body := []byte(`{"token":"t","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}`)
	req, _ := fakeslack.NewSignedRequest(context.Background(), e.srv.URL+"/slack/events", testSecret, time.Now(), "application/json", body)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(got) != "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" {
		t.Fatalf("challenge answer %d %q", resp.StatusCode, got)
	}
}

func TestInteractionButtonClick(t *testing.T) {
	e := newHTTPEnv(t, func(any) chat.Message { return chat.Message{Text: "approved", Ephemeral: true} })
	ref, err := e.c.Post(context.Background(), e.chID, approvalMessage())
	if err != nil {
		t.Fatal(err)
	}
	payload, err := e.fs.ClickButton(e.chID, ref.TS, e.user, chat.ActionApprove, "req-42")
	if err != nil {
		t.Fatal(err)
	}
	if resp := e.post(t, "/slack/interactions", testSecret, time.Now(), []byte(fakeslack.InteractionForm(payload).Encode()), nil); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	e.rec.waitN(t, 1)
	got := e.rec.Clicks()[0]
	want := chat.Click{User: chat.User{ID: e.user, Name: "alice"}, Channel: e.chID, Message: ref, ActionID: chat.ActionApprove, Value: "req-42"}
	if got != want {
		t.Fatalf("click = %+v\nwant    %+v", got, want)
	}
	if !e.fs.WaitFor(5*time.Second, func() bool { return len(e.fs.Ephemerals()) == 1 }) {
		t.Fatal("click reply not delivered")
	}
}

func TestInteractionChecklistToggle(t *testing.T) {
	e := newHTTPEnv(t, nil)
	ref, err := e.c.Post(context.Background(), e.chID, approvalMessage())
	if err != nil {
		t.Fatal(err)
	}
	// step-11 is in the second checkbox group and not done; step-04 is done.
	for _, v := range []string{"step-11", "step-04"} {
		payload, err := e.fs.ToggleCheckbox(e.chID, ref.TS, e.user, chat.ActionChecklist, v)
		if err != nil {
			t.Fatal(err)
		}
		e.post(t, "/slack/interactions", testSecret, time.Now(), []byte(fakeslack.InteractionForm(payload).Encode()), nil)
	}
	e.rec.waitN(t, 2)
	e.h.Wait()
	clicks := e.rec.Clicks()
	if len(clicks) != 2 {
		t.Fatalf("clicks = %+v", clicks)
	}
	got := map[string]bool{}
	for _, c := range clicks {
		if c.ActionID != chat.ActionChecklist || c.Message != ref {
			t.Fatalf("click = %+v", c)
		}
		item, checked, ok := ParseCheckboxValue(c.Value)
		if !ok {
			t.Fatalf("value %q not a checkbox value", c.Value)
		}
		got[item] = checked
	}
	if len(got) != 2 || !got["step-11"] || got["step-04"] {
		t.Fatalf("toggles = %v, want step-11 ticked and step-04 unticked", got)
	}
}

func TestHandlerPanicIsAnsweredPolitely(t *testing.T) {
	e := newHTTPEnv(t, func(any) chat.Message { panic("boom: secret internals") })
	body := []byte(fakeslack.SlashCommand{Text: "x", UserID: e.user, ChannelID: e.chID}.Form().Encode())
	e.post(t, "/slack/commands", testSecret, time.Now(), body, nil)
	if !e.fs.WaitFor(5*time.Second, func() bool { return len(e.fs.Ephemerals()) == 1 }) {
		t.Fatal("no apology")
	}
	if txt := e.fs.Ephemerals()[0].Text; strings.Contains(txt, "boom") || !strings.Contains(txt, "went wrong") {
		t.Fatalf("apology = %q", txt)
	}
}

func BenchmarkSlashCommandAck(b *testing.B) {
	e := newHTTPEnv(b, nil)
	h := e.h.Commands()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			body := []byte(fakeslack.SlashCommand{Text: "status", UserID: e.user, ChannelID: e.chID}.Form().Encode())
			req, err := fakeslack.NewSignedRequest(context.Background(), "http://drbot/slack/commands", testSecret, time.Now(), "application/x-www-form-urlencoded", body)
			if err != nil {
				b.Fatal(err)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				b.Fatalf("status %d", w.Code)
			}
		}
	})
	b.StopTimer()
	e.h.Wait()
}

// Interaction payloads decode with slack-go exactly as Slack sends them.
func TestInteractionPayloadShape(t *testing.T) {
	e := newHTTPEnv(t, nil)
	ref, _ := e.c.Post(context.Background(), e.chID, approvalMessage())
	payload, _ := e.fs.ClickButton(e.chID, ref.TS, e.user, chat.ActionDeny, "req-42")
	var m map[string]any
	if err := json.Unmarshal(payload, &m); err != nil || m["type"] != "block_actions" || m["trigger_id"] == "" {
		t.Fatalf("payload = %s", payload)
	}
}
