package commands

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

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
	"github.com/drbot-dev/drbot/actions/vaultrestore"
	"github.com/drbot-dev/drbot/actions/verify"
	"github.com/drbot-dev/drbot/bot/chat"
	"github.com/drbot-dev/drbot/store"
)

// planAction plans from its params and records what it was asked; it
// declares cmd (a real action's declaration).
type planAction struct {
	kind   string
	cmd    actions.Command
	params []actions.Params
}

func (a *planAction) Kind() string             { return a.kind }
func (a *planAction) Command() actions.Command { return a.cmd }
func (a *planAction) Read(ctx context.Context, p actions.Params) (any, error) {
	plan, err := a.Plan(ctx, p)
	if err != nil {
		return nil, err
	}
	return a.Verify(ctx, plan)
}
func (a *planAction) Plan(_ context.Context, p actions.Params) (actions.Plan, error) {
	a.params = append(a.params, p)
	if p.Flags["backup"] == "missing" {
		return actions.Plan{}, actions.Refusef("no backup called missing")
	}
	return actions.Plan{Kind: a.kind, Service: p.Service, Target: "db:" + p.Service, Summary: "Restore " + p.Service + " from " + p.Flags["backup"],
		Steps: []actions.Step{{Name: "restore-side", Description: "Restore into a side database"}}, Facts: []actions.Fact{{Label: "Backup", Value: p.Flags["backup"]}}}, nil
}
func (a *planAction) Execute(context.Context, actions.Plan, actions.Journal) error { return nil }
func (a *planAction) Verify(context.Context, actions.Plan) (actions.Report, error) {
	return actions.Report{Checks: []actions.CheckResult{{Name: "health", Kind: "http", Target: "http://x/health", Observed: "200", OK: true}}}, nil
}

// submissions records submitted requests.
type submissions struct{ got []Submission }

func (s *submissions) Submit(_ context.Context, sub Submission) (chat.Message, error) {
	s.got = append(s.got, sub)
	return chat.Message{Text: "submitted", Ephemeral: true}, nil
}
func (s *submissions) Cancel(_ context.Context, u chat.User, id int64) (chat.Message, error) {
	return chat.Plain(u.ID + " cancels"), nil
}
func (s *submissions) Deny(_ context.Context, u chat.User, id int64, reason string) (chat.Message, error) {
	return chat.Plain(fmt.Sprintf("%s denies #%d: %s", u.ID, id, reason)), nil
}
func (s *submissions) Recent(context.Context, string, int) ([]store.ActionRequest, error) {
	return nil, nil
}

func TestRecoveryCommands(t *testing.T) {
	deps := fixtureDeps()
	restore := &planAction{kind: "restore-db", cmd: restoredb.RestoreCommand}
	verifier := &planAction{kind: "verify", cmd: verify.Command}
	deps.Actions = declared(restore, verifier)
	subs := &submissions{}
	deps.Requests = subs
	r := NewRegistry(deps)
	ctx := context.Background()
	run := func(channel, text string) (chat.Message, error) {
		return r.Dispatch(ctx, chat.Command{User: chat.User{ID: "UALICE"}, Channel: channel, Text: text})
	}

	// In an incident channel the service is implied; the request is submitted with the plan.
	if _, err := run(chanLSTM, `restore-db --backup db/1.dump --reason "corrupted at 14:02"`); err != nil {
		t.Fatal(err)
	}
	if len(subs.got) != 1 {
		t.Fatalf("submissions = %+v", subs.got)
	}
	s := subs.got[0]
	if s.Service != "lstm-pfd" || s.Kind != "restore-db" || s.Reason != "corrupted at 14:02" || s.Plan.Target != "db:lstm-pfd" ||
		s.Params.Flags["backup"] != "db/1.dump" || s.Params.DryRun || s.Params.Flags["reason"] != "" || s.User.ID != "UALICE" {
		t.Errorf("submission = %+v", s)
	}

	// --dry-run shows the plan and submits nothing.
	m, err := run(chanOps, "restore-db inflow --backup db/2.dump --dry-run")
	if err != nil {
		t.Fatal(err)
	}
	if len(subs.got) != 1 || !strings.Contains(renderPlain(m), "Dry run: Restore inflow from db/2.dump") || !strings.Contains(renderPlain(m), "1. Restore into a side database") {
		t.Errorf("dry run submitted or rendered wrong (%d submissions):\n%s", len(subs.got), renderPlain(m))
	}
	if !restore.params[len(restore.params)-1].DryRun {
		t.Error("the action was not told it is a dry run")
	}

	// The action's refusal reaches the user as a refusal.
	_, err = run(chanOps, "restore-db inflow --backup missing")
	if rf, ok := AsRefusal(err); !ok || rf.Msg != "no backup called missing" {
		t.Errorf("refusal = %v", err)
	}
	// A kind not in the registry refuses clearly.
	_, err = run(chanOps, "failover inflow")
	if rf, ok := AsRefusal(err); !ok || !strings.Contains(rf.Msg, "no failover action") {
		t.Errorf("missing action: %v", err)
	}
	// verify runs the checks without approval.
	m, err = run(chanOps, "verify inflow")
	if err != nil || !strings.Contains(renderPlain(m), "all 1 checks passed") || !strings.Contains(renderPlain(m), "✅ *health*") {
		t.Errorf("verify: %v\n%s", err, renderPlain(m))
	}
	// cancel parses request numbers.
	if m, err := run(chanOps, "cancel #42"); err != nil || m.Text != "UALICE cancels" {
		t.Errorf("cancel: %+v, %v", m, err)
	}
	// deny takes the request and the whole reason, quoted or not.
	if m, err := run(chanOps, `deny 42 the backup predates the corruption`); err != nil || m.Text != "UALICE denies #42: the backup predates the corruption" {
		t.Errorf("deny: %+v, %v", m, err)
	}
	if _, err := run(chanOps, "deny 42"); err == nil {
		t.Error("deny without a reason was accepted")
	} else if rf, ok := AsRefusal(err); !ok || !strings.Contains(rf.Msg, "reason") {
		t.Errorf("deny without a reason: %v", err)
	}
	_, err = run(chanOps, "cancel abc")
	if rf, ok := AsRefusal(err); !ok || !strings.Contains(rf.Msg, "not a request number") {
		t.Errorf("cancel abc: %v", err)
	}
	// Destructive commands say so in help.
	for _, name := range []string{"restore-db", "restore-models", "rollout-restart", "scale", "failover", "rollback"} {
		c := r.Lookup(name)
		if c == nil || !c.Approval || c.flag("dry-run") == nil {
			t.Errorf("%s: not registered as an approval-gated command with --dry-run", name)
		}
	}
	if c := r.Lookup("verify"); c == nil || c.Approval {
		t.Error("verify must not need approval")
	}
}

// declared is the binary's procedures as declarations (every command
// refuses as unavailable), with the given ones in place of theirs.
func declared(with ...actions.Procedure) []actions.Procedure {
	var out []actions.Procedure
	for _, c := range []actions.Command{restoredb.RestoreCommand, restoredb.RollbackCommand, models.Command,
		kube.RolloutRestartCommand, kube.ScaleCommand, failover.Command, redeploy.Command, verify.Command, backups.Command, diagnose.Command,
		vaultrestore.Command, playbook.Command, drill.Command} {
		p := actions.Unavailable(c)
		for _, w := range with {
			if w.Command().Name == c.Name {
				p = w
			}
		}
		out = append(out, p)
	}
	return out
}

// TestApprovalIsEnforcedByDispatch: an Approval command is planned and
// submitted by dispatch, whoever declares it; it has no Run of its own.
func TestApprovalIsEnforcedByDispatch(t *testing.T) {
	r := NewRegistry(fixtureDeps())
	err := r.Register(Command{Name: "nuke", Summary: "x", Approval: true, Run: echo})
	if err == nil || !strings.Contains(err.Error(), "an Approval command has a Plan and no Run") {
		t.Fatalf("an Approval command with a Run registered: %v", err)
	}
	planned := 0
	r.MustRegister(Command{Name: "nuke", Summary: "x", Approval: true, Plan: func(context.Context, *Call) (actions.Plan, error) {
		planned++
		return actions.Plan{Summary: "nuke everything"}, nil
	}})
	reqs := r.deps.Requests.(*echoRequests)
	m, err := r.Dispatch(context.Background(), chat.Command{User: chat.User{ID: "U1"}, Channel: chanOps, Text: "nuke"})
	if err != nil || m.Text != "nuke everything" || len(reqs.got) != 1 || reqs.got[0].Kind != "nuke" || planned != 1 {
		t.Fatalf("nuke: %q %v; submissions %+v", m.Text, err, reqs.got)
	}
}

// TestRecoveryHelpGolden pins the generated help of the recovery commands
// (rerun with -update after an intended change).
func TestRecoveryHelpGolden(t *testing.T) {
	deps := fixtureDeps()
	deps.Actions = declared()
	// /dr drills is registered where the schedule can be read; help never reads it.
	deps.Drills = func(context.Context, string) ([]drill.Status, time.Time, error) { return nil, time.Time{}, nil }
	r := NewRegistry(deps)
	for _, name := range []string{"restore-db", "restore-models", "rollout-restart", "scale", "failover", "redeploy", "rollback", "verify", "diagnose", "restore-vault", "playbook", "drill", "drills", "cancel", "deny"} {
		t.Run(name, func(t *testing.T) {
			m, err := r.Dispatch(context.Background(), chat.Command{User: chat.User{ID: "U1"}, Channel: chanOps, Text: "help " + name})
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, "recovery-help-"+name, renderPlain(m))
		})
	}
}
