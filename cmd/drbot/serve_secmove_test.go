package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/runner/runnertest"
	"github.com/drbot-dev/drbot/bot/chat"
	"github.com/drbot-dev/drbot/internal/fakeslack"
	"github.com/drbot-dev/drbot/store"
	"github.com/drbot-dev/drbot/store/postgres"
)

// TestServeSecurityMoveTakesThePlanOutOfThePublicChannel runs `drbot serve`
// in process: an incident with a restore-db request pending approval in its
// public channel is marked /dr security. Afterwards the public channel shows
// no plan (the card is a pointer without buttons), no header with details
// and nothing pinned; the private channel has the header pinned and the
// pending card; a click saved from the old public card (a client that has not
// redrawn it) is refused with a pointer, and approving on the private card
// runs the request.
func TestServeSecurityMoveTakesThePlanOutOfThePublicChannel(t *testing.T) {
	w := newIncidentWorld(t)
	cfg := fmt.Sprintf(`slack:
  announce_channel: %s
  approvers: [%s]
services:
  - name: lstm-pfd
    pagerduty:
      service_ids: [PLSTMPF]
      escalation_policy_id: PESCLST
    objectives: {rto: 1h, rpo: 4h}
`, w.announce, w.lead)
	if err := os.WriteFile(w.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var restore *runnertest.Action
	overrideAction("restore-db", func(ctx context.Context, _ actionEnv) (actions.Action, error) {
		a, err := runnertest.New(ctx, "restore-db", w.dbURL)
		if err != nil {
			return nil, err
		}
		if err := a.AddBackup(ctx, "nightly-b1"); err != nil {
			return nil, err
		}
		restore = a
		return a, nil
	})
	t.Cleanup(func() {
		overridesMu.Lock()
		delete(overrides, "restore-db")
		overridesMu.Unlock()
		if restore != nil {
			restore.Close()
		}
	})

	s := w.serveInProcess(time.Now)
	_, ch := w.openIncident(s, "lstm_pfd unreachable")
	alice := ch.Members[len(ch.Members)-1]
	w.waitHeader(s, ch.ID, "Triggered", "elapsed, 1h left")
	hdr, _ := w.headerMessage(ch.ID)
	if !w.slack.WaitFor(wait, func() bool { p := w.slack.Pins(ch.ID); return len(p) == 1 && p[0] == hdr.TS }) {
		t.Fatalf("header %s not pinned: pins %v", hdr.TS, w.slack.Pins(ch.ID))
	}

	w.slash(s, alice, ch.ID, "restore-db")
	probe, err := postgres.Open(context.Background(), w.dbURL, postgres.Options{Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(probe.Close)
	var req store.ActionRequest
	if !w.slack.WaitFor(wait, func() bool {
		rs, err := probe.RecentRequests(context.Background(), "lstm-pfd", 1)
		if err != nil || len(rs) == 0 || rs[0].MessageTS == "" {
			return false
		}
		req = rs[0]
		return true
	}) {
		t.Fatalf("no approval card; ephemerals %+v\n%s", w.slack.Ephemerals(), s.logs.String())
	}
	// The plan as the card shows it: what is restored, from which backup.
	planWords := []string{"Restore lstm-pfd from nightly-b1", "Check backup nightly-b1 exists"}
	for _, p := range planWords {
		if w.countMessages(ch.ID, p) == 0 {
			t.Fatalf("the card does not show %q; the test's probe is wrong:\n%+v", p, w.slack.Messages(ch.ID))
		}
	}
	w.waitHeader(s, ch.ID, fmt.Sprintf("#%d restore-db", req.ID), "pending approval")
	// A click on the public card, sent after the move by a client that
	// still shows it.
	stale, err := w.slack.ClickButton(ch.ID, req.MessageTS, w.lead, chat.ActionApprove, strconv.FormatInt(req.ID, 10))
	if err != nil {
		t.Fatal(err)
	}

	// The move fails once right after it relinked the incident (as if the
	// process died there): the retry resumes from its marks.
	w.slack.FailNext("pins.remove", "internal_error")
	w.slash(s, alice, ch.ID, "security credentials in a public bucket")
	var priv fakeslack.Channel
	w.waitFor("private channel with the header and the card", wait, func() bool {
		var ok bool
		priv, ok = w.slack.ChannelByName(ch.Name + "-sec")
		return ok && w.countMessages(priv.ID, "Restore lstm-pfd from nightly-b1") == 1 &&
			w.countMessages(ch.ID, "Request #"+strconv.FormatInt(req.ID, 10)+" moved to a private channel") == 1 &&
			len(w.slack.Pins(ch.ID)) == 0 && w.countMessages(ch.ID, "RTO clock") == 0
	}, s.logs)

	// Public: a pointer where the header and the card were, nothing pinned,
	// no plan, no request, no scenario details, no buttons.
	for _, m := range w.slack.Messages(ch.ID) {
		all := m.Text + "\n" + unescape(m.Blocks)
		for _, bad := range append(planWords, "restore-db", "RTO clock", "lstm_pfd unreachable", chat.ActionApprove, chat.ActionDeny, chat.ActionCancel, "credentials") {
			if strings.Contains(all, bad) {
				t.Errorf("the public channel still shows %q in %s:\n%s", bad, m.TS, all)
			}
		}
	}
	if got := w.messageText(ch.ID, hdr.TS); !strings.Contains(got, "moved to a private channel") {
		t.Errorf("the old header is not a pointer:\n%s", got)
	}
	if got := w.messageText(ch.ID, req.MessageTS); !strings.Contains(got, "moved to a private channel") || !strings.Contains(got, "for access") {
		t.Errorf("the old card is not a pointer:\n%s", got)
	}

	// Resumed, not redone: one private channel, one header, one checklist,
	// one copy of the card, one pointer of each kind in public.
	if n := len(w.slack.Calls("pins.remove")); n != 2 {
		t.Errorf("pins.remove called %d times, want the failed one and its retry", n)
	}
	for what, n := range map[string]int{
		"private channels":    len(w.incidentChannels()) - 1,
		"private checklists":  w.countMessages(priv.ID, "Incident-response checklist"),
		"private headers":     w.countMessages(priv.ID, "RTO clock"),
		"private cards":       w.countMessages(priv.ID, "Restore lstm-pfd from nightly-b1"),
		"public move notices": w.countMessages(ch.ID, "because it is now a security incident"),
	} {
		want := 1
		if what == "public move notices" {
			want = 2 // the channel's pointer and the header's (the card says its own)
		}
		if n != want {
			t.Errorf("%s: %d, want %d", what, n, want)
		}
	}

	// Private: the header pinned, the pending card linked to the request.
	w.waitHeader(s, priv.ID, fmt.Sprintf("#%d restore-db", req.ID), "pending approval", "Security")
	privHdr, _ := w.headerMessage(priv.ID)
	if p := w.slack.Pins(priv.ID); len(p) != 1 || p[0] != privHdr.TS {
		t.Errorf("private pins %v, want the header %s", p, privHdr.TS)
	}
	moved, err := probe.Request(context.Background(), req.ID)
	if err != nil {
		t.Fatal(err)
	}
	if moved.Channel != priv.ID || moved.MessageTS == req.MessageTS || moved.State != store.RequestPending {
		t.Fatalf("request after the move: channel %s ts %s state %s (public %s ts %s)", moved.Channel, moved.MessageTS, moved.State, ch.ID, req.MessageTS)
	}

	// The stale public click is refused with a pointer; nothing is decided.
	if resp := postSigned(t, s.base+"/slack/interactions", "slack-secret", time.Now(), fakeslack.InteractionForm(stale).Encode()); resp.StatusCode != http.StatusOK {
		t.Fatalf("stale approve = %d", resp.StatusCode)
	}
	if got := waitEphemerals(t, w.slack, w.lead, 1); !strings.Contains(got[0], "moved to a private channel") || strings.Contains(got[0], "nightly-b1") {
		t.Errorf("stale click answered %q", got[0])
	}
	if n := w.count("SELECT count(*) FROM approvals WHERE request_id = $1", req.ID); n != 0 {
		t.Errorf("the stale public click recorded %d approvals", n)
	}

	// Approving on the private card runs it; its progress stays private.
	p, err := w.slack.ClickButton(priv.ID, moved.MessageTS, w.lead, chat.ActionApprove, strconv.FormatInt(req.ID, 10))
	if err != nil {
		t.Fatal(err)
	}
	if resp := postSigned(t, s.base+"/slack/interactions", "slack-secret", time.Now(), fakeslack.InteractionForm(p).Encode()); resp.StatusCode != http.StatusOK {
		t.Fatalf("approve = %d", resp.StatusCode)
	}
	w.waitFor("the request ran", wait, func() bool {
		r, err := probe.Request(context.Background(), req.ID)
		return err == nil && r.State == store.RequestSucceeded
	}, s.logs)
	for _, m := range w.slack.Messages(ch.ID) {
		if all := m.Text + "\n" + unescape(m.Blocks); strings.Contains(all, "nightly-b1") || strings.Contains(all, "restore-db") {
			t.Errorf("after the run the public channel shows:\n%s", all)
		}
	}
}

// messageText is the text and blocks of message ts in channel.
func (w *incidentWorld) messageText(channel, ts string) string {
	for _, m := range w.slack.Messages(channel) {
		if m.TS == ts {
			return m.Text + "\n" + unescape(m.Blocks)
		}
	}
	return ""
}
