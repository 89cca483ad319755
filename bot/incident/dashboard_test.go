package incident

import (
	"strings"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/runbook"
	"github.com/drbot-dev/drbot/store"
)

// seedService is lstm-pfd as runbook 001 (and runbook-v2.yaml) sets it up:
// escalation to the Platform Lead after 15m, the Database Admin after 30m,
// Security on a security incident; RTO 1h.
func seedService() *runbook.Service {
	return &runbook.Service{
		Name:       "lstm-pfd",
		Objectives: runbook.Objectives{RTO: runbook.Duration{Duration: time.Hour}, RPO: runbook.Duration{Duration: 4 * time.Hour}},
		Escalation: []runbook.Escalation{
			{After: runbook.Duration{Duration: 15 * time.Minute}, Role: "Platform Lead", Notify: []string{"platform-lead@example.com"}},
			{After: runbook.Duration{Duration: 30 * time.Minute}, Role: "Database Admin", Notify: []string{"dba@example.com"}},
			{On: runbook.EventSecurity, Role: "Security", Notify: []string{"security@example.com"}},
		},
	}
}

// TestHeaderDashboardWithTheSeedsNumbers renders the header of an lstm-pfd
// incident through its life: countdowns to both escalations that move with
// the clock, the Platform Lead marked fired with its time, the RTO clock
// against 1h, and after the resolution no countdown, the duration and the
// fired escalation kept.
func TestHeaderDashboardWithTheSeedsNumbers(t *testing.T) {
	svc := seedService()
	opened := time.Date(2026, 11, 2, 14, 2, 0, 0, time.UTC)
	inc := store.Incident{ID: 7, PagerDutyID: "P1", Service: "lstm-pfd", Title: "lstm_pfd down",
		Status: store.IncidentTriggered, OpenedAt: opened, RTO: time.Hour, RPO: 4 * time.Hour}
	render := func(inc store.Incident, marks map[string]string, now time.Time, lines ...requestLine) map[string]string {
		extra := escalationFields(svc, inc, marks, now)
		extra = append(extra, requestFields(lines)...)
		return headerFields(HeaderAt(inc, marks, now, AchievedRTO{Objective: inc.RTO}, extra...))
	}

	f := render(inc, map[string]string{}, opened.Add(time.Minute))
	if got, want := f["Escalations to come"], "Platform Lead in 14 min · Database Admin in 29 min"; got != want {
		t.Errorf("at +1m: escalations %q, want %q", got, want)
	}
	if got, want := f["RTO clock"], "1m elapsed, 59m left (1% of 1h)"; got != want {
		t.Errorf("at +1m: RTO clock %q, want %q", got, want)
	}
	if _, ok := f["Escalated"]; ok {
		t.Errorf("nothing fired yet, but: %q", f["Escalated"])
	}
	// Part of a minute left counts as a minute: the countdown never says
	// less than what is left.
	f = render(inc, map[string]string{}, opened.Add(6*time.Minute+10*time.Second))
	if got, want := f["Escalations to come"], "Platform Lead in 9 min · Database Admin in 24 min"; got != want {
		t.Errorf("at +6m10s: escalations %q, want %q", got, want)
	}

	// Acknowledged by alice, the Platform Lead fired at 14:17.
	acked := opened.Add(3 * time.Minute)
	inc.Status, inc.AckedAt = store.IncidentAcknowledged, &acked
	marks := map[string]string{markAckedBy: "alice", escalationMark(0): opened.Add(15 * time.Minute).Format(time.RFC3339)}
	f = render(inc, marks, opened.Add(20*time.Minute),
		requestLine{ID: 3, Kind: "restore-db", Target: "db:lstm-pfd/lstm_pfd", State: store.RequestRunning, Step: "restore", StepIndex: 2, Steps: 4},
		requestLine{ID: 4, Kind: "restore-models", Target: "s3:lstm-pfd/models", State: store.RequestPending, Steps: 3})
	if got, want := f["Status"], "Acknowledged by alice after 3m"; got != want {
		t.Errorf("status %q, want %q", got, want)
	}
	if got, want := f["Escalations to come"], "Database Admin in 10 min"; got != want {
		t.Errorf("at +20m: escalations %q, want %q", got, want)
	}
	if got, want := f["Escalated"], "Platform Lead at 14:17 UTC"; got != want {
		t.Errorf("fired: %q, want %q", got, want)
	}
	if got, want := f["Requests"], "#3 restore-db lstm_pfd: running step 2 of 4 (restore)\n#4 restore-models models: pending approval"; got != want {
		t.Errorf("requests %q, want %q", got, want)
	}
	if got, want := f["RTO clock"], "20m elapsed, 40m left (33% of 1h)"; got != want {
		t.Errorf("RTO clock %q, want %q", got, want)
	}

	// Past the Database Admin's time but its job not run yet: due now.
	if got := render(inc, marks, opened.Add(31*time.Minute))["Escalations to come"]; got != "Database Admin due now" {
		t.Errorf("overdue escalation: %q", got)
	}

	// Resolved after 42m: no countdown, the fired one stays, the duration shows.
	resolved := opened.Add(42 * time.Minute)
	inc.Status, inc.ResolvedAt = store.IncidentResolved, &resolved
	f = render(inc, marks, opened.Add(50*time.Minute))
	if got, ok := f["Escalations to come"]; ok {
		t.Errorf("a resolved incident shows countdowns: %q", got)
	}
	if f["Escalated"] != "Platform Lead at 14:17 UTC" {
		t.Errorf("fired after resolve: %q", f["Escalated"])
	}
	if got, want := f["Status"], "Resolved at 14:44 UTC, 42m after it opened"; got != want {
		t.Errorf("status %q, want %q", got, want)
	}
	// Resolved after 42m but never verified healthy: the RTO is not "met"
	// (the achieved RTO is opened → verified healthy, not time to resolve).
	if got, want := f["RTO clock"], "resolved after 42m, never verified healthy (RTO 1h)"; got != want {
		t.Errorf("RTO clock %q, want %q", got, want)
	}
	// Verified healthy 30m in: met, against the achieved RTO.
	ach := AchievedRTO{Objective: time.Hour, Verified: true, At: opened.Add(30 * time.Minute), Took: 30 * time.Minute, By: "/dr verify by alice"}
	f = headerFields(HeaderAt(inc, marks, opened.Add(50*time.Minute), ach))
	if got, want := f["RTO clock"], "verified healthy 30m after it opened: RTO 1h met, 30m to spare"; got != want {
		t.Errorf("RTO clock %q, want %q", got, want)
	}
	// Verified healthy only after 1h20m: missed, however soon it was resolved.
	ach.Took, ach.At = 80*time.Minute, opened.Add(80*time.Minute)
	f = headerFields(HeaderAt(inc, marks, opened.Add(90*time.Minute), ach))
	if got, want := f["RTO clock"], "verified healthy 1h20m after it opened: RTO 1h missed by 20m"; got != want {
		t.Errorf("RTO clock %q, want %q", got, want)
	}
}

// TestRPOAtRiskLocationsByKind: the header's "RPO at risk" lines keep a
// backup_states row only while its location is configured, told apart by
// kind: a Vault snapshot location is the service's vault:, never a database
// that happens to be called "vault", and the other way round.
func TestRPOAtRiskLocationsByKind(t *testing.T) {
	loc := runbook.Location{Scheme: "s3", Bucket: "b", Prefix: "raft/"}
	dbVault := runbook.Database{Name: "vault", Backups: &runbook.Backups{}}
	withVault := &runbook.Service{Name: "s", Vault: &runbook.Vault{Snapshots: loc}}
	withDBVault := &runbook.Service{Name: "s", Databases: []runbook.Database{dbVault}}
	vaultRow := store.BackupState{Service: "s", Kind: "vault", Name: "vault"}
	dbRow := store.BackupState{Service: "s", Kind: "database", Name: "vault"}
	for _, tc := range []struct {
		what string
		svc  *runbook.Service
		row  store.BackupState
		want bool
	}{
		{"vault snapshots of a service with vault:", withVault, vaultRow, true},
		{"vault snapshots, the service has only a database named vault", withDBVault, vaultRow, false},
		{"database vault of a service with it", withDBVault, dbRow, true},
		{"database vault, the service has only vault:", withVault, dbRow, false},
		{"models row without models:", withVault, store.BackupState{Kind: "models", Name: "models"}, false},
		{"an unknown kind", withDBVault, store.BackupState{Kind: "tape", Name: "vault"}, false},
	} {
		if got := configured(tc.svc, tc.row); got != tc.want {
			t.Errorf("%s: configured = %v, want %v", tc.what, got, tc.want)
		}
	}
}

// TestHeaderRequestStates: every state a request in flight can be in, as the
// header words it; finished requests other than failed ones are left out.
func TestHeaderRequestStates(t *testing.T) {
	for _, tc := range []struct {
		l    requestLine
		want string
	}{
		{requestLine{ID: 1, Kind: "failover", Target: "dns:inflow", State: store.RequestPending}, "#1 failover inflow: pending approval"},
		{requestLine{ID: 2, Kind: "restore-db", Target: "db:lstm-pfd/lstm_pfd", State: store.RequestApproved, Steps: 4}, "#2 restore-db lstm_pfd: approved, starting"},
		{requestLine{ID: 3, Kind: "restore-db", Target: "db:lstm-pfd/lstm_pfd", State: store.RequestRunning, Step: "swap", StepIndex: 3, Steps: 4}, "#3 restore-db lstm_pfd: running step 3 of 4 (swap)"},
		{requestLine{ID: 4, Kind: "restore-db", Target: "db:x/y", State: store.RequestRunning, Steps: 4}, "#4 restore-db y: running (4 steps)"},
		{requestLine{ID: 5, Kind: "restore-db", Target: "db:x/y", State: store.RequestVerifying}, "#5 restore-db y: verifying"},
		{requestLine{ID: 6, Kind: "rollback", Target: "k8s:default/deployment/web", State: store.RequestFailed}, "#6 rollback web: failed"},
	} {
		f := requestFields([]requestLine{tc.l})
		if len(f) != 1 || f[0].Value != tc.want {
			t.Errorf("%+v: %+v, want %q", tc.l, f, tc.want)
		}
	}
	for _, s := range []store.RequestState{store.RequestSucceeded, store.RequestDenied, store.RequestExpired, store.RequestCancelled} {
		if inFlight(s) {
			t.Errorf("%s is shown as in flight", s)
		}
	}
	if f := requestFields(nil); f != nil {
		t.Errorf("no requests: %+v", f)
	}
}

// TestHeaderRefreshPacing: one incident is refreshed every minute; many share
// the budget (30 a minute by default) by refreshing less often; one header
// is not updated twice within the minimum gap.
func TestHeaderRefreshPacing(t *testing.T) {
	for _, tc := range []struct {
		open int
		want time.Duration
	}{{0, time.Minute}, {1, time.Minute}, {30, time.Minute}, {45, 90 * time.Second}, {120, 4 * time.Minute}} {
		if got := paced(time.Minute, tc.open, DefaultHeaderBudget); got != tc.want {
			t.Errorf("%d open: every %s, want %s", tc.open, got, tc.want)
		}
	}
	var g headerGate
	t0 := time.Date(2026, 11, 2, 14, 0, 0, 0, time.UTC)
	if w := g.wait(1, t0, 5*time.Second); w != 0 {
		t.Fatalf("first update waits %s", w)
	}
	if w := g.wait(1, t0.Add(2*time.Second), 5*time.Second); w != 3*time.Second {
		t.Errorf("second update 2s later waits %s, want 3s", w)
	}
	if w := g.wait(2, t0.Add(2*time.Second), 5*time.Second); w != 0 {
		t.Errorf("another incident waits %s", w)
	}
	if w := g.wait(1, t0.Add(5*time.Second), 5*time.Second); w != 0 {
		t.Errorf("after the gap: waits %s", w)
	}
	g.forget(1)
	if w := g.wait(1, t0.Add(6*time.Second), 5*time.Second); w != 0 {
		t.Errorf("after forget: waits %s", w)
	}
	if !strings.Contains(countdown(59*time.Second), "1 min") || countdown(0) != "due now" || countdown(3*time.Hour) != "in 3 h" {
		t.Errorf("countdown: %q %q %q", countdown(59*time.Second), countdown(0), countdown(3*time.Hour))
	}
}
