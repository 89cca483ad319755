package main

import (
	"context"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/riverqueue/river"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/backups"
	"github.com/drbot-dev/drbot/actions/diagnose"
	"github.com/drbot-dev/drbot/actions/drill"
	"github.com/drbot-dev/drbot/actions/failover"
	"github.com/drbot-dev/drbot/actions/kube"
	"github.com/drbot-dev/drbot/actions/models"
	"github.com/drbot-dev/drbot/actions/playbook"
	"github.com/drbot-dev/drbot/actions/redeploy"
	"github.com/drbot-dev/drbot/actions/restoredb"
	"github.com/drbot-dev/drbot/actions/runner"
	"github.com/drbot-dev/drbot/actions/runner/riverjobs"
	"github.com/drbot-dev/drbot/actions/vaultrestore"
	"github.com/drbot-dev/drbot/actions/verify"
	"github.com/drbot-dev/drbot/approvals"
	"github.com/drbot-dev/drbot/bot/chat"
	"github.com/drbot-dev/drbot/commands"
	"github.com/drbot-dev/drbot/runbook"
	"github.com/drbot-dev/drbot/store"
	"github.com/drbot-dev/drbot/store/postgres"
)

// ActionFactory builds one recovery procedure from the runbook config.
type ActionFactory func(ctx context.Context, env actionEnv) (actions.Procedure, error)

// actionEnv is what an action factory may use.
type actionEnv struct {
	cfg    *runbook.Config
	logger *slog.Logger
	// history reads earlier requests and their audit rows (rollback finds
	// the restore it undoes); nil when no store is wired (unit tests).
	history restoredb.History
	// requests reads earlier requests and their journals (playbook resume,
	// busy targets); nil when no store is wired (unit tests).
	requests playbook.Store
	// built holds the built procedures once buildActions is done (the
	// playbook action runs the others).
	built *builtActions
	// drills records restore-db drills' copies and reads drills' own
	// requests (their step times); nil when no store is wired.
	drills drillStore
}

// drillStore is what drills keep and read in the store (*postgres.DB).
type drillStore interface {
	store.DrillCopies
	drill.Store
}

// builtActions is the registry of the built actions, set once after they
// are all built and read by the playbook action when it plans and runs.
type builtActions struct {
	mu  sync.RWMutex
	reg actions.Registry
}

func (b *builtActions) set(r actions.Registry) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.reg = r
}

// lookup returns the built action of kind, nil when there is none (or it is unavailable).
func (b *builtActions) lookup(kind string) actions.Action {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.reg[kind]
}

// procedure is one line of the registration list: the command a recovery
// procedure declares (in its actions/<kind> package) and how to build it.
type procedure struct {
	cmd   actions.Command
	build ActionFactory
}

// procedures is the registration list: every recovery procedure of the
// binary. Adding one is a folder under actions/ and a line here.
func procedures() []procedure {
	return []procedure{
		{restoredb.RestoreCommand, buildRestoreDB},
		{restoredb.RollbackCommand, buildRollback},
		{models.Command, buildModels},
		{kube.RolloutRestartCommand, needKube(kube.RolloutRestartCommand.Name, func(cfg *runbook.Config, kc *kube.Client) actions.Action { return kube.NewRolloutRestart(cfg, kc) })},
		{kube.ScaleCommand, needKube(kube.ScaleCommand.Name, func(cfg *runbook.Config, kc *kube.Client) actions.Action { return kube.NewScale(cfg, kc) })},
		{failover.Command, buildFailover},
		{redeploy.Command, buildRedeploy},
		{verify.Command, buildVerify},
		{backups.Command, buildBackups},
		{diagnose.Command, buildDiagnose},
		{vaultrestore.Command, buildVaultRestore},
		{playbook.Command, buildPlaybook},
		{drill.Command, buildDrill},
	}
}

var (
	overridesMu sync.Mutex
	overrides   = map[string]ActionFactory{} // test builds only (actions_e2etest.go)
)

// overrideAction makes f build kind instead of its line in procedures.
func overrideAction(kind string, f func(ctx context.Context, env actionEnv) (actions.Action, error)) { //nolint:unused // used by actions_e2etest.go (build tag e2etest)
	overridesMu.Lock()
	defer overridesMu.Unlock()
	overrides[kind] = func(ctx context.Context, env actionEnv) (actions.Procedure, error) { return f(ctx, env) }
}

// buildActions builds every procedure of the registration list. One that
// cannot be built (missing settings) is left unavailable with a note in the
// log: its command then refuses with a clear message instead of the bot not
// starting.
func buildActions(ctx context.Context, env actionEnv) []actions.Procedure {
	overridesMu.Lock()
	defer overridesMu.Unlock()
	if env.built == nil {
		env.built = &builtActions{}
	}
	var out []actions.Procedure
	for _, p := range procedures() {
		build := p.build
		if o := overrides[p.cmd.Name]; o != nil {
			build = o
		}
		a, err := build(ctx, env)
		if err != nil || a == nil {
			env.logger.Info("recovery action unavailable", "kind", p.cmd.Name, "err", err)
			a = actions.Unavailable(p.cmd)
		}
		out = append(out, a)
	}
	env.built.set(actions.RegistryOf(out))
	useRegistry(out)
	return out
}

// buildPlaybook builds the playbook action over the other built actions;
// its run: steps work in DRBOT_PLAYBOOK_DIR (drbot's working directory when
// unset).
func buildPlaybook(_ context.Context, env actionEnv) (actions.Procedure, error) {
	return playbook.New(playbook.Options{
		Config: env.cfg, Lookup: env.built.lookup, Store: env.requests,
		Dir: os.Getenv(playbook.DirEnv), Logger: env.logger,
	}), nil
}

// useRegistry hands the built actions to the procedures that run others
// (drill runs the drill forms of the drillable ones).
func useRegistry(procs []actions.Procedure) {
	reg := actions.RegistryOf(procs)
	for _, p := range procs {
		if u, ok := p.(interface{ Use(actions.Registry) }); ok {
			u.Use(reg)
		}
	}
}

func buildDrill(_ context.Context, env actionEnv) (actions.Procedure, error) {
	var st drill.Store
	if env.drills != nil {
		st = env.drills
	}
	cfg := env.cfg
	return drill.New(func() *runbook.Config { return cfg }, st), nil
}

// declaredWith is the registration list with the actions of acts (tests),
// the others unavailable; /dr backups is built from cfg as in every binary.
func declaredWith(acts actions.Registry, cfg *runbook.Config) []actions.Procedure {
	var out []actions.Procedure
	for _, p := range procedures() {
		switch a := acts[p.cmd.Name]; {
		case a != nil:
			out = append(out, a)
		case p.cmd.Name == backups.Command.Name:
			out = append(out, backups.New(cfg, backups.DefaultOpener))
		case p.cmd.Name == drill.Command.Name:
			out = append(out, drill.New(func() *runbook.Config { return cfg }, nil))
		default:
			out = append(out, actions.Unavailable(p.cmd))
		}
	}
	useRegistry(out)
	return out
}

// requestWiring is the request lifecycle of one process: the approval
// engine, the chat side (cards, buttons) and the runner.
type requestWiring struct {
	// people resolves approvers, requesters and responders (one cache).
	people   *approvals.Resolver
	engine   *approvals.Engine
	requests *commands.RequestCards
	cards    *requestPoster // the cards' poster: refreshes the incident header
	runner   *runner.Runner
	jobs     *riverjobs.Jobs
}

// groupLister is implemented by chat adapters with user groups (bot/slack).
type groupLister interface {
	GroupMembers(ctx context.Context, groupID string) ([]string, error)
}

func newRequestWiring(logger *slog.Logger, cfg *runbook.Config, db *postgres.DB, adapter chat.Adapter, acts actions.Registry) *requestWiring {
	people := approvals.NewResolver(chatDirectory(adapter), 0, time.Now, logger)
	engine := approvals.NewEngine(approvals.EngineOptions{Store: db, Config: cfg, Logger: logger, Resolver: people})
	cards := &requestPoster{Poster: adapter, log: logger}
	reqs := commands.NewRequestCards(commands.RequestCardsOptions{Requests: approvals.NewRequests(db, engine), Chat: cards, Logger: logger})
	run := runner.New(runner.Options{Store: db, Actions: acts, Cards: reqs, Logger: logger, Lease: executionLease(logger)})
	jobs := &riverjobs.Jobs{Runner: run, Expire: reqs.Expire, Log: logger}
	return &requestWiring{people: people, engine: engine, requests: reqs, cards: cards, runner: run, jobs: jobs}
}

// executionLease is DRBOT_EXECUTION_LEASE (a Go duration, at least 3s): how
// long a target stays leased to a runner that stopped renewing it (its
// process died). Unset or invalid: runner.DefaultLease (30s).
func executionLease(logger *slog.Logger) time.Duration {
	v := os.Getenv("DRBOT_EXECUTION_LEASE")
	if v == "" {
		return 0
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 3*time.Second {
		logger.Warn("DRBOT_EXECUTION_LEASE is not a duration of at least 3s; using the default", "value", v, "default", runner.DefaultLease)
		return 0
	}
	return d
}

// register adds the request jobs' workers (actions/runner/riverjobs).
func (w *requestWiring) register(workers *river.Workers) { w.jobs.Register(workers) }

// periodicResume is the runner's periodic resume job.
func (w *requestWiring) periodicResume() *river.PeriodicJob { return w.jobs.PeriodicResume() }

// resume re-enqueues requests left running by a stopped process.
func (w *requestWiring) resume(ctx context.Context) error { return w.jobs.Resume(ctx) }
