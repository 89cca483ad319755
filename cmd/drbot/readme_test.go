package main

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/actions/drill"
	"github.com/drbot-dev/drbot/commands"
	"github.com/drbot-dev/drbot/runbook"
)

// registrationOnly is an IncidentOps for building the registry: the
// incident commands are registered, never run.
type registrationOnly struct{ commands.IncidentOps }

var (
	readmeChatRE = regexp.MustCompile("`/dr ([a-z][a-z-]*)")
	readmeCLIRE  = regexp.MustCompile("`drbot ([a-z]+)(?: ([a-z]+))?")
	helpCmdRE    = regexp.MustCompile(`(?m)^  ([a-z]+(?: [a-z]+)?)\s{2,}`)
)

// TestREADMECommandsExist: every /dr command the README names is one the
// binary registers (with the reference config), every registered /dr
// command is named in the README, and every `drbot …` command it names is
// in drbot --help.
func TestREADMECommandsExist(t *testing.T) {
	readme, err := os.ReadFile(repoFile("README.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	raw, err := os.ReadFile(repoFile("deploy", "examples", "drbot.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := runbook.Parse("drbot.yaml", raw)
	if err != nil {
		t.Fatal(err)
	}
	reg := commands.NewRegistry(commands.Deps{
		Incidents: registrationOnly{},
		Services:  cfg.ServiceNames,
		Actions:   declaredWith(nil, cfg),
		Runbook:   func() *runbook.Config { return cfg },
		Drills:    func(context.Context, string) ([]drill.Status, time.Time, error) { return nil, time.Time{}, nil },
	})
	named := map[string]bool{}
	for _, m := range readmeChatRE.FindAllStringSubmatch(text, -1) {
		named[m[1]] = true
	}
	for name := range named {
		if reg.Lookup(name) == nil {
			t.Errorf("README names /dr %s, which drbot does not have", name)
		}
	}
	for _, c := range reg.Commands() {
		if !named[c.Name] {
			t.Errorf("/dr %s is not named in the README", c.Name)
		}
	}

	out, err := command(t, nil, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("drbot --help: %v\n%s", err, out)
	}
	cli := map[string]bool{}
	for _, m := range helpCmdRE.FindAllStringSubmatch(string(out), -1) {
		cli[m[1]] = true
	}
	if !cli["serve"] || !cli["config validate"] {
		t.Fatalf("could not read the commands of drbot --help:\n%s", out)
	}
	for _, m := range readmeCLIRE.FindAllStringSubmatch(text, -1) {
		if !cli[strings.TrimSpace(m[1]+" "+m[2])] && !cli[m[1]] {
			t.Errorf("README names `drbot %s %s`, which is not in drbot --help", m[1], m[2])
		}
	}
}
