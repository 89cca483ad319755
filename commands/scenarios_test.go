package commands

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/drbot-dev/drbot/bot/chat"
	"github.com/drbot-dev/drbot/runbook"
)

func scenariosRegistry(t *testing.T) *Registry {
	t.Helper()
	path := filepath.Join("testdata", "scenarios.yaml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := runbook.Parse(path, b)
	if err != nil {
		t.Fatal(err)
	}
	deps := fixtureDeps()
	deps.Services = cfg.ServiceNames
	deps.Runbook = func() *runbook.Config { return cfg }
	return NewRegistry(deps)
}

// TestScenariosCommand: /dr scenarios lists the service's table in the
// runbook's order (implied inside an incident channel), with help generated
// from its declaration; it is open to everyone and needs no approval.
func TestScenariosCommand(t *testing.T) {
	r := scenariosRegistry(t)
	c := r.Lookup("scenarios")
	if c == nil || c.Approval || c.Gate != GateNone {
		t.Fatalf("scenarios command = %+v, want registered, read-only, open to everyone", c)
	}
	for _, tc := range []struct{ golden, channel, text string }{
		{"scenarios-lstm-pfd", chanOps, "scenarios lstm-pfd"},
		{"scenarios-lstm-pfd", chanLSTM, "scenarios"}, // the incident's service
		{"scenarios-inflow", chanOps, "scenarios INFLOW"},
		{"scenarios-quiet", chanOps, "scenarios quiet"},
		{"help-scenarios", chanOps, "help scenarios"},
	} {
		t.Run(tc.golden+"/"+tc.text, func(t *testing.T) {
			m, err := r.Dispatch(context.Background(), chat.Command{User: chat.User{ID: "U1"}, Channel: tc.channel, Text: tc.text})
			if err != nil {
				t.Fatalf("Dispatch(%q): %v", tc.text, err)
			}
			checkGolden(t, tc.golden, renderPlain(m))
		})
	}
	if _, err := r.Dispatch(context.Background(), chat.Command{Channel: chanOps, Text: "scenarios nope"}); err == nil {
		t.Error("scenarios of an unknown service: want a refusal")
	} else if _, ok := AsRefusal(err); !ok {
		t.Errorf("scenarios of an unknown service: %v is not a refusal", err)
	}
	if NewRegistry(Deps{}).Lookup("scenarios") != nil {
		t.Error("scenarios registered without a runbook")
	}
}
