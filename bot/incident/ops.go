package incident

// The incident commands' side of the bot (/dr ack, resolve, security,
// timeline, status), the resolution summary and the Markdown post-mortem.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/drbot-dev/drbot/bot/chat"
	"github.com/drbot-dev/drbot/internal/usererr"
	"github.com/drbot-dev/drbot/store"
)

// incidentHere is the incident whose channel channel is; a refusal otherwise.
func (b *Lifecycle) incidentHere(ctx context.Context, channel, command string) (store.Incident, error) {
	inc, err := b.store.IncidentByChannel(ctx, channel)
	if err != nil {
		if isNotFound(err) {
			if moved := b.movedRefusal(ctx, channel); moved != nil {
				return store.Incident{}, moved
			}
			return store.Incident{}, usererr.Refusef("/dr %s works in an incident channel: run it in the #%s-… channel of the incident.", command, orDefault(b.cfg.Slack.ChannelPrefix, "incident"))
		}
		return store.Incident{}, err
	}
	return inc, nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

var slackUserID = regexp.MustCompile(`^[UW][A-Z0-9]{2,}$`)

// userLabel names a chat user in channel lines: a mention on Slack.
func userLabel(u chat.User) string {
	if slackUserID.MatchString(u.ID) {
		return "<@" + u.ID + ">"
	}
	if u.Name != "" {
		return u.Name
	}
	return u.ID
}

// Acknowledge implements commands.IncidentOps.
func (b *Lifecycle) Acknowledge(ctx context.Context, channel string, user chat.User) (chat.Message, error) {
	return b.commandEvent(ctx, channel, user, "ack", EventAcknowledged, "")
}

// Resolve implements commands.IncidentOps.
func (b *Lifecycle) Resolve(ctx context.Context, channel string, user chat.User, summary string) (chat.Message, error) {
	return b.commandEvent(ctx, channel, user, "resolve", EventResolved, summary)
}

// commandEvent acts on PagerDuty (when the incident is PagerDuty's and an API
// client is configured) and applies the same change locally, through the
// pipeline webhooks take, so the channel and header change at once; the
// webhook that follows changes nothing.
func (b *Lifecycle) commandEvent(ctx context.Context, channel string, user chat.User, command, kind, note string) (chat.Message, error) {
	inc, err := b.incidentHere(ctx, channel, command)
	if err != nil {
		return chat.Message{}, err
	}
	switch {
	case kind == EventAcknowledged && inc.Status == store.IncidentAcknowledged:
		return chat.Message{}, usererr.Refusef("The incident is already acknowledged.")
	case inc.Status == store.IncidentResolved:
		return chat.Message{}, usererr.Refusef("The incident is already resolved. Reopen it in PagerDuty if it is back.")
	}
	if b.pagerDutyManaged(inc) {
		var err error
		if kind == EventAcknowledged {
			err = b.lc.pd.Acknowledge(ctx, inc.PagerDutyID)
		} else {
			err = b.lc.pd.Resolve(ctx, inc.PagerDutyID)
		}
		if err != nil {
			return chat.Message{}, fmt.Errorf("%s incident %s in PagerDuty: %w", command, inc.PagerDutyID, err)
		}
	}
	ev := Event{Kind: kind, PagerDutyID: inc.PagerDutyID, Actor: userLabel(user), Note: note, At: b.now()}
	if _, err := b.ingest(ctx, nil, ev); err != nil {
		return chat.Message{}, err
	}
	if kind == EventAcknowledged {
		return chat.Message{Text: "Acknowledged. The header shows it.", Blocks: []chat.Block{chat.Text{Text: "Acknowledged. The header shows it."}}, Ephemeral: true}, nil
	}
	return chat.Message{Text: "Resolved. The summary and the post-incident checklist follow.", Blocks: []chat.Block{chat.Text{Text: "Resolved. The summary and the post-incident checklist follow."}}, Ephemeral: true}, nil
}

// MarkSecurity implements commands.IncidentOps: the incident becomes a
// security incident and the service's on: security escalations fire.
func (b *Lifecycle) MarkSecurity(ctx context.Context, channel string, user chat.User, reason string) (chat.Message, error) {
	inc, err := b.incidentHere(ctx, channel, "security")
	if err != nil {
		return chat.Message{}, err
	}
	svc, _ := b.cfg.Service(inc.Service)
	var jobs []store.Job
	moved := false
	err = b.lc.st.InIncidentTx(ctx, func(tx store.IncidentTx) error {
		cur, err := tx.LockIncident(ctx, inc.ID)
		if err != nil {
			return err
		}
		if cur.Security {
			return usererr.Refusef("This incident is already marked as a security incident.")
		}
		cur.Security = true
		if inc, err = tx.SaveIncident(ctx, cur); err != nil {
			return err
		}
		line := fmt.Sprintf("%s marked this a security incident.", userLabel(user))
		if reason != "" {
			line += " Reason: " + reason
		}
		if svc != nil {
			jobs = securityJobs(svc, inc)
		}
		if len(jobs) == 0 {
			line += " The runbook names no security escalation for " + inc.Service + "."
		}
		if inc.Channel != "" && b.canPrivate() {
			// The public channel must not hear more: the line and the
			// escalations follow the move to a private channel.
			moved = true
			if err := b.secureTx(ctx, tx, inc, user, line); err != nil {
				return err
			}
		} else {
			pj, err := postJob(inc.ID, chat.Plain(line))
			if err != nil {
				return err
			}
			if err := tx.InsertJobs(ctx, append(jobs, pj, b.headerJob(inc.ID))...); err != nil {
				return err
			}
		}
		data, _ := json.Marshal(map[string]string{"reason": reason, "user_name": user.Name}) // strings: cannot fail
		return tx.AppendAudit(ctx, store.AuditEvent{IncidentID: &inc.ID, Actor: user.ID, Kind: store.AuditIncidentSecurity, Data: data})
	})
	if err != nil {
		return chat.Message{}, err
	}
	text := "Marked as a security incident."
	if moved {
		text += " The incident is moving to a private channel: you are invited there, and this channel gets only a pointer to it."
	} else if len(jobs) > 0 {
		text += " The security escalation is being notified."
	}
	return chat.Message{Text: text, Blocks: []chat.Block{chat.Text{Text: text}}, Ephemeral: true}, nil
}

// Status implements commands.IncidentOps: in an incident channel, the
// current header; elsewhere, the open incidents.
func (b *Lifecycle) Status(ctx context.Context, channel string) (chat.Message, error) {
	inc, err := b.store.IncidentByChannel(ctx, channel)
	if err == nil {
		marks, err := b.lc.st.IncidentMarks(ctx, inc.ID)
		if err != nil {
			return chat.Message{}, err
		}
		m := b.header(ctx, inc, marks)
		m.Ephemeral = true
		return m, nil
	}
	if !isNotFound(err) {
		return chat.Message{}, err
	}
	if moved := b.movedRefusal(ctx, channel); moved != nil {
		return chat.Message{}, moved
	}
	incs, err := b.store.ListIncidents(ctx, true)
	if err != nil {
		return chat.Message{}, err
	}
	if len(incs) == 0 {
		return chat.Message{Text: "No open incidents.", Blocks: []chat.Block{chat.Text{Text: "No open incidents."}}, Ephemeral: true}, nil
	}
	var lines []string
	for _, i := range incs {
		where := "channel not created yet"
		if i.Channel != "" {
			where = "<#" + i.Channel + ">"
		}
		if i.Security {
			// Its channel is private: no title, no channel link.
			lines = append(lines, fmt.Sprintf("• %s: a security incident (%s) in a private channel — %s", i.Service, i.Status, b.askForAccess("")))
			continue
		}
		lines = append(lines, fmt.Sprintf("• %s: %s (%s, %s) %s — %s", i.Service, i.Title, i.Status, rtoClock(i, b.now()), where, i.PagerDutyID))
	}
	text := fmt.Sprintf("%d open incident(s):\n%s", len(incs), strings.Join(lines, "\n"))
	return chat.Message{Text: text, Blocks: []chat.Block{chat.Header{Text: "Open incidents"}, chat.Text{Text: strings.Join(lines, "\n")}}, Ephemeral: true}, nil
}

// maxTimelineLines bounds /dr timeline in chat; the export has everything.
const maxTimelineLines = 60

// Timeline implements commands.IncidentOps: the incident's audit rows, in order.
func (b *Lifecycle) Timeline(ctx context.Context, channel string) (chat.Message, error) {
	inc, err := b.incidentHere(ctx, channel, "timeline")
	if err != nil {
		return chat.Message{}, err
	}
	evs, err := b.store.AuditEvents(ctx, store.AuditFilter{IncidentID: &inc.ID, Limit: 10000})
	if err != nil {
		return chat.Message{}, err
	}
	var lines []string
	for _, e := range evs {
		if l := timelineLine(e); l != "" {
			lines = append(lines, l)
		}
	}
	hidden := 0
	if len(lines) > maxTimelineLines {
		hidden = len(lines) - maxTimelineLines
		lines = lines[hidden:]
	}
	blocks := []chat.Block{chat.Header{Text: "Timeline: " + inc.Title}, chat.Text{Text: strings.Join(lines, "\n")}}
	foot := fmt.Sprintf("%d events · full post-mortem skeleton: drbot timeline export %d", len(evs), inc.ID)
	if hidden > 0 {
		foot = fmt.Sprintf("%d earlier lines not shown · ", hidden) + foot
	}
	blocks = append(blocks, chat.Context{Text: foot})
	return chat.Message{Text: "Timeline: " + inc.Title, Blocks: blocks}, nil
}

// timelineLine describes an audit row in one line; "" for bookkeeping rows.
func timelineLine(e store.AuditEvent) string {
	desc := describeEvent(e)
	if desc == "" {
		return ""
	}
	// A timeline quotes people; it must not notify them again.
	return e.At.UTC().Format("15:04:05") + "  " + mentionRE.ReplaceAllString(desc, "@$1")
}

var mentionRE = regexp.MustCompile(`<@([UW][A-Z0-9]+)>`)

// describeEvent says what an audit row means for people reading a timeline.
func describeEvent(e store.AuditEvent) string {
	var d map[string]any
	_ = json.Unmarshal(e.Data, &d) // audit data is always a JSON object
	str := func(k string) string { s, _ := d[k].(string); return s }
	if unchanged, _ := d["unchanged"].(bool); unchanged {
		return "" // a repeated status, kept for ordering only
	}
	actor := e.Actor
	switch e.Kind {
	case store.AuditIncidentOpened:
		return fmt.Sprintf("Incident opened: %s (%s, %s urgency)", str("title"), str("service"), orDash(str("urgency")))
	case store.AuditIncidentChannelSet:
		return "Incident channel created"
	case store.AuditIncidentHeaderPosted, store.AuditIncidentChecklistPosted, store.AuditIncidentTopicSet, store.AuditIncidentSetupDone,
		store.AuditIncidentHooksRun, store.AuditIncidentEscalationInvited, store.AuditIncidentEscalationPosted, store.AuditIncidentEscalationNoted,
		store.AuditIncidentRTOWarningPosted, store.AuditIncidentResolutionPosted, store.AuditIncidentPostChecklistPosted:
		return ""
	case store.AuditIncidentOncallInvited:
		return "On-call responders invited"
	case store.AuditIncidentAnnounced:
		if str(store.MarkValue) == "no announce_channel" {
			return ""
		}
		return "Incident announced in " + str(store.MarkValue)
	case store.AuditIncidentPagerDutyNoted:
		if str(store.MarkValue) == "skipped" {
			return ""
		}
		return "PagerDuty note added with a link to the channel"
	case store.AuditIncidentEscalationFired:
		return fmt.Sprintf("Escalated to %s (%s)", str("role"), strings.Join(stringsOf(d["notify"]), ", "))
	case store.AuditIncidentRTOWarning:
		p, _ := d["percent"].(float64)
		return fmt.Sprintf("RTO warning: %d%% of the RTO used", int(p))
	case store.AuditIncidentSecurity:
		s := "Marked a security incident by " + orDash(str("user_name"))
		if r := str("reason"); r != "" {
			s += ": " + r
		}
		return s
	case store.AuditIncidentScenarioMatched:
		s := "Scenario matched: " + str("scenario")
		var facts []string
		for _, f := range []string{str("severity"), str("estimate")} {
			if f != "" {
				facts = append(facts, f)
			}
		}
		if len(facts) > 0 {
			s += " (" + strings.Join(facts, ", ") + ")"
		}
		if c := str("command"); c != "" {
			s += "; run " + c
		}
		return s
	case store.AuditChecklistTicked, store.AuditChecklistUnticked:
		verb := "Ticked"
		if e.Kind == store.AuditChecklistUnticked {
			verb = "Unticked"
		}
		who := str("user_name")
		if who == "" {
			who = actor
		}
		return fmt.Sprintf("%s %q (%s)", verb, str("item"), who)
	case store.AuditPagerDutyIgnored:
		return ""
	case store.AuditVerifyRan:
		return verifyLine(d, actor)
	}
	if k, ok := strings.CutPrefix(e.Kind, store.AuditIncidentPrefix); ok {
		s := strings.ToUpper(k[:1]) + strings.ReplaceAll(k[1:], "_", " ")
		if actor != "" && actor != "pagerduty" {
			s += " by " + actor
		} else {
			s += " (PagerDuty)"
		}
		if n := str("note"); n != "" {
			s += ": " + n
		}
		return s
	}
	s := e.Kind + " by " + actor
	if e.RequestID != nil {
		s += fmt.Sprintf(" (request %d)", *e.RequestID)
	}
	return s
}

// verifyLine describes a /dr verify: how many checks passed and what the
// failed ones observed.
func verifyLine(d map[string]any, actor string) string {
	checks, _ := d["checks"].([]any)
	passed := 0
	var failed []string
	for _, c := range checks {
		m, _ := c.(map[string]any)
		str := func(k string) string { s, _ := m[k].(string); return s }
		if ok, _ := m["ok"].(bool); ok {
			passed++
			continue
		}
		f := str("name")
		switch {
		case str("error") != "":
			f += ": " + str("error")
		case str("expected") != "":
			f += fmt.Sprintf(": observed %s, expected %s", orDash(str("observed")), str("expected"))
		case str("observed") != "":
			f += ": observed " + str("observed")
		}
		failed = append(failed, f)
	}
	svc, _ := d["service"].(string)
	verdict := "passed"
	if len(failed) > 0 || len(checks) == 0 {
		verdict = "FAILED"
	}
	s := fmt.Sprintf("Verified %s by %s: %s, %d/%d checks passed", svc, orDash(actor), verdict, passed, len(checks))
	if len(failed) > 0 {
		s += " (" + strings.Join(failed, "; ") + ")"
	}
	return s
}

func stringsOf(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// postResolution is the incident.resolved worker: the summary (time to
// acknowledge, time to resolve against the RTO, actions taken), the
// post-incident checklist and the topic.
func (b *Lifecycle) postResolution(ctx context.Context, id int64, resolvedAt time.Time) error {
	inc, err := b.store.Incident(ctx, id)
	if err != nil {
		return err
	}
	if inc.Channel == "" {
		return errors.New("incident channel not set up yet") // retried
	}
	marks, err := b.lc.st.IncidentMarks(ctx, id)
	if err != nil {
		return err
	}
	evs, err := b.store.AuditEvents(ctx, store.AuditFilter{IncidentID: &id, Limit: 10000})
	if err != nil {
		return err
	}
	suffix := "." + strconv.FormatInt(resolvedAt.Unix(), 10)
	if err := b.step(ctx, id, marks, "resolution"+suffix, store.AuditIncidentResolutionPosted, func() (string, error) {
		_, err := b.chat.Post(ctx, inc.Channel, resolutionSummary(inc, resolvedAt, evs))
		return "", err
	}); err != nil {
		return err
	}
	if err := b.step(ctx, id, marks, markPostChecklistTS, store.AuditIncidentPostChecklistPosted, func() (string, error) {
		ref, err := b.chat.Post(ctx, inc.Channel, checklistMessage(marks, postIncidentSection))
		if err != nil {
			return "", err
		}
		return ref.TS, nil
	}); err != nil {
		return err
	}
	if err := b.chat.SetTopic(ctx, inc.Channel, topic(inc)); err != nil {
		b.log.WarnContext(ctx, "could not update the incident channel's topic", "incident", inc.ID, "err", err)
	}
	return nil
}

// Summary figures of an incident.
type incidentFigures struct {
	TimeToAck     time.Duration // 0 when never acknowledged
	TimeToResolve time.Duration // 0 when not resolved
	Actions       []string      // requests, approvals and actions, one line each
	Summary       string        // the resolver's summary, if any
}

func figures(inc store.Incident, resolvedAt time.Time, evs []store.AuditEvent) incidentFigures {
	var f incidentFigures
	if inc.AckedAt != nil {
		f.TimeToAck = inc.AckedAt.Sub(inc.OpenedAt)
	}
	if !resolvedAt.IsZero() {
		f.TimeToResolve = resolvedAt.Sub(inc.OpenedAt)
	}
	for _, e := range evs {
		if e.RequestID != nil || strings.HasPrefix(e.Kind, store.AuditRequestPrefix) || strings.HasPrefix(e.Kind, store.AuditActionPrefix) || strings.HasPrefix(e.Kind, store.AuditApprovalPrefix) {
			f.Actions = append(f.Actions, e.At.UTC().Format("15:04")+" "+describeEvent(e))
		}
		if e.Kind == store.AuditIncidentResolved {
			var d map[string]any
			_ = json.Unmarshal(e.Data, &d)
			if n, _ := d["note"].(string); n != "" {
				f.Summary = n
			}
		}
	}
	return f
}

func resolutionSummary(inc store.Incident, resolvedAt time.Time, evs []store.AuditEvent) chat.Message {
	f := figures(inc, resolvedAt, evs)
	tta := "never acknowledged"
	if f.TimeToAck > 0 {
		tta = formatDuration(f.TimeToAck)
	}
	ttr := formatDuration(f.TimeToResolve)
	if inc.RTO > 0 {
		if f.TimeToResolve <= inc.RTO {
			ttr += fmt.Sprintf(" (RTO %s met, %s to spare)", formatDuration(inc.RTO), formatDuration(inc.RTO-f.TimeToResolve))
		} else {
			ttr += fmt.Sprintf(" (RTO %s missed by %s)", formatDuration(inc.RTO), formatDuration(f.TimeToResolve-inc.RTO))
		}
	}
	actions := "none recorded"
	if len(f.Actions) > 0 {
		actions = strings.Join(f.Actions, "\n")
	}
	blocks := []chat.Block{
		chat.Header{Text: "Resolved: " + inc.Title},
		chat.Fields{Fields: []chat.Field{
			{Label: "Time to acknowledge", Value: tta},
			{Label: "Time to resolve", Value: ttr},
		}},
	}
	if f.Summary != "" {
		blocks = append(blocks, chat.Text{Text: "Summary: " + f.Summary})
	}
	blocks = append(blocks, chat.Text{Text: "Actions taken:\n" + actions},
		chat.Context{Text: fmt.Sprintf("Post-mortem skeleton: drbot timeline export %d", inc.ID)})
	return chat.Message{Text: fmt.Sprintf("Resolved: %s, time to resolve %s", inc.Title, ttr), Blocks: blocks}
}

// TimelineMarkdown is the post-mortem skeleton of an incident: summary
// figures, RTO/RPO achieved, the timeline, checklist state, and sections for
// root cause and action items to fill in.
func TimelineMarkdown(inc store.Incident, evs []store.AuditEvent, now time.Time) string {
	var resolvedAt time.Time
	if inc.ResolvedAt != nil {
		resolvedAt = *inc.ResolvedAt
	}
	f := figures(inc, resolvedAt, evs)
	var sb strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&sb, format, a...) }
	p("# Post-mortem: %s\n\n", mdEscape(inc.Title))
	p("| | |\n|---|---|\n")
	p("| Service | %s |\n", mdEscape(inc.Service))
	p("| PagerDuty | %s %s |\n", mdEscape(inc.PagerDutyID), mdEscape(inc.URL))
	p("| drbot incident | %d |\n", inc.ID)
	p("| Status | %s |\n", inc.Status)
	p("| Security incident | %t |\n", inc.Security)
	p("| Opened | %s |\n", inc.OpenedAt.UTC().Format("2006-01-02 15:04:05 UTC"))
	if inc.AckedAt != nil {
		p("| Acknowledged | %s (after %s) |\n", inc.AckedAt.UTC().Format("2006-01-02 15:04:05 UTC"), formatDuration(f.TimeToAck))
	} else {
		p("| Acknowledged | never |\n")
	}
	if inc.ResolvedAt != nil {
		p("| Resolved | %s (after %s) |\n", inc.ResolvedAt.UTC().Format("2006-01-02 15:04:05 UTC"), formatDuration(f.TimeToResolve))
	} else {
		p("| Resolved | not yet (exported %s) |\n", now.UTC().Format("2006-01-02 15:04 UTC"))
	}
	p("\n## Recovery objectives\n\n| | target | achieved |\n|---|---|---|\n")
	rtoTarget, rtoGot := "not set", "n/a"
	if inc.RTO > 0 {
		rtoTarget = formatDuration(inc.RTO)
	}
	if inc.ResolvedAt != nil {
		rtoGot = formatDuration(f.TimeToResolve)
		if inc.RTO > 0 {
			if f.TimeToResolve <= inc.RTO {
				rtoGot += " (met)"
			} else {
				rtoGot += fmt.Sprintf(" (missed by %s)", formatDuration(f.TimeToResolve-inc.RTO))
			}
		}
	}
	rpoTarget := "not set"
	if inc.RPO > 0 {
		rpoTarget = formatDuration(inc.RPO)
	}
	p("| RTO (time to restore service) | %s | %s |\n", rtoTarget, rtoGot)
	p("| RPO (data lost) | %s | _fill in: age of the newest data restored_ |\n", rpoTarget)
	if f.Summary != "" {
		p("\n## Summary\n\n%s\n", mdEscape(f.Summary))
	} else {
		p("\n## Summary\n\n_What happened, in two or three sentences._\n")
	}
	p("\n## Timeline (UTC)\n\n| time | event | by |\n|---|---|---|\n")
	for _, e := range evs {
		d := describeEvent(e)
		if d == "" {
			continue
		}
		p("| %s | %s | %s |\n", e.At.UTC().Format("2006-01-02 15:04:05"), mdEscape(d), mdEscape(e.Actor))
	}
	p("\n## Actions taken\n\n")
	if len(f.Actions) == 0 {
		p("_None recorded by drbot._\n")
	}
	for _, a := range f.Actions {
		p("- %s\n", mdEscape(a))
	}
	p("\n## Checklist\n\n")
	ticks := map[string]bool{}
	for _, e := range evs {
		var d map[string]any
		_ = json.Unmarshal(e.Data, &d)
		if k, _ := d[store.MarkKey].(string); strings.HasPrefix(k, checkMarkPrefix) {
			v, _ := d[store.MarkValue].(string)
			ticks[strings.TrimPrefix(k, checkMarkPrefix)] = v == "1"
		}
	}
	for _, s := range IncidentChecklist {
		p("### %s\n\n", s.Title)
		for _, it := range s.Items {
			box := " "
			if ticks[it.ID] {
				box = "x"
			}
			p("- [%s] %s\n", box, it.Label)
		}
		p("\n")
	}
	p("## Root cause\n\n_To fill in: what failed, and why it was possible._\n\n")
	p("## Action items\n\n| action | owner | due |\n|---|---|---|\n| _to fill in_ | | |\n")
	return sb.String()
}

func mdEscape(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ", "<", "&lt;", ">", "&gt;").Replace(s)
}

// TimelineStore is what ExportTimeline reads. *postgres.DB implements it.
type TimelineStore interface {
	store.Incidents
	store.Audit
}

// ExportTimeline returns the Markdown post-mortem skeleton of the incident
// whose drbot id or PagerDuty id is ref.
func ExportTimeline(ctx context.Context, st TimelineStore, ref string, now time.Time) (string, error) {
	var (
		inc store.Incident
		err error
	)
	if id, perr := strconv.ParseInt(ref, 10, 64); perr == nil {
		inc, err = st.Incident(ctx, id)
	} else {
		inc, err = st.IncidentByPagerDutyID(ctx, ref)
	}
	if err != nil {
		if isNotFound(err) {
			return "", fmt.Errorf("no incident %q: give drbot's incident number or the PagerDuty incident id", ref)
		}
		return "", err
	}
	evs, err := incidentAudit(ctx, st, inc.ID)
	if err != nil {
		return "", err
	}
	return TimelineMarkdown(inc, evs, now), nil
}
