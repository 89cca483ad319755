package incident

// Escalation timers and RTO warnings: River jobs scheduled in the transaction
// that opens the incident, so they survive restarts and run once whichever
// replica picks them up. Resolving cancels those not yet run; reopening arms
// again those that had not fired.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/riverqueue/river"

	"github.com/drbot-dev/drbot/bot/chat"
	"github.com/drbot-dev/drbot/runbook"
	"github.com/drbot-dev/drbot/store"
)

func escalationMark(i int) string { return "escalation." + strconv.Itoa(i) }
func rtoMark(pct int) string      { return "rto." + strconv.Itoa(pct) }

// timerJobs are the time-based escalations and RTO warnings of inc, leaving
// out those marked fired in marks (nil: none fired).
func (b *Lifecycle) timerJobs(svc *runbook.Service, inc store.Incident, marks map[string]string) []store.Job {
	var jobs []store.Job
	for i, e := range svc.Escalation {
		if e.After.Duration <= 0 {
			continue
		}
		if _, fired := marks[escalationMark(i)]; fired {
			continue
		}
		jobs = append(jobs, store.Job{Args: EscalateArgs{IncidentID: inc.ID, Index: i}, RunAt: inc.OpenedAt.Add(e.After.Duration)})
	}
	if inc.RTO > 0 {
		for _, pct := range b.lc.rtoWarnings {
			if _, fired := marks[rtoMark(pct)]; fired {
				continue
			}
			at := inc.OpenedAt.Add(inc.RTO * time.Duration(pct) / 100)
			jobs = append(jobs, store.Job{Args: RTOArgs{IncidentID: inc.ID, Percent: pct}, RunAt: at})
		}
	}
	return jobs
}

// securityJobs are the on: security escalations of svc for inc.
func securityJobs(svc *runbook.Service, inc store.Incident) []store.Job {
	var jobs []store.Job
	for i, e := range svc.Escalation {
		if e.On == runbook.EventSecurity {
			jobs = append(jobs, store.Job{Args: EscalateArgs{IncidentID: inc.ID, Index: i}})
		}
	}
	return jobs
}

// fireEscalation is the incident.escalate worker: it mentions and invites the
// role's people in the channel and adds a PagerDuty note, each step once.
func (b *Lifecycle) fireEscalation(ctx context.Context, incidentID int64, index int) error {
	inc, err := b.store.Incident(ctx, incidentID)
	if err != nil {
		return err
	}
	svc, ok := b.cfg.Service(inc.Service)
	if !ok || index < 0 || index >= len(svc.Escalation) {
		b.log.WarnContext(ctx, "escalation no longer in the runbook config; skipped", "incident", incidentID, "service", inc.Service, "index", index)
		return nil
	}
	e := svc.Escalation[index]
	key := escalationMark(index)
	inc, marks, err := b.fire(ctx, incidentID, key, store.AuditIncidentEscalationFired, map[string]any{"role": e.Role, "notify": e.Notify, "after": e.After.String(), "on": e.On})
	if errors.Is(err, errSkip) {
		b.log.InfoContext(ctx, "escalation not fired: incident resolved", "incident", incidentID, "role", e.Role)
		return nil
	}
	if err != nil {
		return err
	}
	if inc.Channel == "" {
		return errors.New("incident channel not set up yet") // retried
	}
	users, missing := b.resolvePeople(ctx, e.Notify)
	if err := b.step(ctx, inc.ID, marks, key+".invited", store.AuditIncidentEscalationInvited, func() (string, error) {
		if len(users) == 0 {
			return "nobody", nil
		}
		if err := b.chat.Invite(ctx, inc.Channel, users...); err != nil {
			b.log.WarnContext(ctx, "escalation invite failed", "incident", inc.ID, "role", e.Role, "err", err)
			missing = append(missing, "some of "+strings.Join(users, ", ")+" (invite failed)")
		}
		return strings.Join(users, ","), nil
	}); err != nil {
		return err
	}
	why := "on " + e.On
	if e.After.Duration > 0 {
		why = fmt.Sprintf("%s after the incident opened, still unresolved", formatDuration(e.After.Duration))
	}
	text := fmt.Sprintf("Escalating to %s (%s): %s", e.Role, why, mentions(users))
	if len(missing) > 0 {
		text += fmt.Sprintf("\nCould not find in chat: %s. Reach them another way.", strings.Join(missing, ", "))
	}
	if err := b.step(ctx, inc.ID, marks, key+".posted", store.AuditIncidentEscalationPosted, func() (string, error) {
		_, err := b.chat.Post(ctx, inc.Channel, chat.Plain(text))
		return "", err
	}); err != nil {
		return err
	}
	// The header moves the escalation from the countdowns to those fired.
	if err := b.lc.st.InsertJobs(ctx, b.headerJob(inc.ID)); err != nil {
		return err
	}
	if !b.pagerDutyManaged(inc) {
		return nil
	}
	return b.lc.st.InsertJobs(ctx, noteJob(inc.ID, key+".noted", fmt.Sprintf("drbot escalated to %s (%s): %s", e.Role, why, strings.Join(e.Notify, ", "))))
}

// noteJob adds a PagerDuty note once (key marks it done).
func noteJob(incidentID int64, key, content string) store.Job {
	return store.Job{Args: NoteArgs{IncidentID: incidentID, Key: key, Content: content}}
}

// addNote is the incident.pagerduty_note worker.
func (b *Lifecycle) addNote(ctx context.Context, a NoteArgs) error {
	inc, err := b.store.Incident(ctx, a.IncidentID)
	if err != nil {
		return err
	}
	if !b.pagerDutyManaged(inc) {
		return nil
	}
	marks, err := b.lc.st.IncidentMarks(ctx, inc.ID)
	if err != nil {
		return err
	}
	return b.step(ctx, inc.ID, marks, a.Key, store.AuditIncidentPagerDutyNoted, func() (string, error) {
		if err := b.lc.pd.AddNote(ctx, inc.PagerDutyID, a.Content); err != nil {
			if strings.Contains(err.Error(), "not found in PagerDuty") {
				b.log.WarnContext(ctx, "PagerDuty does not know the incident; note dropped", "incident", inc.ID, "pagerduty_id", inc.PagerDutyID)
				return "", river.JobCancel(err)
			}
			return "", err
		}
		return "", nil
	})
}

// pagerDutyManaged reports whether inc is a PagerDuty incident drbot can act
// on through the API (not a local drill, and an API client is configured).
func (b *Lifecycle) pagerDutyManaged(inc store.Incident) bool {
	return b.lc.pd != nil && !strings.HasPrefix(inc.PagerDutyID, "local-")
}

func mentions(users []string) string {
	if len(users) == 0 {
		return "nobody could be found in chat"
	}
	parts := make([]string, len(users))
	for i, u := range users {
		parts[i] = "<@" + u + ">"
	}
	return strings.Join(parts, " ")
}

// groupMembers is implemented by adapters that know user groups (Slack).
type groupMembers interface {
	GroupMembers(ctx context.Context, groupID string) ([]string, error)
}

// resolvePeople turns runbook contacts (user ids U…/W…, user groups S…,
// e-mail addresses) into chat user ids; missing lists those not found.
func (b *Lifecycle) resolvePeople(ctx context.Context, notify []string) (users, missing []string) {
	seen := map[string]bool{}
	add := func(id string) {
		if id != "" && !seen[id] {
			seen[id] = true
			users = append(users, id)
		}
	}
	for _, n := range notify {
		switch {
		case strings.Contains(n, "@"):
			u, err := b.chat.LookupByEmail(ctx, n)
			if err != nil {
				if !errors.Is(err, chat.ErrUserNotFound) {
					b.log.WarnContext(ctx, "user lookup failed", "email", n, "err", err)
				}
				missing = append(missing, n)
				continue
			}
			add(u.ID)
		case strings.HasPrefix(n, "S"):
			gm, ok := b.chat.(groupMembers)
			if !ok {
				missing = append(missing, n)
				continue
			}
			ids, err := gm.GroupMembers(ctx, n)
			if err != nil {
				b.log.WarnContext(ctx, "user group lookup failed", "group", n, "err", err)
				missing = append(missing, n)
				continue
			}
			for _, id := range ids {
				add(id)
			}
		default:
			add(n)
		}
	}
	return users, missing
}

// fireRTOWarning is the incident.rto worker.
func (b *Lifecycle) fireRTOWarning(ctx context.Context, incidentID int64, pct int) error {
	key := rtoMark(pct)
	inc, marks, err := b.fire(ctx, incidentID, key, store.AuditIncidentRTOWarning, map[string]any{"percent": pct})
	if errors.Is(err, errSkip) {
		return nil
	}
	if err != nil {
		return err
	}
	if inc.Channel == "" {
		return errors.New("incident channel not set up yet") // retried
	}
	var text string
	if pct >= 100 {
		text = fmt.Sprintf("RTO of %s reached: the service was to be restored by %s and the incident is still open.", formatDuration(inc.RTO), deadline(inc))
	} else {
		left := inc.RTO - inc.RTO*time.Duration(pct)/100
		text = fmt.Sprintf("RTO warning: %d%% of the %s RTO used, %s left (deadline %s).", pct, formatDuration(inc.RTO), formatDuration(left), deadline(inc))
	}
	if err := b.step(ctx, inc.ID, marks, key+".posted", store.AuditIncidentRTOWarningPosted, func() (string, error) {
		_, err := b.chat.Post(ctx, inc.Channel, chat.Plain(text))
		return "", err
	}); err != nil {
		return err
	}
	return b.lc.st.InsertJobs(ctx, b.headerJob(inc.ID))
}
