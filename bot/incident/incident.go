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

// maxChannelAttempts bounds the -2, -3, … suffixes tried on name collisions.
const maxChannelAttempts = 50

// errNoChange aborts an UpdateIncident whose event changes nothing (a repeated
// acknowledgement or resolution), so that no audit row or channel line is written.
var errNoChange = errors.New("no change")

// HandleIncidentEvent records one incident event, in one transaction, and
// returns; jobs do the rest (see ingest). Events for PagerDuty services that
// no runbook service claims are recorded, logged, counted and ignored.
func (b *Lifecycle) HandleIncidentEvent(ctx context.Context, ev Event) error {
	if ev.PagerDutyID == "" {
		return fmt.Errorf("incident event %s has no incident id", ev.Kind)
	}
	if ev.At.IsZero() {
		ev.At = b.now()
	}
	outcome, err := b.record(ctx, ev)
	if err == nil && outcome == outcomeOK {
		// Applied later by the incident.event job; counted there.
		return nil
	}
	return b.countEvent(ctx, ev, outcome, err)
}

// countEvent logs and counts an event's outcome.
func (b *Lifecycle) countEvent(ctx context.Context, ev Event, outcome string, err error) error {
	svc, _ := b.cfg.ServiceByPagerDutyID(ev.ServiceID)
	switch {
	case err != nil:
		outcome = outcomeFailed
	case outcome == "ignored":
		b.metrics.incidentsIgnore.Inc()
		b.log.WarnContext(ctx, "ignoring incident event for a PagerDuty service that is not in the runbook config",
			"pagerduty_service", ev.ServiceID, "incident", ev.PagerDutyID, "kind", ev.Kind)
	case outcome == "opened" && svc != nil:
		b.metrics.incidentsOpened.WithLabelValues(svc.Name).Inc()
		b.log.InfoContext(ctx, "incident opened", "pagerduty_id", ev.PagerDutyID, "service", svc.Name, "kind", ev.Kind)
		outcome = outcomeOK
	case outcome == "duplicate":
		b.log.DebugContext(ctx, "duplicate delivery ignored", "delivery_id", ev.DeliveryID, "incident", ev.PagerDutyID)
	}
	b.metrics.incidentEvents.WithLabelValues(eventLabel(ev.Kind), outcome).Inc()
	if err != nil {
		return fmt.Errorf("record %s event of incident %s: %w", ev.Kind, ev.PagerDutyID, err)
	}
	return nil
}

func eventLabel(kind string) string {
	switch kind {
	case EventTriggered, EventAcknowledged, EventUnacknowledged, EventEscalated, EventReassigned,
		EventAnnotated, EventPriorityUpdated, EventResolved, EventReopened:
		return kind
	}
	return "other"
}

// createChannel creates the incident channel, adding -2, -3, … while names are
// taken; a security incident's channel is private.
func (b *Lifecycle) createChannel(ctx context.Context, service string, openedAt time.Time, private bool) (id, name string, err error) {
	for attempt := 1; attempt <= maxChannelAttempts; attempt++ {
		name = ChannelName(b.cfg.Slack.ChannelPrefix, service, openedAt, attempt)
		id, err = b.openChannel(ctx, name, private)
		if err == nil {
			return id, name, nil
		}
		if !errors.Is(err, chat.ErrNameTaken) {
			return "", "", fmt.Errorf("create channel #%s: %w", name, err)
		}
	}
	return "", "", fmt.Errorf("create channel: %s and %d numbered variants are all taken", ChannelName(b.cfg.Slack.ChannelPrefix, service, openedAt, 1), maxChannelAttempts-1)
}

// openChannel creates the channel called name or, when the name is taken,
// adopts the channel that has it if the adapter can find it (chat.ChannelFinder),
// the bot created it and no incident owns it: the orphan of an earlier attempt
// that crashed between creating the channel (Slack's conversations.create has
// no idempotency key) and linking it to its incident. A channel a person made,
// or another incident's, is left alone: the error wraps chat.ErrNameTaken and
// the caller tries the next suffix. Two incidents adopting one orphan at once
// cannot both link it (channels are unique in the store); the loser's job
// fails and its retry moves on to the next suffix.
func (b *Lifecycle) openChannel(ctx context.Context, name string, private bool) (string, error) {
	if private {
		// Private channels are not listed for adoption: a taken name moves on
		// to the next suffix.
		return b.createPrivate(ctx, name)
	}
	id, err := b.chat.CreateChannel(ctx, name)
	if !errors.Is(err, chat.ErrNameTaken) {
		return id, err
	}
	finder, ok := b.chat.(chat.ChannelFinder)
	if !ok {
		return "", err
	}
	found, mine, ok, ferr := finder.FindChannel(ctx, name)
	if ferr != nil {
		// A channel now matters more than its name: take the next suffix.
		b.log.WarnContext(ctx, "could not look up the channel holding a name; not adopting it", "name", name, "err", ferr)
		return "", err
	}
	if !ok || !mine {
		return "", err
	}
	switch _, lerr := b.store.IncidentByChannel(ctx, found); {
	case lerr == nil:
		return "", err // another incident's channel
	case !isNotFound(lerr):
		// Linking needs the store too: fail this attempt, the retry looks again.
		return "", fmt.Errorf("look up the incident of channel %s: %w", found, lerr)
	}
	b.log.InfoContext(ctx, "adopting the channel an earlier attempt created but did not link", "channel", found, "name", name)
	return found, nil
}

// applyEvent changes i as ev says; errNoChange when ev repeats the current state.
func applyEvent(i *store.Incident, ev Event) error {
	at := ev.At
	switch ev.Kind {
	case EventAcknowledged:
		if i.Status != store.IncidentTriggered {
			return errNoChange
		}
		i.Status = store.IncidentAcknowledged
		if i.AckedAt == nil {
			i.AckedAt = &at
		}
	case EventUnacknowledged:
		if i.Status != store.IncidentAcknowledged {
			return errNoChange
		}
		i.Status = store.IncidentTriggered
	case EventResolved:
		if i.Status == store.IncidentResolved {
			return errNoChange
		}
		i.Status = store.IncidentResolved
		i.ResolvedAt = &at
	case EventReopened:
		if i.Status != store.IncidentResolved {
			return errNoChange
		}
		i.Status = store.IncidentTriggered
		i.ResolvedAt = nil
	case EventPriorityUpdated, EventEscalated, EventReassigned, EventAnnotated:
		// Recorded in the audit log and announced; the incident row does not change.
	default:
		// Unknown kinds from newer PagerDuty versions are audited as they come.
	}
	return nil
}

// eventLine is the line posted in the incident channel for ev; rto is the
// achieved RTO (opened → verified healthy) a resolution is judged by.
func eventLine(before, after store.Incident, ev Event, rto AchievedRTO) string {
	by := ""
	if ev.Actor != "" {
		by = " by " + ev.Actor
	}
	switch ev.Kind {
	case EventAcknowledged:
		return fmt.Sprintf("Acknowledged in PagerDuty%s.", by)
	case EventUnacknowledged:
		return "PagerDuty un-acknowledged the incident; it is waiting for a responder again."
	case EventEscalated:
		if len(ev.Assignees) > 0 {
			return fmt.Sprintf("Escalated in PagerDuty to %s.", strings.Join(ev.Assignees, ", "))
		}
		return "Escalated in PagerDuty."
	case EventReassigned:
		if len(ev.Assignees) > 0 {
			return fmt.Sprintf("Reassigned in PagerDuty to %s%s.", strings.Join(ev.Assignees, ", "), by)
		}
		return fmt.Sprintf("Reassigned in PagerDuty%s.", by)
	case EventAnnotated:
		if ev.Note != "" {
			return fmt.Sprintf("PagerDuty note%s: %s", by, ev.Note)
		}
		return fmt.Sprintf("A note was added in PagerDuty%s.", by)
	case EventPriorityUpdated:
		if ev.Priority != "" {
			return fmt.Sprintf("Priority changed to %s%s.", ev.Priority, by)
		}
		return fmt.Sprintf("Priority changed in PagerDuty%s.", by)
	case EventResolved:
		took := ev.At.Sub(before.OpenedAt).Round(time.Minute)
		rto.Objective = after.RTO
		return fmt.Sprintf("Resolved in PagerDuty%s, %s after it opened; %s.", by, formatDuration(took), rto.Short())
	case EventReopened:
		return fmt.Sprintf("Reopened in PagerDuty%s.", by)
	}
	return fmt.Sprintf("PagerDuty reported %q%s.", ev.Kind, by)
}

// baseHeader is the first message in an incident channel: title, service,
// urgency, PagerDuty link, and the RTO/RPO targets with the RTO deadline.
func baseHeader(inc store.Incident) chat.Message {
	fields := []chat.Field{
		{Label: "Service", Value: inc.Service},
		{Label: "Urgency", Value: orDash(inc.Urgency)},
		{Label: "PagerDuty", Value: orDash(inc.URL)},
		{Label: "Opened", Value: inc.OpenedAt.UTC().Format("2006-01-02 15:04 UTC")},
	}
	if inc.RTO > 0 {
		fields = append(fields, chat.Field{Label: "RTO target", Value: fmt.Sprintf("%s: restore service by %s", formatDuration(inc.RTO), deadline(inc))})
	} else {
		fields = append(fields, chat.Field{Label: "RTO target", Value: "not set in the runbook"})
	}
	if inc.RPO > 0 {
		fields = append(fields, chat.Field{Label: "RPO target", Value: fmt.Sprintf("%s: restore from data at most %s old", formatDuration(inc.RPO), formatDuration(inc.RPO))})
	} else {
		fields = append(fields, chat.Field{Label: "RPO target", Value: "not set in the runbook"})
	}
	text := fmt.Sprintf("Incident: %s (%s)", inc.Title, inc.Service)
	return chat.Message{
		Text: text,
		Blocks: []chat.Block{
			chat.Header{Text: "Incident: " + inc.Title},
			chat.Fields{Fields: fields},
			chat.Context{Text: fmt.Sprintf("drbot incident %d · PagerDuty %s · /dr help lists recovery commands", inc.ID, inc.PagerDutyID)},
		},
	}
}

// deadline is the RTO deadline as a clock time in UTC, with the date when it
// falls on a later day than the incident opened.
func deadline(inc store.Incident) string {
	opened := inc.OpenedAt.UTC()
	d := opened.Add(inc.RTO)
	if d.YearDay() == opened.YearDay() && d.Year() == opened.Year() {
		return d.Format("15:04 UTC")
	}
	return d.Format("15:04 UTC on Mon 2 Jan")
}

func topic(inc store.Incident) string {
	if inc.Status == store.IncidentResolved {
		return fmt.Sprintf("RESOLVED · %s · %s", inc.Service, inc.Title)
	}
	if inc.RTO > 0 {
		return fmt.Sprintf("%s · RTO deadline %s · %s", inc.Service, deadline(inc), inc.Title)
	}
	return fmt.Sprintf("%s · %s", inc.Service, inc.Title)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// formatDuration prints durations the way runbooks write them: 1h, 1h30m, 45m, 90s.
func formatDuration(d time.Duration) string {
	if d <= 0 {
		return "0m"
	}
	if d < time.Minute {
		return d.Round(time.Second).String()
	}
	d = d.Round(time.Minute)
	h, m := d/time.Hour, (d%time.Hour)/time.Minute
	switch {
	case h == 0:
		return fmt.Sprintf("%dm", m)
	case m == 0:
		return fmt.Sprintf("%dh", h)
	}
	return fmt.Sprintf("%dh%dm", h, m)
}

func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }
