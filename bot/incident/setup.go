package incident

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/drbot-dev/drbot/bot/chat"
	"github.com/drbot-dev/drbot/store"
)

// setupIncident is the incident.setup worker: it creates the channel, sets its
// topic, posts the header, invites the on-call responders, posts the
// checklist, announces the channel, adds a PagerDuty note and runs the
// opened hooks. Each step is marked when done, so a retry (after an error, a
// crash or a restart) resumes with the first step not done.
func (b *Lifecycle) setupIncident(ctx context.Context, id int64) error {
	inc, err := b.store.Incident(ctx, id)
	if err != nil {
		return err
	}
	marks, err := b.lc.st.IncidentMarks(ctx, id)
	if err != nil {
		return err
	}
	if _, done := marks[markSetupDone]; done {
		return nil
	}
	svc, _ := b.cfg.Service(inc.Service)
	if inc.Channel == "" {
		start := 1
		if o, ok := b.store.(incidentOrdinal); ok {
			if n, err := o.IncidentOrdinal(ctx, inc.ID); err == nil && n > 1 {
				start = n
			}
		}
		channelID, name, err := b.createChannelFrom(ctx, inc.Service, inc.OpenedAt, start, inc.Security)
		if err != nil {
			return fmt.Errorf("incident %d: %w", inc.ID, err)
		}
		// The store writes the incident.channel_set audit row with the link.
		if err := b.store.SetIncidentChannel(ctx, inc.ID, channelID); err != nil {
			return fmt.Errorf("incident %d: link channel #%s: %w", inc.ID, name, err)
		}
		inc.Channel = channelID
		b.log.InfoContext(ctx, "incident channel created", "incident", inc.ID, "channel", channelID, "name", name)
	}
	if err := b.step(ctx, id, marks, "topic.set", store.AuditIncidentTopicSet, func() (string, error) {
		if err := b.chat.SetTopic(ctx, inc.Channel, topic(inc)); err != nil {
			b.log.WarnContext(ctx, "could not set the incident channel's topic", "incident", inc.ID, "err", err)
			return "failed", nil
		}
		return "", nil
	}); err != nil {
		return err
	}
	if err := b.step(ctx, id, marks, markHeaderTS, store.AuditIncidentHeaderPosted, func() (string, error) {
		// The latest state: events may have arrived since the incident opened.
		cur, err := b.store.Incident(ctx, id)
		if err != nil {
			return "", err
		}
		ref, err := b.chat.Post(ctx, inc.Channel, b.header(ctx, cur, marks))
		if err != nil {
			return "", fmt.Errorf("post header: %w", err)
		}
		return ref.TS, nil
	}); err != nil {
		return err
	}
	// Pinning is part of posting the header: its audit row has the same kind
	// (the mark header.pinned tells them apart; the timeline hides both).
	if err := b.step(ctx, id, marks, "header.pinned", store.AuditIncidentHeaderPosted, func() (string, error) {
		return b.pin(ctx, inc.ID, chat.MessageRef{Channel: inc.Channel, TS: marks[markHeaderTS]}), nil
	}); err != nil {
		return err
	}
	// The header's countdowns move by the minute until the incident resolves.
	if err := b.lc.st.InsertJobs(ctx, b.tickJob(id)); err != nil {
		return err
	}
	if err := b.step(ctx, id, marks, "oncall.invited", store.AuditIncidentOncallInvited, func() (string, error) {
		return b.inviteOnCall(ctx, inc, svc != nil, policyOf(b, inc))
	}); err != nil {
		return err
	}
	if err := b.step(ctx, id, marks, markChecklistTS, store.AuditIncidentChecklistPosted, func() (string, error) {
		ref, err := b.chat.Post(ctx, inc.Channel, checklistMessage(marks, ""))
		if err != nil {
			return "", fmt.Errorf("post checklist: %w", err)
		}
		return ref.TS, nil
	}); err != nil {
		return err
	}
	if err := b.step(ctx, id, marks, "announced", store.AuditIncidentAnnounced, func() (string, error) {
		ch := b.cfg.Slack.AnnounceChannel
		if ch == "" {
			return "no announce_channel", nil
		}
		text := fmt.Sprintf("Incident opened for %s: %s (%s urgency). Join <#%s> to help.", inc.Service, inc.Title, orDash(inc.Urgency), inc.Channel)
		if inc.Security {
			// A private channel: neither its title nor its channel is for everyone.
			text = fmt.Sprintf("A security incident was opened for %s; its channel is private: %s", inc.Service, b.askForAccess(""))
		}
		// Not worth holding up the setup: a failed post is retried by a job.
		if err := b.Deliver(ctx, ch, "", chat.Plain(text)); err != nil {
			return "", fmt.Errorf("announce in %s: %w", ch, err)
		}
		return ch, nil
	}); err != nil {
		return err
	}
	if inc.Security && svc != nil {
		// Opened as a security incident (a security scenario): its security
		// escalations fire now that the private channel exists.
		if err := b.lc.st.InsertJobs(ctx, securityJobs(svc, inc)...); err != nil {
			return err
		}
	}
	if b.pagerDutyManaged(inc) {
		note := fmt.Sprintf("drbot opened the incident channel #%s (channel id %s). Recovery commands and the timeline live there.", b.channelName(inc), inc.Channel)
		if err := b.lc.st.InsertJobs(ctx, noteJob(inc.ID, "pagerduty.noted", note)); err != nil {
			return err
		}
	}
	return b.setMark(ctx, id, store.AuditIncidentSetupDone, markSetupDone, b.now().UTC().Format("2006-01-02T15:04:05Z"), nil)
}

// incidentOrdinal is implemented by stores that can say how many incidents
// of a service opened earlier the same day: the likely free channel suffix.
type incidentOrdinal interface {
	IncidentOrdinal(ctx context.Context, id int64) (int, error)
}

// createChannelFrom is createChannel starting the suffix search at start
// (falling back to the plain name first when start > 1 finds all taken).
func (b *Lifecycle) createChannelFrom(ctx context.Context, service string, openedAt time.Time, start int, private bool) (id, name string, err error) {
	if start <= 1 {
		return b.createChannel(ctx, service, openedAt, private)
	}
	for attempt := start; attempt < start+maxChannelAttempts; attempt++ {
		name = ChannelName(b.cfg.Slack.ChannelPrefix, service, openedAt, attempt)
		id, err = b.openChannel(ctx, name, private)
		if err == nil {
			return id, name, nil
		}
		if !errors.Is(err, chat.ErrNameTaken) {
			return "", "", fmt.Errorf("create channel #%s: %w", name, err)
		}
	}
	// Earlier names may have been freed (archived, renamed): try them too.
	return b.createChannel(ctx, service, openedAt, private)
}

// policyOf is the escalation policy whose on-calls are invited to inc's channel.
func policyOf(b *Lifecycle, inc store.Incident) string {
	if svc, ok := b.cfg.Service(inc.Service); ok {
		return svc.PagerDuty.EscalationPolicyID
	}
	return ""
}

// channelName is the channel's name as drbot created it (for notes); the id
// is what PagerDuty users can search for when names were suffixed.
func (b *Lifecycle) channelName(inc store.Incident) string {
	return ChannelName(b.cfg.Slack.ChannelPrefix, inc.Service, inc.OpenedAt, 1)
}

// inviteOnCall invites the on-call responders of policy: PagerDuty on-calls →
// e-mails → chat users. People who cannot be found are reported in the
// channel; a PagerDuty failure is retried with the job.
func (b *Lifecycle) inviteOnCall(ctx context.Context, inc store.Incident, known bool, policy string) (string, error) {
	if !known || policy == "" || b.lc.pd == nil {
		return "no escalation policy or PagerDuty API", nil
	}
	emails, err := b.lc.pd.OnCallEmails(ctx, policy)
	if err != nil {
		// PagerDuty may be part of the outage: say so and carry on.
		b.log.WarnContext(ctx, "could not list on-call responders", "incident", inc.ID, "policy", policy, "err", err)
		if err := b.say(ctx, inc, chat.Plain("Could not list the on-call responders from PagerDuty; invite them by hand (/invite).")); err != nil {
			return "", err
		}
		return "failed", nil
	}
	var (
		ids     []string
		missing []string
	)
	for _, e := range emails {
		u, err := b.chat.LookupByEmail(ctx, e)
		if err != nil {
			if !errors.Is(err, chat.ErrUserNotFound) {
				b.log.WarnContext(ctx, "on-call lookup failed", "incident", inc.ID, "err", err)
			}
			missing = append(missing, e)
			continue
		}
		ids = append(ids, u.ID)
	}
	if len(ids) > 0 {
		if err := b.chat.Invite(ctx, inc.Channel, ids...); err != nil {
			b.log.WarnContext(ctx, "inviting on-call responders failed", "incident", inc.ID, "err", err)
			missing = append(missing, "some of "+mentions(ids)+" (invite failed)")
		}
	}
	if len(ids) > 0 || len(missing) > 0 {
		text := "On call now: " + mentions(ids) + "."
		if len(ids) == 0 {
			text = "No on-call responder could be invited."
		}
		if len(missing) > 0 {
			text += fmt.Sprintf("\nNot found in chat: %s. Reach them through PagerDuty.", strings.Join(missing, ", "))
		}
		if err := b.say(ctx, inc, chat.Plain(text)); err != nil {
			return "", err
		}
	}
	return strings.Join(ids, ","), nil
}
