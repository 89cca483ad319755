package main

import (
	"context"
	"errors"

	"github.com/drbot-dev/drbot/approvals"
	"github.com/drbot-dev/drbot/bot/chat"
	"github.com/drbot-dev/drbot/commands"
	"github.com/drbot-dev/drbot/runbook"
)

// chatDirectory resolves people entries (e-mails, user groups) through the
// chat adapter, as approvers are resolved.
func chatDirectory(adapter chat.Adapter) approvals.Directory {
	dir := approvals.Directory{
		LookupByEmail: func(ctx context.Context, email string) (string, error) {
			u, err := adapter.LookupByEmail(ctx, email)
			if errors.Is(err, chat.ErrUserNotFound) {
				return "", nil
			}
			if err != nil {
				return "", err
			}
			return u.ID, nil
		},
	}
	if gl, ok := adapter.(groupLister); ok {
		dir.GroupMembers = gl.GroupMembers
	}
	return dir
}

// newAccess is who may run gated /dr commands: slack.requesters and
// slack.responders, or the incident channel's members when responders are
// unset and the adapter can list them.
func newAccess(cfg *runbook.Config, people *approvals.Resolver, adapter chat.Adapter) *commands.PeopleAccess {
	a := &commands.PeopleAccess{
		Config:   func() *runbook.Config { return cfg },
		Resolver: people,
	}
	if ml, ok := adapter.(chat.MemberLister); ok {
		a.Members = ml.ChannelMembers
	}
	return a
}
