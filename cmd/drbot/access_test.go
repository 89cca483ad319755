package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/internal/fakeslack"
	"github.com/drbot-dev/drbot/runbook"
)

// ephemeralsTo returns the texts (with their blocks) shown privately to user.
func ephemeralsTo(s *fakeslack.Server, user string) []string {
	var out []string
	for _, e := range s.Ephemerals() {
		if e.User == user {
			out = append(out, e.Text+"\n"+unescape(e.Blocks))
		}
	}
	return out
}

// waitEphemerals waits until user has been shown n private messages.
func waitEphemerals(t *testing.T, s *fakeslack.Server, user string, n int) []string {
	t.Helper()
	if !s.WaitFor(wait, func() bool { return len(ephemeralsTo(s, user)) >= n }) {
		t.Fatalf("%s was shown %d private messages, want %d: %q", user, len(ephemeralsTo(s, user)), n, ephemeralsTo(s, user))
	}
	return ephemeralsTo(s, user)
}

// TestRequestersGateRecoveryActions drives `drbot serve`'s wiring (the Slack
// client against the fake Slack over HTTP, the PostgreSQL store, signed slash
// commands): with slack.requesters set, someone else's restore-db and its dry
// run are refused, naming who may, before anything is planned or stored; a
// member of a listed user group may; with requesters unset everyone may.
func TestRequestersGateRecoveryActions(t *testing.T) {
	w := newWorld(t, "15m")
	cfg, err := runbook.Parse("e2e.yaml", []byte(`
slack:
  approvers: [UBOB, SDBA, carol@example.com]
  requesters: [SONCALL, carol@example.com]
services:
  - name: inflow
    pagerduty:
      service_ids: [PINFLOW]
`))
	if err != nil {
		t.Fatal(err)
	}
	w.cfg = cfg
	w.slack.AddUserGroup("SONCALL", alice)
	in := startInstance(t, w)
	probe := startProbe(t, w)

	const who = "Only the requesters (<!subteam^SONCALL>, carol@example.com) may run /dr restore-db"
	in.command(t, w, mallory, "restore-db --dry-run")
	in.command(t, w, mallory, "restore-db --reason because")
	in.command(t, w, mallory, "backups")
	// Slash commands are answered concurrently: the replies come in any order.
	got := waitEphemerals(t, w.slack, mallory, 3)
	restores, backups := 0, 0
	for _, r := range got {
		switch {
		case strings.Contains(r, who):
			restores++
		case strings.Contains(r, "Only the requesters (<!subteam^SONCALL>, carol@example.com) may run /dr backups"):
			backups++
		}
		if strings.Contains(r, "Dry run") || strings.Contains(r, "test:restore-db") {
			t.Errorf("a refused requester was shown the plan: %q", r)
		}
	}
	if restores != 2 || backups != 1 {
		t.Errorf("replies to mallory = %q, want two restore-db refusals and one backups refusal naming the requesters", got)
	}
	if rs, err := probe.RecentRequests(context.Background(), "inflow", 10); err != nil || len(rs) != 0 {
		t.Fatalf("refused requests were stored: %+v, %v", rs, err)
	}
	var n int
	if err := probe.Pool().QueryRow(context.Background(), "SELECT count(*) FROM audit_events WHERE kind LIKE 'request.%'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d request audit rows after refusals", n)
	}

	// alice is in the SONCALL user group (usergroups.users.list).
	in.command(t, w, alice, "restore-db --dry-run")
	if got := waitEphemerals(t, w.slack, alice, 1); !strings.Contains(got[0], "Dry run") {
		t.Errorf("a requester's dry run = %q", got[0])
	}
	in.command(t, w, alice, "restore-db --reason corrupt")
	if _, id := w.card(t, probe, 0); id == 0 {
		t.Error("no request from a requester")
	}
}

// TestRequestersUnsetLetEveryoneRequest: without slack.requesters anyone in
// the workspace may still plan and request, as before.
func TestRequestersUnsetLetEveryoneRequest(t *testing.T) {
	w := newWorld(t, "15m")
	in := startInstance(t, w)
	probe := startProbe(t, w)
	in.command(t, w, mallory, "restore-db --dry-run")
	if got := waitEphemerals(t, w.slack, mallory, 1); !strings.Contains(got[0], "Dry run") {
		t.Errorf("dry run with requesters unset = %q", got[0])
	}
	in.command(t, w, mallory, "restore-db")
	w.card(t, probe, 0)
}

// slash posts a signed /dr command to a drbot serve process.
func (w *incidentWorld) slash(s *server, user, channel, text string) {
	w.t.Helper()
	form := fakeslack.SlashCommand{Text: text, UserID: user, UserName: "u", ChannelID: channel, ChannelName: "incident"}.Form().Encode()
	resp := postSigned(w.t, s.base+"/slack/commands", "slack-secret", time.Now(), form)
	if resp.StatusCode != 200 {
		w.t.Fatalf("slash command = %d", resp.StatusCode)
	}
}

// withConfig rewrites the world's runbook: extraSlack goes under slack:,
// extraService at the end of the lstm-pfd service.
func (w *incidentWorld) withConfig(extraSlack, extraService string) {
	w.t.Helper()
	b, err := readFile(w.config)
	if err != nil {
		w.t.Fatal(err)
	}
	cfg := strings.Replace(string(b), "slack:\n", "slack:\n"+extraSlack, 1) + extraService
	if err := writeFile(w.config, cfg); err != nil {
		w.t.Fatal(err)
	}
}

// openIncident triggers a PagerDuty incident and waits for its channel.
func (w *incidentWorld) openIncident(s *server, title string) (pdID string, channel fakeslack.Channel) {
	w.t.Helper()
	inc := w.pd.CreateIncident("PLSTMPF", title, "high")
	if code := s.webhook(w.t, w.pd.WebhookBody("triggered", inc.ID), pdSecret); code != 202 {
		w.t.Fatalf("webhook = %d", code)
	}
	w.waitFor("incident channel set up", wait, func() bool {
		chs := w.incidentChannels()
		return len(chs) == 1 && w.countMessages(chs[0].ID, "Incident-response checklist") == 1
	}, s.logs)
	return inc.ID, w.incidentChannels()[0]
}

// TestRespondersGateIncidentCommands runs the real `drbot serve` against the
// fake Slack and PagerDuty: with slack.responders unset, someone who is not
// in the incident channel cannot resolve it (nor does PagerDuty hear of it);
// after joining they can act. With responders set, only they can.
func TestRespondersGateIncidentCommands(t *testing.T) {
	t.Run("unset: channel members", func(t *testing.T) {
		w := newIncidentWorld(t)
		eve := w.slack.AddUser(fakeslack.User{Name: "eve", Email: "eve@example.com"})
		s := w.serve()
		pdID, ch := w.openIncident(s, "Dashboard down")
		w.slash(s, eve, ch.ID, "resolve it was me")
		got := waitEphemerals(t, w.slack, eve, 1)
		if !strings.Contains(got[0], "Only members of this channel may run /dr resolve") {
			t.Errorf("non-member resolve = %q", got[0])
		}
		if inc, _ := w.pd.Incident(pdID); inc.Status != "triggered" {
			t.Errorf("PagerDuty incident is %s after a refused resolve", inc.Status)
		}
		if n := w.count("SELECT count(*) FROM incidents WHERE status = 'triggered'"); n != 1 {
			t.Errorf("incident changed by a refused resolve")
		}
		w.slack.JoinChannel(ch.ID, eve)
		w.slash(s, eve, ch.ID, "ack")
		if got := waitEphemerals(t, w.slack, eve, 2); !strings.Contains(got[1], "Acknowledged") {
			t.Errorf("member ack = %q", got[1])
		}
	})
	t.Run("set: only the responders", func(t *testing.T) {
		w := newIncidentWorld(t)
		w.slack.AddUserGroup("SLEADS", w.lead)
		w.withConfig("  responders: [SLEADS, dba@example.com]\n", "")
		s := w.serve()
		pdID, ch := w.openIncident(s, "Dashboard down")
		alice := w.onCall(ch.ID) // the on-call, invited by the bot
		w.slash(s, alice, ch.ID, "resolve")
		got := waitEphemerals(t, w.slack, alice, 1)
		if !strings.Contains(got[0], "Only the responders (<!subteam^SLEADS>, dba@example.com) may run /dr resolve") {
			t.Errorf("channel member but not responder = %q", got[0])
		}
		if inc, _ := w.pd.Incident(pdID); inc.Status != "triggered" {
			t.Errorf("PagerDuty incident is %s after a refused resolve", inc.Status)
		}
		w.slash(s, w.lead, ch.ID, "resolve fixed")
		if got := waitEphemerals(t, w.slack, w.lead, 1); !strings.Contains(got[0], "Resolved") {
			t.Errorf("responder resolve = %q", got[0])
		}
		if inc, _ := w.pd.Incident(pdID); inc.Status != "resolved" {
			t.Errorf("PagerDuty incident is %s after the responder resolved it", inc.Status)
		}
	})
}

// TestSecurityScenarioOpensPrivateChannel: an alert whose title matches a
// scenario with security: true opens a private channel, and the announcement
// gives neither its title nor its channel.
func TestSecurityScenarioOpensPrivateChannel(t *testing.T) {
	w := newIncidentWorld(t)
	w.withConfig("", "    scenarios:\n      - name: Data breach\n        severity: critical\n        match: [breach]\n        security: true\n")
	s := w.serve()
	_, ch := w.openIncident(s, "Customer data BREACH suspected")
	if !ch.Private {
		t.Errorf("security scenario channel %s is public", ch.Name)
	}
	w.waitFor("announcement", wait, func() bool { return w.countMessages(w.announce, "security incident") == 1 }, s.logs)
	if w.countMessages(w.announce, "BREACH")+w.countMessages(w.announce, ch.ID) != 0 {
		t.Errorf("the announcement leaked the title or channel: %+v", w.slack.Messages(w.announce))
	}
	if n := w.count("SELECT count(*) FROM incidents WHERE security"); n != 1 {
		t.Errorf("incident not recorded as security")
	}
}

// TestSecurityCommandMovesToPrivateChannel: /dr security on an open incident
// with a public channel creates <prefix>-<service>-<date>-sec, private, with
// the channel's people in it; the public channel keeps only a pointer, and
// later incident posts go to the private channel.
func TestSecurityCommandMovesToPrivateChannel(t *testing.T) {
	w := newIncidentWorld(t)
	s := w.serve()
	pdID, ch := w.openIncident(s, "Dashboard down")
	if ch.Private {
		t.Fatal("an ordinary incident's channel is private")
	}
	alice := w.onCall(ch.ID)
	w.slash(s, alice, ch.ID, "security credentials in a public bucket")
	if got := waitEphemerals(t, w.slack, alice, 1); !strings.Contains(got[0], "private channel") {
		t.Errorf("security reply = %q", got[0])
	}
	name := ch.Name + "-sec"
	var priv fakeslack.Channel
	w.waitFor("private channel with the header", wait, func() bool {
		var ok bool
		priv, ok = w.slack.ChannelByName(name)
		return ok && w.countMessages(priv.ID, "Incident-response checklist") == 1 && w.countMessages(ch.ID, "moved to a private channel") == 1
	}, s.logs)
	if !priv.Private || !containsAll(priv.Members, alice) {
		t.Errorf("private channel %+v", priv)
	}
	w.waitFor("marker's line in the private channel", wait, func() bool { return w.countMessages(priv.ID, "credentials in a public bucket") == 1 }, s.logs)
	if w.countMessages(ch.ID, "credentials in a public bucket") != 0 {
		t.Error("the reason reached the public channel")
	}
	if n := w.count("SELECT count(*) FROM incidents WHERE channel = $1 AND public_channel = $2", priv.ID, ch.ID); n != 1 {
		t.Errorf("incident not relinked to the private channel")
	}
	// Later posts (PagerDuty's acknowledgement) go to the private channel.
	w.pd.SetIncidentStatus(pdID, "acknowledged", "PALICE")
	if code := s.webhook(t, w.pd.WebhookBody("acknowledged", pdID), pdSecret); code != 202 {
		t.Fatalf("ack webhook = %d", code)
	}
	w.waitFor("ack line in the private channel", wait, func() bool { return w.countMessages(priv.ID, "Acknowledged in PagerDuty by Alice") == 1 }, s.logs)
	if w.countMessages(ch.ID, "Acknowledged in PagerDuty") != 0 {
		t.Error("a post after the move went to the public channel")
	}
	// Commands in the public channel say where the incident went, nothing more.
	w.slash(s, alice, ch.ID, "status")
	if got := waitEphemerals(t, w.slack, alice, 2); !strings.Contains(got[1], "moved to a private channel") || strings.Contains(got[1], "Dashboard") {
		t.Errorf("status in the public channel = %q", got[1])
	}
}

func containsAll(have []string, want ...string) bool {
	for _, x := range want {
		found := false
		for _, h := range have {
			if h == x {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func readFile(p string) ([]byte, error) { return os.ReadFile(p) }

func writeFile(p, s string) error { return os.WriteFile(p, []byte(s), 0o600) }
