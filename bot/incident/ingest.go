package incident

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/drbot-dev/drbot/bot/chat"
	"github.com/drbot-dev/drbot/runbook"
	"github.com/drbot-dev/drbot/store"
)

// record durably records one delivered event, in one short transaction that
// takes no lock another delivery waits for: the delivery id (a redelivery
// stops here) and an incident.event job holding the event. The job applies it
// (see apply). No call to Slack or PagerDuty, no audit-chain lock: a webhook
// is answered in milliseconds.
func (b *Lifecycle) record(ctx context.Context, ev Event) (outcome string, err error) {
	ev.Raw = nil // the decoded fields are kept; the raw body would bloat the job table
	err = b.lc.st.InIncidentTx(ctx, func(tx store.IncidentTx) error {
		outcome = outcomeOK
		if ev.DeliveryID != "" {
			fresh, err := tx.RecordDelivery(ctx, ev.DeliveryID)
			if err != nil {
				return err
			}
			if !fresh {
				outcome = "duplicate"
				return nil
			}
		}
		if ev.Kind == EventTriggered {
			// Open at once (a trigger is 1 delivery in many): the channel
			// setup job is then one hop from the webhook.
			svc, _ := b.cfg.ServiceByPagerDutyID(ev.ServiceID)
			return b.applyTx(ctx, tx, svc, ev, &outcome)
		}
		return tx.InsertJobs(ctx, store.Job{Args: EventArgs{Event: ev}})
	})
	return outcome, err
}

// applyEventJob is the incident.event worker.
func (b *Lifecycle) applyEventJob(ctx context.Context, ev Event) error {
	svc, _ := b.cfg.ServiceByPagerDutyID(ev.ServiceID)
	outcome, err := b.ingest(ctx, svc, ev)
	return b.countEvent(ctx, ev, outcome, err)
}

// ingest applies one incident event in a single transaction: the incident row
// (opened on its first event, locked for the rest), an audit row, and the
// jobs that do the slow work: channel setup, timers, channel lines and header
// refreshes. It makes no call to Slack or PagerDuty. Commands (/dr ack) call
// it directly; deliveries reach it through record and the incident.event job.
func (b *Lifecycle) ingest(ctx context.Context, svc *runbook.Service, ev Event) (outcome string, err error) {
	err = b.lc.st.InIncidentTx(ctx, func(tx store.IncidentTx) error {
		outcome = outcomeOK
		return b.applyTx(ctx, tx, svc, ev, &outcome)
	})
	return outcome, err
}

// applyTx applies ev inside tx: it opens the incident on its first event and
// changes it for the others.
func (b *Lifecycle) applyTx(ctx context.Context, tx store.IncidentTx, svc *runbook.Service, ev Event, outcome *string) error {
	{
		inc, err := tx.LockIncidentByPagerDutyID(ctx, ev.PagerDutyID)
		switch {
		case err == nil:
			if ev.Kind == EventTriggered {
				*outcome = "unchanged" // the incident is open already (a second delivery id)
				return nil
			}
		case !isNotFound(err):
			return err
		case svc == nil:
			*outcome = "ignored"
			return tx.AppendAudit(ctx, ignoredEvent(ev))
		default:
			// The first event drbot sees of this incident opens it, whatever its
			// kind: deliveries arrive out of order, and the poller may first see
			// an incident already acknowledged.
			var created bool
			inc, created, err = tx.OpenIncident(ctx, newIncident(svc, ev))
			if err != nil {
				return err
			}
			if created {
				*outcome = "opened"
				jobs := append([]store.Job{{Args: SetupArgs{IncidentID: inc.ID}}}, b.timerJobs(svc, inc, nil)...)
				if err := tx.InsertJobs(ctx, jobs...); err != nil {
					return err
				}
				if sc := svc.Scenario(inc.Title); sc != nil {
					audit, err := scenarioAudit(inc, sc, ev.At)
					if err != nil {
						return err
					}
					if err := tx.AppendAudit(ctx, audit); err != nil {
						return err
					}
				}
			}
			if ev.Kind == EventTriggered {
				return nil
			}
		}
		return b.changeTx(ctx, tx, svc, inc, ev, outcome)
	}
}

// changeTx applies a non-trigger event to a locked incident.
func (b *Lifecycle) changeTx(ctx context.Context, tx store.IncidentTx, svc *runbook.Service, inc store.Incident, ev Event, outcome *string) error {
	if isStatusEvent(ev.Kind) {
		// Deliveries arrive out of order: a status change older than the
		// last one applied is history, not news.
		marks, err := tx.Marks(ctx, inc.ID)
		if err != nil {
			return err
		}
		if last, err := time.Parse(time.RFC3339Nano, marks[markStatusAt]); err == nil && ev.At.Before(last) {
			*outcome = "stale"
			return nil
		}
	}
	before := inc
	if err := applyStatus(&inc, ev); errors.Is(err, errNoChange) {
		*outcome = "unchanged"
		if !isStatusEvent(ev.Kind) {
			return nil
		}
		// Keep its time, so that an older delivery arriving later is
		// recognised as stale; nothing is posted.
		audit, err := eventAudit(inc.ID, ev)
		if err != nil {
			return err
		}
		audit.Data, err = withField(audit.Data, "unchanged", true)
		if err != nil {
			return err
		}
		return tx.AppendAudit(ctx, audit)
	} else if err != nil {
		return err
	}
	if inc != before {
		var err error
		if inc, err = tx.SaveIncident(ctx, inc); err != nil {
			return err
		}
	}
	if svc == nil {
		svc, _ = b.cfg.Service(inc.Service)
	}
	audit, err := eventAudit(inc.ID, ev)
	if err != nil {
		return err
	}
	var rto AchievedRTO
	if ev.Kind == EventResolved {
		rto = b.achievedRTO(ctx, inc)
	}
	line, err := postJob(inc.ID, chat.Plain(eventLine(before, inc, ev, rto)))
	if err != nil {
		return err
	}
	jobs := []store.Job{line, b.headerJob(inc.ID)}
	switch ev.Kind {
	case EventResolved:
		if _, err := tx.CancelJobs(ctx, inc.ID, timerKinds...); err != nil {
			return err
		}
		jobs = append(jobs, store.Job{Args: ResolvedArgs{IncidentID: inc.ID, ResolvedAt: *inc.ResolvedAt}})
	case EventReopened:
		marks, err := tx.Marks(ctx, inc.ID)
		if err != nil {
			return err
		}
		if svc != nil {
			jobs = append(jobs, b.timerJobs(svc, inc, marks)...)
		}
	}
	if err := tx.InsertJobs(ctx, jobs...); err != nil {
		return err
	}
	return tx.AppendAudit(ctx, audit)
}

// applyStatus applies ev to i with PagerDuty's meaning: a status event says
// what the status is now (acknowledged, triggered again, resolved), whatever
// it was; other kinds as applyEvent. errNoChange when i already says so.
func applyStatus(i *store.Incident, ev Event) error {
	at := ev.At
	switch ev.Kind {
	case EventAcknowledged:
		if i.Status == store.IncidentAcknowledged {
			return errNoChange
		}
		i.Status = store.IncidentAcknowledged
		i.ResolvedAt = nil
		if i.AckedAt == nil {
			i.AckedAt = &at
		}
	case EventUnacknowledged, EventReopened:
		if i.Status == store.IncidentTriggered {
			return errNoChange
		}
		i.Status = store.IncidentTriggered
		i.ResolvedAt = nil
	case EventResolved:
		if i.Status == store.IncidentResolved {
			return errNoChange
		}
		i.Status = store.IncidentResolved
		i.ResolvedAt = &at
	default:
		return applyEvent(i, ev)
	}
	return nil
}

func withField(data json.RawMessage, key string, v any) (json.RawMessage, error) {
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	m[key] = v
	return json.Marshal(m)
}

// markStatusAt is the time (PagerDuty's) of the last status change applied.
const markStatusAt = "status_at"

func isStatusEvent(kind string) bool {
	switch kind {
	case EventAcknowledged, EventUnacknowledged, EventResolved, EventReopened:
		return true
	}
	return false
}

// newIncident is the incident record an event for svc opens.
func newIncident(svc *runbook.Service, ev Event) store.Incident {
	inc := store.Incident{
		PagerDutyID: ev.PagerDutyID,
		Service:     svc.Name,
		Title:       ev.Title,
		Urgency:     ev.Urgency,
		URL:         ev.URL,
		Status:      store.IncidentTriggered,
		OpenedAt:    ev.At,
		RTO:         svc.Objectives.RTO.Duration,
		RPO:         svc.Objectives.RPO.Duration,
	}
	if inc.Title == "" {
		inc.Title = "PagerDuty incident " + ev.PagerDutyID
	}
	if sc := svc.Scenario(inc.Title); sc != nil && sc.Security {
		inc.Security = true // private channel and the on: security escalations
	}
	return inc
}

// Marks of the scenario the incident's title matched when it opened: the
// header reads them, so a later change of the runbook does not change what
// the incident was opened as.
const (
	markScenario         = "scenario"
	markScenarioSeverity = "scenario.severity"
	markScenarioEstimate = "scenario.estimate"
	markScenarioCommand  = "scenario.command"
)

// scenarioAudit is the incident.scenario_matched row of an incident whose
// title matched sc: what it says and, as marks, what the header shows.
func scenarioAudit(inc store.Incident, sc *runbook.Scenario, at time.Time) (store.AuditEvent, error) {
	estimate := ""
	if sc.Estimate.Duration > 0 {
		estimate = formatDuration(sc.Estimate.Duration)
	}
	data, err := json.Marshal(map[string]any{
		"scenario": sc.Name, "severity": sc.Severity, "estimate": estimate, "playbook": sc.Playbook,
		"command": sc.Command(), "security": sc.Security, "title": inc.Title,
		store.MarksKey: map[string]string{
			markScenario: sc.Name, markScenarioSeverity: sc.Severity,
			markScenarioEstimate: estimate, markScenarioCommand: sc.Command(),
		},
	})
	if err != nil {
		return store.AuditEvent{}, fmt.Errorf("incident %d: encode scenario: %w", inc.ID, err)
	}
	id := inc.ID
	return store.AuditEvent{IncidentID: &id, Actor: "drbot", Kind: store.AuditIncidentScenarioMatched, Data: data, At: at}, nil
}

// eventAudit is the audit row of an applied event. Acknowledgements and
// (re)assignments carry a mark so the header can say who.
func eventAudit(incidentID int64, ev Event) (store.AuditEvent, error) {
	actor := ev.Actor
	if actor == "" {
		actor = "pagerduty"
	}
	payload := map[string]any{"pagerduty_id": ev.PagerDutyID, "delivery_id": ev.DeliveryID}
	for k, v := range map[string]string{"actor": ev.Actor, "status": ev.Status, "priority": ev.Priority, "urgency": ev.Urgency, "note": ev.Note} {
		if v != "" {
			payload[k] = v
		}
	}
	if len(ev.Assignees) > 0 {
		payload["assignees"] = ev.Assignees
	}
	switch {
	case ev.Kind == EventAcknowledged:
		payload[store.MarkKey], payload[store.MarkValue] = markAckedBy, actor
	case (ev.Kind == EventReassigned || ev.Kind == EventEscalated) && len(ev.Assignees) > 0:
		payload[store.MarkKey], payload[store.MarkValue] = markAssignees, strings.Join(ev.Assignees, ", ")
	}
	if isStatusEvent(ev.Kind) {
		payload[store.MarksKey] = map[string]string{markStatusAt: ev.At.UTC().Format(time.RFC3339Nano)}
	}
	// What PagerDuty said, verbatim, is the evidence a post-mortem may need.
	if len(ev.Raw) > 0 && json.Valid(ev.Raw) {
		payload["payload"] = ev.Raw
	}
	data, err := json.Marshal(payload)
	if err != nil {
		return store.AuditEvent{}, fmt.Errorf("incident %d: encode audit data: %w", incidentID, err)
	}
	return store.AuditEvent{IncidentID: &incidentID, Actor: actor, Kind: store.AuditIncidentPrefix + ev.Kind, Data: data, At: ev.At}, nil
}

// ignoredEvent records an event for a PagerDuty service no runbook names.
func ignoredEvent(ev Event) store.AuditEvent {
	data, _ := json.Marshal(map[string]string{ // strings only: cannot fail
		"pagerduty_service": ev.ServiceID, "pagerduty_id": ev.PagerDutyID, "kind": ev.Kind, "delivery_id": ev.DeliveryID,
	})
	return store.AuditEvent{Actor: "pagerduty", Kind: store.AuditPagerDutyIgnored, Data: data, At: ev.At}
}

// WaitSetUp waits until the incident with PagerDuty id pdID has its channel
// set up (header, checklist and invites done), for callers that want the
// synchronous feel of a local chat; the work itself is the setup job's.
func (b *Lifecycle) WaitSetUp(ctx context.Context, pdID string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		inc, err := b.store.IncidentByPagerDutyID(ctx, pdID)
		if err == nil {
			marks, merr := b.lc.st.IncidentMarks(ctx, inc.ID)
			if merr != nil {
				return merr
			}
			if _, done := marks[markSetupDone]; done {
				return nil
			}
		} else if !isNotFound(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("incident %s: channel not set up within %s (the jobs keep trying)", pdID, timeout)
		case <-tick.C:
		}
	}
}
