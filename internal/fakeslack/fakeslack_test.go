package fakeslack

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// call posts a form to method with a Bearer token and decodes the answer.
func call(t *testing.T, s *Server, token, method string, form url.Values) (int, map[string]any, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.APIURL()+method, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out, resp.Header
}

func TestAuthAndErrors(t *testing.T) {
	s := New()
	defer s.Close()
	if _, out, _ := call(t, s, "", "auth.test", nil); out["error"] != "not_authed" {
		t.Errorf("no token: %v", out)
	}
	if _, out, _ := call(t, s, "xoxb-wrong", "auth.test", nil); out["error"] != "invalid_auth" {
		t.Errorf("wrong token: %v", out)
	}
	if _, out, _ := call(t, s, s.BotToken(), "apps.connections.open", nil); out["error"] != "invalid_auth" {
		t.Errorf("bot token on apps.connections.open: %v", out)
	}
	// The token may also come as a form field, as slack-go sends it.
	if _, out, _ := call(t, s, "", "auth.test", url.Values{"token": {s.BotToken()}}); out["ok"] != true || out["user_id"] != BotUserID {
		t.Errorf("form token: %v", out)
	}
	for name, want := range map[string]string{"": "invalid_name_required", "Has Space": "invalid_name_specials", strings.Repeat("a", 81): "name_too_long"} {
		if _, out, _ := call(t, s, s.BotToken(), "conversations.create", url.Values{"name": {name}}); out["error"] != want {
			t.Errorf("create %q: %v, want %s", name, out, want)
		}
	}
	s.FailNext("auth.test", "account_inactive")
	if _, out, _ := call(t, s, s.BotToken(), "auth.test", nil); out["error"] != "account_inactive" {
		t.Errorf("FailNext: %v", out)
	}
	if _, out, _ := call(t, s, s.BotToken(), "auth.test", nil); out["ok"] != true {
		t.Errorf("FailNext is one-shot: %v", out)
	}
	s.RateLimitNext("auth.test", 1500*time.Millisecond)
	if code, _, h := call(t, s, s.BotToken(), "auth.test", nil); code != http.StatusTooManyRequests || h.Get("Retry-After") != "2" {
		t.Errorf("rate limit: %d %q", code, h.Get("Retry-After"))
	}
	if _, out, _ := call(t, s, s.BotToken(), "chat.postMessage", url.Values{"channel": {"CNONE"}, "text": {"x"}}); out["error"] != "channel_not_found" {
		t.Errorf("post to missing channel: %v", out)
	}
	if calls := s.Calls("auth.test"); len(calls) != 6 || calls[5].Error != "ratelimited" {
		t.Errorf("calls = %+v", calls)
	}
}

func TestMessagesAndTimestamps(t *testing.T) {
	s := New()
	defer s.Close()
	ch := s.AddChannel("c", BotUserID)
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			call(t, s, s.BotToken(), "chat.postMessage", url.Values{"channel": {ch}, "text": {"hi"}, "blocks": {`[{"type":"section","text":{"type":"mrkdwn","text":"hi"}}]`}})
		})
	}
	wg.Wait()
	msgs := s.Messages(ch)
	if len(msgs) != 50 {
		t.Fatalf("%d messages", len(msgs))
	}
	for i := 1; i < len(msgs); i++ {
		if msgs[i].TS <= msgs[i-1].TS {
			t.Fatalf("ts %s after %s", msgs[i].TS, msgs[i-1].TS)
		}
	}
	ts := msgs[0].TS
	_, out, _ := call(t, s, s.BotToken(), "chat.update", url.Values{"channel": {ch}, "ts": {ts}, "text": {"edited"}})
	if out["ok"] != true {
		t.Fatal(out)
	}
	m, _ := s.Message(ch, ts)
	if m.Text != "edited" || m.Updates != 1 || !strings.Contains(string(m.Blocks), `"block_id"`) {
		t.Fatalf("updated = %+v", m)
	}
	if _, out, _ := call(t, s, s.BotToken(), "chat.update", url.Values{"channel": {ch}, "ts": {"1.1"}, "text": {"x"}}); out["error"] != "message_not_found" {
		t.Fatal(out)
	}
}

func TestLatency(t *testing.T) {
	s := New()
	defer s.Close()
	s.SetLatency(150 * time.Millisecond)
	start := time.Now()
	call(t, s, s.BotToken(), "auth.test", nil)
	if time.Since(start) < 150*time.Millisecond {
		t.Fatal("latency not applied")
	}
}

func TestSignMatchesSlackExample(t *testing.T) {
	// The example from Slack's "Verifying requests from Slack" documentation.
	body := []byte("token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c")
	ts, sig := Sign("8f742231b10e8888abcd99yyyzzz85a5", time.Unix(1531420618, 0), body)
	if ts != "1531420618" || sig != "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503" {
		t.Fatalf("Sign = %s %s", ts, sig)
	}
}

func TestConversationsListPagesWithCreators(t *testing.T) {
	s := New()
	defer s.Close()
	s.AddChannel("general")
	if _, out, _ := call(t, s, s.BotToken(), "conversations.create", url.Values{"name": {"incident-x"}}); out["ok"] != true {
		t.Fatal(out)
	}
	s.AddChannel("random")
	var (
		names, creators []string
		cursor          string
		pages           int
	)
	for {
		_, out, _ := call(t, s, s.BotToken(), "conversations.list", url.Values{"types": {"public_channel"}, "exclude_archived": {"true"}, "limit": {"2"}, "cursor": {cursor}})
		if out["ok"] != true {
			t.Fatal(out)
		}
		pages++
		for _, c := range out["channels"].([]any) {
			c := c.(map[string]any)
			names = append(names, c["name"].(string))
			creators = append(creators, c["creator"].(string))
		}
		cursor = out["response_metadata"].(map[string]any)["next_cursor"].(string)
		if cursor == "" {
			break
		}
	}
	if pages != 2 || strings.Join(names, ",") != "general,incident-x,random" ||
		strings.Join(creators, ",") != HumanUserID+","+BotUserID+","+HumanUserID {
		t.Errorf("%d pages: %v by %v", pages, names, creators)
	}
	s.SetListPageMax(1) // fewer than the limit asked, as Slack may answer
	if _, out, _ := call(t, s, s.BotToken(), "conversations.list", url.Values{"limit": {"1000"}}); len(out["channels"].([]any)) != 1 {
		t.Errorf("page max ignored: %v", out)
	}
	if _, out, _ := call(t, s, s.BotToken(), "conversations.list", url.Values{"types": {"private_channel"}}); len(out["channels"].([]any)) != 0 {
		t.Errorf("private channels listed: %v", out)
	}
	if _, out, _ := call(t, s, s.BotToken(), "conversations.list", url.Values{"cursor": {"bogus"}}); out["error"] != "invalid_cursor" {
		t.Errorf("bad cursor: %v", out)
	}
}

func TestPrivateChannelsAndMembers(t *testing.T) {
	s := New()
	defer s.Close()
	alice := s.AddUser(User{Name: "alice"})
	bob := s.AddUser(User{Name: "bob"})
	_, out, _ := call(t, s, s.BotToken(), "conversations.create", url.Values{"name": {"incident-x-sec"}, "is_private": {"true"}})
	ch := out["channel"].(map[string]any)
	id := ch["id"].(string)
	if ch["is_private"] != true {
		t.Fatalf("create private = %v", out)
	}
	if _, out, _ := call(t, s, s.BotToken(), "conversations.invite", url.Values{"channel": {id}, "users": {alice + "," + bob}}); out["ok"] != true {
		t.Fatalf("invite = %v", out)
	}
	s.SetListPageMax(2)
	var members []string
	cursor := ""
	for pages := 0; ; pages++ {
		_, out, _ := call(t, s, s.BotToken(), "conversations.members", url.Values{"channel": {id}, "cursor": {cursor}})
		for _, m := range out["members"].([]any) {
			members = append(members, m.(string))
		}
		cursor = out["response_metadata"].(map[string]any)["next_cursor"].(string)
		if cursor == "" || pages > 3 {
			break
		}
	}
	if strings.Join(members, ",") != BotUserID+","+alice+","+bob {
		t.Errorf("members = %v", members)
	}
	if _, out, _ := call(t, s, s.BotToken(), "conversations.join", url.Values{"channel": {id}}); out["error"] != "method_not_supported_for_channel_type" {
		t.Errorf("join private = %v", out)
	}
	if _, out, _ := call(t, s, s.BotToken(), "conversations.list", url.Values{"types": {"public_channel"}}); len(out["channels"].([]any)) != 0 {
		t.Errorf("private channel listed as public: %v", out)
	}
	if _, out, _ := call(t, s, s.BotToken(), "conversations.list", url.Values{"types": {"private_channel"}}); len(out["channels"].([]any)) != 1 {
		t.Errorf("the bot's private channel not listed: %v", out)
	}
	pub := s.AddChannel("general", alice)
	if _, out, _ := call(t, s, s.BotToken(), "conversations.members", url.Values{"channel": {pub}}); len(out["members"].([]any)) != 1 {
		t.Errorf("public members = %v", out)
	}
	if !s.JoinChannel(pub, bob) {
		t.Fatal("join failed")
	}
	if c, _ := s.ChannelByName("general"); strings.Join(c.Members, ",") != alice+","+bob {
		t.Errorf("after JoinChannel: %v", c.Members)
	}
}

// TestPins: pins.add pins an existing message once (already_pinned after),
// pins.list answers it with the message's current text, pins.remove unpins.
func TestPins(t *testing.T) {
	s := New()
	defer s.Close()
	ch := s.AddChannel("incident-x", BotUserID)
	_, out, _ := call(t, s, s.BotToken(), "chat.postMessage", url.Values{"channel": {ch}, "text": {"header"}})
	ts, _ := out["ts"].(string)
	if _, out, _ := call(t, s, s.BotToken(), "pins.add", url.Values{"channel": {ch}, "timestamp": {"1.1"}}); out["error"] != "message_not_found" {
		t.Fatalf("pin of a missing message: %v", out)
	}
	if _, out, _ := call(t, s, s.BotToken(), "pins.add", url.Values{"channel": {ch}, "timestamp": {ts}}); out["ok"] != true {
		t.Fatal(out)
	}
	if _, out, _ := call(t, s, s.BotToken(), "pins.add", url.Values{"channel": {ch}, "timestamp": {ts}}); out["error"] != "already_pinned" {
		t.Fatalf("second pin: %v", out)
	}
	if got := s.Pins(ch); len(got) != 1 || got[0] != ts {
		t.Fatalf("Pins = %v", got)
	}
	call(t, s, s.BotToken(), "chat.update", url.Values{"channel": {ch}, "ts": {ts}, "text": {"header v2"}})
	_, out, _ = call(t, s, s.BotToken(), "pins.list", url.Values{"channel": {ch}})
	items, _ := out["items"].([]any)
	if len(items) != 1 || !strings.Contains(fmt.Sprint(items[0]), "header v2") {
		t.Fatalf("pins.list = %v", out)
	}
	if _, out, _ := call(t, s, s.BotToken(), "pins.remove", url.Values{"channel": {ch}, "timestamp": {ts}}); out["ok"] != true {
		t.Fatal(out)
	}
	if _, out, _ := call(t, s, s.BotToken(), "pins.remove", url.Values{"channel": {ch}, "timestamp": {ts}}); out["error"] != "no_pin" {
		t.Fatal(out)
	}
	other := s.AddChannel("no-bot", HumanUserID)
	_, out, _ = call(t, s, s.BotToken(), "chat.postMessage", url.Values{"channel": {other}, "text": {"x"}})
	if ts2, _ := out["ts"].(string); ts2 != "" {
		if _, out, _ := call(t, s, s.BotToken(), "pins.add", url.Values{"channel": {other}, "timestamp": {ts2}}); out["error"] != "not_in_channel" {
			t.Fatalf("pin outside the bot's channel: %v", out)
		}
	}
}
