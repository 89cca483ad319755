package chat

import "context"

// UserNames is implemented by adapters that can name a user. Timelines and
// summaries quote people as @name without mentioning (notifying) them again.
type UserNames interface {
	// UserName returns the name the platform shows for userID ("alice").
	UserName(ctx context.Context, userID string) (string, error)
}
