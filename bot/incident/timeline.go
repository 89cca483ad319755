package incident

// The incident timeline as people read it (/dr timeline, the post-mortem
// export, the resolution summary's actions): each audit row of the incident
// named in words ("restore-db lstm_pfd: streamed 8.4 KiB in 1.2 s",
// "approved by @bob"), with how long a step took and who acted, and runs of
// repeated rows folded into one line ("×30"). It is presentation only: it
// reads the audit rows and changes nothing.

import (
	"encoding/json"
	"fmt"
	"github.com/drbot-dev/drbot/internal/human"
	"regexp"
	"strings"
	"time"

	"github.com/drbot-dev/drbot/store"
)

// TimelineEntry is one line of an incident's timeline.
type TimelineEntry struct {
	At   time.Time // when it happened (the first row, when folded)
	Last time.Time // the last folded row; At when Count is 1
	// Count is how many consecutive rows this line stands for (1 or more).
	Count int
	// Text says what happened, in words, without who did it.
	Text string
	// Who did it: "@alice", "drbot", "PagerDuty"; "" when unknown.
	Who string
	// Took is how long the step took (Verb "in"), or how long after its
	// start the thing happened (Verb "after"); 0 when not known.
	Took time.Duration
	Verb string
	// Request is the recovery request the line is about, 0 for none.
	Request int64
	// fold is the key runs of lines fold by; "" never folds.
	fold string
	kind string // the audit kind of the (last) row
}

// Line is the entry's words with its duration and fold count, without the
// time and who: "restore-db lstm_pfd: streamed 8.4 KiB in 1.2 s ×3".
func (e TimelineEntry) Line() string {
	s := e.Text
	if e.Took > 0 && e.Verb != "" {
		s += " " + e.Verb + " " + formatTook(e.Took)
	}
	if e.Count > 1 {
		s += fmt.Sprintf(" ×%d (until %s)", e.Count, e.Last.UTC().Format("15:04:05"))
	}
	return s
}

// formatTook prints a step's duration: "0.4 s", "1.2 s", "42 s", "4m12s", "1h3m".
func formatTook(d time.Duration) string {
	switch {
	case d < 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Round(time.Second).Seconds()))
	case d < time.Hour:
		d = d.Round(time.Second)
		return fmt.Sprintf("%dm%02ds", int(d/time.Minute), int(d%time.Minute/time.Second))
	}
	return formatDuration(d)
}

// reqInfo is what the timeline knows of a request from its earlier rows.
type reqInfo struct {
	kind, target, service string
	created, running      time.Time
	steps                 map[string]time.Time // step → when it last started
}

func (r *reqInfo) label(id int64) string {
	if r == nil || r.kind == "" {
		return fmt.Sprintf("request #%d", id)
	}
	return r.kind + " " + targetName(r.target, r.service)
}

// targetName is a request target as people name it: "db:lstm-pfd/lstm_pfd"
// → "lstm_pfd", "dns:inflow" → "inflow", "k8s:default/deployment/web" →
// "default/deployment/web".
func targetName(target, service string) string {
	_, name, ok := strings.Cut(target, ":")
	if !ok {
		name = target
	}
	if rest, ok := strings.CutPrefix(name, service+"/"); ok && rest != "" {
		name = rest
	}
	if name == "" {
		return service
	}
	return name
}

// actorLabel names who wrote a row: a chat user as @name (the name recorded
// with the row, else the id), PagerDuty, or drbot.
func actorLabel(actor string, d map[string]any) string {
	if n, _ := d["user_name"].(string); n != "" {
		return "@" + n
	}
	if m := mentionRE.FindStringSubmatch(actor); m != nil {
		return "@" + m[1]
	}
	switch {
	case actor == "":
		return ""
	case actor == "pagerduty":
		return "PagerDuty"
	case actor == "drbot", strings.ContainsAny(actor, "@ "):
		return actor // drbot itself, an e-mail address, a description
	}
	return "@" + actor // a chat user id (Slack's U…, the shell's names)
}

// person reports whether who is a person (not drbot or PagerDuty).
func person(who string) bool { return strings.HasPrefix(who, "@") }

// BuildTimeline turns an incident's audit rows (in chain order) into the
// lines of its timeline, folded.
func BuildTimeline(inc store.Incident, evs []store.AuditEvent) []TimelineEntry {
	st := timelineState{reqs: map[int64]*reqInfo{}, lastFinish: map[string]int64{}, ended: map[int64]bool{}}
	for _, e := range evs {
		if e.RequestID == nil {
			continue
		}
		switch e.Kind {
		case store.AuditStepFinished:
			var d struct{ Step string }
			_ = json.Unmarshal(e.Data, &d)
			st.lastFinish[stepKey(*e.RequestID, d.Step)] = e.Seq
		case store.RequestMovedKind(store.RequestSucceeded), store.AuditRequestFailed, store.AuditRequestCancelled,
			store.AuditRequestExpired, store.AuditRequestDenied:
			st.ended[*e.RequestID] = true
		}
	}
	var out []TimelineEntry
	for _, e := range evs {
		var d map[string]any
		_ = json.Unmarshal(e.Data, &d) // audit data is a JSON object
		entry, ok := timelineEntry(inc, e, d, &st, out)
		if !ok {
			continue
		}
		if entry.merge && len(out) > 0 {
			out[len(out)-1] = entry.TimelineEntry
			continue
		}
		out = append(out, entry.TimelineEntry)
	}
	return Fold(out)
}

// Fold folds runs of consecutive entries with the same fold key into one
// entry counting them; the folded entry keeps the first one's time and the
// last one's words (a progress row's latest figures).
func Fold(in []TimelineEntry) []TimelineEntry {
	var out []TimelineEntry
	for _, e := range in {
		if e.Count == 0 {
			e.Count = 1
		}
		if e.Last.IsZero() {
			e.Last = e.At
		}
		if n := len(out); n > 0 && e.fold != "" && out[n-1].fold == e.fold {
			p := &out[n-1]
			p.Count += e.Count
			p.Last = e.Last
			p.Text = e.Text
			p.Took = e.Took
			continue
		}
		out = append(out, e)
	}
	return out
}

var digitsRE = regexp.MustCompile(`[0-9]+(\.[0-9]+)?`)

// timelineState is what BuildTimeline knows across rows.
type timelineState struct {
	reqs map[int64]*reqInfo
	// lastFinish is the seq of each request step's last finished row.
	lastFinish map[string]int64
	ended      map[int64]bool // requests that reached a final state
}

func stepKey(req int64, step string) string { return fmt.Sprintf("%d\x00%s", req, step) }

type built struct {
	TimelineEntry
	merge bool // replaces the previous entry (a request's approval completing)
}

// timelineEntry describes one row; ok is false for bookkeeping rows.
func timelineEntry(inc store.Incident, e store.AuditEvent, d map[string]any, st *timelineState, prev []TimelineEntry) (built, bool) {
	reqs := st.reqs
	str := func(k string) string { s, _ := d[k].(string); return s }
	who := actorLabel(e.Actor, d)
	en := built{TimelineEntry: TimelineEntry{At: e.At, Who: who, kind: e.Kind}}
	if e.RequestID == nil {
		desc := describeEvent(e)
		if desc == "" {
			return built{}, false
		}
		en.Text = mentionRE.ReplaceAllString(desc, "@$1")
		switch e.Kind {
		case store.AuditIncidentEscalationFired, store.AuditIncidentPrefix + EventAcknowledged, store.AuditIncidentResolved:
			if after := e.At.Sub(inc.OpenedAt); after > 0 {
				en.Text += fmt.Sprintf(" (%s after the incident opened)", formatDuration(after))
			}
		}
		en.fold = en.Text + "\x00" + who
		return en, true
	}
	id := *e.RequestID
	en.Request = id
	r := reqs[id]
	if r == nil {
		r = &reqInfo{steps: map[string]time.Time{}}
		reqs[id] = r
	}
	label := r.label(id)
	switch e.Kind {
	case store.AuditRequestCreated:
		r.kind, r.target, r.service, r.created = str("kind"), str("target"), str("service"), e.At
		en.Text = fmt.Sprintf("%s requested (request #%d)", r.label(id), id)
		if n, _ := d["required"].(float64); n > 0 {
			en.Text += fmt.Sprintf(", needs %s", plural(int(n), "approval"))
		}
		if reason := str("reason"); reason != "" {
			en.Text += ": " + reason
		}
	case store.AuditRequestCardPosted, store.AuditRequestVerifying:
		return built{}, false
	case store.AuditApprovalApproved:
		en.Text = label + ": approved by " + orDash(who)
	case store.AuditApprovalDenied:
		en.Text = label + ": denied by " + orDash(who)
		if reason := str("reason"); reason != "" {
			en.Text += ": " + reason
		}
	case store.AuditRequestApproved:
		en.Text = label + ": approved"
		if last := len(prev) - 1; last >= 0 && prev[last].Request == id && strings.HasPrefix(prev[last].Text, label+": approved by ") {
			// The approval that settled the request: one line.
			en.TimelineEntry = prev[last]
			en.kind = e.Kind
			en.merge = true
		}
		if n, _ := d["approvals"].(float64); n > 0 {
			req, _ := d["required"].(float64)
			en.Text += fmt.Sprintf(" (%d of %d needed)", int(n), int(req))
		}
		if !r.created.IsZero() {
			en.Took, en.Verb = e.At.Sub(r.created), "after"
		}
	case store.AuditRequestDenied:
		if last := len(prev) - 1; last >= 0 && prev[last].Request == id && strings.HasPrefix(prev[last].Text, label+": denied by ") {
			return built{}, false // said by the denial itself
		}
		en.Text = label + ": denied by " + orDash(who)
	case store.AuditRequestCancelled:
		en.Text = label + ": cancelled by " + orDash(who)
	case store.AuditRequestExpired:
		en.Text = label + ": expired without enough approvals"
		if !r.created.IsZero() {
			en.Took, en.Verb = e.At.Sub(r.created), "after"
		}
	case store.AuditRequestRunning:
		r.running = e.At
		en.Text = label + ": execution started"
		if changed, _ := d["plan_changed"].(bool); changed {
			en.Text += " (the plan would differ now; the approved plan runs)"
		}
	case store.AuditPlanChanged:
		en.Text = fmt.Sprintf("%s: the plan would be different now (%s changed); running the approved plan", label, strings.Join(stringsOf(d["changed"]), ", "))
	case store.AuditStepStarted:
		step := str("step")
		r.steps[step] = e.At
		if st.lastFinish[stepKey(id, step)] > e.Seq {
			return built{}, false // said when it finishes
		}
		if st.ended[id] {
			en.Text = fmt.Sprintf("%s: step %s started and never finished", label, step)
		} else {
			en.Text = fmt.Sprintf("%s: step %s in progress", label, step)
		}
	case store.AuditStepFinished:
		step := str("step")
		if errText := str("error"); errText != "" {
			en.Text = fmt.Sprintf("%s: step %s failed", label, step)
		} else {
			en.Text = label + ": " + stepPhrase(step, d["result"])
		}
		if at, ok := r.steps[step]; ok {
			en.Took, en.Verb = e.At.Sub(at), "in"
		}
	case store.AuditRequestNote:
		en.Text = label + ": " + str("text")
	case store.RequestMovedKind(store.RequestSucceeded):
		en.Text = label + " succeeded: " + reportPhrase(d["report"])
		if !r.running.IsZero() {
			en.Took, en.Verb = e.At.Sub(r.running), "after"
		}
	case store.AuditRequestFailed:
		en.Text = label + " failed"
		if reason := str("reason"); reason != "" {
			en.Text += ": " + reason
		}
		if !r.running.IsZero() {
			en.Took, en.Verb = e.At.Sub(r.running), "after"
		}
	case store.AuditRequestLeaseLost:
		en.Text = label + ": this bot instance lost the execution lease; the instance holding it carries on"
	default:
		if strings.HasSuffix(e.Kind, ".progress") {
			// Progress rows fold into one line whatever their figures.
			en.Text = label + ": " + orDash(str("text"))
			en.fold = fmt.Sprintf("%d\x00%s\x00%s", id, e.Kind, digitsRE.ReplaceAllString(en.Text, "#"))
			return en, true
		}
		desc := describeEvent(e)
		if desc == "" {
			return built{}, false
		}
		en.Text = label + ": " + strings.TrimPrefix(e.Kind, store.AuditRequestPrefix)
	}
	en.Text = mentionRE.ReplaceAllString(en.Text, "@$1")
	en.fold = fmt.Sprintf("%d\x00%s\x00%s", id, en.Text, who)
	return en, true
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// stepPhrase says what a finished step did, from its recorded result. The
// results are the actions' own (restore-db's restore-side records database,
// bytes and format; check steps a report; scale steps a replica count).
func stepPhrase(step string, result any) string {
	m, _ := result.(map[string]any)
	str := func(k string) string { s, _ := m[k].(string); return s }
	num, isNum := result.(float64)
	switch {
	case step == "restore-side":
		b, _ := m["bytes"].(float64)
		s := "streamed " + human.Size(int64(b))
		if db := str("database"); db != "" {
			s += " into " + db
		}
		return s
	case step == "check-side":
		return "checks on the restored copy: " + reportPhrase(result)
	case step == "check-live":
		return "checks on the live database: " + reportPhrase(result)
	case step == "wait-for":
		return "database pods Ready"
	case step == "terminate-connections" && isNum:
		return "terminated " + plural(int(num), "connection")
	case step == "swap":
		if str("live") == "" {
			return "swap settled"
		}
		s := "swapped the restored copy in as " + str("live")
		if out := str("outgoing"); out != "" {
			s += "; previous database kept as " + out
		}
		if st := str("settled"); st != "" && st != "swapped" {
			s += " (" + st + ")"
		}
		return s
	case strings.HasPrefix(step, "scale-down/") && isNum:
		return fmt.Sprintf("scaled %s to 0 (had %d)", strings.TrimPrefix(step, "scale-down/"), int(num))
	case strings.HasPrefix(step, "scale-up/") && isNum:
		return fmt.Sprintf("scaled %s back to %d", strings.TrimPrefix(step, "scale-up/"), int(num))
	// failover (actions/failover)
	case step == "promote-replica":
		return withDetail("promoted the replica", result)
	case step == "wait-db-available":
		return "promoted database available"
	case step == "upsert-dns":
		return withDetail("DNS record changed", result)
	case step == "wait-dns-insync":
		return "DNS change in sync"
	case step == "health-check":
		return withDetail("service health checked", result)
	// restore-models (actions/models)
	case step == "copy-objects":
		c, _ := m["copied"].(float64)
		b, _ := m["bytes"].(float64)
		s := fmt.Sprintf("copied %s (%s)", plural(int(c), "object"), human.Size(int64(b)))
		if sk, _ := m["skipped"].(float64); sk > 0 {
			s += fmt.Sprintf(", %d already in place", int(sk))
		}
		return s
	case strings.HasPrefix(step, "restart:"):
		return "restarted " + strings.TrimPrefix(step, "restart:")
	case strings.HasPrefix(step, "wait:"):
		return strings.TrimPrefix(step, "wait:") + " rolled out"
	// rollout-restart and scale (actions/kube)
	case step == "restart":
		return "rollout restart started"
	case step == "scale" && isNum:
		return fmt.Sprintf("scaled to %d", int(num))
	case step == "wait-rollout":
		return "rollout complete"
	}
	if _, ok := m["checks"]; ok {
		return step + ": " + reportPhrase(result)
	}
	for _, k := range []string{"bytes", "objects", "count"} {
		if n, ok := m[k].(float64); ok {
			if k == "bytes" {
				return fmt.Sprintf("%s: %s", step, human.Size(int64(n)))
			}
			return fmt.Sprintf("%s: %s", step, plural(int(n), strings.TrimSuffix(k, "s")))
		}
	}
	return step + " done"
}

// withDetail appends a step's short string result ("available", "200 OK in
// 41ms") to what it did.
func withDetail(did string, result any) string {
	if r, ok := result.(string); ok && r != "" && len(r) <= 80 {
		return did + ": " + r
	}
	return did
}

// reportPhrase summarises a verification report: "verified, 3/3 checks
// passed" or "2/3 checks passed (dashboard failed)".
func reportPhrase(v any) string {
	m, _ := v.(map[string]any)
	checks, _ := m["checks"].([]any)
	if len(checks) == 0 {
		return "no checks ran"
	}
	passed := 0
	var failed []string
	for _, c := range checks {
		cm, _ := c.(map[string]any)
		if ok, _ := cm["ok"].(bool); ok {
			passed++
			continue
		}
		name, _ := cm["name"].(string)
		failed = append(failed, name)
	}
	if len(failed) == 0 {
		return fmt.Sprintf("verified, %d/%d checks passed", passed, len(checks))
	}
	return fmt.Sprintf("%d/%d checks passed (failed: %s)", passed, len(checks), strings.Join(failed, ", "))
}
