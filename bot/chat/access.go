package chat

import "context"

// MemberLister is implemented by adapters that can list a channel's members;
// the responders gate ("unset = the incident channel's members") uses it.
type MemberLister interface {
	// ChannelMembers returns the user ids in channel.
	ChannelMembers(ctx context.Context, channel string) ([]string, error)
}

// PrivateChannels is implemented by adapters that can create private
// (invite-only) channels, which security incidents get.
type PrivateChannels interface {
	// CreatePrivateChannel creates a private channel and returns its id;
	// ErrNameTaken when the name is in use.
	CreatePrivateChannel(ctx context.Context, name string) (string, error)
}
