package commands

import (
	"context"
	"strings"
	"testing"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/approvals"
	"github.com/drbot-dev/drbot/bot/chat"
	"github.com/drbot-dev/drbot/runbook"
)

// TestEveryCommandDeclaresItsGate: recovery actions (every Approval command
// and the commands that reveal infrastructure) are requester-gated, the
// incident commands responder-gated, whatever registers them.
func TestEveryCommandDeclaresItsGate(t *testing.T) {
	r := NewRegistry(Deps{Incidents: noIncidents{}, Runbook: func() *runbook.Config { return &runbook.Config{} }, Actions: declared()})
	want := map[string]Gate{
		"ack": GateResponders, "resolve": GateResponders, "security": GateResponders,
		"backups": GateRequesters, "verify": GateRequesters,
		"help": GateNone, "status": GateNone, "timeline": GateNone, "cancel": GateNone, "deny": GateNone,
	}
	for _, c := range r.Commands() {
		if c.Approval && c.Gate != GateRequesters {
			t.Errorf("/dr %s needs approval but its gate is %d", c.Name, c.Gate)
		}
		if g, ok := want[c.Name]; ok && c.Gate != g {
			t.Errorf("/dr %s gate = %d, want %d", c.Name, c.Gate, g)
		}
	}
	// A change-making command registered without a gate gets the requesters'.
	if err := r.Register(Command{Name: "nuke", Summary: "x", Approval: true, Plan: echoPlan}); err != nil {
		t.Fatal(err)
	}
	if g := r.Lookup("nuke").Gate; g != GateRequesters {
		t.Errorf("an Approval command registered without a gate has gate %d", g)
	}
}

type noIncidents struct{}

func (noIncidents) Acknowledge(context.Context, string, chat.User) (chat.Message, error) {
	return chat.Plain("acked"), nil
}
func (noIncidents) Resolve(context.Context, string, chat.User, string) (chat.Message, error) {
	return chat.Plain("resolved"), nil
}
func (noIncidents) MarkSecurity(context.Context, string, chat.User, string) (chat.Message, error) {
	return chat.Plain("marked"), nil
}
func (noIncidents) Timeline(context.Context, string) (chat.Message, error) {
	return chat.Plain("timeline"), nil
}
func (noIncidents) Status(context.Context, string) (chat.Message, error) {
	return chat.Plain("status"), nil
}

// TestDispatchEnforcesGatesBeforeRun: PeopleAccess with the approvals
// resolver decides; a refused command never runs, --help stays open.
func TestDispatchEnforcesGatesBeforeRun(t *testing.T) {
	cfg := &runbook.Config{Slack: runbook.Slack{Requesters: []string{"SONCALL", "dba@example.com"}}}
	members := map[string][]string{chanInflow: {"UALICE", "UBOB"}}
	dir := approvals.Directory{
		LookupByEmail: func(_ context.Context, e string) (string, error) {
			if e == "dba@example.com" {
				return "UDBA", nil
			}
			return "", nil
		},
		GroupMembers: func(_ context.Context, g string) ([]string, error) { return []string{"UALICE"}, nil },
	}
	deps := fixtureDeps()
	deps.Incidents = noIncidents{}
	deps.Access = &PeopleAccess{
		Config:   func() *runbook.Config { return cfg },
		Resolver: approvals.NewResolver(dir, 0, nil, nil),
		Members:  func(_ context.Context, ch string) ([]string, error) { return members[ch], nil },
	}
	r := NewRegistry(deps)
	ran := 0
	r.MustRegister(Command{Name: "restore-db", Summary: "x", Approval: true, Service: ServiceImplied,
		Flags: []Flag{{Name: "dry-run", Bool: true}},
		Plan: func(context.Context, *Call) (actions.Plan, error) {
			ran++
			return actions.Plan{Summary: "planned"}, nil
		}})
	as := func(user, channel, text string) (chat.Message, error) {
		return r.Dispatch(context.Background(), chat.Command{User: chat.User{ID: user}, Channel: channel, Text: text})
	}

	for _, text := range []string{"restore-db --dry-run", "restore-db"} {
		_, err := as("UMALLORY", chanInflow, text)
		ref, ok := AsRefusal(err)
		if !ok || !strings.Contains(ref.Msg, "Only the requesters (<!subteam^SONCALL>, dba@example.com) may run /dr restore-db") {
			t.Errorf("%q by a non-requester: %v", text, err)
		}
	}
	if ran != 0 {
		t.Errorf("a refused command ran %d times", ran)
	}
	if m, err := as("UMALLORY", chanInflow, "restore-db --help"); err != nil || !strings.Contains(m.Text, "restore-db") {
		t.Errorf("help for a non-requester: %v %q", err, m.Text)
	}
	for _, u := range []string{"UALICE", "UDBA"} { // through the group, through the e-mail
		if m, err := as(u, chanInflow, "restore-db --dry-run"); err != nil || m.Text != "Dry run of /dr restore-db: planned" {
			t.Errorf("requester %s: %v %q", u, err, m.Text)
		}
	}

	// Responders unset: the channel's members.
	if _, err := as("UMALLORY", chanInflow, "resolve"); err == nil || !strings.Contains(err.Error(), "Only members of this channel may run /dr resolve") {
		t.Errorf("non-member resolve: %v", err)
	}
	if m, err := as("UBOB", chanInflow, "resolve"); err != nil || m.Text != "resolved" {
		t.Errorf("member resolve: %v %q", err, m.Text)
	}
	// Responders set: only them, members or not.
	cfg.Slack.Responders = []string{"UMALLORY"}
	if _, err := as("UBOB", chanInflow, "ack"); err == nil || !strings.Contains(err.Error(), "Only the responders (<@UMALLORY>) may run /dr ack") {
		t.Errorf("member but not responder: %v", err)
	}
	if m, err := as("UMALLORY", chanInflow, "security"); err != nil || m.Text != "marked" {
		t.Errorf("responder: %v %q", err, m.Text)
	}
	// Status and timeline stay open.
	if m, err := as("UNOBODY", chanInflow, "status"); err != nil || m.Text != "status" {
		t.Errorf("status: %v %q", err, m.Text)
	}
}
