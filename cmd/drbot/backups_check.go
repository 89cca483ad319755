package main

// The backups.check periodic job (issue 11, point 3): every backup location
// of the runbook config is checked against its `every`; a location turning
// stale, and recovering, is announced once in slack.announce_channel.

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/freshness"
	"github.com/drbot-dev/drbot/actions/storage"
	"github.com/drbot-dev/drbot/bot/chat"
	"github.com/drbot-dev/drbot/bot/incident"
	"github.com/drbot-dev/drbot/runbook"
	"github.com/drbot-dev/drbot/store"
)

// backupsCheckArgs is the periodic backups.check job.
type backupsCheckArgs struct{}

// Kind implements river.JobArgs.
func (backupsCheckArgs) Kind() string { return store.KindBackupsCheck }

// backupWatch checks the backup locations and records what it finds.
type backupWatch struct {
	cfg  *runbook.Config
	st   store.BackupStates
	open freshness.Opener
	now  func() time.Time
	log  *slog.Logger
	age  *prometheus.GaugeVec
}

func newBackupWatch(cfg *runbook.Config, st store.BackupStates, log *slog.Logger) *backupWatch {
	return &backupWatch{
		cfg: cfg, st: st, log: log, now: time.Now,
		open: func(ctx context.Context, loc runbook.Location) (storage.Store, error) {
			return storage.New(ctx, loc, storage.Options{})
		},
		age: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "drbot_backup_age_seconds",
			Help: "Age of the newest backup of each backup location in the runbook config, as of the last backups.check.",
		}, []string{"service", "kind", "name"}),
	}
}

// periodic runs backups.check at start and then every min(every/4, 5m).
func (w *backupWatch) periodic() *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(freshness.Interval(w.cfg)),
		func() (river.JobArgs, *river.InsertOpts) { return backupsCheckArgs{}, nil },
		&river.PeriodicJobOpts{RunOnStart: true})
}

type backupsCheckWorker struct {
	river.WorkerDefaults[backupsCheckArgs]
	w *backupWatch
}

func (k *backupsCheckWorker) Work(ctx context.Context, _ *river.Job[backupsCheckArgs]) error {
	return k.w.check(ctx)
}

func (w *backupWatch) register(workers *river.Workers) {
	river.AddWorker(workers, &backupsCheckWorker{w: w})
}

// check checks every location once. A location that cannot be listed keeps
// its recorded state (an unreachable bucket is not a recovery, nor news).
func (w *backupWatch) check(ctx context.Context) error {
	now := w.now()
	var failed int
	for _, s := range freshness.Check(ctx, w.cfg, w.open, now) {
		if s.Err != nil {
			failed++
			w.log.WarnContext(ctx, "backups.check: cannot list a backup location", "service", s.Service, "kind", s.Kind, "name", s.Name, "err", s.Err)
			continue
		}
		if s.NewestAt.IsZero() {
			w.age.DeleteLabelValues(s.Service, s.Kind, s.Name)
		} else {
			w.age.WithLabelValues(s.Service, s.Kind, s.Name).Set(s.Age.Seconds())
		}
		if err := w.record(ctx, s, now); err != nil {
			return err
		}
	}
	if failed > 0 {
		w.log.WarnContext(ctx, "backups.check: some locations were not checked", "failed", failed)
	}
	return nil
}

// record writes s's state; when it changed, the audit row and the
// announcement go in the same transaction.
func (w *backupWatch) record(ctx context.Context, s freshness.Status, now time.Time) error {
	kind, text := store.AuditBackupRecovered, recoveredText(s)
	if s.Stale {
		kind, text = store.AuditBackupStale, staleText(s)
	}
	data, err := json.Marshal(map[string]any{
		"service": s.Service, "kind": s.Kind, "name": s.Name, "location": s.Location.Location.String(),
		"newest": s.NewestKey, "age_seconds": int64(s.Age.Seconds()), "every": s.Every.String(),
	})
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
	st := store.BackupState{
		Service: s.Service, Kind: s.Kind, Name: s.Name, Location: s.Location.Location.String(),
		NewestKey: s.NewestKey, NewestAt: s.NewestAt, CheckedAt: now, Stale: s.Stale,
	}
	changed, err := w.st.RecordBackupState(ctx, st, store.AuditEvent{Actor: "drbot", Kind: kind, Data: data}, jobs...)
	if err != nil {
		return err
	}
	if changed {
		w.log.InfoContext(ctx, "backups.check: "+text)
	}
	return nil
}

func locationName(s freshness.Status) string {
	switch s.Kind {
	case freshness.KindModels:
		return fmt.Sprintf("%s model backups", s.Service)
	case freshness.KindVault:
		return fmt.Sprintf("%s Vault snapshots", s.Service)
	}
	return fmt.Sprintf("%s database %s backups", s.Service, s.Name)
}

func staleText(s freshness.Status) string {
	if s.NewestKey == "" {
		return fmt.Sprintf(":warning: %s are stale: no backup found in %s (expected every %s).", locationName(s), s.Location.Location, actions.HumanAge(s.Every))
	}
	return fmt.Sprintf(":warning: %s are stale: the newest backup, %s, is %s old (expected every %s) in %s.",
		locationName(s), s.NewestKey, actions.HumanAge(s.Age), actions.HumanAge(s.Every), s.Location.Location)
}

func recoveredText(s freshness.Status) string {
	return fmt.Sprintf("%s have recovered: the newest backup, %s, is %s old (expected every %s).",
		locationName(s), s.NewestKey, actions.HumanAge(s.Age), actions.HumanAge(s.Every))
}
