package shell

import (
	"context"
	"slices"
	"strings"
	"testing"
)

// TestChannelMembers: everyone is in #general; an incident channel has the
// invited and those who joined it; private channels are created.
func TestChannelMembers(t *testing.T) {
	ctx := context.Background()
	s := New(Options{User: "alice"})
	id, err := s.CreatePrivateChannel(ctx, "incident-x-sec")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Invite(ctx, id, "carol"); err != nil {
		t.Fatal(err)
	}
	s.as("bob")
	if m, _ := s.ChannelMembers(ctx, GeneralID); !slices.Equal(m, []string{"alice", "bob"}) {
		t.Errorf("#general members = %v", m)
	}
	if m, _ := s.ChannelMembers(ctx, id); !slices.Equal(m, []string{"carol"}) {
		t.Errorf("members before /join = %v", m)
	}
	s.join("incident-x-sec")
	if m, _ := s.ChannelMembers(ctx, id); !slices.Equal(m, []string{"carol", "bob"}) {
		t.Errorf("members after /join = %v", m)
	}
	if got := readableMentions("ask <!subteam^S0ONCALL> or <@bob>"); !strings.Contains(got, "@S0ONCALL") || !strings.Contains(got, "@bob") {
		t.Errorf("readable mentions = %q", got)
	}
}
