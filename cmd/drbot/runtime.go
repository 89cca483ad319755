package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/restoredb"
	"github.com/drbot-dev/drbot/bot"
	"github.com/drbot-dev/drbot/bot/chat"
	"github.com/drbot-dev/drbot/bot/incident"
	"github.com/drbot-dev/drbot/commands"
	"github.com/drbot-dev/drbot/deploy/examples"
	"github.com/drbot-dev/drbot/runbook"
	"github.com/drbot-dev/drbot/store/postgres"
)

// ConfigFlags says which runbook config to load.
type ConfigFlags struct {
	Config string `help:"Runbook config file (YAML)." env:"DRBOT_CONFIG" type:"path" placeholder:"FILE"`
}

func (f ConfigFlags) load(demoFallback bool) (*runbook.Config, string, error) {
	if f.Config == "" {
		if !demoFallback {
			return nil, "", fmt.Errorf("no runbook config: pass --config FILE or set DRBOT_CONFIG (see deploy/examples/drbot.yaml)")
		}
		cfg, err := runbook.Parse(examples.DemoName, examples.Demo)
		if err != nil {
			return nil, "", fmt.Errorf("embedded demo runbook: %w", err)
		}
		return cfg, "embedded " + examples.DemoName, nil
	}
	cfg, err := runbook.Load(f.Config)
	if err != nil {
		return nil, "", err
	}
	return cfg, f.Config, nil
}

// runtime is what serve and shell share: the store, the incident lifecycle,
// the command registry and the chat handler, wired to one chat adapter.
type runtime struct {
	cfg       *runbook.Config
	db        *postgres.DB
	metrics   *prometheus.Registry
	bot       *bot.Bot
	incidents *incident.Lifecycle
	req       *requestWiring
	backups   *backupWatch // the backups.check periodic job (issue 11)
	drills    *drillWatch  // the drills.check periodic job (issue 11)
}

// runtimeOption adjusts the incident lifecycle's options.
type runtimeOption func(*incident.Options)

// withPagerDuty gives the incident lifecycle PagerDuty's REST API (on-call
// invites, notes, acks and resolves); without it there are none.
func withPagerDuty(pd incident.PagerDutyAPI) runtimeOption {
	return func(o *incident.Options) { o.PagerDuty = pd }
}

// withClock gives the incident lifecycle a clock other than time.Now (tests
// that move time; the store's jobs get the same clock, see openStore).
func withClock(now func() time.Time) runtimeOption {
	return func(o *incident.Options) { o.Now = now }
}

func newRuntime(ctx context.Context, logger *slog.Logger, cfg *runbook.Config, db *postgres.DB, adapter chat.Adapter, opts ...runtimeOption) *runtime {
	return newRuntimeOf(logger, cfg, db, adapter, buildActions(ctx, actionEnv{cfg: cfg, logger: logger, history: db, requests: db, drills: db}), opts...)
}

// newRuntimeWith is newRuntime with the recovery actions given (tests).
func newRuntimeWith(_ context.Context, logger *slog.Logger, cfg *runbook.Config, db *postgres.DB, adapter chat.Adapter, acts actions.Registry, opts ...runtimeOption) *runtime {
	return newRuntimeOf(logger, cfg, db, adapter, declaredWith(acts, cfg), opts...)
}

func newRuntimeOf(logger *slog.Logger, cfg *runbook.Config, db *postgres.DB, adapter chat.Adapter, procs []actions.Procedure, opts ...runtimeOption) *runtime {
	metrics := prometheus.NewRegistry()
	drills := newDrillWatch(cfg, db, logger)
	for _, p := range procs {
		if rd, ok := p.(*restoredb.RestoreDB); ok {
			drills.sweep = sweepWith(rd, db)
		}
	}
	req := newRequestWiring(logger, cfg, db, adapter, actions.RegistryOf(procs))
	// The incident operations exist before the registry that calls them.
	incOpts := incident.Options{Config: cfg, Store: db, Chat: adapter, Logger: logger, Now: time.Now, Metrics: metrics, Cards: req.requests}
	for _, o := range opts {
		o(&incOpts)
	}
	incidents := incident.New(incOpts)
	req.cards.onChange(incidents.RequestChangedIn)
	reg := commands.NewRegistry(commands.Deps{
		Incidents:         incidents,
		Services:          cfg.ServiceNames,
		ServiceForChannel: commands.ChannelServices(db),
		Actions:           procs,
		Requests:          req.requests,
		Runbook:           func() *runbook.Config { return cfg },
		Access:            newAccess(cfg, req.people, adapter),
		RecordReading:     commands.AuditReadings(db),
		Drills:            drills.statuses,
	})
	b := bot.New(bot.Options{
		Commands: reg,
		Logger:   logger,
		Metrics:  metrics,
	})
	for id, fn := range req.requests.Clicks() {
		b.OnClick(id, fn)
	}
	b.OnClick(chat.ActionChecklist, incidents.ClickChecklist)
	backups := newBackupWatch(cfg, db, logger)
	metrics.MustRegister(backups.age)
	return &runtime{cfg: cfg, db: db, metrics: metrics, bot: b, incidents: incidents, req: req, backups: backups, drills: drills}
}

// startJobs starts River with every worker the bot has; jobs and timers are
// durable in PostgreSQL, so whichever process runs them, each runs once.
func (rt *runtime) startJobs(ctx context.Context) error {
	workers := river.NewWorkers()
	rt.db.RegisterWorkers(workers)
	rt.incidents.RegisterWorkers(workers)
	rt.req.register(workers)
	rt.backups.register(workers)
	rt.drills.register(workers)
	if err := rt.db.StartJobs(ctx, workers, []*river.PeriodicJob{postgres.AuditVerifyPeriodicJob(0), rt.req.periodicResume(), postgres.PruneDeliveriesPeriodicJob(), rt.backups.periodic(), rt.drills.periodic()}); err != nil {
		return fmt.Errorf("start jobs: %w", err)
	}
	if err := rt.req.resume(ctx); err != nil {
		return fmt.Errorf("start jobs: %w", err)
	}
	return nil
}

// stopJobs lets running jobs finish (bounded), so a restart does not re-run them.
func (rt *runtime) stopJobs(logger *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := rt.db.StopJobs(ctx); err != nil {
		logger.Error("stop jobs", "err", err)
	}
}
