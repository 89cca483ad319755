package main

// Drills (issue 11, points 1 and 2): the drills.check periodic job reminds
// slack.announce_channel when a drill becomes due and again when it is
// overdue, once each; `drbot drills report` prints the schedule as Markdown.

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/riverqueue/river"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/drill"
	"github.com/drbot-dev/drbot/actions/playbook"
	"github.com/drbot-dev/drbot/actions/restoredb"
	"github.com/drbot-dev/drbot/bot/chat"
	"github.com/drbot-dev/drbot/bot/incident"
	"github.com/drbot-dev/drbot/runbook"
	"github.com/drbot-dev/drbot/store"
)

// drillsCheckInterval is how often drills.check runs: drills are due by the
// day, so a few minutes late is on time.
const drillsCheckInterval = 15 * time.Minute

// drillsCheckArgs is the periodic drills.check job.
type drillsCheckArgs struct{}

// Kind implements river.JobArgs.
func (drillsCheckArgs) Kind() string { return store.KindDrillsCheck }

// drillStates is what the drill schedule reads and records.
type drillStates interface {
	store.DrillRuns
	store.DrillReminders
}

// drillWatch computes the drill schedule and announces due and overdue
// drills once each.
type drillWatch struct {
	cfg *runbook.Config
	st  drillStates
	now func() time.Time
	log *slog.Logger
	// sweep drops drill copies no drill is working on any more (nil: none).
	sweep func(ctx context.Context) (int, error)
}

func newDrillWatch(cfg *runbook.Config, st drillStates, log *slog.Logger) *drillWatch {
	return &drillWatch{cfg: cfg, st: st, now: time.Now, log: log}
}

// statuses is the schedule of service ("" = all) now.
func (w *drillWatch) statuses(ctx context.Context, service string) ([]drill.Status, time.Time, error) {
	runs, err := w.st.DrillRuns(ctx, service)
	if err != nil {
		return nil, time.Time{}, err
	}
	now := w.now()
	return drill.Schedule(w.cfg, runs, service, now), now, nil
}

// periodic runs drills.check at start and then every drillsCheckInterval.
func (w *drillWatch) periodic() *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(drillsCheckInterval),
		func() (river.JobArgs, *river.InsertOpts) { return drillsCheckArgs{}, nil },
		&river.PeriodicJobOpts{RunOnStart: true})
}

type drillsCheckWorker struct {
	river.WorkerDefaults[drillsCheckArgs]
	w *drillWatch
}

func (k *drillsCheckWorker) Work(ctx context.Context, _ *river.Job[drillsCheckArgs]) error {
	return k.w.check(ctx)
}

func (w *drillWatch) register(workers *river.Workers) {
	river.AddWorker(workers, &drillsCheckWorker{w: w})
}

// check records a reminder for every due and every overdue drill; a new one
// is announced in the same transaction (its post job), an old one not again.
func (w *drillWatch) check(ctx context.Context) error {
	if w.sweep != nil {
		if n, err := w.sweep(ctx); err != nil {
			w.log.WarnContext(ctx, "drills.check: drill copies left behind could not all be dropped", "dropped", n, "err", err)
		}
	}
	sts, now, err := w.statuses(ctx, "")
	if err != nil {
		return err
	}
	for _, s := range sts {
		if !s.Scheduled || !s.Due {
			continue
		}
		if err := w.remind(ctx, s, store.AuditDrillDue, now); err != nil {
			return err
		}
		if s.Overdue {
			if err := w.remind(ctx, s, store.AuditDrillOverdue, now); err != nil {
				return err
			}
		}
	}
	return nil
}

func (w *drillWatch) remind(ctx context.Context, s drill.Status, kind string, now time.Time) error {
	text := reminderText(s, kind, now)
	data, err := json.Marshal(map[string]any{"service": s.Service, "procedure": s.Procedure, "due_at": s.DueAt, "due_by": s.DueBy, "text": text})
	if err != nil {
		return err
	}
	var jobs []store.Job
	if ch := w.cfg.Slack.AnnounceChannel; ch != "" {
		raw, err := incident.EncodeMessage(chat.Plain(text))
		if err != nil {
			return err
		}
		jobs = append(jobs, store.Job{Args: incident.PostArgs{Channel: ch, Message: raw}})
	}
	due := s.DueAt
	if due.IsZero() {
		due = time.Unix(0, 0).UTC() // never drilled: one reminder until the first drill
	}
	created, err := w.st.RecordDrillReminder(ctx, store.DrillReminder{Service: s.Service, Procedure: s.Procedure, Kind: kind, DueAt: due},
		store.AuditEvent{Actor: "drbot", Kind: kind, Data: data}, jobs...)
	if err != nil {
		return err
	}
	if created {
		w.log.InfoContext(ctx, "drills.check: "+text)
	}
	return nil
}

func reminderText(s drill.Status, kind string, now time.Time) string {
	what := s.Procedure + " drill of " + s.Service
	cmd := fmt.Sprintf("`/dr drill %s %s`", s.Procedure, s.Service)
	if s.Procedure == drill.AnyProcedure {
		what = "drill of " + s.Service
		cmd = fmt.Sprintf("`/dr drill <procedure> %s`", s.Service)
	}
	last := "it was never drilled"
	if s.LastOK != nil {
		last = "last successful drill " + drill.Day(s.LastOK.FinishedAt, now)
	}
	if kind == store.AuditDrillOverdue {
		return fmt.Sprintf(":rotating_light: The %s is overdue since %s (%s). Rehearse it with %s.", what, s.DueBy.UTC().Format("2006-01-02"), last, cmd)
	}
	by := ""
	if !s.DueBy.IsZero() {
		by = " by " + s.DueBy.UTC().Format("2006-01-02")
	}
	return fmt.Sprintf(":alarm_clock: The %s is due%s (%s). Rehearse it with %s.", what, by, last, cmd)
}

// DrillsCmd works with drills.
type DrillsCmd struct {
	Report DrillsReportCmd `cmd:"" help:"Print each service's drills as Markdown: last test date, outcome, next due (the runbooks' Last Test Date)."`
}

// DrillsReportCmd is `drbot drills report [SERVICE]`.
type DrillsReportCmd struct {
	ConfigFlags
	StoreFlags
	Service string `arg:"" optional:"" help:"Only this service."`
	Output  string `short:"o" help:"Write to this file instead of standard output." type:"path" placeholder:"FILE"`
}

// Run prints the report.
func (c DrillsReportCmd) Run(ctx context.Context, logger *slog.Logger) error {
	cfg, _, err := c.load(false)
	if err != nil {
		return err
	}
	if c.Service != "" {
		if _, ok := cfg.Service(c.Service); !ok {
			return fmt.Errorf("no service %q in the runbook config", c.Service)
		}
	}
	db, closeStore, err := openStore(ctx, logger, c.StoreFlags)
	if err != nil {
		return err
	}
	defer closeStore()
	sts, now, err := newDrillWatch(cfg, db, logger).statuses(ctx, c.Service)
	if err != nil {
		return err
	}
	md := drill.Markdown(cfg, sts, now)
	if c.Output == "" {
		_, err = fmt.Fprint(os.Stdout, md)
		return err
	}
	if err := os.WriteFile(c.Output, []byte(md), 0o644); err != nil { //nolint:gosec // a report for people to read
		return fmt.Errorf("write %s: %w", c.Output, err)
	}
	return nil
}

// sweepWith is the drill-copy sweep of rd: in flight are the targets of
// drills not in a final state, and those of a playbook drill's steps (its
// request holds drill:playbook:<service>, its restore-db step the
// database's drill target).
func sweepWith(rd *restoredb.RestoreDB, st interface {
	RequestsInState(ctx context.Context, states ...store.RequestState) ([]store.ActionRequest, error)
}) func(ctx context.Context) (int, error) {
	return func(ctx context.Context) (int, error) {
		reqs, err := st.RequestsInState(ctx, store.RequestPending, store.RequestApproved, store.RequestRunning, store.RequestVerifying)
		if err != nil {
			return 0, err
		}
		busy := map[string]bool{}
		for _, r := range reqs {
			if r.Kind == store.KindDrill {
				busy[r.Target] = true
				var plan actions.Plan
				if json.Unmarshal(r.Plan, &plan) == nil {
					for _, t := range playbook.StepTargets(plan) {
						busy[t] = true
					}
				}
			}
		}
		return rd.SweepDrillCopies(ctx, func(target string) bool { return busy[target] })
	}
}
