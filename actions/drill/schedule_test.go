package drill

import (
	"strings"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/runbook"
	"github.com/drbot-dev/drbot/store"
)

func day(s string) time.Time {
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		panic(err)
	}
	return t.Add(12 * time.Hour)
}

func cfgOf(t *testing.T, drills string) *runbook.Config {
	t.Helper()
	cfg, err := runbook.Parse("d.yaml", []byte(`
services:
  - name: lstm-pfd
    pagerduty:
      service_ids: [P1]
    objectives:
      rto: 1h
    health:
      - name: api
        http: http://127.0.0.1:1/health
    playbooks:
      - name: cluster-recovery
        steps:
          - action: verify
    drills:
`+drills))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func run(proc string, state store.RequestState, at time.Time) store.DrillRun {
	return store.DrillRun{Service: "lstm-pfd", Procedure: proc, State: state, CreatedAt: at.Add(-5 * time.Minute), StartedAt: at.Add(-4 * time.Minute), FinishedAt: at}
}

func find(t *testing.T, sts []Status, proc string) Status {
	t.Helper()
	for _, s := range sts {
		if s.Procedure == proc {
			return s
		}
	}
	t.Fatalf("no row for %s in %+v", proc, sts)
	return Status{}
}

const plan = `      every: 2160h
      plan:
        - quarter: 1
          procedure: cluster-recovery
        - quarter: 2
          procedure: restore-db
        - quarter: 3
          procedure: restore-models
        - quarter: 4
          procedure: cluster-recovery
`

func TestPlanScheduleDueOverdueDone(t *testing.T) {
	cfg := cfgOf(t, plan)
	// Q2 2027: restore-db is due this quarter (never drilled).
	sts := Schedule(cfg, nil, "", day("2027-05-10"))
	rdb := find(t, sts, "restore-db")
	if !rdb.Due || rdb.Overdue || !rdb.DueAt.Equal(day("2027-04-01").Add(-12*time.Hour)) || !rdb.DueBy.Equal(day("2027-07-01").Add(-12*time.Hour)) {
		t.Errorf("restore-db in Q2: %+v", rdb)
	}
	// restore-models was planned for Q3 2026, never done: overdue since Q3 ended.
	rm := find(t, sts, "restore-models")
	if !rm.Due || !rm.Overdue || rm.DueBy.Format("2006-01-02") != "2026-10-01" {
		t.Errorf("restore-models: %+v", rm)
	}
	// cluster-recovery (Q1 and Q4): the latest planned quarter begun is Q1 2027.
	cr := find(t, sts, "cluster-recovery")
	if cr.DueAt.Format("2006-01-02") != "2027-01-01" || !cr.Overdue {
		t.Errorf("cluster-recovery: %+v", cr)
	}

	// Drilled in Q2 (succeeded): next due in Q2 2028; a failed drill does not count.
	runs := []store.DrillRun{run("restore-db", store.RequestFailed, day("2027-05-11")), run("restore-db", store.RequestSucceeded, day("2027-05-09"))}
	rdb = find(t, Schedule(cfg, runs, "lstm-pfd", day("2027-05-12")), "restore-db")
	if rdb.Due || rdb.Overdue || rdb.DueAt.Format("2006-01-02") != "2028-04-01" {
		t.Errorf("restore-db after a successful drill: %+v", rdb)
	}
	if rdb.Last == nil || rdb.Last.State != store.RequestFailed || rdb.LastOK == nil || rdb.LastOK.State != store.RequestSucceeded {
		t.Errorf("last %+v, last ok %+v", rdb.Last, rdb.LastOK)
	}
	// A late drill (after the quarter ended) settles the overdue quarter.
	runs = []store.DrillRun{run("restore-models", store.RequestSucceeded, day("2026-11-20"))}
	rm = find(t, Schedule(cfg, runs, "", day("2026-12-01")), "restore-models")
	if rm.Due || rm.Overdue || rm.DueAt.Format("2006-01-02") != "2027-07-01" {
		t.Errorf("restore-models drilled late: %+v", rm)
	}
	// A procedure drilled outside the plan is listed, unscheduled.
	runs = []store.DrillRun{run("failover", store.RequestSucceeded, day("2026-11-20"))}
	fo := find(t, Schedule(cfg, runs, "", day("2026-12-01")), "failover")
	if fo.Scheduled || fo.Due || fo.Last == nil {
		t.Errorf("failover: %+v", fo)
	}
}

func TestEveryScheduleWithoutPlan(t *testing.T) {
	cfg := cfgOf(t, "      every: 720h\n")
	row := find(t, Schedule(cfg, nil, "", day("2026-12-01")), AnyProcedure)
	if !row.Due || row.Overdue || !row.DueAt.IsZero() {
		t.Errorf("never drilled: %+v", row)
	}
	runs := []store.DrillRun{run("restore-db", store.RequestSucceeded, day("2026-11-01"))}
	row = find(t, Schedule(cfg, runs, "", day("2026-11-20")), AnyProcedure)
	if row.Due || row.DueAt.Format("2006-01-02") != "2026-12-01" {
		t.Errorf("drilled 19 days ago: %+v", row)
	}
	row = find(t, Schedule(cfg, runs, "", day("2026-12-02")), AnyProcedure)
	if !row.Due || row.Overdue {
		t.Errorf("due (within a tenth): %+v", row)
	}
	row = find(t, Schedule(cfg, runs, "", day("2026-12-05")), AnyProcedure)
	if !row.Overdue {
		t.Errorf("overdue after every plus a tenth: %+v", row)
	}
	// Cancelled, denied, expired and in-flight drills never ran to an outcome.
	runs = []store.DrillRun{{Service: "lstm-pfd", Procedure: "restore-db", State: store.RequestCancelled, CreatedAt: day("2026-11-30")}}
	if row := find(t, Schedule(cfg, runs, "", day("2026-12-01")), AnyProcedure); row.Last != nil {
		t.Errorf("a cancelled drill counted: %+v", row.Last)
	}
}

func TestMarkdownFillsLastTestDate(t *testing.T) {
	cfg := cfgOf(t, plan)
	runs := []store.DrillRun{run("restore-db", store.RequestSucceeded, day("2027-05-09"))}
	now := day("2027-05-10")
	md := Markdown(cfg, Schedule(cfg, runs, "", now), now)
	for _, want := range []string{
		"## lstm-pfd",
		"**Last Test Date:** 2027-05-09 (restore-db, succeeded in 4m0s)",
		"**Next Scheduled Test:** 2026-07-01 (restore-models) — OVERDUE since 2026-10-01",
		"| restore-db | Q2 | 2027-05-09 | succeeded in 4m0s | 2028-04-01 | ok |",
		"| restore-models | Q3 | never | — | 2026-07-01 | OVERDUE |",
		"RTO: 1h.",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}

func TestTook(t *testing.T) {
	for d, want := range map[time.Duration]string{
		850 * time.Millisecond:                     "850ms",
		12*time.Second + 420*time.Millisecond:      "12.4s",
		4*time.Minute + 12*time.Second:             "4m12s",
		time.Hour + 3*time.Minute + 10*time.Second: "1h3m",
	} {
		if got := Took(d); got != want {
			t.Errorf("Took(%v) = %q, want %q", d, got, want)
		}
	}
}
