// Package restoredb implements the restore-db and rollback actions.
//
// restore-db never restores over the live database. It restores the pinned
// backup object, streamed from storage into pg_restore (custom format) or
// psql (plain SQL, optionally gzipped), into a side database
// <db>_restore_<yyyymmddhhmmss>; runs the database's configured checks on it;
// scales the configured writers to zero; terminates the remaining sessions
// of the live database; renames live to <db>_pre_restore_<ts> and the side
// database to live in one transaction; scales the writers back to their
// previous replica counts; and runs the checks on live. The pre-restore
// database is kept (never dropped by drbot); rollback swaps it back, keeping
// the current live database as <db>_rolled_back_<ts>.
//
// Every step runs through actions.RunStep, so it is recorded before and after
// it runs. Execute called again after a crash skips finished steps, restarts
// an interrupted restore from scratch, and settles an interrupted swap from
// the catalog (which of live, side and pre-restore exist), so the service is
// never left without its live database; it says what it did with
// Journal.Note. Credentials come from the environment variable the config
// names, go to pg_restore/psql only as PG* environment variables, and never
// appear in plans, logs or messages.
package restoredb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/kube"
	"github.com/drbot-dev/drbot/actions/storage"
	"github.com/drbot-dev/drbot/runbook"
	"github.com/drbot-dev/drbot/store"
)

// Action kinds.
const (
	KindRestore  = "restore-db"
	KindRollback = "rollback"
)

// Step names (stable: the journal records them). Writers get one step each:
// "scale-down/deployment/NAME" and "scale-up/deployment/NAME".
const (
	StepWaitFor     = "wait-for"
	StepRestoreSide = "restore-side"
	StepCheckSide   = "check-side"
	StepScaleDown   = "scale-down" // + "/" + kind/name
	StepTerminate   = "terminate-connections"
	StepSwap        = "swap"
	StepScaleUp     = "scale-up" // + "/" + kind/name
	StepCheckLive   = "check-live"
)

// StampFormat is the time format of the suffixes of side, pre-restore and
// rolled-back database names.
const StampFormat = "20060102150405"

// Scaler scales Kubernetes workloads; actions/kube implements it.
type Scaler interface {
	// Scale sets ref's replicas and returns how many it had before.
	Scale(ctx context.Context, namespace string, ref runbook.WorkloadRef, replicas int32) (previous int32, err error)
}

// Opener returns the store of a backup location.
type Opener func(ctx context.Context, loc runbook.Location) (storage.Store, error)

// Options configure the actions.
type Options struct {
	// Config returns the runbook config (required).
	Config func() *runbook.Config
	// Scaler scales writers; required only when a database names writers.
	Scaler Scaler
	// Kube reads pod readiness: the database's wait_for pods before a
	// restore, the service's pods after it. Nil when the bot has no
	// Kubernetes access (a database with wait_for then refuses to restore).
	Kube *kube.Client
	// HTTP is the client of the service's health checks after a restore
	// (verify's default when nil).
	HTTP *http.Client
	// Storage opens backup locations; nil uses storage.New with an S3 client
	// from the environment.
	Storage Opener
	// History, when set, reads earlier requests and their journals, so that
	// /dr rollback <service> [<request>] swaps back exactly the database a
	// restore-db request kept: the named one, or the newest whose swap
	// happened and that was not rolled back. Without it (tests, a bot with no
	// store) rollback takes the newest <db>_pre_restore_* database.
	History History
	// Drills records the drill copies restore-db drills create; a drill
	// drops only a copy recorded there. Nil: restore-db has no drill form.
	Drills store.DrillCopies
	// Now is the clock; nil is time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

func (o *Options) fill() {
	if o.Storage == nil {
		o.Storage = func(ctx context.Context, loc runbook.Location) (storage.Store, error) {
			return storage.New(ctx, loc, storage.Options{})
		}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Config == nil {
		o.Config = func() *runbook.Config { return nil }
	}
}

// Spec is the complete execution input of both kinds, pinned in Plan.Spec.
// It holds no credentials: the URL is read from URLEnv when executing, and
// must still point at Server and Live.
type Spec struct {
	Service  string `json:"service"`
	Database string `json:"database"` // the config's database name
	URLEnv   string `json:"url_env"`
	Server   string `json:"server"` // host:port
	Live     string `json:"live"`   // the live database's name on the server
	// LiveMissing: the live database did not exist when planned (restore only).
	LiveMissing bool `json:"live_missing,omitempty"`
	// Backup is the pinned object (restore only).
	Location string          `json:"location,omitempty"`
	Backup   *storage.Object `json:"backup,omitempty"`
	Format   string          `json:"format,omitempty"`
	Stamp    string          `json:"stamp"`
	// Incoming becomes live (the side database, or for rollback the
	// pre-restore one); the current live database is renamed Outgoing.
	Incoming  string                `json:"incoming"`
	Outgoing  string                `json:"outgoing"`
	Namespace string                `json:"namespace"`
	Writers   []runbook.WorkloadRef `json:"writers,omitempty"`
	Checks    []runbook.Check       `json:"checks,omitempty"`
	// WaitFor selects the pods (in Namespace) that must be Ready before the
	// restore starts (restore only).
	WaitFor string `json:"wait_for,omitempty"`
	// Restore is the restore-db request a rollback undoes (rollback only;
	// 0 when planned without a request history).
	Restore int64 `json:"restore,omitempty"`
	// RestoreStep is the playbook step of request Restore that ran the
	// restore-db a rollback undoes (0: Restore is a restore-db request
	// itself); RestorePlaybook names that playbook (rollback only).
	RestoreStep     int    `json:"restore_step,omitempty"`
	RestorePlaybook string `json:"restore_playbook,omitempty"`
	// Replicas are the writers' replica counts before the restore a rollback
	// undoes (kind/name → replicas; rollback only). A writer found at 0 when
	// the rollback scales it down (the restore could not bring it back) is
	// scaled back up to this count, not left down.
	Replicas map[string]int32 `json:"replicas,omitempty"`
	// Drill marks a drill plan (restore-db only): Incoming is the drill
	// copy, restored, checked and dropped; nothing is swapped and live is
	// never changed. Keep keeps the copy; LiveOID pins live's identity,
	// which Verify finds unchanged.
	Drill   bool   `json:"drill,omitempty"`
	Keep    bool   `json:"keep,omitempty"`
	LiveOID uint32 `json:"live_oid,omitempty"`
}

// SpecOf decodes a plan's spec.
func SpecOf(p actions.Plan) (Spec, error) {
	var s Spec
	if err := json.Unmarshal(p.Spec, &s); err != nil {
		return Spec{}, fmt.Errorf("decode %s plan: %w", p.Kind, err)
	}
	if s.Live == "" || s.Incoming == "" || (s.Outgoing == "" && !s.Drill) {
		return Spec{}, fmt.Errorf("decode %s plan: incomplete spec", p.Kind)
	}
	return s, nil
}

// base holds what both kinds share.
type base struct{ opts Options }

// resolve finds the service's database named by --db (or its only one).
func (b *base) resolve(p actions.Params) (*runbook.Service, *runbook.Database, error) {
	svc, err := p.ServiceIn(b.opts.Config())
	if err != nil {
		return nil, nil, err
	}
	if len(svc.Databases) == 0 {
		return nil, nil, actions.Refusef("%s has no databases in the runbook config", svc.Name)
	}
	name := flagDB.String(p) // rollback's --db has the same name
	if name == "" {
		if len(svc.Databases) > 1 {
			names := make([]string, len(svc.Databases))
			for i, d := range svc.Databases {
				names[i] = d.Name
			}
			return nil, nil, actions.Refusef("%s has several databases: pick one with --db (%s)", svc.Name, strings.Join(names, ", "))
		}
		return svc, &svc.Databases[0], nil
	}
	db, ok := svc.Database(name)
	if !ok {
		return nil, nil, actions.Refusef("%s has no database %q in the runbook config", svc.Name, name)
	}
	return svc, db, nil
}

// target reads the database URL named by url_env.
func targetOf(db *runbook.Database) (*target, error) {
	raw, err := db.URL()
	if err != nil {
		return nil, actions.Refusef("cannot reach database %s: %v", db.Name, err)
	}
	t, err := parseTarget(raw)
	if err != nil {
		return nil, actions.Refusef("cannot reach database %s: %s (from %s): %v", db.Name, db.URLEnv, db.URLEnv, err)
	}
	return t, nil
}

// executeTarget reads the URL again and checks it still points at the
// planned server and database.
func executeTarget(s Spec) (*target, error) {
	t, err := targetOf(&runbook.Database{Name: s.Database, URLEnv: s.URLEnv})
	if err != nil {
		return nil, err
	}
	if t.Server != s.Server || t.Live != s.Live {
		return nil, actions.Refusef("%s now points at %s/%s, but the approved plan is for %s/%s: request the action again",
			s.URLEnv, t.Server, t.Live, s.Server, s.Live)
	}
	return t, nil
}

func writerSteps(writers []runbook.WorkloadRef, prefix, verb string) []actions.Step {
	var out []actions.Step
	for _, w := range writers {
		out = append(out, actions.Step{Name: prefix + "/" + w.String(), Description: verb + " " + w.String()})
	}
	return out
}

func (b *base) checkScaler(svc *runbook.Service, db *runbook.Database) error {
	if len(db.Writers) > 0 && b.opts.Scaler == nil {
		return actions.Refusef("database %s names writers (%s) but drbot has no Kubernetes access to scale them", db.Name, refs(db.Writers))
	}
	return nil
}

// waitFor refuses unless every pod matching db's wait_for selector in
// namespace is Ready (runbook 001 §3 step 4: the database pods are up
// before a restore starts). No wait_for: nothing to wait for.
func (b *base) waitFor(ctx context.Context, database, namespace, selector string) error {
	if selector == "" {
		return nil
	}
	if b.opts.Kube == nil {
		return actions.Refusef("database %s waits for pods %s (wait_for) but drbot has no Kubernetes access to check them", database, selector)
	}
	notReady, total, err := b.opts.Kube.NotReadyPods(ctx, namespace, selector)
	if err != nil {
		b.opts.Logger.WarnContext(ctx, "restore-db: wait_for", "namespace", namespace, "selector", selector, "err", err)
		return actions.Refusef("cannot check the pods %s in %s that database %s waits for: %s", selector, namespace, database, firstLine(err))
	}
	if total == 0 {
		return actions.Refusef("no pods match %s in %s (wait_for of database %s): the database is not running; start it before restoring", selector, namespace, database)
	}
	if len(notReady) > 0 {
		return actions.Refusef("%d of %d pods of database %s (%s in %s) are not Ready: %s; wait until they are, then request the restore again",
			len(notReady), total, database, selector, namespace, strings.Join(notReady, ", "))
	}
	return nil
}

func refs(ws []runbook.WorkloadRef) string {
	s := make([]string, len(ws))
	for i, w := range ws {
		s[i] = w.String()
	}
	return strings.Join(s, ", ")
}

// rollbackCommand is the command that undoes a restore of s, exactly as a
// user can paste it (messages show suggested commands in backquotes): /dr rollback <service>, with --db when the service has
// several databases (without a request number it picks the newest restore
// whose swap happened, which is this one).
func (b *base) rollbackCommand(s Spec) string {
	cmd := "/dr rollback " + s.Service
	cfg := b.opts.Config()
	if cfg == nil {
		return cmd + " --db " + s.Database
	}
	if svc, ok := cfg.Service(s.Service); !ok || len(svc.Databases) > 1 {
		cmd += " --db " + s.Database
	}
	return cmd
}

// swapAndScale runs the shared tail of both kinds: scale writers down,
// terminate connections, swap Incoming in as live, scale writers back, check
// live. Failures before the swap undo what was done (writers scaled back up;
// live untouched). undo is the command that puts the previous database back
// ("" for a rollback): every message after the swap names it.
func (b *base) swapAndScale(ctx context.Context, s Spec, t *target, j actions.Journal, undo string) error {
	prev := map[string]int32{}
	var order []runbook.WorkloadRef
	undoScale := func(cause error, what string) error {
		ctx := context.WithoutCancel(ctx)
		uerr := b.scaleUp(ctx, s, order, prev, j)
		msg := fmt.Sprintf("%s failed: the live database %s is untouched", what, s.Live)
		if len(order) > 0 {
			if uerr == nil {
				msg += "; writers scaled back up (" + refs(order) + ")"
			} else {
				msg += "; WARNING: could not scale every writer back up: " + uerr.Error()
			}
		}
		j.Note(ctx, msg)
		return errors.Join(cause, uerr)
	}
	for _, w := range s.Writers {
		p, err := actions.RunStep(ctx, j, StepScaleDown+"/"+w.String(), func(ctx context.Context, resumed bool) (int32, error) {
			p, err := b.opts.Scaler.Scale(ctx, s.Namespace, w, 0)
			if err != nil {
				return 0, err
			}
			if before := s.Replicas[w.String()]; p == 0 && before > 0 {
				j.Note(ctx, fmt.Sprintf("%s was at 0 replicas (%s could not bring it back); it will be scaled back to %d, its count before that restore", w, restoreName(s.Restore, s.RestoreStep, s.RestorePlaybook), before))
				return before, nil
			}
			if resumed && p == 0 {
				// An earlier attempt scaled it down and crashed before
				// recording how many replicas it had.
				j.Note(ctx, fmt.Sprintf("%s was already at 0 replicas after a restart; it will be scaled back to 1", w))
				p = 1
			}
			return p, nil
		})
		if err != nil {
			return undoScale(err, "scaling down "+w.String())
		}
		prev[w.String()] = p
		order = append(order, w)
	}
	if _, err := actions.RunStep(ctx, j, StepTerminate, func(ctx context.Context, _ bool) (int, error) {
		conn, err := t.admin(ctx)
		if err != nil {
			return 0, err
		}
		defer conn.Close(context.WithoutCancel(ctx))
		return terminate(ctx, conn, s.Live)
	}); err != nil {
		return undoScale(err, "terminating connections")
	}
	sw, err := actions.RunStep(ctx, j, StepSwap, func(ctx context.Context, resumed bool) (swapResult, error) {
		return swap(ctx, t, s, resumed, j)
	})
	if err != nil {
		return undoScale(err, "the swap")
	}
	back := ""
	if undo != "" && sw.Outgoing != "" {
		back = fmt.Sprintf(" — `%s` puts the previous database back", undo)
		j.Note(ctx, fmt.Sprintf("swapped: the restored copy is now live as %s; the previous database is kept as %s%s", s.Live, sw.Outgoing, back))
	}
	if err := b.scaleUp(ctx, s, order, prev, j); err != nil {
		j.Note(ctx, fmt.Sprintf("%s is now live; WARNING: could not scale every writer back up: %v%s", s.Incoming, err, back))
		return err
	}
	rep, err := actions.RunStep(ctx, j, StepCheckLive, func(ctx context.Context, _ bool) (actions.Report, error) {
		return runChecks(ctx, t, s.Live, s.Checks), nil
	})
	if err != nil {
		return err
	}
	if !rep.OK() {
		if undo == "" {
			return actions.Refusef("the swap is done but checks failed on the live database %s: %s; the database that was live before is kept as %s",
				s.Live, failedChecks(rep), s.Outgoing)
		}
		return actions.Refusef("the swap is done but checks failed on the live database %s: %s — `%s` puts the previous database back",
			s.Live, failedChecks(rep), undo)
	}
	return nil
}

// scaleUp scales each writer in order back to prev (each a recorded step)
// and returns the joined errors.
func (b *base) scaleUp(ctx context.Context, s Spec, order []runbook.WorkloadRef, prev map[string]int32, j actions.Journal) error {
	var errs []error
	for _, w := range order {
		n := prev[w.String()]
		if _, err := actions.RunStep(ctx, j, StepScaleUp+"/"+w.String(), func(ctx context.Context, _ bool) (int32, error) {
			if _, err := b.opts.Scaler.Scale(ctx, s.Namespace, w, n); err != nil {
				return 0, err
			}
			return n, nil
		}); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// swapResult is the swap step's recorded outcome.
type swapResult struct {
	Live     string `json:"live"`
	Outgoing string `json:"outgoing,omitempty"`
	Settled  string `json:"settled"` // what was found and done
}

// swap renames live to Outgoing and Incoming to live in one transaction. A
// resumed swap first reads the catalog and settles what an interrupted
// attempt left: done (nothing to do), not done (do it), half done (live
// renamed, incoming not: finish it), or incoming gone (put the old live
// database back). Whatever happens, a database named live exists afterwards
// unless it did not exist before.
func swap(ctx context.Context, t *target, s Spec, resumed bool, j actions.Journal) (swapResult, error) {
	conn, err := t.admin(ctx)
	if err != nil {
		return swapResult{}, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	live, err := dbExists(ctx, conn, s.Live)
	if err != nil {
		return swapResult{}, err
	}
	in, err := dbExists(ctx, conn, s.Incoming)
	if err != nil {
		return swapResult{}, err
	}
	out, err := dbExists(ctx, conn, s.Outgoing)
	if err != nil {
		return swapResult{}, err
	}
	rename := func(pairs ...[2]string) error {
		var last error
		for attempt := range 5 {
			if attempt > 0 {
				time.Sleep(time.Duration(attempt) * 500 * time.Millisecond)
			}
			last = renameTx(ctx, conn, pairs...)
			if last == nil || !isObjectInUse(last) {
				return last
			}
		}
		return last
	}
	switch {
	case live && in && !out:
		if resumed {
			j.Note(ctx, fmt.Sprintf("resumed after a restart: the swap had not happened yet; swapping %s in now", s.Incoming))
		}
		if err := rename([2]string{s.Live, s.Outgoing}, [2]string{s.Incoming, s.Live}); err != nil {
			return swapResult{}, err
		}
		return swapResult{Live: s.Live, Outgoing: s.Outgoing, Settled: "swapped"}, nil
	case live && !in && out && !resumed:
		// This run never started its swap, so another request did (two
		// plans of one second name the same databases): nothing to do here.
		return swapResult{}, actions.Refusef("%s was already swapped in by another request (%s is gone and %s exists); nothing was changed by this one",
			s.Incoming, s.Incoming, s.Outgoing)
	case live && !in && out:
		j.Note(ctx, fmt.Sprintf("resumed after a restart: the swap had completed (%s is live, the previous one is %s)", s.Incoming, s.Outgoing))
		return swapResult{Live: s.Live, Outgoing: s.Outgoing, Settled: "already swapped"}, nil
	case !live && in && out:
		if err := rename([2]string{s.Incoming, s.Live}); err != nil {
			return swapResult{}, err
		}
		j.Note(ctx, fmt.Sprintf("resumed after a restart: the swap was half done (%s renamed, %s not); finished it", s.Live, s.Incoming))
		return swapResult{Live: s.Live, Outgoing: s.Outgoing, Settled: "finished a half-done swap"}, nil
	case !live && !in && out:
		if err := rename([2]string{s.Outgoing, s.Live}); err != nil {
			return swapResult{}, err
		}
		j.Note(ctx, fmt.Sprintf("rolled back after a restart: %s had disappeared mid-swap; the previous live database is back as %s", s.Incoming, s.Live))
		return swapResult{}, actions.Refusef("%s disappeared during the swap; the previous live database %s was put back", s.Incoming, s.Live)
	case !live && in && !out:
		if err := rename([2]string{s.Incoming, s.Live}); err != nil {
			return swapResult{}, err
		}
		j.Note(ctx, fmt.Sprintf("there was no live database %s: %s is now live (nothing to keep as %s)", s.Live, s.Incoming, s.Outgoing))
		return swapResult{Live: s.Live, Settled: "no previous live database"}, nil
	case live && in && out:
		return swapResult{}, actions.Refusef("cannot swap: %s already exists", s.Outgoing)
	default: // live && !in && !out, or nothing at all
		return swapResult{}, actions.Refusef("cannot swap: %s does not exist; the live database %s is untouched", s.Incoming, s.Live)
	}
}

func failedChecks(rep actions.Report) string {
	var parts []string
	for _, c := range rep.Failed() {
		p := fmt.Sprintf("%s: observed %s, expected %s", c.Name, c.Observed, c.Expected)
		if c.Error != "" {
			p = fmt.Sprintf("%s: %s", c.Name, c.Error)
		}
		parts = append(parts, p)
	}
	if len(parts) == 0 {
		return "no checks ran"
	}
	return strings.Join(parts, "; ")
}

// verifyLive runs the checks on the live database.
func verifyLive(ctx context.Context, p actions.Plan) (actions.Report, error) {
	s, err := SpecOf(p)
	if err != nil {
		return actions.Report{}, err
	}
	t, err := executeTarget(s)
	if err != nil {
		return actions.Report{}, err
	}
	return runChecks(ctx, t, s.Live, s.Checks), nil
}
