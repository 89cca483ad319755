package incident

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/store"
)

// rows builds an incident's audit rows as drbot writes them, in chain order.
type rows struct {
	t   *testing.T
	inc store.Incident
	now time.Time
	evs []store.AuditEvent
}

func (r *rows) add(after time.Duration, req int64, actor, kind string, data map[string]any) {
	r.t.Helper()
	r.now = r.now.Add(after)
	b, err := json.Marshal(data)
	if err != nil {
		r.t.Fatal(err)
	}
	id := r.inc.ID
	ev := store.AuditEvent{Seq: int64(len(r.evs) + 1), IncidentID: &id, Actor: actor, Kind: kind, Data: b, At: r.now}
	if req != 0 {
		ev.RequestID = &req
	}
	r.evs = append(r.evs, ev)
}

// step adds a step's started and finished rows, took apart.
func (r *rows) step(req int64, name string, took time.Duration, result any) {
	r.add(0, req, "drbot", store.AuditStepStarted, map[string]any{"step": name})
	r.add(took, req, "drbot", store.AuditStepFinished, map[string]any{"step": name, "result": result})
}

// seedIncident is runbook 001's lstm-pfd database corruption: opened at
// 05:14, Platform Lead escalated after 15m, alice requests restore-db
// lstm_pfd from s3://lstm-pfd-backups/db/ (the 02:00 backup), bob approves,
// the restore streams 8.4 KiB in 1.2 s, waits with 30 identical notes,
// swaps and is verified 42m after the incident opened; alice runs /dr
// verify three times, all green, then resolves.
func seedIncident(t *testing.T) (*rows, []store.ActionRequest) {
	opened := time.Date(2026, 11, 23, 5, 14, 0, 0, time.UTC)
	inc := store.Incident{ID: 7, PagerDutyID: "PSEED", Service: "lstm-pfd", Title: "Database corruption detected on lstm_pfd",
		Status: store.IncidentResolved, OpenedAt: opened, RTO: time.Hour, RPO: 4 * time.Hour}
	r := &rows{t: t, inc: inc, now: opened}
	r.add(0, 0, "pagerduty", store.AuditIncidentOpened, map[string]any{"title": inc.Title, "service": "lstm-pfd", "urgency": "high"})
	r.add(time.Second, 0, "drbot", store.AuditIncidentHeaderPosted, map[string]any{store.MarkKey: "header_ts", store.MarkValue: "1.2"})
	r.add(15*time.Minute, 0, "drbot", store.AuditIncidentEscalationFired, map[string]any{"role": "Platform Lead", "notify": []string{"platform-lead@example.com"}})
	r.add(time.Minute, 12, "UALICE", store.AuditRequestCreated, map[string]any{"kind": "restore-db", "service": "lstm-pfd",
		"target": "db:lstm-pfd/lstm_pfd", "reason": "experiments table corrupted", "required": 1})
	r.add(time.Second, 12, "drbot", store.AuditRequestCardPosted, map[string]any{"ts": "1.3"})
	r.add(2*time.Minute, 12, "UBOB", store.AuditApprovalApproved, map[string]any{"decision": "approve", "plan_hash": "abc"})
	r.add(0, 12, "UBOB", store.AuditRequestApproved, map[string]any{"from": "pending", "to": "approved", "approvals": 1, "required": 1})
	r.add(time.Second, 12, "drbot", store.AuditRequestRunning, map[string]any{"from": "approved", "to": "running", "plan_changed": false})
	r.step(12, "restore-side", 1200*time.Millisecond, map[string]any{"database": "lstm_pfd_restore_20261123053300", "bytes": 8602, "format": "custom"})
	r.step(12, "check-side", 300*time.Millisecond, map[string]any{"checks": []map[string]any{{"name": "experiments present", "ok": true}}})
	r.step(12, "scale-down/deployment/lstm-pfd-dashboard", 2*time.Second, 2)
	for range 30 {
		r.add(10*time.Second, 12, "drbot", store.AuditRequestNote, map[string]any{"text": "waiting for deployment/lstm-pfd-dashboard to drain"})
	}
	r.step(12, "terminate-connections", 100*time.Millisecond, 3)
	r.step(12, "swap", 400*time.Millisecond, map[string]any{"live": "lstm_pfd", "outgoing": "lstm_pfd_pre_restore_20261123053300", "settled": "swapped"})
	r.step(12, "scale-up/deployment/lstm-pfd-dashboard", time.Second, 2)
	r.step(12, "check-live", 200*time.Millisecond, map[string]any{"checks": []map[string]any{{"name": "experiments present", "ok": true}}})
	r.add(0, 12, "drbot", store.AuditRequestVerifying, map[string]any{"from": "running", "to": "verifying"})
	// The success lands exactly 42m after the incident opened.
	r.now = opened.Add(42*time.Minute - 2*time.Second)
	r.add(2*time.Second, 12, "drbot", store.RequestMovedKind(store.RequestSucceeded), map[string]any{"from": "verifying", "ok": true,
		"report": map[string]any{"checks": []map[string]any{{"name": "experiments present", "ok": true}, {"name": "dashboard", "ok": true}}}})
	for range 3 {
		r.add(time.Minute, 0, "UALICE", store.AuditVerifyRan, map[string]any{"command": "verify", "service": "lstm-pfd", "ok": true,
			"checks": []map[string]any{{"name": "dashboard", "ok": true}}})
	}
	r.add(5*time.Minute, 0, "<@UALICE>", store.AuditIncidentResolved, map[string]any{"note": "restored from the 02:00 backup"})
	plan := fmt.Sprintf(`{"kind":"restore-db","service":"lstm-pfd","target":"db:lstm-pfd/lstm_pfd","summary":"Restore lstm_pfd","steps":[],"spec":{
		"service":"lstm-pfd","database":"lstm_pfd","location":"s3://lstm-pfd-backups/db/","backup":{"key":"db/lstm_pfd-20261123.dump",
		"name":"lstm_pfd-20261123.dump","size":8602,"last_modified":%q},"stamp":"20261123053300","incoming":"x","outgoing":"y","live":"lstm_pfd"}}`,
		time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC).Format(time.RFC3339))
	id := inc.ID
	return r, []store.ActionRequest{{ID: 12, IncidentID: &id, Service: "lstm-pfd", Kind: "restore-db", Target: "db:lstm-pfd/lstm_pfd", Plan: json.RawMessage(plan)}}
}

func lineTexts(es []TimelineEntry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = timelineLine(e)
	}
	return out
}

func TestTimelineNamesStepsWithDurationsAndWho(t *testing.T) {
	r, _ := seedIncident(t)
	lines := lineTexts(BuildTimeline(r.inc, r.evs))
	all := strings.Join(lines, "\n")
	for _, want := range []string{
		"05:14:00  Incident opened: Database corruption detected on lstm_pfd (lstm-pfd, high urgency)",
		"05:29:01  Escalated to Platform Lead (platform-lead@example.com) (15m after the incident opened)",
		"05:30:01  restore-db lstm_pfd requested (request #12), needs 1 approval: experiments table corrupted — @UALICE",
		"05:32:02  restore-db lstm_pfd: approved by @UBOB (1 of 1 needed) after 2m01s",
		"restore-db lstm_pfd: execution started",
		"restore-db lstm_pfd: streamed 8.4 KiB into lstm_pfd_restore_20261123053300 in 1.2 s",
		"restore-db lstm_pfd: checks on the restored copy: verified, 1/1 checks passed in 0.3 s",
		"restore-db lstm_pfd: scaled deployment/lstm-pfd-dashboard to 0 (had 2) in 2.0 s",
		"restore-db lstm_pfd: terminated 3 connections in 0.1 s",
		"restore-db lstm_pfd: swapped the restored copy in as lstm_pfd; previous database kept as lstm_pfd_pre_restore_20261123053300 in 0.4 s",
		"restore-db lstm_pfd: scaled deployment/lstm-pfd-dashboard back to 2 in 1.0 s",
		"restore-db lstm_pfd: checks on the live database: verified, 1/1 checks passed in 0.2 s",
		"05:56:00  restore-db lstm_pfd succeeded: verified, 2/2 checks passed after 23m57s",
		"Resolved by @UALICE: restored from the 02:00 backup (50m after the incident opened)",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("timeline lacks %q:\n%s", want, all)
		}
	}
	// Folded: 30 identical notes are one line, three identical /dr verify
	// runs are one line; bookkeeping rows are not lines.
	notes, verifies := 0, 0
	for _, l := range lines {
		if strings.Contains(l, "waiting for deployment/lstm-pfd-dashboard to drain") {
			notes++
			if !strings.Contains(l, "×30 (until 05:37:06)") {
				t.Errorf("notes line not folded ×30: %q", l)
			}
		}
		if strings.Contains(l, "Verified lstm-pfd by UALICE: passed, 1/1 checks passed") {
			verifies++
			if !strings.HasSuffix(l, "×3 (until 05:59:00) — @UALICE") {
				t.Errorf("verify line not folded ×3: %q", l)
			}
		}
		for _, bad := range []string{"card_posted", "header", "step.started", "request.verifying", "approved (1 of 1 needed)\n"} {
			if strings.Contains(l, bad) {
				t.Errorf("bookkeeping row shown: %q", l)
			}
		}
	}
	if notes != 1 || verifies != 1 {
		t.Errorf("%d notes lines and %d verify lines, want 1 and 1:\n%s", notes, verifies, all)
	}
	if n := len(lines); n != 16 {
		t.Errorf("%d lines from %d rows, want 16:\n%s", n, len(r.evs), all)
	}
	// The approval and the request's move to approved are one line.
	if strings.Count(all, "approved") != 1 {
		t.Errorf("approval said more than once:\n%s", all)
	}
}

func TestTimelineFoldsOnlyConsecutiveRepeatsAndProgressByFigures(t *testing.T) {
	r := &rows{t: t, inc: store.Incident{ID: 1, Service: "lstm-pfd", OpenedAt: time.Date(2026, 11, 23, 5, 0, 0, 0, time.UTC)}}
	r.now = r.inc.OpenedAt
	r.add(0, 3, "UALICE", store.AuditRequestCreated, map[string]any{"kind": "restore-models", "service": "lstm-pfd", "target": "s3:lstm-pfd/models"})
	for i := range 30 {
		r.add(time.Second, 3, "drbot", "step.progress", map[string]any{"text": fmt.Sprintf("copied %d of 30 objects", i+1)})
	}
	r.add(time.Second, 3, "drbot", store.AuditRequestNote, map[string]any{"text": "same"})
	r.add(time.Second, 3, "drbot", store.AuditRequestNote, map[string]any{"text": "other"})
	r.add(time.Second, 3, "drbot", store.AuditRequestNote, map[string]any{"text": "same"})
	lines := lineTexts(BuildTimeline(r.inc, r.evs))
	want := []string{
		"05:00:00  restore-models models requested (request #3) — @UALICE",
		"05:00:01  restore-models models: copied 30 of 30 objects ×30 (until 05:00:30)",
		"05:00:31  restore-models models: same",
		"05:00:32  restore-models models: other",
		"05:00:33  restore-models models: same",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("lines:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

func TestAchievedObjectivesFromTheSeedIncident(t *testing.T) {
	r, reqs := seedIncident(t)
	a := AchievedObjectives(r.inc, r.evs, reqs)
	if !a.RTO.Verified || a.RTO.Took != 42*time.Minute {
		t.Fatalf("RTO %+v, want verified 42m after opening", a.RTO)
	}
	if got, want := a.RTO.Phrase(), "42m from opened to verified healthy (restore-db lstm_pfd, request #12: verified, 2/2 checks passed, at 05:56:00 UTC): RTO 1h met, 18m to spare"; got != want {
		t.Errorf("RTO phrase\n got %q\nwant %q", got, want)
	}
	if len(a.RPO) != 1 {
		t.Fatalf("RPO %+v, want one restored database", a.RPO)
	}
	if got, want := a.RPO[0].Phrase(), "lstm_pfd: 3h14m of data lost (request #12 restored s3://lstm-pfd-backups/db/lstm_pfd-20261123.dump, taken 2026-11-23 02:00:00 UTC): RPO 4h met, 46m to spare"; got != want {
		t.Errorf("RPO phrase\n got %q\nwant %q", got, want)
	}

	// The same restore against an RPO of 1h and an RTO of 30m: missed, by how much.
	r.inc.RPO, r.inc.RTO = time.Hour, 30*time.Minute
	a = AchievedObjectives(r.inc, r.evs, reqs)
	if got := a.RPO[0].Phrase(); !strings.HasSuffix(got, "RPO 1h missed by 2h14m") {
		t.Errorf("RPO phrase %q", got)
	}
	if got := a.RTO.Phrase(); !strings.HasSuffix(got, "RTO 30m missed by 12m") {
		t.Errorf("RTO phrase %q", got)
	}

	// A rollback that swaps the previous database back is named.
	id := r.inc.ID
	reqs = append(reqs, store.ActionRequest{ID: 13, IncidentID: &id, Kind: "rollback", Target: "db:lstm-pfd/lstm_pfd",
		Plan: json.RawMessage(`{"kind":"rollback","spec":{"database":"lstm_pfd","live":"lstm_pfd","incoming":"a","outgoing":"b","restore":12}}`)})
	r.add(time.Minute, 13, "UALICE", store.AuditRequestCreated, map[string]any{"kind": "rollback", "service": "lstm-pfd", "target": "db:lstm-pfd/lstm_pfd"})
	r.step(13, "swap", time.Second, map[string]any{"live": "lstm_pfd", "outgoing": "lstm_pfd_rolled_back_x", "settled": "swapped"})
	a = AchievedObjectives(r.inc, r.evs, reqs)
	if got := a.RPO[0].Phrase(); !strings.HasSuffix(got, "rolled back by request #13, so this backup's data is no longer live") {
		t.Errorf("RPO phrase after a rollback %q", got)
	}
}

func TestAchievedObjectivesNeverVerifiedAndNothingRestored(t *testing.T) {
	opened := time.Date(2026, 11, 23, 5, 14, 0, 0, time.UTC)
	r := &rows{t: t, inc: store.Incident{ID: 9, Service: "lstm-pfd", OpenedAt: opened, RTO: time.Hour, RPO: 4 * time.Hour}, now: opened}
	id := r.inc.ID
	r.add(0, 0, "pagerduty", store.AuditIncidentOpened, map[string]any{"title": "x"})
	// A failing /dr verify, a verify of another service, a drill and a
	// restore that failed before its swap verify nothing and restore nothing.
	r.add(time.Minute, 0, "UALICE", store.AuditVerifyRan, map[string]any{"service": "lstm-pfd", "ok": false, "checks": []map[string]any{{"name": "dashboard", "ok": false}}})
	r.add(time.Minute, 0, "UALICE", store.AuditVerifyRan, map[string]any{"service": "inflow", "ok": true, "checks": []map[string]any{{"name": "api", "ok": true}}})
	r.add(time.Minute, 5, "UALICE", store.AuditRequestCreated, map[string]any{"kind": "drill", "service": "lstm-pfd", "target": "drill:lstm-pfd/restore-db"})
	r.add(time.Minute, 5, "drbot", store.RequestMovedKind(store.RequestSucceeded), map[string]any{"ok": true, "report": map[string]any{"checks": []map[string]any{{"name": "x", "ok": true}}}})
	// A drill planned by restore-db's drill form keeps the kind and names the throwaway target.
	r.add(time.Minute, 8, "UALICE", store.AuditRequestCreated, map[string]any{"kind": "restore-db", "service": "lstm-pfd", "target": "db:lstm-pfd/lstm_pfd_drill_20261123052000"})
	r.add(time.Minute, 8, "drbot", store.RequestMovedKind(store.RequestSucceeded), map[string]any{"ok": true, "report": map[string]any{"checks": []map[string]any{{"name": "x", "ok": true}}}})
	r.add(time.Minute, 6, "UALICE", store.AuditRequestCreated, map[string]any{"kind": "restore-db", "service": "lstm-pfd", "target": "db:lstm-pfd/lstm_pfd"})
	r.add(time.Second, 6, "drbot", store.AuditStepStarted, map[string]any{"step": "restore-side"})
	r.add(time.Second, 6, "drbot", store.AuditStepFinished, map[string]any{"step": "restore-side", "error": "pg_restore: corrupt"})
	r.add(0, 6, "drbot", store.AuditRequestFailed, map[string]any{"reason": "restoring lstm_pfd-20261123.dump failed (is the backup corrupt?)"})
	reqs := []store.ActionRequest{{ID: 6, IncidentID: &id, Kind: "restore-db", Plan: json.RawMessage(`{"spec":{"database":"lstm_pfd"}}`)}}
	a := AchievedObjectives(r.inc, r.evs, reqs)
	if a.RTO.Verified {
		t.Errorf("RTO verified by %q", a.RTO.By)
	}
	if got := a.RTO.Phrase(); got != "never verified healthy: no passing restore, failover or /dr verify was recorded after the incident opened (RTO 1h)" {
		t.Errorf("RTO phrase %q", got)
	}
	if got := a.RPOPhrases(); len(got) != 1 || got[0] != "no database was restored from a backup by drbot (restore-db request #6 never swapped its copy in)" {
		t.Errorf("RPO phrases %q", got)
	}
	md := TimelineMarkdown(r.inc, r.evs, a, opened.Add(time.Hour))
	for _, want := range []string{
		"| RTO (opened → verified healthy) | 1h | never verified healthy",
		"| RPO (incident start − restored backup's time) | 4h | no database was restored from a backup by drbot",
		"restore-db lstm_pfd: step restore-side failed in 1.0 s",
		"- The service was never verified healthy by drbot",
		"- Request #6 restore-db lstm_pfd failed: restoring lstm_pfd-20261123.dump failed (is the backup corrupt?).",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("export lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "pg_restore: corrupt") {
		t.Errorf("export shows a step's internal error:\n%s", md)
	}
}

func TestPostMortemHasNoPlaceholders(t *testing.T) {
	r, reqs := seedIncident(t)
	resolved := r.now
	r.inc.ResolvedAt = &resolved
	md := TimelineMarkdown(r.inc, r.evs, AchievedObjectives(r.inc, r.evs, reqs), resolved)
	for _, bad := range []string{"fill in", "_fill", "TODO", "_to "} {
		if strings.Contains(strings.ToLower(md), strings.ToLower(bad)) {
			t.Errorf("export holds the placeholder %q:\n%s", bad, md)
		}
	}
	for _, want := range []string{
		"| RTO (opened → verified healthy) | 1h | 42m from opened to verified healthy",
		"| RPO lstm_pfd (incident start − backup's time) | 4h | lstm_pfd: 3h14m of data lost (request #12 restored s3://lstm-pfd-backups/db/lstm_pfd-20261123.dump, taken 2026-11-23 02:00:00 UTC): RPO 4h met, 46m to spare |",
		"| 2026-11-23 05:29:01 | +15m | Escalated to Platform Lead (platform-lead@example.com) (15m after the incident opened) | drbot |",
		"| +18m | restore-db lstm_pfd: approved by @UBOB (1 of 1 needed) after 2m01s | @UBOB |",
		"restore-db lstm_pfd: waiting for deployment/lstm-pfd-dashboard to drain ×30",
		"restore-db lstm_pfd: streamed 8.4 KiB into lstm_pfd_restore_20261123053300 in 1.2 s",
		"None: the objectives were met and every recovery request succeeded.",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("export lacks %q:\n%s", want, md)
		}
	}
	msg := resolutionSummary(r.inc, resolved, r.evs, AchievedObjectives(r.inc, r.evs, reqs))
	text := fmt.Sprint(msg.Blocks)
	for _, want := range []string{"RTO achieved", "42m from opened to verified healthy", "RPO achieved", "lstm_pfd: 3h14m of data lost", "RPO 4h met",
		"restore-db lstm_pfd: streamed 8.4 KiB"} {
		if !strings.Contains(text, want) {
			t.Errorf("resolution summary lacks %q:\n%s", want, text)
		}
	}
}

// TestStepPhrasesOfEachAction: the steps of failover, restore-models and
// the Kubernetes actions are named in words from their recorded results.
func TestStepPhrasesOfEachAction(t *testing.T) {
	for _, tc := range []struct {
		step   string
		result any
		want   string
	}{
		{"promote-replica", "promoted", "promoted the replica: promoted"},
		{"upsert-dns", "/change/C123", "DNS record changed: /change/C123"},
		{"health-check", "200 OK in 41ms", "service health checked: 200 OK in 41ms"},
		{"copy-objects", map[string]any{"copied": 12.0, "skipped": 2.0, "bytes": 3.5 * 1024 * 1024}, "copied 12 objects (3.5 MiB), 2 already in place"},
		{"restart:deployment/lstm-pfd-dashboard", "", "restarted deployment/lstm-pfd-dashboard"},
		{"scale", 3.0, "scaled to 3"},
		{"terminate-connections", 1.0, "terminated 1 connection"},
		{"mystery", map[string]any{"objects": 4.0}, "mystery: 4 objects"},
		{"mystery", nil, "mystery done"},
	} {
		if got := stepPhrase(tc.step, tc.result); got != tc.want {
			t.Errorf("%s %v: %q, want %q", tc.step, tc.result, got, tc.want)
		}
	}
}

// TestVerificationWithoutItsOKFlagIsJudgedByItsChecks: a succeeded row or a
// verify.ran row that does not carry "ok" counts when every check passed.
func TestVerificationWithoutItsOKFlagIsJudgedByItsChecks(t *testing.T) {
	opened := time.Date(2026, 11, 23, 5, 14, 0, 0, time.UTC)
	r := &rows{t: t, inc: store.Incident{ID: 3, Service: "lstm-pfd", OpenedAt: opened, RTO: time.Hour}, now: opened}
	r.add(5*time.Minute, 0, "UALICE", store.AuditVerifyRan, map[string]any{"service": "lstm-pfd", "checks": []map[string]any{{"name": "dashboard", "ok": false}}})
	r.add(5*time.Minute, 0, "UALICE", store.AuditVerifyRan, map[string]any{"service": "lstm-pfd", "checks": []map[string]any{}})
	r.add(5*time.Minute, 0, "UALICE", store.AuditVerifyRan, map[string]any{"service": "lstm-pfd", "checks": []map[string]any{{"name": "dashboard", "ok": true}}})
	a := AchievedObjectives(r.inc, r.evs, nil)
	if !a.RTO.Verified || a.RTO.Took != 15*time.Minute || a.RTO.By != "/dr verify by @UALICE: verified, 1/1 checks passed" {
		t.Errorf("RTO %+v, want verified by the third /dr verify, 15m after opening", a.RTO)
	}
}

// TestStepInProgressOrInterrupted: a step that started and has no finished
// row after it is in progress while its request runs, and "never finished"
// once the request ended; a step started twice (a restart) and then finished
// is one line, timed from its last start.
func TestStepInProgressOrInterrupted(t *testing.T) {
	opened := time.Date(2026, 11, 23, 5, 14, 0, 0, time.UTC)
	r := &rows{t: t, inc: store.Incident{ID: 3, Service: "lstm-pfd", OpenedAt: opened}, now: opened}
	r.add(0, 4, "UALICE", store.AuditRequestCreated, map[string]any{"kind": "restore-db", "service": "lstm-pfd", "target": "db:lstm-pfd/lstm_pfd"})
	r.add(time.Second, 4, "drbot", store.AuditStepStarted, map[string]any{"step": "restore-side"})
	r.add(time.Minute, 4, "drbot", store.AuditRequestNote, map[string]any{"text": "Resumed after a restart: steps already done are skipped."})
	r.step(4, "restore-side", 2*time.Second, map[string]any{"bytes": 10})
	r.add(time.Second, 4, "drbot", store.AuditStepStarted, map[string]any{"step": "check-side"})
	lines := strings.Join(lineTexts(BuildTimeline(r.inc, r.evs)), "\n")
	for _, want := range []string{"restore-db lstm_pfd: streamed 10 B in 2.0 s", "restore-db lstm_pfd: step check-side in progress"} {
		if !strings.Contains(lines, want) {
			t.Errorf("timeline lacks %q:\n%s", want, lines)
		}
	}
	if strings.Count(lines, "restore-side") != 0 || strings.Count(lines, "streamed") != 1 {
		t.Errorf("the restarted step is not one line:\n%s", lines)
	}
	r.add(time.Second, 4, "drbot", store.AuditRequestFailed, map[string]any{"reason": "the runner stopped"})
	lines = strings.Join(lineTexts(BuildTimeline(r.inc, r.evs)), "\n")
	if !strings.Contains(lines, "restore-db lstm_pfd: step check-side started and never finished") {
		t.Errorf("timeline:\n%s", lines)
	}
}

func TestActorLabels(t *testing.T) {
	for actor, want := range map[string]string{"UALICE": "@UALICE", "<@UBOB>": "@UBOB", "alice": "@alice", "pagerduty": "PagerDuty",
		"drbot": "drbot", "dba@example.com": "dba@example.com", "": ""} {
		if got := actorLabel(actor, nil); got != want {
			t.Errorf("actorLabel(%q) = %q, want %q", actor, got, want)
		}
	}
	if got := actorLabel("UALICE", map[string]any{"user_name": "alice"}); got != "@alice" {
		t.Errorf("with a recorded name: %q", got)
	}
}

// TestHostileWordsStayInTheirCell: a reason with table and markup
// characters cannot split the export's table or form markup.
func TestHostileWordsStayInTheirCell(t *testing.T) {
	opened := time.Date(2026, 11, 23, 5, 14, 0, 0, time.UTC)
	r := &rows{t: t, inc: store.Incident{ID: 3, Service: "lstm-pfd", OpenedAt: opened}, now: opened}
	r.add(time.Minute, 4, "UALICE", store.AuditRequestCreated, map[string]any{"kind": "restore-db", "service": "lstm-pfd",
		"target": "db:lstm-pfd/lstm_pfd", "reason": "a | b\n| x | y |\n<!channel>"})
	md := TimelineMarkdown(r.inc, r.evs, AchievedObjectives(r.inc, r.evs, nil), opened.Add(time.Hour))
	want := `| 2026-11-23 05:15:00 | +1m | restore-db lstm_pfd requested (request #4): a \| b \| x \| y \| &lt;!channel&gt; | @UALICE |`
	if !strings.Contains(md, want+"\n") {
		t.Errorf("export lacks the escaped row %q:\n%s", want, md)
	}
}
