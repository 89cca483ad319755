package restoredb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/kube"
	"github.com/drbot-dev/drbot/actions/storage"
	"github.com/drbot-dev/drbot/actions/verify"
	"github.com/drbot-dev/drbot/runbook"
	"github.com/drbot-dev/drbot/store"
)

// RestoreDB is the restore-db action:
// /dr restore-db <service> [--db NAME] [--backup KEY].
type RestoreDB struct{ base }

var _ actions.Action = (*RestoreDB)(nil)

// New returns the restore-db action.
func New(opts Options) *RestoreDB {
	opts.fill()
	return &RestoreDB{base{opts: opts}}
}

// Kind implements actions.Action.
func (*RestoreDB) Kind() string { return KindRestore }

// TransientSpec implements actions.Transient: the stamp and the side and
// pre-restore names derived from it are the planning time, not the world.
func (*RestoreDB) TransientSpec() []string { return []string{"stamp", "incoming", "outgoing"} }

// Plan pins the backup object (the newest supported backup, or --backup
// KEY), the target server and database, and the side and pre-restore
// names. It only reads: the backup location and the server's catalog.
func (a *RestoreDB) Plan(ctx context.Context, p actions.Params) (actions.Plan, error) {
	svc, db, err := a.resolve(p)
	if err != nil {
		return actions.Plan{}, err
	}
	if db.Backups == nil || db.Backups.Location.IsZero() {
		return actions.Plan{}, actions.Refusef("database %s of %s has no backups location in the runbook config", db.Name, svc.Name)
	}
	if err := a.checkScaler(svc, db); err != nil {
		return actions.Plan{}, err
	}
	if err := a.waitFor(ctx, db.Name, svc.Namespace(), db.WaitFor); err != nil {
		return actions.Plan{}, err
	}
	t, loc, obj, format, err := a.backupFor(ctx, p, svc, db, "restore")
	if err != nil {
		return actions.Plan{}, err
	}

	now := a.opts.Now().UTC()
	stamp := now.Format(StampFormat)
	s := Spec{
		Service: svc.Name, Database: db.Name, URLEnv: db.URLEnv, Server: t.Server, Live: t.Live,
		Location: loc.String(), Backup: &obj, Format: format, Stamp: stamp,
		Incoming:  derivedName(t.Live, "_restore_"+stamp),
		Outgoing:  derivedName(t.Live, "_pre_restore_"+stamp),
		Namespace: svc.Namespace(), Writers: db.Writers, Checks: db.Checks, WaitFor: db.WaitFor,
	}

	conn, err := t.admin(ctx)
	if err != nil {
		return actions.Plan{}, actions.Refusef("cannot connect to the database server %s of %s: %s", t.Server, db.Name, userSafe(err))
	}
	defer conn.Close(context.WithoutCancel(ctx))
	live, err := dbExists(ctx, conn, t.Live)
	if err != nil {
		return actions.Plan{}, err
	}
	s.LiveMissing = !live
	for _, name := range []string{s.Incoming, s.Outgoing} {
		taken, err := dbExists(ctx, conn, name)
		if err != nil {
			return actions.Plan{}, err
		}
		if taken {
			return actions.Plan{}, actions.Refusef("database %s already exists on %s: try again in a second", name, t.Server)
		}
	}

	age := now.Sub(obj.LastModified).Truncate(time.Second)
	rpo := svc.Objectives.RPO.Duration
	ageFact := storage.HumanAge(age) + " old"
	var warnings []string
	if rpo > 0 {
		ageFact += " (RPO " + svc.Objectives.RPO.String() + ")"
		if age > rpo {
			warnings = append(warnings, fmt.Sprintf("the backup is %s old, older than the RPO of %s: data newer than %s will be lost",
				storage.HumanAge(age), svc.Objectives.RPO, obj.LastModified.Format(time.RFC3339)))
		}
	}
	if !live {
		warnings = append(warnings, fmt.Sprintf("the live database %s does not exist on %s: the restore creates it", t.Live, t.Server))
	}
	if len(db.Checks) == 0 {
		warnings = append(warnings, "no checks are configured for "+db.Name+": only a connection is checked before the swap")
	}
	if w := serverProgramRisk(ctx, conn); w != "" {
		warnings = append(warnings, w)
	}
	version := obj.VersionID
	if version == "" {
		version = "ETag " + obj.ETag
	}
	plan := actions.Plan{
		Kind: KindRestore, Service: svc.Name, Target: "db:" + svc.Name + "/" + db.Name,
		Summary: fmt.Sprintf("Restore %s from %s (%s old)", db.Name, obj.Name, storage.HumanAge(age)),
		Facts: []actions.Fact{
			{Label: "Backup", Value: loc.String() + " " + obj.Name},
			{Label: "Version", Value: version},
			{Label: "Size", Value: storage.HumanSize(obj.Size)},
			{Label: "Age", Value: ageFact},
			{Label: "Format", Value: formatLabel(format)},
			{Label: "Database", Value: t.Server + "/" + t.Live + " (URL from " + db.URLEnv + ")"},
			{Label: "Side database", Value: s.Incoming},
			{Label: "Previous database kept as", Value: s.Outgoing},
		},
		Warnings: warnings,
	}
	if len(db.Writers) > 0 {
		plan.Facts = append(plan.Facts, actions.Fact{Label: "Writers scaled to 0 during the swap", Value: svc.Namespace() + ": " + refs(db.Writers)})
	}
	if db.WaitFor != "" {
		plan.Facts = append(plan.Facts, actions.Fact{Label: "Database pods Ready", Value: svc.Namespace() + ": " + db.WaitFor})
		plan.Steps = append(plan.Steps, actions.Step{Name: StepWaitFor, Description: "check that the pods " + db.WaitFor + " are all Ready; stop if not (nothing changed)"})
	}
	plan.Steps = append(plan.Steps,
		actions.Step{Name: StepRestoreSide, Description: fmt.Sprintf("stream %s (%s) into a new database %s", obj.Name, storage.HumanSize(obj.Size), s.Incoming)},
		actions.Step{Name: StepCheckSide, Description: "run " + checkNames(db.Checks) + " on " + s.Incoming + "; stop on failure (live untouched)"},
	)
	plan.Steps = append(plan.Steps, writerSteps(db.Writers, StepScaleDown, "scale to 0:")...)
	plan.Steps = append(plan.Steps,
		actions.Step{Name: StepTerminate, Description: "terminate remaining connections to " + t.Live},
		actions.Step{Name: StepSwap, Description: fmt.Sprintf("rename %s → %s and %s → %s in one transaction", t.Live, s.Outgoing, s.Incoming, t.Live)},
	)
	plan.Steps = append(plan.Steps, writerSteps(db.Writers, StepScaleUp, "scale back to previous replicas:")...)
	plan.Steps = append(plan.Steps, actions.Step{Name: StepCheckLive, Description: "run " + checkNames(db.Checks) + " on " + t.Live})
	if plan.Spec, err = json.Marshal(s); err != nil {
		return actions.Plan{}, fmt.Errorf("restore %s: encode plan: %w", db.Name, err)
	}
	return plan, nil
}

func checkNames(cs []runbook.Check) string {
	if len(cs) == 0 {
		return "a connection check"
	}
	names := ""
	for i, c := range cs {
		if i > 0 {
			names += ", "
		}
		names += "\"" + c.Name + "\""
	}
	if len(cs) == 1 {
		return "check " + names
	}
	return "checks " + names
}

func formatLabel(f string) string {
	switch f {
	case FormatCustom:
		return "pg_dump custom, restored with pg_restore"
	case FormatSQLGz:
		return "plain SQL, gzipped, restored with psql"
	default:
		return "plain SQL, restored with psql"
	}
}

// pickBackup pins --backup KEY, or the newest object in a supported format.
// backupFor is where a restore and its drill both start: db's server, its
// backups location, the backup to stream (--backup, else the newest) and its
// format, with psql checked for \restrict when the backup is plain SQL.
func (a *RestoreDB) backupFor(ctx context.Context, p actions.Params, svc *runbook.Service, db *runbook.Database, what string) (*target, runbook.Location, storage.Object, string, error) {
	t, err := targetOf(db)
	if err != nil {
		return nil, runbook.Location{}, storage.Object{}, "", err
	}
	loc := db.Backups.Location
	st, err := a.opts.Storage(ctx, loc)
	if err != nil {
		return nil, runbook.Location{}, storage.Object{}, "", fmt.Errorf("%s %s: %w", what, db.Name, err)
	}
	obj, err := pickBackup(ctx, st, flagBackup.String(p), svc.Name)
	if err != nil {
		return nil, runbook.Location{}, storage.Object{}, "", err
	}
	format := FormatOf(obj.Name)
	if format != FormatCustom {
		if err := checkPsql(ctx, obj.Name); err != nil {
			return nil, runbook.Location{}, storage.Object{}, "", err
		}
	}
	return t, loc, obj, format, nil
}

func pickBackup(ctx context.Context, st storage.Store, key, service string) (storage.Object, error) {
	loc := st.Location().String()
	if key != "" {
		obj, err := st.Stat(ctx, key)
		if errors.Is(err, storage.ErrNotFound) {
			return storage.Object{}, actions.Refusef("no backup %q in %s — `/dr backups %s db` lists them", key, loc, service)
		}
		if err != nil {
			return storage.Object{}, fmt.Errorf("pin backup %s: %w", key, err)
		}
		if FormatOf(obj.Name) == "" {
			return storage.Object{}, actions.Refusef("%s is not a backup drbot can restore (want .dump, .sql or .sql.gz)", obj.Name)
		}
		return obj, nil
	}
	// The newest restorable object, found while paging through the listing
	// (never the whole listing in memory).
	objs, _, err := storage.Newest(ctx, st, 1, func(o storage.Object) bool { return FormatOf(o.Name) != "" })
	if errors.Is(err, storage.ErrNotFound) {
		return storage.Object{}, actions.Refusef("no backups: %s does not exist", loc)
	}
	if err != nil {
		return storage.Object{}, fmt.Errorf("list backups in %s: %w", loc, err)
	}
	if len(objs) == 0 {
		return storage.Object{}, actions.Refusef("no backups (.dump, .sql, .sql.gz) in %s", loc)
	}
	// Pin it (Stat also reads the version of a versioned bucket).
	obj, err := st.Stat(ctx, objs[0].Key)
	if err != nil {
		return storage.Object{}, fmt.Errorf("pin backup %s: %w", objs[0].Key, err)
	}
	return obj, nil
}

// restoreResult is the restore-side step's recorded outcome.
type restoreResult struct {
	Database string `json:"database"`
	Bytes    int64  `json:"bytes"`
	Format   string `json:"format"`
}

// Execute implements actions.Action.
func (a *RestoreDB) Execute(ctx context.Context, plan actions.Plan, j actions.Journal) error {
	s, err := SpecOf(plan)
	if err != nil {
		return err
	}
	if s.Backup == nil {
		return fmt.Errorf("restore %s: plan pins no backup", s.Database)
	}
	if s.Drill {
		return a.executeDrill(ctx, s, j)
	}
	t, err := executeTarget(s)
	if err != nil {
		return err
	}
	if len(s.Writers) > 0 && a.opts.Scaler == nil {
		return fmt.Errorf("restore %s: writers configured but no Scaler", s.Database)
	}

	// The backup's SQL runs as the role that owns live (the swap needs it):
	// it can rename or drop live, which no restriction of psql prevents.
	// Live's identity before and after the stream tells whether it did.
	if s.WaitFor != "" {
		// Again at execution: approval took time, and the restore must not
		// stream into a server whose pods are not Ready.
		if _, err := actions.RunStep(ctx, j, StepWaitFor, func(ctx context.Context, _ bool) (struct{}, error) {
			return struct{}{}, a.waitFor(ctx, s.Database, s.Namespace, s.WaitFor)
		}); err != nil {
			return err
		}
	}
	liveBefore, err := liveOID(ctx, t, s.Live)
	if err != nil {
		return err
	}
	_, err = actions.RunStep(ctx, j, StepRestoreSide, func(ctx context.Context, resumed bool) (restoreResult, error) {
		if resumed {
			j.Note(ctx, fmt.Sprintf("resumed after a restart: the restore into %s was interrupted; starting it again from the beginning", s.Incoming))
		}
		return a.restoreSide(ctx, s, t, j)
	})
	if err == nil || !errors.As(context.Cause(ctx), new(*store.LeaseError)) {
		if liveAfter, oerr := liveOID(context.WithoutCancel(ctx), t, s.Live); oerr == nil && liveAfter != liveBefore {
			what := "renamed or dropped"
			if liveBefore == 0 {
				what = "created"
			}
			j.Note(ctx, fmt.Sprintf("the backup %s %s the live database %s while it was restored into %s: stopped before the swap; %s is kept for inspection",
				s.Backup.Name, what, s.Live, s.Incoming, s.Incoming))
			return actions.Refusef("the backup %s acted outside the side database: a database named %s was %s during the restore. drbot stopped before the swap and kept %s for inspection; check the server %s now (the backup may be hostile)",
				s.Backup.Name, s.Live, what, s.Incoming, s.Server)
		}
	}
	if err != nil {
		if errors.As(context.Cause(ctx), new(*store.LeaseError)) {
			// The runner lost this target's lease: the new holder restarts
			// the restore into the side database, and dropping it (WITH
			// FORCE) here would kill that restore.
			return err
		}
		a.dropSide(ctx, t, s, j, "the restore failed")
		return err
	}

	rep, err := actions.RunStep(ctx, j, StepCheckSide, func(ctx context.Context, _ bool) (actions.Report, error) {
		return runChecks(ctx, t, s.Incoming, s.Checks), nil
	})
	if err != nil {
		return err
	}
	if !rep.OK() {
		j.Note(ctx, fmt.Sprintf("checks failed on %s: %s. Stopped before the swap: the live database %s is untouched; %s is kept for inspection (drop it when done)",
			s.Incoming, failedChecks(rep), s.Live, s.Incoming))
		return actions.Refusef("checks failed on the restored database %s (%s); the live database %s is untouched",
			s.Incoming, failedChecks(rep), s.Live)
	}
	return a.swapAndScale(ctx, s, t, j, a.rollbackCommand(s))
}

// liveOID is the oid of the database named live, 0 when there is none.
func liveOID(ctx context.Context, t *target, live string) (uint32, error) {
	conn, err := t.admin(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var oid uint32
	err = conn.QueryRow(ctx, "SELECT oid FROM pg_database WHERE datname = $1", live).Scan(&oid)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("look up database %s: %w", live, err)
	}
	return oid, nil
}

// restoreSide creates the side database (dropping what an interrupted
// attempt left) and streams the pinned backup into it.
func (a *RestoreDB) restoreSide(ctx context.Context, s Spec, t *target, j actions.Journal) (restoreResult, error) {
	loc, err := runbook.ParseLocation(s.Location)
	if err != nil {
		return restoreResult{}, fmt.Errorf("restore %s: %w", s.Database, err)
	}
	st, err := a.opts.Storage(ctx, loc)
	if err != nil {
		return restoreResult{}, fmt.Errorf("restore %s: %w", s.Database, err)
	}
	if s.Format != FormatCustom {
		// Again: psql may have changed since the plan.
		if err := checkPsql(ctx, s.Backup.Name); err != nil {
			return restoreResult{}, err
		}
	}
	// Open the pinned object first: a gone or changed backup stops here.
	rc, err := st.Open(ctx, *s.Backup)
	if err != nil {
		return restoreResult{}, pinnedErr(s, err)
	}
	defer rc.Close()

	conn, err := t.admin(ctx)
	if err != nil {
		return restoreResult{}, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := dropDatabase(ctx, conn, s.Incoming); err != nil {
		return restoreResult{}, err
	}
	create := "CREATE DATABASE " + ident(s.Incoming) + " TEMPLATE template0"
	var enc, collate, ctype string
	err = conn.QueryRow(ctx, "SELECT pg_encoding_to_char(encoding), datcollate, datctype FROM pg_database WHERE datname = $1", s.Live).Scan(&enc, &collate, &ctype)
	switch {
	case err == nil:
		create += " ENCODING " + quoteLit(enc) + " LC_COLLATE " + quoteLit(collate) + " LC_CTYPE " + quoteLit(ctype)
	case errors.Is(err, pgx.ErrNoRows):
	default:
		return restoreResult{}, fmt.Errorf("read settings of %s: %w", s.Live, err)
	}
	if _, err := conn.Exec(ctx, create); err != nil {
		return restoreResult{}, fmt.Errorf("create database %s: %w", s.Incoming, err)
	}

	counter := &countingReader{ctx: ctx, r: rc, j: j, step: StepRestoreSide, total: s.Backup.Size, lastAt: time.Now()}
	prog, args := restoreCommand(s.Format, s.Incoming)
	began := time.Now()
	a.opts.Logger.InfoContext(ctx, "restore into side database", "service", s.Service, "database", s.Database,
		"side", s.Incoming, "backup", s.Backup.Key, "format", s.Format, "program", prog)
	srcErr, err := stream(ctx, counter, s.Format, prog, args, t.libpqEnv())
	if srcErr != nil {
		return restoreResult{}, pinnedErr(s, srcErr)
	}
	if errors.Is(err, errMetaCommand) {
		return restoreResult{}, metaRefusal(s, err)
	}
	if err != nil {
		return restoreResult{}, actions.Refusef("restoring %s into %s failed (is the backup corrupt?): %s", s.Backup.Name, s.Incoming, firstLine(err))
	}
	j.Progress(ctx, actions.Progress{Step: StepRestoreSide, Done: counter.n, Total: s.Backup.Size, Unit: "bytes"})
	a.opts.Logger.InfoContext(ctx, "restored side database", "side", s.Incoming, "bytes", counter.n, "took", time.Since(began).Round(time.Millisecond))
	return restoreResult{Database: s.Incoming, Bytes: counter.n, Format: s.Format}, nil
}

// pinnedErr turns storage's gone/changed errors into user-safe refusals.
func pinnedErr(s Spec, err error) error {
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return actions.Refusef("the approved backup %s is gone from %s: request the restore again", storage.Describe(*s.Backup), s.Location)
	case errors.Is(err, storage.ErrChanged):
		return actions.Refusef("the approved backup %s changed in %s since the plan: request the restore again", storage.Describe(*s.Backup), s.Location)
	case errors.Is(err, errMetaCommand):
		return metaRefusal(s, err)
	}
	return actions.Refusef("reading the backup %s failed: %s", s.Backup.Name, firstLine(err))
}

// metaRefusal is the refusal for a plain SQL backup holding a psql
// meta-command (refused by psql under \restrict).
func metaRefusal(s Spec, err error) error {
	where := strings.TrimPrefix(strings.TrimPrefix(err.Error(), errMetaCommand.Error()), ": ")
	return actions.Refusef("the backup %s holds a psql meta-command (%s), which could run a shell or write files as drbot: the restore stopped there and the live database %s is untouched",
		s.Backup.Name, where, s.Live)
}

// dropSide drops the side database after a failed restore and says so.
func (a *RestoreDB) dropSide(ctx context.Context, t *target, s Spec, j actions.Journal, why string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	msg := fmt.Sprintf("%s: the live database %s is untouched", why, s.Live)
	conn, err := t.admin(ctx)
	if err == nil {
		err = dropDatabase(ctx, conn, s.Incoming)
		_ = conn.Close(ctx)
	}
	if err != nil {
		a.opts.Logger.ErrorContext(ctx, "drop side database", "side", s.Incoming, "err", err)
		msg += "; the partial side database " + s.Incoming + " could not be dropped"
	} else {
		msg += "; the partial side database " + s.Incoming + " was dropped"
	}
	j.Note(ctx, msg)
}

// Verify implements actions.Action: the database's checks on live, then,
// as runbook 001 §1.3 does, the service's health checks and the readiness
// of its pods (kubernetes.selector).
func (a *RestoreDB) Verify(ctx context.Context, p actions.Plan) (actions.Report, error) {
	if s, err := SpecOf(p); err == nil && s.Drill {
		return a.verifyDrill(ctx, s)
	}
	rep, err := verifyLive(ctx, p)
	if err != nil {
		return rep, err
	}
	svc, ok := a.opts.Config().Service(p.Service)
	if !ok {
		return rep, nil
	}
	deps := verify.Deps{HTTP: a.opts.HTTP, Kube: a.opts.Kube}
	if svc.Kubernetes != nil && svc.Kubernetes.Selector != "" && a.opts.Kube != nil {
		// The writers were just scaled back up: let their pods come up
		// (bounded) before judging readiness; the check reports what it sees.
		if s, err := SpecOf(p); err == nil {
			for _, w := range s.Writers {
				if _, err := a.opts.Kube.WaitRollout(ctx, s.Namespace, w, kube.WaitOptions{Timeout: writersReadyTimeout}); err != nil {
					a.opts.Logger.WarnContext(ctx, "restore-db verify: writer rollout", "workload", w.String(), "err", err)
				}
			}
		}
	}
	rep.Checks = append(rep.Checks, verify.Health(ctx, deps, svc.Health...)...)
	// Without Kubernetes access there is nothing to read pods with: the
	// check is left out rather than failing a restore that worked
	// (/dr verify reports it as not run).
	if svc.Kubernetes != nil && svc.Kubernetes.Selector != "" && a.opts.Kube != nil {
		rep.Checks = append(rep.Checks, verify.Pods(ctx, deps, svc.Name+" pods", svc.Namespace(), svc.Kubernetes.Selector))
	}
	return rep, nil
}

// writersReadyTimeout bounds the wait for the writers' rollout before the
// service's pods are checked after a restore.
const writersReadyTimeout = 2 * time.Minute

func quoteLit(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// firstLine is the first lines of an error, bounded, for a user message
// (pg_restore's message, never credentials).
func firstLine(err error) string {
	msg := err.Error()
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	return msg
}
