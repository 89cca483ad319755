package restoredb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/storage"
	"github.com/drbot-dev/drbot/store"
)

// The drill form of restore-db (issue 11): the real backup streamed into
// <db>_drill_<yyyymmddhhmmss> exactly as a restore streams it (pg_restore,
// or psql under \restrict, with the minimal child environment), the
// database's checks run on the copy, and the copy dropped (kept with
// --keep). Live is never renamed, locked or written; its writers are not
// scaled.
//
// A drill copy is the only database drbot drops on purpose, and only its
// own: dropDrillCopy refuses a name that is not <live>_drill_<14 digits>
// and one the store has no record of drbot creating (the record is written
// before the copy is created).

// StepDropCopy is a drill's last step (its restore and check steps are
// restore-db's own).
const StepDropCopy = "drop-copy"

var _ actions.Drillable = (*RestoreDB)(nil)

// drillSuffixRE is the suffix of a drill copy's name.
var drillSuffixRE = regexp.MustCompile(`_drill_([0-9]{14})$`)

// DrillCopyName is the name of live's drill copy made at stamp
// (StampFormat).
func DrillCopyName(live, stamp string) string { return derivedName(live, "_drill_"+stamp) }

// IsDrillCopyName reports whether name is a drill copy's name of live:
// exactly DrillCopyName(live, stamp) for a 14-digit stamp.
func IsDrillCopyName(live, name string) bool {
	m := drillSuffixRE.FindStringSubmatch(name)
	if m == nil || name == live {
		return false
	}
	if _, err := time.Parse(StampFormat, m[1]); err != nil {
		return false
	}
	return DrillCopyName(live, m[1]) == name
}

// DrillPlan implements actions.Drillable: the backup restore-db would pin
// (the newest, or --backup KEY), restored into a drill copy, checked and
// dropped.
func (a *RestoreDB) DrillPlan(ctx context.Context, p actions.Params) (actions.Plan, error) {
	if a.opts.Drills == nil {
		return actions.Plan{}, actions.Refusef("restore-db drills need drbot's store to record their copies; this drbot has none")
	}
	svc, db, err := a.resolve(p)
	if err != nil {
		return actions.Plan{}, err
	}
	if db.Backups == nil || db.Backups.Location.IsZero() {
		return actions.Plan{}, actions.Refusef("database %s of %s has no backups location in the runbook config", db.Name, svc.Name)
	}
	t, loc, obj, format, err := a.backupFor(ctx, p, svc, db, "drill")
	if err != nil {
		return actions.Plan{}, err
	}
	now := a.opts.Now().UTC()
	stamp := now.Format(StampFormat)
	keep := p.Flags["keep"] == "true"
	s := Spec{
		Service: svc.Name, Database: db.Name, URLEnv: db.URLEnv, Server: t.Server, Live: t.Live,
		Location: loc.String(), Backup: &obj, Format: format, Stamp: stamp,
		Incoming: DrillCopyName(t.Live, stamp), Checks: db.Checks, Drill: true, Keep: keep,
	}
	conn, err := t.admin(ctx)
	if err != nil {
		return actions.Plan{}, actions.Refusef("cannot connect to the database server %s of %s: %s", t.Server, db.Name, userSafe(err))
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if s.LiveOID, err = liveOID(ctx, t, t.Live); err != nil {
		return actions.Plan{}, err
	}
	s.LiveMissing = s.LiveOID == 0
	taken, err := dbExists(ctx, conn, s.Incoming)
	if err != nil {
		return actions.Plan{}, err
	}
	if taken {
		return actions.Plan{}, actions.Refusef("database %s already exists on %s: try again in a second", s.Incoming, t.Server)
	}
	age := now.Sub(obj.LastModified).Truncate(time.Second)
	version := obj.VersionID
	if version == "" {
		version = "ETag " + obj.ETag
	}
	after := "dropped after the checks (--keep keeps it)"
	last := actions.Step{Name: StepDropCopy, Description: "drop " + s.Incoming + " (only a drill copy drbot recorded creating is ever dropped)"}
	if keep {
		after = "kept (--keep): drop it yourself when done"
		last = actions.Step{Name: StepDropCopy, Description: "keep " + s.Incoming + " (--keep)"}
	}
	var warnings []string
	if rpo := svc.Objectives.RPO.Duration; rpo > 0 && age > rpo {
		warnings = append(warnings, fmt.Sprintf("the newest backup is %s old, older than the RPO of %s", storage.HumanAge(age), svc.Objectives.RPO))
	}
	plan := actions.Plan{
		Kind: KindRestore, Service: svc.Name, Target: DrillTarget(t.Server, t.Live),
		Summary: fmt.Sprintf("Drill: restore %s from %s (%s old) into %s", db.Name, obj.Name, storage.HumanAge(age), s.Incoming),
		Facts: []actions.Fact{
			{Label: "Backup", Value: loc.String() + " " + obj.Name},
			{Label: "Version", Value: version},
			{Label: "Size", Value: storage.HumanSize(obj.Size)},
			{Label: "Format", Value: formatLabel(format)},
			{Label: "Live database (not touched)", Value: t.Server + "/" + t.Live},
			{Label: "Drill copy", Value: s.Incoming + ", " + after},
		},
		Warnings: warnings,
		Steps: []actions.Step{
			{Name: StepRestoreSide, Description: fmt.Sprintf("stream %s (%s) into a new database %s", obj.Name, storage.HumanSize(obj.Size), s.Incoming)},
			{Name: StepCheckSide, Description: "run " + checkNames(db.Checks) + " on " + s.Incoming},
			last,
		},
	}
	if plan.Spec, err = json.Marshal(s); err != nil {
		return actions.Plan{}, fmt.Errorf("drill %s: encode plan: %w", db.Name, err)
	}
	return plan, nil
}

// executeDrill restores the drill copy, checks it and drops it. A failed
// restore or check drops the copy too (unless --keep); live is never
// touched.
func (a *RestoreDB) executeDrill(ctx context.Context, s Spec, j actions.Journal) error {
	if a.opts.Drills == nil {
		return errors.New("restore-db drill: no record of drill copies")
	}
	if !IsDrillCopyName(s.Live, s.Incoming) {
		return fmt.Errorf("restore-db drill: %q is not a drill copy's name of %s", s.Incoming, s.Live)
	}
	t, err := executeTarget(s)
	if err != nil {
		return err
	}
	liveBefore, err := liveOID(ctx, t, s.Live)
	if err != nil {
		return err
	}
	if liveBefore != s.LiveOID {
		return actions.Refusef("the live database %s changed since the drill was planned (it was replaced or dropped): nothing was done; plan the drill again", s.Live)
	}
	cleanup := func(why string) {
		if s.Keep {
			j.Note(ctx, fmt.Sprintf("%s: the drill copy %s is kept (--keep); the live database %s is untouched", why, s.Incoming, s.Live))
			return
		}
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if err := a.dropDrillCopy(dctx, t, s); err != nil {
			a.opts.Logger.ErrorContext(dctx, "drop drill copy", "copy", s.Incoming, "err", err)
			j.Note(ctx, fmt.Sprintf("%s: the live database %s is untouched; WARNING: the drill copy %s could not be dropped", why, s.Live, s.Incoming))
			return
		}
		j.Note(ctx, fmt.Sprintf("%s: the drill copy %s was dropped; the live database %s is untouched", why, s.Incoming, s.Live))
	}
	_, err = actions.RunStep(ctx, j, StepRestoreSide, func(ctx context.Context, resumed bool) (restoreResult, error) {
		if resumed {
			j.Note(ctx, fmt.Sprintf("resumed after a restart: the drill restore into %s was interrupted; starting it again from the beginning", s.Incoming))
		}
		// Recorded before it exists: a crash between the two leaves a
		// record without a database, never a database without a record.
		if err := a.opts.Drills.RecordDrillCopy(ctx, store.DrillCopy{Server: t.Server, Name: s.Incoming, Service: s.Service, Database: s.Database, Keep: s.Keep}); err != nil {
			return restoreResult{}, err
		}
		return a.restoreSide(ctx, s, t, j)
	})
	if liveAfter, oerr := liveOID(context.WithoutCancel(ctx), t, s.Live); oerr == nil && liveAfter != liveBefore {
		j.Note(ctx, fmt.Sprintf("the backup %s changed the live database %s while it was restored into the drill copy %s; %s is kept for inspection",
			s.Backup.Name, s.Live, s.Incoming, s.Incoming))
		return actions.Refusef("the backup %s acted outside the drill copy: a database named %s was renamed, dropped or created during the drill. drbot kept %s for inspection; check the server %s now (the backup may be hostile)",
			s.Backup.Name, s.Live, s.Incoming, s.Server)
	}
	if err != nil {
		if errors.As(context.Cause(ctx), new(*store.LeaseError)) {
			return err // the new holder restarts the restore; do not drop under it
		}
		if ctx.Err() == nil {
			cleanup("the drill restore failed")
		}
		return err
	}
	rep, err := actions.RunStep(ctx, j, StepCheckSide, func(ctx context.Context, _ bool) (actions.Report, error) {
		return runChecks(ctx, t, s.Incoming, s.Checks), nil
	})
	if err != nil {
		return err
	}
	if _, err := actions.RunStep(ctx, j, StepDropCopy, func(ctx context.Context, _ bool) (string, error) {
		if s.Keep {
			return "kept", nil
		}
		if err := a.dropDrillCopy(ctx, t, s); err != nil {
			return "", err
		}
		return "dropped", nil
	}); err != nil {
		return err
	}
	if !rep.OK() {
		return actions.Refusef("the drill restored %s but its checks failed on the copy (%s): this backup would not pass a real restore; the live database %s is untouched",
			s.Backup.Name, failedChecks(rep), s.Live)
	}
	return nil
}

// dropDrillCopy drops s's drill copy, refusing (store.ErrNotDrillCopy)
// anything that is not a drill copy's name of live or that drbot has no
// record of creating.
func (a *RestoreDB) dropDrillCopy(ctx context.Context, t *target, s Spec) error {
	return dropCopy(ctx, a.opts.Drills, t, s.Live, s.Incoming)
}

// dropCopy drops name on t's server when it is a drill copy of live
// that drills recorded creating, and records it dropped. Anything else
// (live itself, another database, a hostile name) is refused with an error
// wrapping store.ErrNotDrillCopy and nothing is dropped.
func dropCopy(ctx context.Context, drills store.DrillCopies, t *target, live, name string) error {
	if drills == nil || !IsDrillCopyName(live, name) {
		return fmt.Errorf("drop %q: %w", name, store.ErrNotDrillCopy)
	}
	ok, err := drills.DrillCopyRecorded(ctx, t.Server, name)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("drop %q: no record of drbot creating it: %w", name, store.ErrNotDrillCopy)
	}
	conn, err := t.admin(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := dropDatabase(ctx, conn, name); err != nil {
		return err
	}
	return drills.DrillCopyDropped(ctx, t.Server, name)
}

// verifyDrill reports that live is the database it was when planned and
// that the drill copy is gone (or kept with --keep).
func (a *RestoreDB) verifyDrill(ctx context.Context, s Spec) (actions.Report, error) {
	t, err := executeTarget(s)
	if err != nil {
		return actions.Report{}, err
	}
	var rep actions.Report
	oid, err := liveOID(ctx, t, s.Live)
	if err != nil {
		return actions.Report{}, err
	}
	live := actions.CheckResult{Name: "live database untouched", Kind: "sql", Target: s.Live, Expected: "the same database as before the drill", OK: oid == s.LiveOID}
	switch {
	case oid == s.LiveOID && oid != 0:
		live.Observed = "the same database"
	case oid == s.LiveOID:
		live.Observed = "absent, as before the drill"
	case oid == 0:
		live.Observed = "gone"
	default:
		live.Observed = "replaced by another database"
	}
	rep.Checks = append(rep.Checks, live)
	conn, err := t.admin(ctx)
	if err != nil {
		return actions.Report{}, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	exists, err := dbExists(ctx, conn, s.Incoming)
	if err != nil {
		return actions.Report{}, err
	}
	c := actions.CheckResult{Name: "drill copy dropped", Kind: "sql", Target: s.Incoming, Expected: "dropped", OK: !exists, Observed: "dropped"}
	if exists {
		c.Observed = "still exists"
	}
	if s.Keep {
		c = actions.CheckResult{Name: "drill copy kept", Kind: "sql", Target: s.Incoming, Expected: "kept (--keep)", OK: exists, Observed: "kept"}
		if !exists {
			c.Observed = "gone"
		}
	}
	rep.Checks = append(rep.Checks, c)
	return rep, nil
}

// DrillTarget is the request target of restore-db drills of live on server.
func DrillTarget(server, live string) string { return "drill:db:" + server + "/" + live }

// SweepDrillCopies drops the drill copies that drbot recorded creating and
// that no drill is working on any more (a drill that failed and could not
// drop its copy, e.g. its server was unreachable at that moment): copies
// kept with --keep, copies of a target with a drill in flight (inFlight),
// and copies whose database is no longer in the runbook config or whose URL
// now points at another server are left alone. Every drop goes through the
// same guard as a drill's own (name pattern and record). It returns how many
// it dropped.
func (a *RestoreDB) SweepDrillCopies(ctx context.Context, inFlight func(target string) bool) (int, error) {
	if a.opts.Drills == nil {
		return 0, nil
	}
	left, err := a.opts.Drills.DrillCopiesLeft(ctx)
	if err != nil {
		return 0, err
	}
	cfg := a.opts.Config()
	n := 0
	var errs []error
	for _, c := range left {
		if c.Keep {
			continue
		}
		svc, ok := cfg.Service(c.Service)
		if !ok {
			continue
		}
		db, ok := svc.Database(c.Database)
		if !ok {
			continue
		}
		t, err := targetOf(db)
		if err != nil || t.Server != c.Server || inFlight(DrillTarget(t.Server, t.Live)) {
			continue
		}
		if err := dropCopy(ctx, a.opts.Drills, t, t.Live, c.Name); err != nil {
			errs = append(errs, fmt.Errorf("sweep drill copy %s: %w", c.Name, err))
			continue
		}
		a.opts.Logger.InfoContext(ctx, "dropped a drill copy left behind", "copy", c.Name, "server", c.Server)
		n++
	}
	return n, errors.Join(errs...)
}
