package main

import (
	"strings"
	"testing"
)

// lstmScenarios is lstm-pfd's scenario table from
// ../shared/examples/runbook-v2.yaml, except that "Complete cluster failure"
// names no playbook: this test's config has no playbooks: section.
const lstmScenarios = `    scenarios:
      - name: Database corruption
        match: [database, corrupt]
        estimate: 30m
        playbook: restore-db
      - name: Model checkpoint loss
        match: [model, checkpoint]
        estimate: 20m
        playbook: restore-models
      - name: Complete cluster failure
        match: [cluster]
        estimate: 1h
      - name: Single pod failure
        match: [pod]
        estimate: 5m
`

// headerOf is the text and blocks of the incident header in channel.
func (w *incidentWorld) headerOf(channel string) string {
	for _, m := range w.slack.Messages(channel) {
		if b := unescape(m.Blocks); strings.Contains(b, "RTO clock") {
			return m.Text + "\n" + b
		}
	}
	return ""
}

// waitReply waits for a message in channel containing s and returns its text
// and blocks.
func (w *incidentWorld) waitReply(channel, s string, srv *server) string {
	w.t.Helper()
	var got string
	w.waitFor("reply "+s, wait, func() bool {
		for _, m := range w.slack.Messages(channel) {
			if all := m.Text + "\n" + unescape(m.Blocks); strings.Contains(all, s) {
				got = all
				return true
			}
		}
		return false
	}, srv.logs)
	return got
}

// TestServeScenarioInHeaderAndScenariosCommand runs the real `drbot serve`
// against the fake Slack and PagerDuty with the reference config's scenario
// table: an alert matching a scenario opens an incident whose header names
// it with its estimate and the command to run, and whose timeline and audit
// log record the match; an alert matching nothing has no scenario line;
// /dr scenarios lists the table in the runbook's order.
func TestServeScenarioInHeaderAndScenariosCommand(t *testing.T) {
	w := newIncidentWorld(t)
	w.withConfig("", lstmScenarios)
	s := w.serve()
	_, ch := w.openIncident(s, "Database corruption detected on lstm_pfd")
	header := w.headerOf(ch.ID)
	for _, want := range []string{"Scenario", "Database corruption (estimated recovery 30m)", "`/dr restore-db`"} {
		if !strings.Contains(header, want) {
			t.Errorf("header lacks %q:\n%s", want, header)
		}
	}
	if n := w.count(`SELECT count(*) FROM audit_events WHERE kind = 'incident.scenario_matched'
		AND data->>'scenario' = 'Database corruption' AND data->>'estimate' = '30m' AND data->>'command' = '/dr restore-db'`); n != 1 {
		t.Errorf("%d incident.scenario_matched audit rows, want 1", n)
	}
	alice := w.onCall(ch.ID)
	w.slash(s, alice, ch.ID, "timeline")
	w.waitFor("timeline with the match", wait, func() bool {
		return w.countMessages(ch.ID, "Scenario matched: Database corruption (30m); run /dr restore-db") == 1
	}, s.logs)

	// Inside the incident channel the service is implied.
	w.slash(s, alice, ch.ID, "scenarios")
	got := w.waitReply(ch.ID, "Disaster scenarios of lstm-pfd", s)
	last := -1
	for _, row := range []string{
		"1. *Database corruption* — estimate 30m",
		"2. *Model checkpoint loss* — estimate 20m",
		"3. *Complete cluster failure* — estimate 1h",
		"4. *Single pod failure* — estimate 5m",
	} {
		i := strings.Index(got, row)
		if i < 0 || i < last {
			t.Errorf("/dr scenarios lacks %q after the previous row:\n%s", row, got)
		}
		last = i
	}
	for _, want := range []string{"match: database, corrupt · run `/dr restore-db`", "run `/dr restore-models`", "match: pod · no playbook"} {
		if !strings.Contains(got, want) {
			t.Errorf("/dr scenarios lacks %q:\n%s", want, got)
		}
	}
	w.slash(s, w.lead, w.announce, "scenarios lstm-pfd")
	if got := w.waitReply(w.announce, "Disaster scenarios of lstm-pfd", s); !strings.Contains(got, "1. *Database corruption*") {
		t.Errorf("/dr scenarios lstm-pfd outside the incident = %q", got)
	}

	// An alert that matches no scenario: no scenario line, no audit row.
	inc := w.pd.CreateIncident("PLSTMPF", "Dashboard latency high", "high")
	if code := s.webhook(t, w.pd.WebhookBody("triggered", inc.ID), pdSecret); code != 202 {
		t.Fatalf("webhook = %d", code)
	}
	var other string
	w.waitFor("second incident channel set up", wait, func() bool {
		for _, c := range w.incidentChannels() {
			if c.ID != ch.ID && w.countMessages(c.ID, "Incident-response checklist") == 1 {
				other = c.ID
				return true
			}
		}
		return false
	}, s.logs)
	header = w.headerOf(other)
	if !strings.Contains(header, "Dashboard latency high") || strings.Contains(header, "Scenario") || strings.Contains(header, "/dr restore-db") {
		t.Errorf("header of an incident matching no scenario:\n%s", header)
	}
	if n := w.count(`SELECT count(*) FROM audit_events WHERE kind = 'incident.scenario_matched'`); n != 1 {
		t.Errorf("%d incident.scenario_matched audit rows after an unmatched alert, want 1", n)
	}
}
