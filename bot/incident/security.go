package incident

// Security incidents live in private channels. An incident that is security
// when it opens (a scenario with security: true) gets a private channel from
// the start; one marked with /dr security while its channel is public moves:
// Slack cannot make a public channel private, so the bot creates
// <prefix>-<service>-<yyyymmdd>-sec, invites the people who were in the public
// channel and the responders, posts the header and checklist there, links the
// incident to it, and leaves in the public channel only a pointer saying whom
// to ask for access. From then on every incident post goes to the private
// channel.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/riverqueue/river"

	"github.com/drbot-dev/drbot/bot/chat"
	"github.com/drbot-dev/drbot/internal/usererr"
	"github.com/drbot-dev/drbot/store"
)

// KindIncidentSecure moves a security incident to a private channel.
const KindIncidentSecure = store.KindIncidentSecure

// SecureArgs moves incident IncidentID to a private channel; Line is what is
// posted there about who marked it, MarkedBy the marker's user id.
type SecureArgs struct {
	IncidentID int64  `json:"incident_id"`
	Line       string `json:"line"`
	MarkedBy   string `json:"marked_by"`
}

// Kind implements store.JobArgs and river.JobArgs.
func (SecureArgs) Kind() string { return KindIncidentSecure }

// InsertOpts makes one move per incident.
func (SecureArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// Marks of the move, each step done once.
const (
	markSecureChannel   = "secure.channel"
	markSecureTopic     = "secure.topic"
	markSecureInvited   = "secure.invited"
	markSecureHeader    = "secure.header"
	markSecureChecklist = "secure.checklist"
	markSecureMoved     = "secure.moved"
)

// channelMover is implemented by the store's incident transactions
// (postgres): relink an incident to a new channel, remembering the old one.
type channelMover interface {
	MoveChannel(ctx context.Context, id int64, channel string) (from string, err error)
}

// publicChannels is implemented by stores that can find the incident that
// moved away from a channel.
type publicChannels interface {
	IncidentByPublicChannel(ctx context.Context, channel string) (store.Incident, error)
}

// SecureChannelName is the private channel a security incident moves to:
// <prefix>-<service>-<yyyymmdd>-sec, "-2", "-3"… on collision, lowercase and
// at most MaxChannelName characters (the service name is shortened).
func SecureChannelName(prefix, service string, t time.Time, attempt int) string {
	suffix := "-sec"
	if attempt >= 2 {
		suffix += "-" + strconv.Itoa(attempt)
	}
	base := ChannelName(prefix, service, t, 1)
	if len(base)+len(suffix) > MaxChannelName {
		// Shorten the part before the date, never the date or the suffix.
		date := base[len(base)-9:] // "-yyyymmdd"
		head := strings.TrimRight(base[:MaxChannelName-len(suffix)-len(date)], "-_")
		base = head + date
	}
	return base + suffix
}

// canPrivate reports whether the chat adapter can create private channels.
func (b *Lifecycle) canPrivate() bool {
	_, ok := b.chat.(chat.PrivateChannels)
	return ok
}

// createPrivate creates a private channel, or a public one (logged) when the
// adapter has no private channels.
func (b *Lifecycle) createPrivate(ctx context.Context, name string) (string, error) {
	if pc, ok := b.chat.(chat.PrivateChannels); ok {
		return pc.CreatePrivateChannel(ctx, name)
	}
	b.log.WarnContext(ctx, "the chat adapter cannot create private channels: the security incident's channel is public", "name", name)
	return b.chat.CreateChannel(ctx, name)
}

// movedRefusal is the answer to incident commands in a channel a security
// incident left; nil when no incident left channel, an internal error when
// the store cannot tell (never a silent "not moved").
func (b *Lifecycle) movedRefusal(ctx context.Context, channel string) error {
	pcs, ok := b.store.(publicChannels)
	if !ok || channel == "" {
		return nil
	}
	if _, err := pcs.IncidentByPublicChannel(ctx, channel); errors.Is(err, store.ErrNotFound) {
		return nil
	} else if err != nil {
		return fmt.Errorf("look up the incident that left channel %s: %w", channel, err)
	}
	return usererr.Refusef("This incident moved to a private channel because it is a security incident; %s", b.askForAccess(""))
}

// askForAccess says whom to ask for access to a security incident's channel.
func (b *Lifecycle) askForAccess(markedBy string) string {
	if r := b.cfg.Slack.Responders; len(r) > 0 {
		return "ask the responders (" + chat.People(r) + ") for access."
	}
	if markedBy != "" {
		return "ask <@" + markedBy + "> for access."
	}
	return "ask the incident's responders for access."
}

// secureIncident is the incident.secure worker.
func (b *Lifecycle) secureIncident(ctx context.Context, a SecureArgs) error {
	inc, err := b.store.Incident(ctx, a.IncidentID)
	if err != nil {
		return err
	}
	marks, err := b.lc.st.IncidentMarks(ctx, inc.ID)
	if err != nil {
		return err
	}
	if _, done := marks[markSecureMoved]; done {
		return nil
	}
	if inc.Channel == "" {
		return errors.New("incident channel not set up yet") // retried
	}
	public := inc.Channel
	if err := b.step(ctx, inc.ID, marks, markSecureChannel, store.AuditIncidentSecureChannelCreated, func() (string, error) {
		for attempt := 1; attempt <= maxChannelAttempts; attempt++ {
			name := SecureChannelName(b.cfg.Slack.ChannelPrefix, inc.Service, inc.OpenedAt, attempt)
			id, err := b.createPrivate(ctx, name)
			if err == nil {
				b.log.InfoContext(ctx, "security incident channel created", "incident", inc.ID, "channel", id, "name", name)
				return id, nil
			}
			if !errors.Is(err, chat.ErrNameTaken) {
				return "", fmt.Errorf("create private channel #%s: %w", name, err)
			}
		}
		return "", fmt.Errorf("create private channel: %s and %d numbered variants are all taken",
			SecureChannelName(b.cfg.Slack.ChannelPrefix, inc.Service, inc.OpenedAt, 1), maxChannelAttempts-1)
	}); err != nil {
		return err
	}
	private := marks[markSecureChannel]
	if err := b.step(ctx, inc.ID, marks, markSecureTopic, store.AuditIncidentSecureTopicSet, func() (string, error) {
		if err := b.chat.SetTopic(ctx, private, topic(inc)); err != nil {
			b.log.WarnContext(ctx, "could not set the private channel's topic", "incident", inc.ID, "err", err)
			return "failed", nil
		}
		return "", nil
	}); err != nil {
		return err
	}
	if err := b.step(ctx, inc.ID, marks, markSecureInvited, store.AuditIncidentSecureInvited, func() (string, error) {
		var ids []string
		if ml, ok := b.chat.(chat.MemberLister); ok {
			members, err := ml.ChannelMembers(ctx, public)
			if err != nil {
				return "", fmt.Errorf("members of the public incident channel: %w", err)
			}
			ids = append(ids, members...)
		}
		responders, _ := b.resolvePeople(ctx, b.cfg.Slack.Responders)
		ids = append(ids, responders...)
		if a.MarkedBy != "" {
			ids = append(ids, a.MarkedBy)
		}
		slices.Sort(ids)
		ids = slices.Compact(ids)
		if len(ids) == 0 {
			return "nobody", nil
		}
		if err := b.chat.Invite(ctx, private, ids...); err != nil {
			b.log.WarnContext(ctx, "inviting to the private incident channel failed", "incident", inc.ID, "err", err)
		}
		return strings.Join(ids, ","), nil
	}); err != nil {
		return err
	}
	if err := b.step(ctx, inc.ID, marks, markSecureHeader, store.AuditIncidentSecureHeaderPosted, func() (string, error) {
		cur, err := b.store.Incident(ctx, inc.ID)
		if err != nil {
			return "", err
		}
		cur.Security = true
		ref, err := b.chat.Post(ctx, private, b.header(ctx, cur, marks))
		if err != nil {
			return "", fmt.Errorf("post header in the private channel: %w", err)
		}
		return ref.TS, nil
	}); err != nil {
		return err
	}
	// Audited like the public header's pin (a setup step the timeline hides).
	if err := b.step(ctx, inc.ID, marks, markSecureHeader+".pinned", store.AuditIncidentHeaderPosted, func() (string, error) {
		return b.pin(ctx, inc.ID, chat.MessageRef{Channel: private, TS: marks[markSecureHeader]}), nil
	}); err != nil {
		return err
	}
	if err := b.step(ctx, inc.ID, marks, markSecureChecklist, store.AuditIncidentSecureChecklistPosted, func() (string, error) {
		ref, err := b.chat.Post(ctx, private, checklistMessage(marks, ""))
		if err != nil {
			return "", fmt.Errorf("post checklist in the private channel: %w", err)
		}
		return ref.TS, nil
	}); err != nil {
		return err
	}

	// One transaction: the incident now lives in the private channel, its
	// header and checklist are the new ones, the security escalations and
	// the marker's line go there, and the public channel gets only a pointer.
	svc, _ := b.cfg.Service(inc.Service)
	notice := chat.Plain("This incident moved to a private channel because it is now a security incident; " + b.askForAccess(a.MarkedBy))
	rawNotice, err := EncodeMessage(notice)
	if err != nil {
		return err
	}
	return b.lc.st.InIncidentTx(ctx, func(tx store.IncidentTx) error {
		mover, ok := tx.(channelMover)
		if !ok {
			return errors.New("the store cannot move an incident to another channel")
		}
		cur, err := tx.LockIncident(ctx, inc.ID)
		if err != nil {
			return err
		}
		if _, err := mover.MoveChannel(ctx, cur.ID, private); err != nil {
			return err
		}
		for _, m := range [][2]string{{markHeaderTS, marks[markSecureHeader]}, {markChecklistTS, marks[markSecureChecklist]}, {markSecureMoved, public}} {
			ev, err := markEvent(cur.ID, "drbot", store.AuditIncidentSecureMoved, m[0], m[1], nil)
			if err != nil {
				return err
			}
			if err := tx.AppendAudit(ctx, ev); err != nil {
				return err
			}
		}
		jobs := []store.Job{{Args: PostArgs{Channel: public, Message: rawNotice}}, b.headerJob(cur.ID)}
		if a.Line != "" {
			pj, err := postJob(cur.ID, chat.Plain(a.Line))
			if err != nil {
				return err
			}
			jobs = append(jobs, pj)
		}
		if svc != nil {
			jobs = append(jobs, securityJobs(svc, cur)...)
		}
		return tx.InsertJobs(ctx, jobs...)
	})
}

// secureTx queues the move of inc (just marked security in tx) to a private
// channel, with the marker's line to post there.
func (b *Lifecycle) secureTx(ctx context.Context, tx store.IncidentTx, inc store.Incident, user chat.User, line string) error {
	return tx.InsertJobs(ctx, store.Job{Args: SecureArgs{IncidentID: inc.ID, Line: line, MarkedBy: user.ID}}, b.headerJob(inc.ID))
}
