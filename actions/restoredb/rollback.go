package restoredb

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/drbot-dev/drbot/actions"
)

// Rollback is the rollback action: /dr rollback <service> [<request>]
// [--db NAME]. It swaps the database a restore-db request kept
// (<db>_pre_restore_<ts>) back in as live and keeps the current live
// database as <db>_rolled_back_<ts>. Without a request number it undoes the
// newest restore-db of the database whose swap happened (whatever its final
// state: a restore that failed after its swap left its copy live) and that
// was not rolled back yet.
type Rollback struct{ base }

var _ actions.Action = (*Rollback)(nil)

// NewRollback returns the rollback action.
func NewRollback(opts Options) *Rollback {
	opts.fill()
	return &Rollback{base{opts: opts}}
}

// Kind implements actions.Action.
func (*Rollback) Kind() string { return KindRollback }

// TransientSpec implements actions.Transient: the stamp and the
// rolled-back name derived from it are the planning time; which database
// becomes live (incoming) is a fact of the world and stays.
func (*Rollback) TransientSpec() []string { return []string{"stamp", "outgoing"} }

// Plan finds the restore to undo and the database it kept (see Rollback).
func (a *Rollback) Plan(ctx context.Context, p actions.Params) (actions.Plan, error) {
	svc, db, err := a.resolve(p)
	if err != nil {
		return actions.Plan{}, err
	}
	if err := a.checkScaler(svc, db); err != nil {
		return actions.Plan{}, err
	}
	t, err := targetOf(db)
	if err != nil {
		return actions.Plan{}, err
	}
	conn, err := t.admin(ctx)
	if err != nil {
		return actions.Plan{}, actions.Refusef("cannot connect to the database server %s of %s: %s", t.Server, db.Name, userSafe(err))
	}
	defer conn.Close(context.WithoutCancel(ctx))

	var (
		pre, chosen string
		undo        undoable
	)
	switch req := argRequest.Of(p); {
	case req != "":
		if undo, err = a.namedRestore(ctx, conn, req, svc.Name, db.Name, t); err != nil {
			return actions.Plan{}, err
		}
	case a.opts.History != nil:
		if undo, err = a.latestRestore(ctx, conn, svc.Name, db.Name, t); err != nil {
			return actions.Plan{}, err
		}
	default:
		prefix := preRestorePrefix(t.Live)
		err = conn.QueryRow(ctx, `SELECT coalesce(max(datname), '') FROM pg_database
			WHERE starts_with(datname, $1) AND length(datname) = length($1) + 14 AND substr(datname, length($1) + 1) ~ '^[0-9]{14}$'`, prefix).Scan(&pre)
		if err != nil {
			return actions.Plan{}, fmt.Errorf("rollback %s: find pre-restore databases: %w", db.Name, err)
		}
		if pre == "" {
			return actions.Plan{}, actions.Refusef("nothing to roll back: no pre-restore database of %s on %s (%s*)", t.Live, t.Server, prefix)
		}
		chosen = "the newest pre-restore database"
	}
	if undo.ID != 0 {
		pre, chosen = undo.Spec.Outgoing, "kept by "+undo.name()
	}
	live, err := dbExists(ctx, conn, t.Live)
	if err != nil {
		return actions.Plan{}, err
	}
	stamp := a.opts.Now().UTC().Format(StampFormat)
	s := Spec{
		Service: svc.Name, Database: db.Name, URLEnv: db.URLEnv, Server: t.Server, Live: t.Live,
		LiveMissing: !live, Stamp: stamp,
		Incoming: pre, Outgoing: derivedName(t.Live, "_rolled_back_"+stamp),
		Namespace: svc.Namespace(), Writers: db.Writers, Checks: db.Checks,
		Restore: undo.ID, RestoreStep: undo.Step, RestorePlaybook: undo.Playbook, Replicas: undo.Swap.Replicas,
	}
	if taken, err := dbExists(ctx, conn, s.Outgoing); err != nil {
		return actions.Plan{}, err
	} else if taken {
		return actions.Plan{}, actions.Refusef("database %s already exists on %s: try again in a second", s.Outgoing, t.Server)
	}
	plan := actions.Plan{
		Kind: KindRollback, Service: svc.Name, Target: "db:" + svc.Name + "/" + db.Name,
		Summary: fmt.Sprintf("Roll %s back to %s", t.Live, pre),
		Facts: []actions.Fact{
			{Label: "Database", Value: t.Server + "/" + t.Live + " (URL from " + db.URLEnv + ")"},
		},
	}
	if undo.ID != 0 {
		plan.Summary = fmt.Sprintf("Roll %s back to before request #%d (restore-db from %s)", t.Live, undo.ID, undo.backup())
		if undo.Step > 0 {
			plan.Summary = fmt.Sprintf("Roll %s back to before %s (from %s)", t.Live, undo.name(), undo.backup())
		}
		plan.Facts = append(plan.Facts, actions.Fact{Label: "Rolls back", Value: undo.describe()})
	}
	plan.Facts = append(plan.Facts, []actions.Fact{
		{Label: "Becomes live", Value: pre + " (" + chosen + ")"},
		{Label: "Current live database kept as", Value: s.Outgoing},
	}...)
	if !live {
		plan.Warnings = append(plan.Warnings, fmt.Sprintf("there is no live database %s: %s becomes live", t.Live, pre))
	}
	if len(db.Writers) > 0 {
		plan.Facts = append(plan.Facts, actions.Fact{Label: "Writers scaled to 0 during the swap", Value: svc.Namespace() + ": " + refs(db.Writers)})
	}
	if len(db.Writers) > 0 && len(s.Replicas) > 0 {
		var before []string
		for _, w := range db.Writers {
			if n, ok := s.Replicas[w.String()]; ok {
				before = append(before, fmt.Sprintf("%s: %d", w, n))
			}
		}
		plan.Facts = append(plan.Facts, actions.Fact{Label: "Writers before " + undo.name(), Value: strings.Join(before, ", ") + " (a writer found at 0 comes back to this)"})
	}
	plan.Steps = append(plan.Steps, writerSteps(db.Writers, StepScaleDown, "scale to 0:")...)
	plan.Steps = append(plan.Steps,
		actions.Step{Name: StepTerminate, Description: "terminate remaining connections to " + t.Live},
		actions.Step{Name: StepSwap, Description: fmt.Sprintf("rename %s → %s and %s → %s in one transaction", t.Live, s.Outgoing, pre, t.Live)},
	)
	plan.Steps = append(plan.Steps, writerSteps(db.Writers, StepScaleUp, "scale back to previous replicas:")...)
	plan.Steps = append(plan.Steps, actions.Step{Name: StepCheckLive, Description: "run " + checkNames(db.Checks) + " on " + t.Live})
	if plan.Spec, err = json.Marshal(s); err != nil {
		return actions.Plan{}, fmt.Errorf("rollback %s: encode plan: %w", db.Name, err)
	}
	return plan, nil
}

// preRestorePrefix is what pre-restore database names of live start with
// (derivedName shortens long names the same way).
func preRestorePrefix(live string) string {
	return strings.TrimSuffix(derivedName(live, "_pre_restore_"+strings.Repeat("0", len(StampFormat))), strings.Repeat("0", len(StampFormat)))
}

// Execute implements actions.Action.
func (a *Rollback) Execute(ctx context.Context, plan actions.Plan, j actions.Journal) error {
	s, err := SpecOf(plan)
	if err != nil {
		return err
	}
	t, err := executeTarget(s)
	if err != nil {
		return err
	}
	if len(s.Writers) > 0 && a.opts.Scaler == nil {
		return fmt.Errorf("rollback %s: writers configured but no Scaler", s.Database)
	}
	return a.swapAndScale(ctx, s, t, j, "")
}

// Verify implements actions.Action: the database's checks on live.
func (a *Rollback) Verify(ctx context.Context, p actions.Plan) (actions.Report, error) {
	return verifyLive(ctx, p)
}
