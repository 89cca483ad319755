package slack

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/drbot-dev/drbot/bot/chat"
	"github.com/drbot-dev/drbot/internal/fakeslack"
)

func approvalMessage() chat.Message {
	items := make([]chat.CheckItem, 12)
	for i := range items {
		items[i] = chat.CheckItem{Value: fmt.Sprintf("step-%02d", i), Label: fmt.Sprintf("Step %d", i), Done: i%4 == 0}
	}
	return chat.Message{
		Text: "Approval needed: restore-db lstm-pfd",
		Blocks: []chat.Block{
			chat.Header{Text: "Restore lstm-pfd"},
			chat.Text{Text: "Plan hash `abc123` <!channel> & co"},
			chat.Fields{Fields: []chat.Field{{Label: "Requester", Value: "alice"}, {Label: "Backup", Value: "s3://b/k@v1"}}},
			chat.Actions{Buttons: []chat.Button{
				{ActionID: chat.ActionApprove, Label: "Approve", Value: "req-42", Style: chat.StylePrimary},
				{ActionID: chat.ActionDeny, Label: "Deny", Value: "req-42", Style: chat.StyleDanger},
			}},
			chat.Checklist{ActionID: chat.ActionChecklist, Title: "Runbook", Items: items},
			chat.Progress{Label: "Restore", Done: 3 << 30, Total: 12 << 30, Unit: "bytes"},
			chat.Context{Text: "incident PD123"},
		},
	}
}

func TestPostAndUpdateRenderBlocks(t *testing.T) {
	fs, c := newTestClient(t)
	ctx := context.Background()
	ch := fs.AddChannel("incident-lstm-pfd-20261101", fakeslack.BotUserID)

	ref, err := c.Post(ctx, ch, approvalMessage())
	if err != nil {
		t.Fatalf("Post: %v", err)
	}
	if ref.Channel != ch || ref.TS == "" {
		t.Fatalf("ref = %+v", ref)
	}
	msgs := fs.Messages(ch)
	if len(msgs) != 1 || msgs[0].Text != "Approval needed: restore-db lstm-pfd" {
		t.Fatalf("messages = %+v", msgs)
	}
	blocks := blocksOf(t, msgs[0].Blocks)
	types := []string{}
	for _, b := range blocks {
		types = append(types, b["type"].(string))
	}
	want := "header section section actions section actions actions section context"
	if got := strings.Join(types, " "); got != want {
		t.Fatalf("block types = %q, want %q", got, want)
	}
	if txt := blocks[1]["text"].(map[string]any)["text"]; txt != "Plan hash `abc123` &lt;!channel&gt; &amp; co" {
		t.Errorf("text not escaped: %q", txt)
	}
	btns := blocks[3]["elements"].([]any)
	for i, w := range []struct{ id, value, style string }{{chat.ActionApprove, "req-42", "primary"}, {chat.ActionDeny, "req-42", "danger"}} {
		b := btns[i].(map[string]any)
		if b["type"] != "button" || b["action_id"] != w.id || b["value"] != w.value || b["style"] != w.style {
			t.Errorf("button %d = %v", i, b)
		}
	}
	// Checklist: 12 items → 10 + 2 options, done ones as initial_options.
	var allOpts, initial []string
	for _, bi := range []int{5, 6} {
		els := blocks[bi]["elements"].([]any)
		if len(els) != 1 {
			t.Fatalf("checklist block %d has %d elements", bi, len(els))
		}
		el := els[0].(map[string]any)
		if el["type"] != "checkboxes" || el["action_id"] != chat.ActionChecklist {
			t.Fatalf("checkbox element = %v", el)
		}
		for _, o := range el["options"].([]any) {
			allOpts = append(allOpts, o.(map[string]any)["value"].(string))
		}
		if io, ok := el["initial_options"].([]any); ok {
			for _, o := range io {
				initial = append(initial, o.(map[string]any)["value"].(string))
			}
		}
	}
	if len(allOpts) != 12 || allOpts[0] != "step-00" || allOpts[11] != "step-11" {
		t.Errorf("options = %v", allOpts)
	}
	if strings.Join(initial, ",") != "step-00,step-04,step-08" {
		t.Errorf("initial_options = %v", initial)
	}
	if p := blocks[7]["text"].(map[string]any)["text"].(string); !strings.Contains(p, "25%") || !strings.Contains(p, "3.0 GiB of 12.0 GiB") {
		t.Errorf("progress = %q", p)
	}

	// Update in place: same ts, new content, update counted.
	if err := c.Update(ctx, ref, chat.Plain("Approved by bob")); err != nil {
		t.Fatalf("Update: %v", err)
	}
	m, _ := fs.Message(ch, ref.TS)
	if m.Updates != 1 || m.Text != "Approved by bob" {
		t.Fatalf("after update: %+v", m)
	}
	if b := blocksOf(t, m.Blocks); len(b) != 1 || b[0]["type"] != "section" {
		t.Fatalf("updated blocks = %v", b)
	}
	if err := c.Update(ctx, chat.MessageRef{Channel: ch, TS: "1.000001"}, chat.Plain("x")); ErrorCode(err) != "message_not_found" {
		t.Fatalf("update of missing message: %v", err)
	}
}

func TestUniqueTimestamps(t *testing.T) {
	fs, c := newTestClient(t)
	ch := fs.AddChannel("busy", fakeslack.BotUserID)
	seen := map[string]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			ref, err := c.Post(context.Background(), ch, chat.Plain(fmt.Sprint("m", i)))
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			seen[ref.TS] = true
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(seen) != 40 {
		t.Fatalf("%d unique ts for 40 posts", len(seen))
	}
	msgs := fs.Messages(ch)
	for i := 1; i < len(msgs); i++ {
		if msgs[i].TS <= msgs[i-1].TS {
			t.Fatalf("ts not increasing: %s then %s", msgs[i-1].TS, msgs[i].TS)
		}
	}
}

func TestCreateChannelAndTopic(t *testing.T) {
	fs, c := newTestClient(t)
	ctx := context.Background()
	id, err := c.CreateChannel(ctx, "incident-inflow-20261101")
	if err != nil {
		t.Fatalf("CreateChannel: %v", err)
	}
	if _, err := c.CreateChannel(ctx, "incident-inflow-20261101"); !errors.Is(err, chat.ErrNameTaken) {
		t.Fatalf("second create: %v, want ErrNameTaken", err)
	}
	if _, err := c.CreateChannel(ctx, "Bad Name!"); err == nil || !strings.Contains(err.Error(), "invalid_name_specials") {
		t.Fatalf("bad name: %v", err)
	}
	if err := c.SetTopic(ctx, id, "RTO 01:00 · PD123"); err != nil {
		t.Fatalf("SetTopic: %v", err)
	}
	ch, ok := fs.ChannelByName("incident-inflow-20261101")
	if !ok || ch.ID != id || ch.Topic != "RTO 01:00 · PD123" {
		t.Fatalf("channel = %+v", ch)
	}
}

func TestFindChannelPagesAndKnowsItsOwnChannels(t *testing.T) {
	fs, c := newTestClient(t)
	ctx := context.Background()
	fs.SetListPageMax(1) // one channel a page: every lookup below pages
	fs.AddChannel("general")
	mine, err := c.CreateChannel(ctx, "incident-inflow-20261101")
	if err != nil {
		t.Fatal(err)
	}
	theirs := fs.AddChannel("incident-inflow-20261101-2")
	for _, tc := range []struct {
		name         string
		id           string
		byBot, found bool
	}{
		{"incident-inflow-20261101", mine, true, true},
		{"incident-inflow-20261101-2", theirs, false, true},
		{"incident-inflow-20261101-3", "", false, false},
	} {
		id, byBot, found, err := c.FindChannel(ctx, tc.name)
		if err != nil || id != tc.id || byBot != tc.byBot || found != tc.found {
			t.Errorf("FindChannel(%s) = %q, %v, %v, %v; want %q, %v, %v", tc.name, id, byBot, found, err, tc.id, tc.byBot, tc.found)
		}
	}
	if n := len(fs.Calls("auth.test")); n != 1 {
		t.Errorf("auth.test called %d times; the bot's user id is cached", n)
	}
	fs.FailNext("conversations.list", "internal_error")
	if _, _, _, err := c.FindChannel(ctx, "general"); ErrorCode(err) != "internal_error" || !strings.Contains(err.Error(), "conversations.list") {
		t.Errorf("failed list: %v", err)
	}
}

func TestInviteLookupGroups(t *testing.T) {
	fs, c := newTestClient(t)
	ctx := context.Background()
	alice := fs.AddUser(fakeslack.User{Name: "alice", Email: "alice@example.com"})
	bob := fs.AddUser(fakeslack.User{Name: "bob", Email: "bob@example.com"})
	fs.AddUserGroup("SDBA", alice, bob)
	id, err := c.CreateChannel(ctx, "incident-x")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Invite(ctx, id, alice); err != nil {
		t.Fatalf("invite alice: %v", err)
	}
	// alice is already there: ignored; bob still gets in.
	if err := c.Invite(ctx, id, alice, bob); err != nil {
		t.Fatalf("invite alice+bob: %v", err)
	}
	err = c.Invite(ctx, id, "UNOBODY", bob)
	if err == nil || !strings.Contains(err.Error(), "UNOBODY") || !strings.Contains(err.Error(), "user_not_found") {
		t.Fatalf("invite unknown: %v", err)
	}
	ch, _ := fs.ChannelByName("incident-x")
	if strings.Join(ch.Members, ",") != strings.Join([]string{fakeslack.BotUserID, alice, bob}, ",") {
		t.Fatalf("members = %v", ch.Members)
	}

	u, err := c.LookupByEmail(ctx, "BOB@example.com")
	if err != nil || u.ID != bob || u.Name != "bob" {
		t.Fatalf("lookup bob = %+v, %v", u, err)
	}
	if _, err := c.LookupByEmail(ctx, "nobody@example.com"); !errors.Is(err, chat.ErrUserNotFound) {
		t.Fatalf("lookup nobody: %v", err)
	}
	members, err := c.GroupMembers(ctx, "SDBA")
	if err != nil || strings.Join(members, ",") != alice+","+bob {
		t.Fatalf("group = %v, %v", members, err)
	}
	if _, err := c.GroupMembers(ctx, "SNONE"); err == nil || !strings.Contains(err.Error(), "SNONE") {
		t.Fatalf("missing group: %v", err)
	}
}

func TestRateLimitHonoursRetryAfter(t *testing.T) {
	fs, c := newTestClient(t)
	ch := fs.AddChannel("rl", fakeslack.BotUserID)
	fs.RateLimitNext("chat.postMessage", time.Second)
	start := time.Now()
	if _, err := c.Post(context.Background(), ch, chat.Plain("after the wait")); err != nil {
		t.Fatalf("Post: %v", err)
	}
	calls := fs.Calls("chat.postMessage")
	if len(calls) != 2 || calls[0].Error != "ratelimited" || calls[1].Error != "" {
		t.Fatalf("calls = %+v", calls)
	}
	if gap := calls[1].At.Sub(calls[0].At); gap < time.Second {
		t.Fatalf("retried after %v, before Retry-After 1s", gap)
	}
	if len(fs.Messages(ch)) != 1 || time.Since(start) < time.Second {
		t.Fatalf("message not posted exactly once after the wait")
	}
}

func TestChannelPacingDoesNotBlockOtherChannels(t *testing.T) {
	fs := fakeslack.New()
	t.Cleanup(fs.Close)
	c, err := NewClient(Options{Token: fs.BotToken(), APIURL: fs.APIURL(), Logger: quietLogger(), ChannelLimit: rate.Every(200 * time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	a := fs.AddChannel("a", fakeslack.BotUserID)
	b := fs.AddChannel("b", fakeslack.BotUserID)
	ctx := context.Background()
	start := time.Now()
	done := make(chan time.Duration)
	go func() {
		for range 4 {
			if _, err := c.Post(ctx, a, chat.Plain("a")); err != nil {
				t.Error(err)
			}
		}
		done <- time.Since(start)
	}()
	time.Sleep(50 * time.Millisecond)
	if _, err := c.Post(ctx, b, chat.Plain("b")); err != nil {
		t.Fatal(err)
	}
	bTook := time.Since(start)
	aTook := <-done
	if aTook < 550*time.Millisecond {
		t.Errorf("4 posts in one channel took %v; want paced to ≥ 600ms", aTook)
	}
	if bTook > 400*time.Millisecond {
		t.Errorf("post in another channel waited %v", bTook)
	}
}

func TestErrorsNameCodeNotToken(t *testing.T) {
	fs, c := newTestClient(t)
	fs.FailNext("chat.postMessage", "channel_not_found")
	_, err := c.Post(context.Background(), "CNOPE", chat.Plain("x"))
	if err == nil || ErrorCode(err) != "channel_not_found" || !strings.Contains(err.Error(), "channel_not_found") {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), fs.BotToken()) {
		t.Fatalf("error leaks the token: %v", err)
	}
	bad, _ := NewClient(Options{Token: "xoxb-wrong", APIURL: fs.APIURL(), Logger: quietLogger()})
	if _, _, err := bad.AuthTest(context.Background()); ErrorCode(err) != "invalid_auth" || strings.Contains(err.Error(), "xoxb-wrong") {
		t.Fatalf("bad token: %v", err)
	}
	if uid, team, err := c.AuthTest(context.Background()); err != nil || uid != fakeslack.BotUserID || team != fakeslack.TeamID {
		t.Fatalf("auth.test = %s %s %v", uid, team, err)
	}
}

func TestPostJoinsPublicChannel(t *testing.T) {
	fs, c := newTestClient(t)
	ch := fs.AddChannel("general") // bot not a member
	if _, err := c.Post(context.Background(), ch, chat.Plain("hello")); err != nil {
		t.Fatalf("Post: %v", err)
	}
	if len(fs.Calls("conversations.join")) != 1 || len(fs.Messages(ch)) != 1 {
		t.Fatalf("expected a join and one message")
	}
}
