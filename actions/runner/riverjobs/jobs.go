// Package riverjobs runs the request jobs on River: execute an approved
// request, expire a pending one, resume requests a stopped process left
// running. It keeps River out of actions/runner (which the commands package
// imports for runner.Cards).
package riverjobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"

	"github.com/drbot-dev/drbot/actions/runner"
	"github.com/drbot-dev/drbot/approvals"
	"github.com/drbot-dev/drbot/store"
)

// Jobs are the River workers of the request jobs: execute an approved
// request, expire a pending one, and periodically resume requests a
// stopped process left running.
type Jobs struct {
	Runner *runner.Runner
	// Expire expires request id if it is still pending and shows it
	// (approvals.ErrNotYet: too early, the job is snoozed).
	Expire func(ctx context.Context, id int64) error
	Log    *slog.Logger
}

// Register adds the request jobs' workers.
func (j *Jobs) Register(workers *river.Workers) {
	river.AddWorker(workers, &executeWorker{run: j.Runner})
	river.AddWorker(workers, &expireWorker{expire: j.Expire})
	river.AddWorker(workers, &resumeWorker{j: j})
}

// ResumeEvery is how often requests left approved or running by a process
// that died while others live on are picked up (a restart looks at once; a
// request whose dead runner's lease is still live is scheduled for when it
// expires).
const ResumeEvery = time.Minute

// resumeRequestsArgs is the periodic job that resumes requests left running.
type resumeRequestsArgs struct{}

func (resumeRequestsArgs) Kind() string { return store.KindResumeRequests }

type resumeWorker struct {
	river.WorkerDefaults[resumeRequestsArgs]
	j *Jobs
}

func (r *resumeWorker) Work(ctx context.Context, _ *river.Job[resumeRequestsArgs]) error {
	return r.j.Resume(ctx)
}

// PeriodicResume schedules resumeRequestsArgs: a request whose process was
// killed is resumed by a surviving instance within ResumeEvery (targets with
// a live execution lease are left to their holder, and each resume job takes
// the lease first).
func (j *Jobs) PeriodicResume() *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(ResumeEvery),
		func() (river.JobArgs, *river.InsertOpts) { return resumeRequestsArgs{}, nil }, nil)
}

// Resume re-enqueues requests left running by a stopped process.
func (j *Jobs) Resume(ctx context.Context) error {
	n, err := j.Runner.Resume(ctx)
	if err != nil {
		return err
	}
	if n > 0 && j.Log != nil {
		j.Log.Info("resuming requests left running", "requests", n)
	}
	return nil
}

// executeWorker runs approved requests (store.ExecuteRequestArgs).
type executeWorker struct {
	river.WorkerDefaults[store.ExecuteRequestArgs]
	run *runner.Runner
}

// ExecuteTimeout bounds one execution (a large restore runs for hours; steps
// have their own timeouts). River's rescuer leaves an execute job alone for
// this long, far longer than postgres.DefaultRescueStuckJobsAfter: a job
// orphaned by kill -9 is not what recovers its request. The runner's lease
// and the periodic resume (ResumeEvery) are, within a minute.
const ExecuteTimeout = 12 * time.Hour

// Timeout is ExecuteTimeout.
func (w *executeWorker) Timeout(*river.Job[store.ExecuteRequestArgs]) time.Duration {
	return ExecuteTimeout
}

func (w *executeWorker) Work(ctx context.Context, job *river.Job[store.ExecuteRequestArgs]) error {
	if err := w.run.Run(ctx, job.Args.RequestID); err != nil {
		return fmt.Errorf("execute request %d: %w", job.Args.RequestID, err)
	}
	return nil
}

// expireWorker expires requests still pending at their expiry (store.ExpireRequestArgs).
type expireWorker struct {
	river.WorkerDefaults[store.ExpireRequestArgs]
	expire func(ctx context.Context, id int64) error
}

func (w *expireWorker) Work(ctx context.Context, job *river.Job[store.ExpireRequestArgs]) error {
	err := w.expire(ctx, job.Args.RequestID)
	if errors.Is(err, approvals.ErrNotYet) {
		return river.JobSnooze(time.Second)
	}
	return err
}
