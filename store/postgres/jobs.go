package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/drbot-dev/drbot/store"
)

func insertParams(jobs []store.Job) ([]river.InsertManyParams, error) {
	params := make([]river.InsertManyParams, 0, len(jobs))
	for i, j := range jobs {
		if j.Args == nil {
			return nil, fmt.Errorf("job %d has no args", i)
		}
		opts := &river.InsertOpts{Queue: j.Queue, ScheduledAt: j.RunAt}
		if j.UniqueByArgs {
			opts.UniqueOpts = river.UniqueOpts{ByArgs: true}
		}
		params = append(params, river.InsertManyParams{Args: j.Args, InsertOpts: opts})
	}
	return params, nil
}

// insertJobsTx inserts jobs with River inside tx, so they exist only if tx commits.
func (db *DB) insertJobsTx(ctx context.Context, tx pgx.Tx, jobs []store.Job) error {
	if len(jobs) == 0 {
		return nil
	}
	params, err := insertParams(jobs)
	if err != nil {
		return fmt.Errorf("insert jobs: %w", err)
	}
	if _, err := db.inserter.InsertManyTx(ctx, tx, params); err != nil {
		return fmt.Errorf("insert jobs: %w", err)
	}
	return nil
}

// InsertJobs inserts jobs in one transaction of their own.
func (db *DB) InsertJobs(ctx context.Context, jobs ...store.Job) error {
	return db.inTx(ctx, func(tx pgx.Tx) error { return db.insertJobsTx(ctx, tx, jobs) })
}

// DefaultRescueStuckJobsAfter is how long a job may run before River assumes
// its process died and runs it again (Options.RescueStuckJobsAfter).
const DefaultRescueStuckJobsAfter = 5 * time.Minute

// StartJobs starts working jobs with workers on Options.Queues and schedules
// periodic (River elects one leader among processes to insert those). With
// nil workers the store stays insert-only and StartJobs does nothing. ctx only
// bounds the start: jobs run until StopJobs or Close.
func (db *DB) StartJobs(ctx context.Context, workers *river.Workers, periodic []*river.PeriodicJob) error {
	if workers == nil {
		if len(periodic) > 0 {
			return errors.New("start jobs: periodic jobs need workers")
		}
		return nil
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.worker != nil {
		return errors.New("start jobs: already started")
	}
	rescue := db.opts.RescueStuckJobsAfter
	if rescue <= 0 {
		rescue = DefaultRescueStuckJobsAfter
	}
	queues := map[string]river.QueueConfig{}
	for name, n := range db.opts.Queues {
		queues[name] = river.QueueConfig{MaxWorkers: n}
	}
	if len(queues) == 0 {
		queues[river.QueueDefault] = river.QueueConfig{MaxWorkers: 10}
	}
	if _, ok := queues[store.QueueIncidentEvents]; !ok {
		queues[store.QueueIncidentEvents] = river.QueueConfig{MaxWorkers: 1}
	}
	client, err := river.NewClient(riverpgxv5.New(db.pool), &river.Config{
		Logger:          db.log,
		Queues:          queues,
		Workers:         workers,
		PeriodicJobs:    periodic,
		SoftStopTimeout: db.opts.SoftStopTimeout,
		// River's default (1 h) would leave a timer interrupted by kill -9
		// silent for an hour.
		RescueStuckJobsAfter: rescue,
		// An incident's channel setup is a job: pick new jobs up quickly
		// (River's default cooldown is 100 ms).
		FetchCooldown:     20 * time.Millisecond,
		FetchPollInterval: 100 * time.Millisecond,
		Test:              db.riverTest(),
	})
	if err != nil {
		return fmt.Errorf("start jobs: %w", err)
	}
	if err := client.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("start jobs: %w", err)
	}
	db.worker = client
	return nil
}

// StopJobs stops working jobs: it lets running jobs finish and, when ctx ends
// first, cancels them and waits a little longer for them to return. It does
// nothing when jobs were not started.
func (db *DB) StopJobs(ctx context.Context) error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.worker == nil {
		return nil
	}
	err := db.worker.Stop(ctx)
	if err != nil && ctx.Err() != nil {
		hard, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		err = db.worker.StopAndCancel(hard)
	}
	if err != nil {
		return fmt.Errorf("stop jobs: %w", err)
	}
	db.worker = nil
	return nil
}

// AuditVerifyKind is the kind of the audit chain verification job.
const AuditVerifyKind = store.KindAuditVerify

// AuditVerifyArgs is the job that verifies the whole audit chain.
type AuditVerifyArgs struct{}

// Kind implements river.JobArgs and store.JobArgs.
func (AuditVerifyArgs) Kind() string { return AuditVerifyKind }

// AuditVerifyWorker verifies the audit chain. A broken chain is logged as an
// error naming the first broken seq and recorded as the job's output; the job
// itself succeeds (a retry would not repair the chain). Database errors fail
// the job so River retries it.
type AuditVerifyWorker struct {
	river.WorkerDefaults[AuditVerifyArgs]
	db *DB
}

// Timeout allows long chains: verification reads every row.
func (w *AuditVerifyWorker) Timeout(*river.Job[AuditVerifyArgs]) time.Duration { return time.Hour }

// Work runs VerifyAudit.
func (w *AuditVerifyWorker) Work(ctx context.Context, job *river.Job[AuditVerifyArgs]) error {
	rep, err := w.db.VerifyAudit(ctx)
	if err != nil {
		return err
	}
	if rep.OK() {
		w.db.log.InfoContext(ctx, "audit chain verified", "rows", rep.Rows)
	} else {
		w.db.log.ErrorContext(ctx, "audit chain is broken", "first_broken_seq", rep.FirstBroken, "problem", rep.Problem, "rows", rep.Rows)
	}
	if err := river.RecordOutput(ctx, rep); err != nil {
		return fmt.Errorf("record audit verification result: %w", err)
	}
	return nil
}

// AuditVerifyWorker returns the worker for AuditVerifyArgs jobs.
func (db *DB) AuditVerifyWorker() river.Worker[AuditVerifyArgs] {
	return &AuditVerifyWorker{db: db}
}

// RegisterWorkers adds this package's workers (audit.verify,
// deliveries.prune) to w.
func (db *DB) RegisterWorkers(w *river.Workers) {
	river.AddWorker(w, db.AuditVerifyWorker())
	river.AddWorker(w, &pruneDeliveriesWorker{db: db})
}

// AuditVerifyPeriodicJob schedules an audit.verify job every interval (0 means
// hourly), and once when the job scheduler starts.
func AuditVerifyPeriodicJob(every time.Duration) *river.PeriodicJob {
	if every <= 0 {
		every = time.Hour
	}
	return river.NewPeriodicJob(river.PeriodicInterval(every),
		func() (river.JobArgs, *river.InsertOpts) { return AuditVerifyArgs{}, nil },
		&river.PeriodicJobOpts{RunOnStart: true})
}
