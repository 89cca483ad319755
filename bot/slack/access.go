package slack

import (
	"context"
	"fmt"

	"github.com/slack-go/slack"

	"github.com/drbot-dev/drbot/bot/chat"
)

// CreatePrivateChannel creates a private channel (conversations.create with
// is_private, scope groups:write) and returns its id; the error wraps
// chat.ErrNameTaken when the name is in use. It implements chat.PrivateChannels.
func (c *Client) CreatePrivateChannel(ctx context.Context, name string) (string, error) {
	ch, err := c.api.CreateConversationContext(ctx, slack.CreateConversationParams{ChannelName: name, IsPrivate: true})
	if err != nil {
		if ErrorCode(err) == "name_taken" {
			return "", fmt.Errorf("create private channel #%s: %w: %w", name, chat.ErrNameTaken, c.wrap("conversations.create", err))
		}
		return "", fmt.Errorf("create private channel #%s: %w", name, c.wrap("conversations.create", err))
	}
	return ch.ID, nil
}

// membersPageSize is how many members one conversations.members call asks for.
const membersPageSize = 1000

// ChannelMembers returns the user ids in channel (conversations.members, page
// by page). It implements chat.MemberLister.
func (c *Client) ChannelMembers(ctx context.Context, channel string) ([]string, error) {
	params := &slack.GetUsersInConversationParameters{ChannelID: channel, Limit: membersPageSize}
	var out []string
	for {
		ids, next, err := c.api.GetUsersInConversationContext(ctx, params)
		if err != nil {
			return nil, fmt.Errorf("members of channel %s: %w", channel, c.wrap("conversations.members", err))
		}
		out = append(out, ids...)
		if next == "" || next == params.Cursor {
			return out, nil
		}
		params.Cursor = next
	}
}
