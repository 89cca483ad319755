package playbook_test

import (
	"context"
	"strings"
	"testing"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/actiontest"
	"github.com/drbot-dev/drbot/actions/playbook"
	"github.com/drbot-dev/drbot/actions/runner/runnertest"
	"github.com/drbot-dev/drbot/internal/testenv"
	"github.com/drbot-dev/drbot/internal/usererr"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const composite = `
approvals:
  required: 1
  commands:
    restore-db: {required: 2}
services:
  - name: lstm-pfd
    pagerduty:
      service_ids: [PLSTMPF]
    databases:
      - name: lstm_pfd
        url_env: LSTM_PFD_DATABASE_URL
        backups:
          location: s3://lstm-pfd-backups/db/
    playbooks:
      - name: cluster-recovery
        steps:
          - name: provision infrastructure
            run: [echo, provisioned]
          - action: restore-db
          - name: smoke
            run: [echo, smoke]
            drill: true
      - name: bad-args
        steps:
          - action: restore-db
            args: [--no-such-flag]
`

// restoreAction is the test restore of actions/runner/runnertest on a real
// PostgreSQL database, with one backup.
func restoreAction(t *testing.T) *runnertest.Action {
	t.Helper()
	ctx := context.Background()
	a, err := runnertest.New(ctx, "restore-db", testenv.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	if err := a.AddBackup(ctx, "lstm_pfd_20260115.dump"); err != nil {
		t.Fatal(err)
	}
	return a
}

// TestPlanComposesStepsApprovalsAndHash: one plan holds every step's plan
// in order (facts, steps with their journal prefixes, the action step's
// verification); it needs the approvals of its most demanding step
// (restore-db: 2 here); its hash changes when a sub-plan's pinned backup
// does.
func TestPlanComposesStepsApprovalsAndHash(t *testing.T) {
	cfg := config(t, composite)
	restore := restoreAction(t)
	reg := actions.Registry{}
	reg.Register(restore)
	a := playbook.New(playbook.Options{Config: cfg, Lookup: func(k string) actions.Action { return reg[k] }, Dir: t.TempDir()})
	ctx := context.Background()
	p := params(t, cfg, "lstm-pfd", map[string]string{"name": "cluster-recovery"})
	plan, err := a.Plan(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range plan.Steps {
		names = append(names, s.Name)
	}
	if got, want := strings.Join(names, ","), "1.run,2.target,2.check,2.create,2.record,2.verify,3.run"; got != want {
		t.Errorf("steps = %s, want %s", got, want)
	}
	if plan.Target != "playbook:lstm-pfd" || plan.ExtraApprovals != 1 {
		t.Errorf("target %q, extra approvals %d; want playbook:lstm-pfd and 1 (restore-db needs 2)", plan.Target, plan.ExtraApprovals)
	}
	facts := ""
	for _, f := range plan.Facts {
		facts += f.Label + ": " + f.Value + "\n"
	}
	for _, want := range []string{"Step 2 · restore-db: Restore lstm-pfd from lstm_pfd_20260115.dump (target test:restore-db:lstm-pfd)", "2 · Backup: lstm_pfd_20260115.dump",
		"Approvals: 2: step 2 (restore-db) needs 2"} {
		if !strings.Contains(facts, want) {
			t.Errorf("facts lack %q:\n%s", want, facts)
		}
	}
	h1, _ := plan.Hash()
	if err := restore.AddBackup(ctx, "lstm_pfd_20260116.dump"); err != nil {
		t.Fatal(err)
	}
	plan2, err := a.Plan(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if h2, _ := plan2.Hash(); h1 == h2 {
		t.Error("a newer backup for step 2 left the playbook's plan hash unchanged")
	}
	was, _ := actions.IdentityOf(a, plan)
	is, _ := actions.IdentityOf(a, plan2)
	if d := was.Diff(is); len(d) == 0 {
		t.Error("identity did not change with step 2's pinned backup")
	}

	// Execute: the sub-action's journal steps are prefixed; its Verify ran.
	j := actiontest.NewJournal()
	if err := a.Execute(ctx, plan2, j); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(j.Finished(), ","); got != "1.run,2.target,2.check,2.create,2.record,2.verify,3.run" {
		t.Errorf("finished = %s", got)
	}
	if ex, _ := restore.Executions(ctx); len(ex) != 1 || ex[0] != "lstm_pfd_20260116.dump" {
		t.Errorf("executions = %v", ex)
	}
	rep, err := a.Verify(ctx, plan2)
	if err != nil || !rep.OK() || len(rep.Checks) != 3 || rep.Checks[1].Name != "step 2: restored" {
		t.Errorf("verify = %+v, %v", rep, err)
	}
}

// TestPlanRefusals: an unknown playbook, an action this drbot lacks, args
// the action's command does not take, and resume without a store are
// refusals that say what to do.
func TestPlanRefusals(t *testing.T) {
	cfg := config(t, composite)
	restore := restoreAction(t)
	ctx := context.Background()
	none := playbook.New(playbook.Options{Config: cfg, Lookup: func(string) actions.Action { return nil }})
	some := playbook.New(playbook.Options{Config: cfg, Lookup: func(k string) actions.Action {
		if k == "restore-db" {
			return restore
		}
		return nil
	}})
	for _, c := range []struct {
		a    *playbook.Action
		args map[string]string
		want string
	}{
		{some, map[string]string{"name": "nope"}, `lstm-pfd has no playbook "nope": lstm-pfd's playbooks are cluster-recovery, bad-args`},
		{some, map[string]string{}, "name the playbook to run"},
		{none, map[string]string{"name": "cluster-recovery"}, "step 2 (restore-db) runs restore-db, which this drbot cannot run"},
		{some, map[string]string{"name": "bad-args"}, "/dr restore-db has no flag --no-such-flag"},
		{some, map[string]string{"name": "resume", "request": "x1"}, `"x1" is not a request number`},
		{some, map[string]string{"name": "resume", "request": "7"}, "keeps no request history"},
		{some, map[string]string{"name": "cluster-recovery", "request": "7"}, "only /dr playbook resume <request> takes a request number"},
	} {
		_, err := c.a.Plan(ctx, params(t, cfg, "lstm-pfd", c.args))
		if rf, ok := usererr.As(err); !ok || !strings.Contains(rf.Msg, c.want) {
			t.Errorf("%v: err = %v, want a refusal containing %q", c.args, err, c.want)
		}
	}
}

// TestDrillPlanSkipsWhatHasNoDrillForm: the test restore has no drill
// form, so a drill lists it as skipped; run: steps are skipped unless
// drill: true; only that one runs.
func TestDrillPlanSkipsWhatHasNoDrillForm(t *testing.T) {
	cfg := config(t, composite)
	restore := restoreAction(t)
	a := playbook.New(playbook.Options{Config: cfg, Lookup: func(string) actions.Action { return restore }, Dir: t.TempDir()})
	ctx := context.Background()
	plan, err := a.DrillPlan(ctx, params(t, cfg, "lstm-pfd", map[string]string{"name": "cluster-recovery"}))
	if err != nil {
		t.Fatal(err)
	}
	facts := ""
	for _, f := range plan.Facts {
		facts += f.Label + ": " + f.Value + "\n"
	}
	if !strings.Contains(facts, "Step 1 · provision infrastructure: skipped in a drill: `echo provisioned`") ||
		!strings.Contains(facts, "Step 2 · restore-db: skipped in a drill: restore-db has no drill form") {
		t.Errorf("facts:\n%s", facts)
	}
	if plan.Target != "drill:playbook:lstm-pfd" || len(plan.Steps) != 1 || plan.Steps[0].Name != "3.run" {
		t.Errorf("drill plan target %q steps %+v", plan.Target, plan.Steps)
	}
	j := actiontest.NewJournal()
	if err := a.Execute(ctx, plan, j); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(j.Finished(), ","); got != "3.run" {
		t.Errorf("a drill ran %s", got)
	}
	if ex, _ := restore.Executions(ctx); len(ex) != 0 {
		t.Errorf("a drill restored: %v", ex)
	}
}

// drillableRestore is the test restore with a drill form (its own plan):
// enough to plan a playbook drill whose action step has one.
type drillableRestore struct{ *runnertest.Action }

func (d drillableRestore) DrillPlan(ctx context.Context, p actions.Params) (actions.Plan, error) {
	return d.Plan(ctx, p)
}

// TestDrillPlanTakesNoStepApprovals: a playbook's drill needs what drills
// need (approvals.PolicyForRequest: none unless drills.approval), not the
// approvals of its steps' real actions — restore-db's 2 here would make
// every drill of cluster-recovery wait for two people.
func TestDrillPlanTakesNoStepApprovals(t *testing.T) {
	cfg := config(t, composite)
	restore := drillableRestore{restoreAction(t)}
	a := playbook.New(playbook.Options{Config: cfg, Lookup: func(string) actions.Action { return restore }, Dir: t.TempDir()})
	ctx := context.Background()
	plan, err := a.DrillPlan(ctx, params(t, cfg, "lstm-pfd", map[string]string{"name": "cluster-recovery"}))
	if err != nil {
		t.Fatal(err)
	}
	if plan.ExtraApprovals != 0 {
		t.Errorf("a playbook drill asks for %d extra approvals", plan.ExtraApprovals)
	}
	for _, f := range plan.Facts {
		if f.Label == "Approvals" {
			t.Errorf("a playbook drill's card says %s: %s", f.Label, f.Value)
		}
	}
	full, err := a.Plan(ctx, params(t, cfg, "lstm-pfd", map[string]string{"name": "cluster-recovery"}))
	if err != nil {
		t.Fatal(err)
	}
	if full.ExtraApprovals != 1 {
		t.Errorf("the playbook itself asks for %d extra approvals, want 1 (restore-db needs 2)", full.ExtraApprovals)
	}
}
