package drill

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/drbot-dev/drbot/runbook"
	"github.com/drbot-dev/drbot/store"
)

// AnyProcedure is the row of a service drilled every drills.every without a
// quarterly plan: any procedure's successful drill counts.
const AnyProcedure = "any"

// Status is one row of /dr drills: a service's procedure, its last drill
// and when the next one is due.
type Status struct {
	Service   string
	Procedure string
	// Quarters are the quarters (1–4) drills.plan exercises it in.
	Quarters []int
	// Last is the newest drill that ended (any outcome), LastOK the newest
	// that succeeded; nil when there is none.
	Last   *store.DrillRun
	LastOK *store.DrillRun
	// Scheduled is false when neither drills.plan nor drills.every asks
	// for this procedure (it was drilled anyway).
	Scheduled bool
	// DueAt is when the next drill is (or was) due; DueBy when it becomes
	// overdue. Zero DueAt with Due set: never drilled.
	DueAt time.Time
	DueBy time.Time
	Due   bool
	// Overdue: the drill was not done by DueBy.
	Overdue bool
}

// Quarter returns the quarter (1–4) of t and the start of that quarter (UTC).
func Quarter(t time.Time) (int, time.Time) {
	t = t.UTC()
	q := (int(t.Month())-1)/3 + 1
	return q, time.Date(t.Year(), time.Month((q-1)*3+1), 1, 0, 0, 0, 0, time.UTC)
}

// Schedule computes the drill status of every service of cfg (or only
// service) from runs (any order) at now.
func Schedule(cfg *runbook.Config, runs []store.DrillRun, service string, now time.Time) []Status {
	var out []Status
	for i := range cfg.Services {
		svc := &cfg.Services[i]
		if service != "" && svc.Name != service {
			continue
		}
		out = append(out, serviceSchedule(svc, runs, now)...)
	}
	return out
}

func serviceSchedule(svc *runbook.Service, runs []store.DrillRun, now time.Time) []Status {
	planned := map[string][]int{}
	var order []string
	for _, q := range svc.Drills.Plan {
		if q.Procedure == "" || q.Quarter == 0 {
			continue
		}
		if _, ok := planned[q.Procedure]; !ok {
			order = append(order, q.Procedure)
		}
		planned[q.Procedure] = append(planned[q.Procedure], q.Quarter)
	}
	var mine []store.DrillRun
	for _, r := range runs {
		if r.Service == svc.Name {
			mine = append(mine, r)
		}
	}
	sort.Slice(mine, func(i, j int) bool { return endOf(mine[i]).After(endOf(mine[j])) })
	var drilled []string
	for _, r := range mine {
		if _, ok := planned[r.Procedure]; !ok && !slices.Contains(drilled, r.Procedure) {
			drilled = append(drilled, r.Procedure)
		}
	}
	sort.Strings(drilled)

	var out []Status
	every := svc.Drills.Every.Duration
	if len(order) == 0 && every > 0 {
		st := Status{Service: svc.Name, Procedure: AnyProcedure, Scheduled: true}
		st.Last, st.LastOK = lastOf(mine, "")
		everySchedule(&st, every, now)
		out = append(out, st)
	}
	for _, p := range order {
		st := Status{Service: svc.Name, Procedure: p, Quarters: planned[p], Scheduled: true}
		st.Last, st.LastOK = lastOf(mine, p)
		planSchedule(&st, now)
		out = append(out, st)
	}
	for _, p := range drilled {
		st := Status{Service: svc.Name, Procedure: p}
		st.Last, st.LastOK = lastOf(mine, p)
		out = append(out, st)
	}
	return out
}

// endOf is when a run ended (or was made, while in flight).
func endOf(r store.DrillRun) time.Time {
	if !r.FinishedAt.IsZero() {
		return r.FinishedAt
	}
	return r.CreatedAt
}

// lastOf returns the newest ended run of proc ("": any) and the newest
// succeeded one; runs are newest first.
func lastOf(runs []store.DrillRun, proc string) (last, ok *store.DrillRun) {
	for i := range runs {
		r := &runs[i]
		if proc != "" && r.Procedure != proc {
			continue
		}
		if !store.Final(r.State) || r.State == store.RequestCancelled || r.State == store.RequestDenied || r.State == store.RequestExpired {
			continue // never ran to an outcome
		}
		if last == nil {
			last = r
		}
		if ok == nil && r.State == store.RequestSucceeded {
			ok = r
		}
	}
	return last, ok
}

// everySchedule: due drills.every after the last successful drill, overdue
// a tenth later (as backups are stale); never drilled: due now.
func everySchedule(st *Status, every time.Duration, now time.Time) {
	if st.LastOK == nil {
		st.Due = true
		return
	}
	st.DueAt = endOf(*st.LastOK).Add(every).UTC()
	st.DueBy = st.DueAt.Add(every / 10)
	st.Due = !now.Before(st.DueAt)
	st.Overdue = !now.Before(st.DueBy)
}

// planSchedule: a procedure planned for a quarter is due when that quarter
// starts and overdue when it ends without a successful drill since it
// started. The quarter looked at is the latest planned one that has begun
// (this one or one before, up to a year back).
func planSchedule(st *Status, now time.Time) {
	_, cur := Quarter(now)
	var qStart time.Time
	for back := 0; back < 4; back++ {
		start := cur.AddDate(0, -3*back, 0)
		if q, _ := Quarter(start); slices.Contains(st.Quarters, q) {
			qStart = start
			break
		}
	}
	if qStart.IsZero() {
		return // planned for no quarter (cannot happen with quarters 1–4)
	}
	qEnd := qStart.AddDate(0, 3, 0)
	if st.LastOK != nil && !endOf(*st.LastOK).Before(qStart) {
		// Done for that quarter: the next planned quarter after it.
		for fwd := 1; fwd <= 4; fwd++ {
			start := qStart.AddDate(0, 3*fwd, 0)
			if q, _ := Quarter(start); slices.Contains(st.Quarters, q) {
				st.DueAt, st.DueBy = start, start.AddDate(0, 3, 0)
				break
			}
		}
		return
	}
	st.DueAt, st.DueBy = qStart, qEnd
	st.Due = true
	st.Overdue = !now.Before(qEnd)
}

// QuarterLabel is "Q2 2027" for the quarter starting at start.
func QuarterLabel(start time.Time) string {
	q, _ := Quarter(start)
	return fmt.Sprintf("Q%d %d", q, start.Year())
}

// Outcome is a run's outcome in a few words: "succeeded in 4m12s".
func Outcome(r store.DrillRun) string {
	s := string(r.State)
	if d := r.Duration(); d > 0 {
		s += " in " + Took(d)
	}
	return s
}

// Day is how drill dates read: "2026-12-01", with "(today)" when it is.
func Day(t, now time.Time) string {
	s := t.UTC().Format("2006-01-02")
	if s == now.UTC().Format("2006-01-02") {
		s += " (today)"
	}
	return s
}

// Markdown is `drbot drills report`: per service, the runbooks' "Last Test
// Date" and "Next Scheduled Test" filled in, and a table of procedures.
func Markdown(cfg *runbook.Config, sts []Status, now time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Disaster-recovery drills\n\nGenerated by drbot on %s.\n", now.UTC().Format("2006-01-02 15:04 MST"))
	bySvc := map[string][]Status{}
	var names []string
	for _, s := range sts {
		if _, ok := bySvc[s.Service]; !ok {
			names = append(names, s.Service)
		}
		bySvc[s.Service] = append(bySvc[s.Service], s)
	}
	for _, name := range names {
		rows := bySvc[name]
		fmt.Fprintf(&b, "\n## %s\n\n", name)
		var last *store.DrillRun
		var next *Status
		for i := range rows {
			r := &rows[i]
			if r.Last != nil && (last == nil || endOf(*r.Last).After(endOf(*last))) {
				last = r.Last
			}
			if r.Scheduled && (next == nil || (r.DueAt.Before(next.DueAt))) {
				next = r
			}
		}
		if last != nil {
			fmt.Fprintf(&b, "**Last Test Date:** %s (%s, %s)  \n", endOf(*last).UTC().Format("2006-01-02"), last.Procedure, Outcome(*last))
		} else {
			b.WriteString("**Last Test Date:** never drilled  \n")
		}
		switch {
		case next == nil:
			b.WriteString("**Next Scheduled Test:** not scheduled (no drills.every or drills.plan)\n")
		case next.DueAt.IsZero():
			fmt.Fprintf(&b, "**Next Scheduled Test:** now (%s never drilled)\n", next.Procedure)
		default:
			fmt.Fprintf(&b, "**Next Scheduled Test:** %s (%s)%s\n", next.DueAt.UTC().Format("2006-01-02"), next.Procedure, overdueNote(*next))
		}
		if svc, ok := cfg.Service(name); ok && svc.Objectives.RTO.Duration > 0 {
			fmt.Fprintf(&b, "\nRTO: %s.\n", svc.Objectives.RTO)
		}
		b.WriteString("\n| Procedure | Planned | Last drill | Outcome | Next due | Status |\n|---|---|---|---|---|---|\n")
		for _, r := range rows {
			lastDay, outcome := "never", "—"
			if r.Last != nil {
				lastDay, outcome = endOf(*r.Last).UTC().Format("2006-01-02"), Outcome(*r.Last)
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", r.Procedure, planned(r), lastDay, outcome, dueDay(r), StateWord(r))
		}
	}
	return b.String()
}

func overdueNote(s Status) string {
	if s.Overdue {
		return " — OVERDUE since " + s.DueBy.UTC().Format("2006-01-02")
	}
	return ""
}

func planned(s Status) string {
	if len(s.Quarters) == 0 {
		if s.Procedure == AnyProcedure {
			return "every drills.every"
		}
		return "—"
	}
	qs := make([]string, len(s.Quarters))
	for i, q := range s.Quarters {
		qs[i] = fmt.Sprintf("Q%d", q)
	}
	return strings.Join(qs, ", ")
}

func dueDay(s Status) string {
	switch {
	case !s.Scheduled:
		return "—"
	case s.DueAt.IsZero():
		return "now"
	}
	return s.DueAt.UTC().Format("2006-01-02")
}

// StateWord is a row's status: "OVERDUE", "due", "ok" or "unscheduled".
func StateWord(s Status) string {
	switch {
	case !s.Scheduled:
		return "unscheduled"
	case s.Overdue:
		return "OVERDUE"
	case s.Due:
		return "due"
	}
	return "ok"
}
