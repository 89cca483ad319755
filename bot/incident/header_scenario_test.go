package incident

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/bot/chat"
	"github.com/drbot-dev/drbot/runbook"
	"github.com/drbot-dev/drbot/store"
)

// marksOf reads an audit row's marks as the store does (the latest row wins;
// here there is one).
func marksOf(t *testing.T, e store.AuditEvent) map[string]string {
	t.Helper()
	var d struct {
		Marks map[string]string `json:"marks"`
	}
	if err := json.Unmarshal(e.Data, &d); err != nil {
		t.Fatal(err)
	}
	return d.Marks
}

func headerFields(m chat.Message) map[string]string {
	out := map[string]string{}
	for _, bl := range m.Blocks {
		if f, ok := bl.(chat.Fields); ok {
			for _, x := range f.Fields {
				out[x.Label] = x.Value
			}
		}
	}
	return out
}

// TestHeaderShowsTheMatchedScenario: the scenario recorded when the incident
// opened is in the header (name, severity, estimate, the command its playbook
// implies) and in the timeline; no scenario, no lines.
func TestHeaderShowsTheMatchedScenario(t *testing.T) {
	opened := time.Date(2026, 11, 2, 14, 2, 0, 0, time.UTC)
	inc := store.Incident{ID: 7, PagerDutyID: "P1", Service: "lstm-pfd", Title: "Database corruption detected on lstm_pfd",
		Status: store.IncidentTriggered, OpenedAt: opened, RTO: time.Hour}
	for _, tc := range []struct {
		sc           runbook.Scenario
		scenario     string
		run          string
		timelineLine string
	}{
		{runbook.Scenario{Name: "Database corruption", Severity: "critical", Estimate: runbook.Duration{Duration: 30 * time.Minute}, Playbook: "restore-db"},
			"Database corruption (critical severity, estimated recovery 30m)", "`/dr restore-db`",
			"Scenario matched: Database corruption (critical, 30m); run /dr restore-db"},
		{runbook.Scenario{Name: "Complete cluster failure", Estimate: runbook.Duration{Duration: time.Hour}, Playbook: "cluster-recovery"},
			"Complete cluster failure (estimated recovery 1h)", "`/dr playbook cluster-recovery`",
			"Scenario matched: Complete cluster failure (1h); run /dr playbook cluster-recovery"},
		{runbook.Scenario{Name: "Single pod failure"}, "Single pod failure", "", "Scenario matched: Single pod failure"},
	} {
		e, err := scenarioAudit(inc, &tc.sc, opened)
		if err != nil {
			t.Fatal(err)
		}
		if e.Kind != store.AuditIncidentScenarioMatched || e.IncidentID == nil || *e.IncidentID != 7 {
			t.Errorf("audit row %+v", e)
		}
		f := headerFields(HeaderAt(inc, marksOf(t, e), opened.Add(time.Minute), AchievedRTO{}))
		if f["Scenario"] != tc.scenario {
			t.Errorf("Scenario field = %q, want %q", f["Scenario"], tc.scenario)
		}
		if f["Run"] != tc.run {
			t.Errorf("Run field = %q, want %q", f["Run"], tc.run)
		}
		if got := describeEvent(e); got != tc.timelineLine {
			t.Errorf("timeline = %q, want %q", got, tc.timelineLine)
		}
	}
	f := headerFields(HeaderAt(inc, map[string]string{}, opened, AchievedRTO{}))
	for _, label := range []string{"Scenario", "Run"} {
		if _, ok := f[label]; ok {
			t.Errorf("an incident without a scenario has a %s field: %+v", label, f)
		}
	}
	if !strings.HasPrefix(f["Status"], "Triggered") {
		t.Errorf("fields %+v", f)
	}
}
