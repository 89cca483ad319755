package commands

import (
	"context"
	"errors"
	"fmt"

	"github.com/drbot-dev/drbot/store"
)

// ChannelServices returns the Deps.ServiceForChannel function for st: the
// service of the incident whose channel this is. It reads the store
// directly, so resolving a command's service never calls back into the bot.
func ChannelServices(st store.Incidents) func(ctx context.Context, channel string) (string, bool, error) {
	return func(ctx context.Context, channel string) (string, bool, error) {
		inc, err := st.IncidentByChannel(ctx, channel)
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return "", false, nil
			}
			return "", false, fmt.Errorf("incident for channel %s: %w", channel, err)
		}
		return inc.Service, true, nil
	}
}
