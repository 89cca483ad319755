package commands

import (
	"strings"
	"testing"
)

// TestDrillServiceAfterItsProcedure: /dr drill <procedure> <service> takes the
// service after its first argument, implied inside an incident channel;
// usage and refusals say so.
func TestDrillServiceAfterItsProcedure(t *testing.T) {
	r := NewRegistry(fixtureDeps())
	r.MustRegister(Command{Name: "drill", Summary: "Rehearse", Approval: true, Service: ServiceImplied, ServiceLast: true,
		Args: []Arg{{Name: "procedure", Help: "what"}}, Flags: []Flag{{Name: "keep", Bool: true, Help: "keep"}}, Plan: echoPlan,
		Examples: []string{"/dr drill restore-db lstm-pfd"}})
	if u := r.Lookup("drill").Usage(); u != "/dr drill <procedure> <service> [--keep]" {
		t.Errorf("usage %q", u)
	}
	for _, tc := range []struct{ channel, text, want string }{
		{chanOps, "drill restore-db inflow", `drill service=inflow procedure="restore-db"`},
		{chanOps, "drill restore-db LSTM-PFD --keep", `drill service=lstm-pfd procedure="restore-db" --keep!="true"`},
		{chanInflow, "drill restore-db", `drill service=inflow procedure="restore-db"`},
		{chanInflow, "drill failover inflow", `drill service=inflow procedure="failover"`},
	} {
		m, err := dispatch(r, tc.channel, tc.text)
		if err != nil {
			t.Errorf("%s: %v", tc.text, err)
			continue
		}
		if !strings.Contains(m.Text, tc.want) {
			t.Errorf("%s: got %q, want %q", tc.text, m.Text, tc.want)
		}
	}
	for _, tc := range []struct{ channel, text, want string }{
		{chanOps, "drill restore-db", "missing <service>"},
		{chanOps, "drill restore-db nope", `unknown service "nope"`},
		{chanOps, "drill inflow", "missing <procedure>"},
		{chanInflow, "drill restore-db lstm-pfd", "this channel is inflow's incident channel"},
		{chanOps, "drill restore-db inflow extra", `unknown service "extra"`},
		{chanInflow, "drill restore-db inflow extra", `too many arguments`},
	} {
		_, err := dispatch(r, tc.channel, tc.text)
		if rf, ok := AsRefusal(err); !ok || !strings.Contains(rf.Msg, tc.want) {
			t.Errorf("%s: %v, want a refusal with %q", tc.text, err, tc.want)
		}
	}
}
