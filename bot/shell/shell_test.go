package shell

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/bot/chat"
)

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

// echoHandler answers commands with what it received and records clicks.
type echoHandler struct {
	mu       sync.Mutex
	commands []chat.Command
	clicks   []chat.Click
}

func (h *echoHandler) HandleCommand(_ context.Context, c chat.Command) chat.Message {
	h.mu.Lock()
	h.commands = append(h.commands, c)
	h.mu.Unlock()
	switch c.Text {
	case "buttons":
		return chat.Message{Text: "approve?", Blocks: []chat.Block{
			chat.Text{Text: "Request 7"},
			chat.Actions{Buttons: []chat.Button{
				{ActionID: chat.ActionApprove, Label: "Approve", Value: "7"},
				{ActionID: chat.ActionDeny, Label: "Deny", Value: "7", Style: chat.StyleDanger},
			}},
		}}
	case "secret":
		return chat.Message{Text: "just for you", Ephemeral: true}
	case "silent":
		return chat.Message{}
	}
	return chat.Plain(fmt.Sprintf("%s in %s ran %q", c.User.ID, c.Channel, c.Text))
}

func (h *echoHandler) HandleClick(_ context.Context, c chat.Click) chat.Message {
	h.mu.Lock()
	h.clicks = append(h.clicks, c)
	h.mu.Unlock()
	return chat.Message{Text: c.User.ID + " clicked " + c.ActionID + " " + c.Value, Ephemeral: true}
}

var fixed = time.Date(2026, 11, 23, 14, 3, 0, 0, time.UTC)

func run(t *testing.T, s *Shell) {
	t.Helper()
	if err := s.Run(context.Background()); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func newShell(input string, h chat.Handler, out io.Writer) *Shell {
	return New(Options{In: strings.NewReader(input), Out: out, User: "Alice", Handler: h, Now: func() time.Time { return fixed }})
}

func TestCommandsAndUsers(t *testing.T) {
	h := &echoHandler{}
	out := &syncBuffer{}
	s := newShell("/dr status lstm-pfd\n/as Bob\n/dr whoami\n/as 9lives\n/as\nhello there\n/dr secret\n/dr silent\n/bogus\n", h, out)
	run(t, s)
	got := out.String()
	for _, want := range []string{
		`[#general 14:03] drbot: alice in C0000 ran "status lstm-pfd"`,
		"* you are now bob",
		`bob in C0000 ran "whoami"`,
		`! "9lives" is not a valid user name`,
		"! usage: /as NAME",
		"[#general 14:03] bob: hello there",
		"(only you) [#general 14:03] drbot: just for you",
		"! unknown shell command /bogus",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "> ") {
		t.Errorf("prompt printed although input is not a terminal:\n%s", got)
	}
	if len(h.commands) != 4 || h.commands[0].User.ID != "alice" || h.commands[1].User.ID != "bob" {
		t.Fatalf("commands = %+v", h.commands)
	}
	if !h.commands[0].ReceivedAt.Equal(fixed) {
		t.Errorf("ReceivedAt = %v", h.commands[0].ReceivedAt)
	}
}

func TestClick(t *testing.T) {
	h := &echoHandler{}
	out := &syncBuffer{}
	s := newShell("/click 1\n/dr buttons\n/click 2\n/click 9\n/click x\n/quit\n/dr never\n", h, out)
	run(t, s)
	got := out.String()
	for _, want := range []string{
		"! there is no button 1: no buttons have been shown yet",
		"[1] Approve   [2] Deny (!)",
		"(only you) [#general 14:03] drbot: alice clicked dr_deny 7",
		"! there is no button 9: buttons shown so far are numbered 1 to 2",
		"! usage: /click N",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if len(h.clicks) != 1 {
		t.Fatalf("clicks = %+v", h.clicks)
	}
	c := h.clicks[0]
	if c.ActionID != chat.ActionDeny || c.Value != "7" || c.Channel != GeneralID || c.Message.Channel != GeneralID || c.Message.TS == "" {
		t.Fatalf("click = %+v", c)
	}
	if len(h.commands) != 1 {
		t.Fatalf("/quit did not stop the shell: %+v", h.commands)
	}
}

func TestUpdateKeepsNumbers(t *testing.T) {
	out := &syncBuffer{}
	s := newShell("", nil, out)
	ctx := context.Background()
	list := func(done bool) chat.Message {
		return chat.Message{Text: "checklist", Blocks: []chat.Block{
			chat.Header{Text: "Checklist"},
			chat.Checklist{ActionID: chat.ActionChecklist, Items: []chat.CheckItem{
				{Value: "detect", Label: "Detection", Done: done},
				{Value: "assess", Label: "Assessment"},
			}},
		}}
	}
	if _, err := s.Post(ctx, GeneralID, chat.Plain("first")); err != nil {
		t.Fatal(err)
	}
	btn := chat.Message{Text: "b", Blocks: []chat.Block{chat.Actions{Buttons: []chat.Button{{ActionID: chat.ActionApprove, Label: "Approve", Value: "1"}}}}}
	if _, err := s.Post(ctx, GeneralID, btn); err != nil {
		t.Fatal(err)
	}
	ref, err := s.Post(ctx, GeneralID, list(false))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, ref, list(true)); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"[1] Approve",
		"  *Checklist*\n  [2] [ ] Detection\n  [3] [ ] Assessment\n",
		"(updated) [#general 14:03] drbot:\n  *Checklist*\n  [2] [x] Detection\n  [3] [ ] Assessment\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if err := s.Update(ctx, chat.MessageRef{Channel: GeneralID, TS: "nope"}, list(true)); !errors.Is(err, ErrMessageNotFound) {
		t.Fatalf("update unknown = %v", err)
	}
	if _, err := s.Post(ctx, "C9999", chat.Plain("x")); !errors.Is(err, ErrChannelNotFound) {
		t.Fatalf("post unknown channel = %v", err)
	}
}

func TestChannels(t *testing.T) {
	out := &syncBuffer{}
	s := newShell("", nil, out)
	ctx := context.Background()
	id, err := s.CreateChannel(ctx, "incident-lstm-pfd-20261123")
	if err != nil || id != "C-incident-lstm-pfd-20261123" {
		t.Fatalf("CreateChannel = %q, %v", id, err)
	}
	if _, err := s.CreateChannel(ctx, "incident-lstm-pfd-20261123"); !errors.Is(err, chat.ErrNameTaken) {
		t.Fatalf("duplicate = %v", err)
	}
	if _, err := s.CreateChannel(ctx, "Bad Name"); err == nil {
		t.Fatal("invalid name accepted")
	}
	if err := s.SetTopic(ctx, id, "RTO 15:03"); err != nil {
		t.Fatal(err)
	}
	if err := s.Invite(ctx, id, "alice", "bob", "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Post(ctx, id, chat.Plain("elsewhere")); err != nil {
		t.Fatal(err)
	}
	chs := s.Channels()
	if len(chs) != 2 || chs[1].Topic != "RTO 15:03" || strings.Join(chs[1].Members, ",") != "alice,bob" {
		t.Fatalf("channels = %+v", chs)
	}
	got := out.String()
	for _, want := range []string{
		"* drbot created #incident-lstm-pfd-20261123",
		"* drbot invited alice, bob to #incident-lstm-pfd-20261123",
		"[#incident-lstm-pfd-20261123 14:03] drbot: elsewhere\n  (in #incident-lstm-pfd-20261123; /join incident-lstm-pfd-20261123 to switch)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}

	out2 := &syncBuffer{}
	s.out = out2
	s.in = strings.NewReader("/channels\n/join #incident-lstm-pfd-20261123\nhi\n/join nowhere\n/join general\n/channels\n")
	run(t, s)
	got = out2.String()
	for _, want := range []string{
		"* #general (C0000)\n  #incident-lstm-pfd-20261123 (C-incident-lstm-pfd-20261123) — RTO 15:03\n",
		"* you are now in #incident-lstm-pfd-20261123",
		"[#incident-lstm-pfd-20261123 14:03] alice: hi",
		"! there is no channel #nowhere; /channels lists them",
		"* you are now in #general\n* #general (C0000)\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if cid, name := s.CurrentChannel(); cid != GeneralID || name != GeneralName {
		t.Fatalf("current = %s %s", cid, name)
	}
}

func TestLookupByEmail(t *testing.T) {
	s := newShell("", nil, io.Discard)
	u, err := s.LookupByEmail(context.Background(), "DBA@example.com")
	if err != nil || u.ID != "dba" {
		t.Fatalf("lookup = %+v, %v", u, err)
	}
	for _, bad := range []string{"U0PLATFORM1", "@example.com", "no way@x"} {
		if _, err := s.LookupByEmail(context.Background(), bad); !errors.Is(err, chat.ErrUserNotFound) {
			t.Errorf("lookup %q = %v, want ErrUserNotFound", bad, err)
		}
	}
}

func TestTriggerSwitchesChannel(t *testing.T) {
	out := &syncBuffer{}
	var s *Shell
	var gotService, gotTitle string
	s = New(Options{
		In:  strings.NewReader("/trigger\n/trigger broken Oops\n/trigger lstm-pfd Dashboard is down\n/dr where\n"),
		Out: out, User: "alice", Handler: &echoHandler{}, Now: func() time.Time { return fixed },
		Trigger: func(ctx context.Context, service, title string) error {
			if service == "broken" {
				return errors.New("no service broken in the runbook")
			}
			gotService, gotTitle = service, title
			_, err := s.CreateChannel(ctx, "incident-"+service+"-20261123")
			return err
		},
	})
	run(t, s)
	got := out.String()
	for _, want := range []string{
		"! usage: /trigger SERVICE TITLE",
		"! trigger failed: no service broken in the runbook",
		"* you are now in #incident-lstm-pfd-20261123",
		`drbot: alice in C-incident-lstm-pfd-20261123 ran "where"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if gotService != "lstm-pfd" || gotTitle != "Dashboard is down" {
		t.Fatalf("trigger got %q %q", gotService, gotTitle)
	}
}

func TestRunStopsOnContextAndConcurrentPosts(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	out := &syncBuffer{}
	s := New(Options{In: pr, Out: out, User: "alice", Handler: &echoHandler{}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.Post(ctx, GeneralID, chat.Plain(fmt.Sprintf("job %d", i))); err != nil {
				t.Error(err)
			}
		}()
	}
	if _, err := io.WriteString(pw, "/dr ping\n"); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), `ran "ping"`) {
		if time.Now().After(deadline) {
			t.Fatalf("command not answered:\n%s", out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if n := strings.Count(out.String(), "drbot: job "); n != 20 {
		t.Fatalf("%d job posts rendered, want 20", n)
	}
}

func TestRender(t *testing.T) {
	m := chat.Message{Text: "x", Blocks: []chat.Block{
		chat.Header{Text: "Restore lstm_pfd"},
		chat.Fields{Fields: []chat.Field{{Label: "Service", Value: "lstm-pfd"}, {Label: "RTO", Value: "1h"}}},
		chat.Progress{Label: "Download", Done: 512 << 20, Total: 1 << 30, Unit: "bytes"},
		chat.Progress{Done: 3, Total: 4, Unit: "steps"},
		chat.Progress{Label: "Copy", Done: 2048, Unit: "bytes"},
		chat.Context{Text: "request 7"},
	}}
	want := strings.Join([]string{
		"*Restore lstm_pfd*",
		"Service: lstm-pfd",
		"RTO: 1h",
		"Download [#####-----] 50% (512 MiB of 1.0 GiB)",
		"[#######---] 75% (3 steps of 4 steps)",
		"Copy [??????????] 2.0 KiB so far",
		"  request 7",
	}, "\n")
	if got := Render(m, nil); got != want {
		t.Fatalf("Render:\n%s\nwant:\n%s", got, want)
	}
	if got := Render(chat.Message{Text: "plain"}, nil); got != "plain" {
		t.Fatalf("plain = %q", got)
	}
}

func TestPromptOnTerminal(t *testing.T) {
	out := &syncBuffer{}
	s := newShell("/as bob\n/join general\n", &echoHandler{}, out)
	s.tty = true // what isTerminal reports for a character device
	run(t, s)
	got := out.String()
	for _, want := range []string{"alice@#general> * you are now bob\n", "bob@#general> * you are now in #general\n", "bob@#general> \n"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%q", want, got)
		}
	}
	// A post from another goroutine while the prompt is shown starts on a new
	// line and the prompt comes back after it.
	s.mu.Lock()
	s.promptLocked()
	s.mu.Unlock()
	if _, err := s.Post(context.Background(), GeneralID, chat.Plain("backup finished")); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); !strings.HasSuffix(got, "bob@#general> \n[#general 14:03] drbot: backup finished\nbob@#general> ") {
		t.Errorf("async post rendering:\n%q", got[max(0, len(got)-120):])
	}
}

func TestRestoreKeepsNamesTakenAcrossRestarts(t *testing.T) {
	ctx := context.Background()
	first := newShell("", nil, &syncBuffer{})
	id, err := first.CreateChannel(ctx, "incident-demo-shop-20261123")
	if err != nil {
		t.Fatal(err)
	}
	// A new process: the store gives back the ids of the incidents' channels.
	second := newShell("", nil, &syncBuffer{})
	second.Restore(id, "C0000", "not-ours", "C-Bad Name")
	if _, err := second.CreateChannel(ctx, "incident-demo-shop-20261123"); !errors.Is(err, chat.ErrNameTaken) {
		t.Fatalf("restored name handed out again: %v", err)
	}
	if got := len(second.Channels()); got != 2 {
		t.Fatalf("channels after restore = %d, want general + 1 (foreign and invalid ids ignored)", got)
	}
	if err := second.SetTopic(ctx, id, "still there"); err != nil {
		t.Fatalf("restored channel not addressable by its id: %v", err)
	}
}

func TestFindChannelKnowsTheBotsChannels(t *testing.T) {
	ctx := context.Background()
	sh := newShell("", nil, &syncBuffer{})
	mine, err := sh.CreateChannel(ctx, "incident-demo-shop-20261123")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name         string
		id           string
		byBot, found bool
	}{
		{"incident-demo-shop-20261123", mine, true, true},
		{GeneralName, GeneralID, false, true},
		{"nowhere", "", false, false},
	} {
		id, byBot, found, err := sh.FindChannel(ctx, tc.name)
		if err != nil || id != tc.id || byBot != tc.byBot || found != tc.found {
			t.Errorf("FindChannel(%s) = %q, %v, %v, %v; want %q, %v, %v", tc.name, id, byBot, found, err, tc.id, tc.byBot, tc.found)
		}
	}
}

func TestReadableMentions(t *testing.T) {
	got := readableMentions("Requested by: <@alice> · approvals <@bob>, <@carol.x> in <#C-incident-demo-20261123> (a < b >)")
	want := "Requested by: @alice · approvals @bob, @carol.x in #incident-demo-20261123 (a < b >)"
	if got != want {
		t.Fatalf("readableMentions = %q, want %q", got, want)
	}
}
