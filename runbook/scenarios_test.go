package runbook

import (
	"strings"
	"testing"
	"time"
)

func TestScenariosParse(t *testing.T) {
	cfg, err := Parse("drbot.yaml", []byte(`slack:
  requesters: [S0ONCALL, dba@example.com]
  responders: [U0LEAD1]
services:
  - name: inflow
    scenarios:
      - name: Database corruption
        severity: high
        match: [Database, corrupt]
        estimate: 2h
        playbook: restore-db
      - name: Data breach
        severity: critical
        match: [breach]
        security: true
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cfg.Slack.Requesters, ","); got != "S0ONCALL,dba@example.com" {
		t.Errorf("requesters = %q", got)
	}
	if got := strings.Join(cfg.Slack.Responders, ","); got != "U0LEAD1" {
		t.Errorf("responders = %q", got)
	}
	sc := cfg.Services[0].Scenarios
	if len(sc) != 2 {
		t.Fatalf("scenarios = %+v", sc)
	}
	if sc[0].Name != "Database corruption" || sc[0].Severity != "high" || strings.Join(sc[0].Match, " ") != "database corrupt" ||
		sc[0].Estimate.Duration != 2*time.Hour || sc[0].Playbook != "restore-db" || sc[0].Security {
		t.Errorf("scenario 0 = %+v", sc[0])
	}
	if !sc[1].Security || sc[1].Playbook != "" {
		t.Errorf("scenario 1 = %+v", sc[1])
	}
	if cfg2, err := Parse("x.yaml", []byte("services: [{name: a}]\n")); err != nil || cfg2.Slack.Requesters != nil || cfg2.Slack.Responders != nil {
		t.Errorf("unset requesters/responders must stay nil: %v %+v", err, cfg2)
	}
}

func TestScenariosValidation(t *testing.T) {
	_, err := Parse("drbot.yaml", []byte(`slack:
  requesters: []
services:
  - name: inflow
    playbooks:
      - name: cluster-recovery
    scenarios:
      - name: A
        severity: severe
        match: []
        estimate: soon
        playbook: cluster-recovery
        security: maybe
      - name: B
        match: [x]
        playbook: nuke
      - name: a
        colour: red
`))
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{
		`drbot.yaml:2: slack.requesters: empty list: nobody could act; leave requesters out to allow everyone`,
		`drbot.yaml:9: services[0].scenarios[0].severity: "severe" is not a severity (want one of low, medium, high, critical)`,
		`drbot.yaml:10: services[0].scenarios[0].match: want at least one word`,
		`drbot.yaml:11: services[0].scenarios[0].estimate: "soon" is not a duration`,
		`drbot.yaml:13: services[0].scenarios[0].security: want true or false, got "maybe"`,
		`drbot.yaml:16: services[0].scenarios[1].playbook: "nuke" is neither an action (restore-db,`,
		`drbot.yaml:17: services[0].scenarios[2].name: duplicate scenario name "a"`,
		`drbot.yaml:17: services[0].scenarios[2].match: missing`,
		`drbot.yaml:18: services[0].scenarios[2].colour: unknown key "colour"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%s", want, err)
		}
	}
	if strings.Contains(err.Error(), "cluster-recovery\" is neither") {
		t.Errorf("a playbook name must be accepted:\n%s", err)
	}
}

func TestMatchScenario(t *testing.T) {
	sc := []Scenario{
		{Name: "pod crash", Match: []string{"pod", "crash"}},
		{Name: "db", Match: []string{"database", "corrupt"}},
		{Name: "any database", Match: []string{"database"}},
	}
	for title, want := range map[string]string{
		"Database CORRUPTED on primary": "db",
		"database slow":                 "any database",
		"Pod crash-looping; database":   "pod crash",
		"pod restarted":                 "",
		"":                              "",
	} {
		got := MatchScenario(sc, title)
		name := ""
		if got != nil {
			name = got.Name
		}
		if name != want {
			t.Errorf("%q matched %q, want %q", title, name, want)
		}
	}
}

// TestScenarioCommand: the command a scenario's playbook implies, the one
// the incident header and /dr scenarios print.
func TestScenarioCommand(t *testing.T) {
	for playbook, want := range map[string]string{
		"restore-db":       "/dr restore-db",
		"failover":         "/dr failover",
		"cluster-recovery": "/dr playbook cluster-recovery",
		"":                 "",
	} {
		if got := (Scenario{Name: "x", Playbook: playbook}).Command(); got != want {
			t.Errorf("Command() of playbook %q = %q, want %q", playbook, got, want)
		}
	}
}
