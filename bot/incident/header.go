package incident

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/drbot-dev/drbot/bot/chat"
	"github.com/drbot-dev/drbot/runbook"
	"github.com/drbot-dev/drbot/store"
)

// Marks kept current by PagerDuty events and commands, shown in the header.
const (
	markAckedBy   = "acked_by"
	markAssignees = "assignees"
	markSetupDone = "setup.done"
)

// HeaderAt is the header kept current in an incident channel: the
// static facts of IncidentHeader plus status, who acknowledged, assignees,
// and the RTO clock (elapsed, remaining) as of now, then the extra fields
// (the RPO at risk, see Lifecycle.header). Once resolved, the RTO clock is
// the achieved RTO rto (opened → service verified healthy, see
// AchievedObjectives), not the time to resolve; rto is ignored while open.
func HeaderAt(inc store.Incident, marks map[string]string, now time.Time, rto AchievedRTO, extra ...chat.Field) chat.Message {
	base := baseHeader(inc)
	status := "Triggered: waiting for a responder"
	switch inc.Status {
	case store.IncidentAcknowledged:
		status = "Acknowledged"
		if by := marks[markAckedBy]; by != "" {
			status += " by " + by
		}
		if inc.AckedAt != nil {
			status += fmt.Sprintf(" after %s", formatDuration(inc.AckedAt.Sub(inc.OpenedAt)))
		}
	case store.IncidentResolved:
		status = "Resolved"
		if inc.ResolvedAt != nil {
			status += fmt.Sprintf(" at %s, %s after it opened", inc.ResolvedAt.UTC().Format("15:04 UTC"), formatDuration(inc.ResolvedAt.Sub(inc.OpenedAt)))
		}
	}
	fields := []chat.Field{{Label: "Status", Value: status}}
	fields = append(fields, scenarioFields(marks)...)
	if by := marks[markAckedBy]; by != "" && inc.Status != store.IncidentAcknowledged {
		fields = append(fields, chat.Field{Label: "Acknowledged by", Value: by})
	}
	if a := marks[markAssignees]; a != "" {
		fields = append(fields, chat.Field{Label: "Assigned to", Value: a})
	}
	if inc.Security {
		fields = append(fields, chat.Field{Label: "Security", Value: "security incident: the security escalation was notified"})
	}
	clock := rtoClock(inc, now)
	if inc.Status == store.IncidentResolved {
		clock = resolvedRTO(inc, rto)
	}
	fields = append(fields, chat.Field{Label: "RTO clock", Value: clock})
	fields = append(fields, extra...)
	var blocks []chat.Block
	for _, bl := range base.Blocks {
		if f, ok := bl.(chat.Fields); ok {
			bl = chat.Fields{Fields: append(fields, f.Fields...)}
		}
		if c, ok := bl.(chat.Context); ok {
			bl = chat.Context{Text: c.Text + " · updated " + now.UTC().Format("15:04 UTC")}
		}
		blocks = append(blocks, bl)
	}
	text := base.Text
	if inc.Status == store.IncidentResolved {
		text = "[RESOLVED] " + text
	}
	return chat.Message{Text: text, Blocks: blocks}
}

// scenarioFields are the header's lines about the scenario the incident
// matched when it opened (none when it matched none): its name, severity and
// estimate, and the command its playbook implies.
func scenarioFields(marks map[string]string) []chat.Field {
	name := marks[markScenario]
	if name == "" {
		return nil
	}
	var facts []string
	if sev := marks[markScenarioSeverity]; sev != "" {
		facts = append(facts, sev+" severity")
	}
	if est := marks[markScenarioEstimate]; est != "" {
		facts = append(facts, "estimated recovery "+est)
	}
	v := name
	if len(facts) > 0 {
		v += " (" + strings.Join(facts, ", ") + ")"
	}
	out := []chat.Field{{Label: "Scenario", Value: v}}
	if cmd := marks[markScenarioCommand]; cmd != "" {
		out = append(out, chat.Field{Label: "Run", Value: "`" + cmd + "`"})
	}
	return out
}

// resolvedRTO is the RTO clock of a resolved incident: the achieved RTO
// against its objective, or that the service was never verified healthy.
func resolvedRTO(inc store.Incident, rto AchievedRTO) string {
	if !rto.Verified {
		s := "never verified healthy"
		if inc.ResolvedAt != nil {
			s = fmt.Sprintf("resolved after %s, never verified healthy", formatDuration(inc.ResolvedAt.Sub(inc.OpenedAt)))
		}
		if inc.RTO > 0 {
			s += fmt.Sprintf(" (RTO %s)", formatDuration(inc.RTO))
		}
		return s
	}
	return rto.Short()
}

// rtoClock is the elapsed and remaining time against the RTO of an open
// incident.
func rtoClock(inc store.Incident, now time.Time) string {
	elapsed := now.Sub(inc.OpenedAt)
	if elapsed < 0 {
		elapsed = 0
	}
	if inc.RTO <= 0 {
		return formatDuration(elapsed) + " elapsed (no RTO set)"
	}
	left := inc.RTO - elapsed
	switch {
	case left >= 0:
		return fmt.Sprintf("%s elapsed, %s left (%d%% of %s)", formatDuration(elapsed), formatDuration(left), int(100*elapsed/inc.RTO), formatDuration(inc.RTO))
	}
	return fmt.Sprintf("%s elapsed: RTO of %s passed %s ago", formatDuration(elapsed), formatDuration(inc.RTO), formatDuration(-left))
}

// refreshHeader is the incident.header worker: chat.update of the header with
// the incident's current state, at most once per HeaderMinGap per incident
// (a refresh asked sooner waits, and refreshes asked meanwhile coalesce into
// it). While the incident is open it makes sure the periodic refresh runs.
// job is the refresh's own job (nil: none).
func (b *Lifecycle) refreshHeader(ctx context.Context, id int64, job *rivertype.JobRow) error {
	inc, err := b.store.Incident(ctx, id)
	if err != nil {
		return err
	}
	marks, err := b.lc.st.IncidentMarks(ctx, id)
	if err != nil {
		return err
	}
	if _, moving := marks[markSecureRequested]; moving {
		if _, moved := marks[markSecureMoved]; !moved {
			// On its way to a private channel: the public header is left
			// alone (the move replaces it with a pointer and posts the
			// current header in private); refresh after the move.
			if b.coalesced(ctx, job, true) {
				return nil
			}
			return river.JobSnooze(channelNotReadySnooze)
		}
	}
	ts := marks[markHeaderTS]
	if ts == "" || inc.Channel == "" {
		if _, done := marks[markSetupDone]; done {
			return nil // the header could not be posted; nothing to update
		}
		// The setup job posts the current header when it gets there; wait so
		// that a change made meanwhile is not lost (one waiting refresh is enough).
		if b.coalesced(ctx, job, true) {
			return nil
		}
		return river.JobSnooze(channelNotReadySnooze)
	}
	final := finalHeaderMark(inc)
	if _, done := marks[final]; final != "" && done {
		return nil // the resolution's header is out: nothing moves any more
	}
	if wait := b.lc.gate.wait(id, b.now(), b.lc.headerMinGap); wait > 0 {
		return river.JobSnooze(wait)
	}
	if inc.Status == store.IncidentResolved {
		b.lc.gate.forget(id)
	} else if err := b.lc.st.InsertJobs(ctx, b.tickJob(id)); err != nil {
		return err
	}
	if err := b.chat.Update(ctx, chat.MessageRef{Channel: inc.Channel, TS: ts}, b.header(ctx, inc, marks)); err != nil {
		return err
	}
	if final == "" {
		return nil
	}
	// One final header per resolution: a request card that changes later
	// (or any other refresh asked after it) leaves it as it is.
	return b.setMark(ctx, id, store.AuditIncidentHeaderPosted, final, "done", nil)
}

// finalHeaderMark is the mark of the final header of inc's resolution
// ("" while open): header.final.<resolved unix time>, so that a reopened
// incident resolved again gets its own final header.
func finalHeaderMark(inc store.Incident) string {
	if inc.Status != store.IncidentResolved || inc.ResolvedAt == nil {
		return ""
	}
	return "header.final." + strconv.FormatInt(inc.ResolvedAt.Unix(), 10)
}

// header is HeaderAt as of now with the live lines: the escalations to come
// and those fired, the requests in flight, and the RPO at risk: a line for
// each backup location of the service whose newest backup (as the periodic
// backups.check job last recorded it; S3 is never listed here) is older than
// the RPO.
func (b *Lifecycle) header(ctx context.Context, inc store.Incident, marks map[string]string) chat.Message {
	now := b.now()
	svc, _ := b.cfg.Service(inc.Service)
	extra := escalationFields(svc, inc, marks, now)
	extra = append(extra, requestFields(b.requestLines(ctx, inc))...)
	extra = append(extra, b.rpoAtRisk(ctx, inc, now)...)
	return HeaderAt(inc, marks, now, b.achievedRTO(ctx, inc), extra...)
}

// achievedRTO is inc's achieved RTO once it is resolved (the zero value
// while it is open, or logged when the audit cannot be read: the header
// then says the service was never verified).
func (b *Lifecycle) achievedRTO(ctx context.Context, inc store.Incident) AchievedRTO {
	if inc.Status != store.IncidentResolved {
		return AchievedRTO{}
	}
	evs, err := incidentAudit(ctx, b.store, inc.ID)
	if err == nil {
		var ach Achieved
		if ach, err = achieved(ctx, b.store, inc, evs); err == nil {
			return ach.RTO
		}
	}
	b.log.WarnContext(ctx, "compute the achieved RTO for the header", "incident", inc.ID, "err", err)
	return AchievedRTO{Objective: inc.RTO}
}

// rpoAtRisk is the "RPO at risk" fields of inc as of now (none when the
// store keeps no backup states or they cannot be read: the header still goes out).
func (b *Lifecycle) rpoAtRisk(ctx context.Context, inc store.Incident, now time.Time) []chat.Field {
	bs, ok := b.lc.st.(store.BackupStates)
	if !ok || inc.RPO <= 0 {
		return nil
	}
	states, err := bs.BackupStatesOf(ctx, inc.Service)
	if err != nil {
		b.log.WarnContext(ctx, "read backup states for the header", "incident", inc.ID, "err", err)
		return nil
	}
	svc, _ := b.cfg.Service(inc.Service)
	var fields []chat.Field
	for _, s := range states {
		if !configured(svc, s) {
			continue // a location since removed from the config
		}
		if s.NewestKey == "" || s.NewestAt.IsZero() {
			fields = append(fields, chat.Field{Label: "RPO at risk", Value: fmt.Sprintf("no backup of %s found in %s (RPO %s)", s.Name, s.Location, formatDuration(inc.RPO))})
			continue
		}
		if age := now.Sub(s.NewestAt); age > inc.RPO {
			fields = append(fields, chat.Field{Label: "RPO at risk", Value: fmt.Sprintf("newest backup of %s is %s old (RPO %s)", s.Name, formatDuration(age), formatDuration(inc.RPO))})
		}
	}
	return fields
}

// configured reports whether the backup location of s is still in svc's config.
func configured(svc *runbook.Service, s store.BackupState) bool {
	if svc == nil {
		return false
	}
	switch s.Kind {
	case backupKindModels:
		return svc.Models != nil
	case backupKindVault:
		return svc.Vault != nil && !svc.Vault.Snapshots.IsZero()
	case backupKindDatabase:
		for _, db := range svc.Databases {
			if db.Name == s.Name && db.Backups != nil {
				return true
			}
		}
	}
	return false
}

// Backup location kinds of the backup_states rows (actions/freshness's
// KindDatabase, KindModels, KindVault; bot/ does not import actions/).
const (
	backupKindDatabase = "database"
	backupKindModels   = "models"
	backupKindVault    = "vault"
)
