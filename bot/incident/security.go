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
	// markSecureRequested is set with the security flag when a move is
	// queued: until secure.moved, the public header is not refreshed.
	markSecureRequested = "secure.requested"
	// markSecurePublicHeader is the ts of the header left in the public
	// channel ("none": there was none), recorded before the move relinks
	// the incident; .unpinned and .replaced follow it.
	markSecurePublicHeader = "secure.public_header"
	// markSecureCards lists the request cards to move out of the public
	// channel ("<id>:<ts>" comma-separated; "none"); each card then gets
	// secure.card.<id> (its ts in the private channel) and
	// secure.card.<id>.moved (relinked, the old card a pointer).
	markSecureCards = "secure.cards"
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
	if public, done := marks[markSecureMoved]; done {
		return b.leavePublic(ctx, inc, marks, public, marks[markSecureChannel], a.MarkedBy)
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

	if err := b.step(ctx, inc.ID, marks, markSecurePublicHeader, store.AuditIncidentHeaderPosted, func() (string, error) {
		if ts := marks[markHeaderTS]; ts != "" {
			return ts, nil
		}
		return "none", nil
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
	if err := b.lc.st.InIncidentTx(ctx, func(tx store.IncidentTx) error {
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
	}); err != nil {
		return err
	}
	return b.leavePublic(ctx, inc, marks, public, private, a.MarkedBy)
}

// leavePublic takes what the public channel still shows of a security
// incident that moved (the incident already lives in private): its header
// is unpinned and replaced by a pointer, and the cards of the incident's
// requests posted there are posted again in the private channel, the
// requests relinked to them, and the old cards replaced by a pointer. Each
// step is journaled in a mark, so a re-run after a crash resumes.
func (b *Lifecycle) leavePublic(ctx context.Context, inc store.Incident, marks map[string]string, public, private, markedBy string) error {
	pointer := "This incident moved to a private channel because it is now a security incident; " + b.askForAccess(markedBy)
	if ts := marks[markSecurePublicHeader]; ts != "" && ts != "none" {
		ref := chat.MessageRef{Channel: public, TS: ts}
		if err := b.step(ctx, inc.ID, marks, markSecurePublicHeader+".unpinned", store.AuditIncidentHeaderPosted, func() (string, error) {
			u, ok := b.chat.(chat.Unpinner)
			if !ok {
				return "not supported", nil
			}
			if err := u.Unpin(ctx, ref); err != nil {
				return "", fmt.Errorf("unpin the public header: %w", err)
			}
			return "", nil
		}); err != nil {
			return err
		}
		if err := b.step(ctx, inc.ID, marks, markSecurePublicHeader+".replaced", store.AuditIncidentHeaderPosted, func() (string, error) {
			m := chat.Message{Text: "Incident moved to a private channel", Blocks: []chat.Block{
				chat.Header{Text: "Incident moved to a private channel"}, chat.Text{Text: pointer},
			}}
			if err := b.chat.Update(ctx, ref, m); err != nil {
				return "", fmt.Errorf("replace the public header: %w", err)
			}
			return "", nil
		}); err != nil {
			return err
		}
	}
	if err := b.step(ctx, inc.ID, marks, markSecureCards, store.AuditIncidentSecureMoved, func() (string, error) {
		return b.publicCards(ctx, inc.ID, public)
	}); err != nil {
		return err
	}
	for _, c := range strings.Split(marks[markSecureCards], ",") {
		idStr, oldTS, ok := strings.Cut(c, ":")
		id, err := strconv.ParseInt(idStr, 10, 64)
		if !ok || err != nil {
			continue // "none"
		}
		key := "secure.card." + idStr
		if err := b.step(ctx, inc.ID, marks, key, store.AuditIncidentSecureMoved, func() (string, error) {
			ref, err := b.cards.RepostCard(ctx, id, private)
			if err != nil {
				return "", err
			}
			return ref.TS, nil
		}); err != nil {
			return err
		}
		if err := b.step(ctx, inc.ID, marks, key+".moved", store.AuditIncidentSecureMoved, func() (string, error) {
			m := chat.Plain(fmt.Sprintf("Request #%d moved to a private channel with its incident, a security incident; %s", id, b.askForAccess(markedBy)))
			return "", b.cards.MoveCard(ctx, id, chat.MessageRef{Channel: public, TS: oldTS}, chat.MessageRef{Channel: private, TS: marks[key]}, m)
		}); err != nil {
			return err
		}
	}
	return nil
}

// publicCards is the value of the secure.cards mark: the requests of
// incident id whose card is in channel public, as "<id>:<ts>,…" ("none":
// none, or nothing can move them).
func (b *Lifecycle) publicCards(ctx context.Context, id int64, public string) (string, error) {
	rs, ok := b.lc.st.(incidentRequests)
	if !ok {
		return "none", nil
	}
	reqs, err := rs.RequestsForIncident(ctx, id)
	if err != nil {
		return "", fmt.Errorf("requests of incident %d: %w", id, err)
	}
	var cards []string
	for _, r := range reqs {
		if r.Channel == public && r.MessageTS != "" {
			cards = append(cards, strconv.FormatInt(r.ID, 10)+":"+r.MessageTS)
		}
	}
	if len(cards) == 0 {
		return "none", nil
	}
	if b.cards == nil {
		b.log.WarnContext(ctx, "no card mover wired: the request cards of the security incident stay in the public channel", "incident", id, "cards", cards)
		return "none", nil
	}
	return strings.Join(cards, ","), nil
}

// secureTx queues the move of inc (just marked security in tx) to a private
// channel, with the marker's line to post there.
func (b *Lifecycle) secureTx(ctx context.Context, tx store.IncidentTx, inc store.Incident, user chat.User, line string) error {
	ev, err := markEvent(inc.ID, "drbot", store.AuditIncidentSecureMoved, markSecureRequested, "requested", nil)
	if err != nil {
		return err
	}
	if err := tx.AppendAudit(ctx, ev); err != nil {
		return err
	}
	return tx.InsertJobs(ctx, store.Job{Args: SecureArgs{IncidentID: inc.ID, Line: line, MarkedBy: user.ID}}, b.headerJob(inc.ID))
}
