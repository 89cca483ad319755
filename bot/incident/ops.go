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

// Timeline implements commands.IncidentOps: the incident's timeline, each
// step named in words with its duration and who acted, repeated rows folded.
func (b *Lifecycle) Timeline(ctx context.Context, channel string) (chat.Message, error) {
	inc, err := b.incidentHere(ctx, channel, "timeline")
	if err != nil {
		return chat.Message{}, err
	}
	evs, err := incidentAudit(ctx, b.store, inc.ID)
	if err != nil {
		return chat.Message{}, err
	}
	entries := BuildTimeline(inc, evs)
	lines := make([]string, 0, len(entries))
	for _, e := range entries {
		lines = append(lines, timelineLine(e))
	}
	rename := NameUsers(ctx, adapterNames(b.chat), b.log, lines...)
	for i, l := range lines {
		lines[i] = rename(l)
	}
	hidden := 0
	if len(lines) > maxTimelineLines {
		hidden = len(lines) - maxTimelineLines
		lines = lines[hidden:]
	}
	blocks := []chat.Block{chat.Header{Text: "Timeline: " + inc.Title}, chat.Text{Text: strings.Join(lines, "\n")}}
	foot := fmt.Sprintf("%d events in %d lines · full post-mortem: drbot timeline export %d", len(evs), len(entries), inc.ID)
	if hidden > 0 {
		foot = fmt.Sprintf("%d earlier lines not shown · ", hidden) + foot
	}
	blocks = append(blocks, chat.Context{Text: foot})
	return chat.Message{Text: "Timeline: " + inc.Title, Blocks: blocks}, nil
}

// timelineLine is an entry in one chat line: time, words, who when the
// words do not already name them. A timeline quotes people; it must not
// notify them again, so people are @name or @id, never mentions.
func timelineLine(e TimelineEntry) string {
	s := e.At.UTC().Format("15:04:05") + "  " + e.Line()
	if person(e.Who) && !strings.Contains(e.Text, e.Who) {
		s += " — " + e.Who
	}
	return s
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
	suffix := "." + strconv.FormatInt(resolvedAt.Unix(), 10)
	if err := b.step(ctx, id, marks, "resolution"+suffix, store.AuditIncidentResolutionPosted, func() (string, error) {
		evs, err := incidentAudit(ctx, b.store, id)
		if err != nil {
			return "", err
		}
		ach, err := achieved(ctx, b.store, inc, evs)
		if err != nil {
			return "", err
		}
		msg := resolutionSummary(inc, resolvedAt, evs, ach)
		msg = renameMessage(msg, NameUsers(ctx, adapterNames(b.chat), b.log, messageWords(msg)...))
		_, err = b.chat.Post(ctx, inc.Channel, msg)
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
	TimeToAck     time.Duration   // 0 when never acknowledged
	TimeToResolve time.Duration   // 0 when not resolved
	Actions       []TimelineEntry // the recovery requests' lines, folded
	Summary       string          // the resolver's summary, if any
}

func figures(inc store.Incident, resolvedAt time.Time, evs []store.AuditEvent) incidentFigures {
	var f incidentFigures
	if inc.AckedAt != nil {
		f.TimeToAck = inc.AckedAt.Sub(inc.OpenedAt)
	}
	if !resolvedAt.IsZero() {
		f.TimeToResolve = resolvedAt.Sub(inc.OpenedAt)
	}
	for _, e := range BuildTimeline(inc, evs) {
		if e.Request != 0 {
			f.Actions = append(f.Actions, e)
		}
	}
	for _, e := range evs {
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

// actionLine is a request's timeline entry in the summary's list.
func actionLine(e TimelineEntry) string {
	s := e.At.UTC().Format("15:04") + " " + e.Line()
	if person(e.Who) && !strings.Contains(e.Text, e.Who) {
		s += " — " + e.Who
	}
	return s
}

func resolutionSummary(inc store.Incident, resolvedAt time.Time, evs []store.AuditEvent, ach Achieved) chat.Message {
	f := figures(inc, resolvedAt, evs)
	tta := "never acknowledged"
	if f.TimeToAck > 0 {
		tta = formatDuration(f.TimeToAck)
	}
	ttr := formatDuration(f.TimeToResolve)
	actions := "none recorded"
	if len(f.Actions) > 0 {
		lines := make([]string, len(f.Actions))
		for i, e := range f.Actions {
			lines[i] = actionLine(e)
		}
		actions = strings.Join(lines, "\n")
	}
	rto, rpo := ach.RTO.Phrase(), strings.Join(ach.RPOPhrases(), "\n")
	blocks := []chat.Block{
		chat.Header{Text: "Resolved: " + inc.Title},
		chat.Fields{Fields: []chat.Field{
			{Label: "Time to acknowledge", Value: tta},
			{Label: "Time to resolve", Value: ttr},
			{Label: "RTO achieved", Value: rto},
			{Label: "RPO achieved", Value: rpo},
		}},
	}
	if f.Summary != "" {
		blocks = append(blocks, chat.Text{Text: "Summary: " + f.Summary})
	}
	blocks = append(blocks, chat.Text{Text: "Actions taken:\n" + actions},
		chat.Context{Text: fmt.Sprintf("Post-mortem: drbot timeline export %d", inc.ID)})
	return chat.Message{Text: fmt.Sprintf("Resolved: %s, time to resolve %s. RTO achieved: %s. RPO achieved: %s", inc.Title, ttr, rto, rpo), Blocks: blocks}
}

// TimelineMarkdown is the post-mortem of an incident: summary figures, the
// RTO and RPO achieved against their objectives, the timeline in words with
// durations and who acted (repeated rows folded), the actions taken, the
// checklist, and action items the record suggests.
func TimelineMarkdown(inc store.Incident, evs []store.AuditEvent, ach Achieved, now time.Time) string {
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
	p("\n## Recovery objectives\n\n| | objective | achieved |\n|---|---|---|\n")
	p("| RTO (opened → verified healthy) | %s | %s |\n", objective(inc.RTO), mdEscape(ach.RTO.Phrase()))
	if len(ach.RPO) == 0 {
		p("| RPO (incident start − restored backup's time) | %s | %s |\n", objective(inc.RPO), mdEscape(ach.RPOPhrases()[0]))
	}
	for _, r := range ach.RPO {
		p("| RPO %s (incident start − backup's time) | %s | %s |\n", mdEscape(r.Database), objective(r.Objective), mdEscape(r.Phrase()))
	}
	p("\n## Summary\n\n")
	if f.Summary != "" {
		p("%s\n", mdEscape(f.Summary))
	} else {
		p("No summary was given on resolve (`/dr resolve <summary>` records one).\n")
	}
	entries := BuildTimeline(inc, evs)
	p("\n## Timeline (UTC)\n\n%d audit rows in %d lines; repeated rows are folded (×N).\n\n| time | since opened | event | by |\n|---|---|---|---|\n", len(evs), len(entries))
	for _, e := range entries {
		p("| %s | %s | %s | %s |\n", e.At.UTC().Format("2006-01-02 15:04:05"), sinceOpened(inc, e.At), mdEscape(e.Line()), mdEscape(e.Who))
	}
	p("\n## Actions taken\n\n")
	if len(f.Actions) == 0 {
		p("None recorded by drbot.\n")
	}
	for _, a := range f.Actions {
		p("- %s\n", mdEscape(actionLine(a)))
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
	p("## Root cause\n\nNot in drbot's record: the review adds what failed, and why it was possible.\n\n")
	p("## Action items suggested by the record\n\n")
	items := suggestedItems(ach, entries)
	if len(items) == 0 {
		p("None: the objectives were met and every recovery request succeeded.\n")
	}
	for _, it := range items {
		p("- %s\n", mdEscape(it))
	}
	return sb.String()
}

func objective(d time.Duration) string {
	if d <= 0 {
		return "not set"
	}
	return formatDuration(d)
}

// sinceOpened is "+12m" from the incident's opening ("-" before it).
func sinceOpened(inc store.Incident, at time.Time) string {
	d := at.Sub(inc.OpenedAt)
	if d < 0 {
		return "-"
	}
	return "+" + formatDuration(d)
}

// suggestedItems are the follow-ups the record calls for: objectives
// missed, a service never verified, requests that failed.
func suggestedItems(ach Achieved, entries []TimelineEntry) []string {
	var out []string
	switch {
	case !ach.RTO.Verified:
		out = append(out, "The service was never verified healthy by drbot: give it health checks in the runbook (health:) and run /dr verify before resolving.")
	case ach.RTO.Objective > 0 && ach.RTO.Took > ach.RTO.Objective:
		out = append(out, fmt.Sprintf("Recovery took %s, %s beyond the RTO of %s: find the slow steps in the timeline.",
			formatDuration(ach.RTO.Took), formatDuration(ach.RTO.Took-ach.RTO.Objective), formatDuration(ach.RTO.Objective)))
	}
	for _, r := range ach.RPO {
		if r.Objective > 0 && r.Lost > r.Objective {
			out = append(out, fmt.Sprintf("%s lost %s of data, %s beyond the RPO of %s: back it up more often or keep WAL.",
				r.Database, formatDuration(r.Lost), formatDuration(r.Lost-r.Objective), formatDuration(r.Objective)))
		}
	}
	for _, e := range entries {
		if e.kind == store.AuditRequestFailed {
			out = append(out, fmt.Sprintf("Request #%d %s.", e.Request, e.Text))
		}
	}
	return out
}

func mdEscape(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ", "<", "&lt;", ">", "&gt;").Replace(s)
}

// TimelineStore is what ExportTimeline reads. *postgres.DB implements it.
type TimelineStore interface {
	store.Incidents
	store.Audit
	RequestsForIncident(ctx context.Context, incidentID int64) ([]store.ActionRequest, error)
}

// ExportTimeline returns the Markdown post-mortem of the incident
// whose drbot id or PagerDuty id is ref, people quoted by their chat ids.
func ExportTimeline(ctx context.Context, st TimelineStore, ref string, now time.Time) (string, error) {
	return ExportTimelineWith(ctx, st, ref, now, nil)
}

// ExportTimelineWith is ExportTimeline with people named through names
// (nil: quoted by their chat ids).
func ExportTimelineWith(ctx context.Context, st TimelineStore, ref string, now time.Time, names chat.UserNames) (string, error) {
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
	ach, err := achieved(ctx, st, inc, evs)
	if err != nil {
		return "", err
	}
	md := TimelineMarkdown(inc, evs, ach, now)
	return NameUsers(ctx, names, nil, md)(md), nil
}
