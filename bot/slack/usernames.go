package slack

import (
	"context"
	"fmt"

	"github.com/drbot-dev/drbot/bot/chat"
)

var _ chat.UserNames = (*Client)(nil)

// UserName returns the name Slack shows for a user (users.info): the
// display name, else the handle.
func (c *Client) UserName(ctx context.Context, userID string) (string, error) {
	u, err := c.api.GetUserInfoContext(ctx, userID)
	if err != nil {
		return "", fmt.Errorf("name of Slack user %s: %w", userID, c.wrap("users.info", err))
	}
	if u.Profile.DisplayName != "" {
		return u.Profile.DisplayName, nil
	}
	return u.Name, nil
}
