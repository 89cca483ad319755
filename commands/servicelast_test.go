package commands

import (
	"strings"
	"testing"
)

// playbookLike is a command whose service may come after its arguments
// (/dr playbook <name> [<request>] <service>).
func playbookLike() *Registry {
	r := newFixtureRegistry()
	r.MustRegister(Command{
		Name: "playbook", Summary: "Run a playbook", Service: ServiceImplied, ServiceLast: true, Approval: true,
		Args: []Arg{{Name: "name", Help: "Playbook."}, {Name: "request", Help: "With resume.", Optional: true}},
		Plan: echoPlan,
	})
	return r
}

func TestDispatchServiceLast(t *testing.T) {
	r := playbookLike()
	for _, tc := range []struct{ channel, text, want string }{
		{chanOps, "playbook cluster-recovery lstm-pfd", `playbook service=lstm-pfd name="cluster-recovery"`},
		{chanOps, "playbook lstm-pfd cluster-recovery", `playbook service=lstm-pfd name="cluster-recovery"`},
		{chanOps, "playbook resume 42 inflow", `playbook service=inflow name="resume" request="42"`},
		{chanInflow, "playbook cluster-recovery", `playbook service=inflow name="cluster-recovery"`},
		{chanInflow, "playbook cluster-recovery inflow", `playbook service=inflow name="cluster-recovery"`},
		{chanInflow, "playbook resume 42", `playbook service=inflow name="resume" request="42"`},
	} {
		m, err := dispatch(r, tc.channel, tc.text)
		if err != nil {
			t.Errorf("[%s] %q: %v", tc.channel, tc.text, err)
			continue
		}
		if m.Text != tc.want {
			t.Errorf("[%s] %q bound\n  %s\nwant\n  %s", tc.channel, tc.text, m.Text, tc.want)
		}
	}
	for _, tc := range []struct{ channel, text, want string }{
		{chanOps, "playbook cluster-recovery", "missing <service> — usage: /dr playbook <name> [<request>] <service>; configured services"},
		{chanOps, "playbook cluster-recovery lstm", `unknown service "lstm"`},
		{chanInflow, "playbook cluster-recovery lstm-pfd", "this channel is inflow's incident channel"},
	} {
		_, err := dispatch(r, tc.channel, tc.text)
		if rf, ok := AsRefusal(err); !ok || !strings.Contains(rf.Msg, tc.want) {
			t.Errorf("[%s] %q: %v, want a refusal containing %q", tc.channel, tc.text, err, tc.want)
		}
	}
}
