package shell

import (
	"context"
	"fmt"
	"slices"

	"github.com/drbot-dev/drbot/bot/chat"
)

var (
	_ chat.MemberLister    = (*Shell)(nil)
	_ chat.PrivateChannels = (*Shell)(nil)
)

// joinLocked makes the current user a member of channel id: /join and the
// move into a new incident channel after /trigger do, as joining does on Slack.
func (s *Shell) joinLocked(id string) {
	if c := s.channels[id]; c != nil && !slices.Contains(c.members, s.user) {
		c.members = append(c.members, s.user)
	}
}

// ChannelMembers implements chat.MemberLister: the users invited to the
// channel and those who joined it (/join, or the move after /trigger).
func (s *Shell) ChannelMembers(_ context.Context, ch string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.resolveLocked(ch)
	if err != nil {
		return nil, err
	}
	return slices.Clone(c.members), nil
}

// CreatePrivateChannel implements chat.PrivateChannels. The terminal shows
// every channel; a private one is marked as such when it is created.
func (s *Shell) CreatePrivateChannel(ctx context.Context, name string) (string, error) {
	id, err := s.CreateChannel(ctx, name)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	s.noticeLocked(fmt.Sprintf("#%s is private: only invited members can see it", name))
	s.mu.Unlock()
	return id, nil
}
