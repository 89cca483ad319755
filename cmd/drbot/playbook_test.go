package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/playbook"
	"github.com/drbot-dev/drbot/bot/chat"
	"github.com/drbot-dev/drbot/bot/slack"
	"github.com/drbot-dev/drbot/internal/fakeslack"
	"github.com/drbot-dev/drbot/runbook"
	"github.com/drbot-dev/drbot/store"
	"github.com/drbot-dev/drbot/store/postgres"
)

// playbookYAML is a runbook with runbook 001 §3's cluster-recovery shape:
// the database restore (the test action of the world), a command that
// fails until the test creates its go-ahead file, and the real terraform
// applying a terraform_data configuration; a second service's playbook.
const playbookYAML = `
slack:
  approvers: [UBOB, SDBA, carol@example.com]
approvals:
  required: 1
  expires_after: 15m
services:
  - name: inflow
    pagerduty:
      service_ids: [PINFLOW]
    databases:
      - name: inflow
        url_env: INFLOW_DATABASE_URL
        backups:
          location: s3://inflow-backups/postgres/
    playbooks:
      - name: cluster-recovery
        description: Complete cluster recovery (runbook section 3)
        steps:
%s
  - name: lstm-pfd
    pagerduty:
      service_ids: [PLSTMPF]
    playbooks:
      - name: cluster-recovery
        steps:
          - run: [terraform, version]
`

const gatedSteps = `          - name: restore database
            action: restore-db
          - name: wait for go-ahead
            run: [test, -e, go-ahead]
          - name: provision infrastructure
            run: [terraform, apply, -auto-approve, -input=false, -no-color]
            timeout: 2m`

// playbookWorld is the world of actions_test.go with a playbook config and
// a terraform working directory (initialised: terraform_data needs no
// provider download).
func playbookWorld(t *testing.T, steps string) (*world, string) {
	t.Helper()
	w := newWorld(t, "15m")
	cfg, err := runbook.Parse("playbook.yaml", []byte(fmt.Sprintf(playbookYAML, steps)))
	if err != nil {
		t.Fatal(err)
	}
	w.cfg = cfg
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(`
resource "terraform_data" "cluster" {
  input = "inflow"
}
output "cluster" { value = terraform_data.cluster.output }
`), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("terraform", "-chdir="+dir, "init", "-input=false", "-no-color").CombinedOutput(); err != nil {
		t.Fatalf("terraform init: %v\n%s", err, out)
	}
	return w, dir
}

// startPlaybookInstance is startInstance with the playbook action over the
// world's actions, its commands working in dir.
func startPlaybookInstance(t *testing.T, w *world, dir string) *instance {
	t.Helper()
	return serveWith(t, w, func(ctx context.Context, log *slog.Logger, db *postgres.DB, client *slack.Client) *runtime {
		reg := w.registry()
		reg.Register(playbook.New(playbook.Options{
			Config: w.cfg, Lookup: func(kind string) actions.Action { return reg[kind] }, Store: db,
			Dir: dir, TailEvery: 200 * time.Millisecond, Logger: log,
		}))
		return newRuntimeWith(ctx, log, w.cfg, db, client, reg)
	})
}

// messagesWith returns the channel's messages containing s.
func messagesWith(w *world, channel, s string) []fakeslack.Message {
	var out []fakeslack.Message
	for _, m := range w.slack.Messages(channel) {
		if strings.Contains(m.Text+unescape(m.Blocks), s) {
			out = append(out, m)
		}
	}
	return out
}

// TestPlaybookFailsAtStep2ResumesAfterNewApproval: cluster-recovery is
// planned whole on one card and approved once; step 1 (restore-db) runs
// and is verified, step 2 fails; the card says what ran, what failed and
// what did not, and the resume command. Resume of a request that did not
// fail, or of another service's, is refused. Resume plans from step 2 (step
// 1 listed as done), needs a new approval by another person, and finishes
// without running step 1 again.
func TestPlaybookFailsAtStep2ResumesAfterNewApproval(t *testing.T) {
	terraformOnPath(t)
	w, dir := playbookWorld(t, gatedSteps)
	in := startPlaybookInstance(t, w, dir)
	ops := w.slack.AddChannel("ops", fakeslack.BotUserID, alice, bob, carol)

	// A restore-db request in flight holds step 1's target: the playbook
	// refuses to plan, naming it; it is not a playbook to resume either.
	in.command(t, w, alice, "restore-db")
	_, direct := w.card(t, in.db, 0)
	in.command(t, w, alice, "playbook cluster-recovery")
	w.waitEphemeral(t, alice, fmt.Sprintf("step 1 (restore database) acts on test:restore-db:inflow, which request #%d (restore-db, pending) holds", direct))
	in.command(t, w, alice, fmt.Sprintf("playbook resume %d", direct))
	w.waitEphemeral(t, alice, fmt.Sprintf("request #%d is a restore-db request, not a playbook", direct))
	in.command(t, w, alice, fmt.Sprintf("cancel %d", direct))
	w.waitState(t, in.db, direct, store.RequestCancelled)

	in.command(t, w, alice, "playbook cluster-recovery")
	card, id := w.card(t, in.db, direct)
	body := unescape(card.Blocks)
	for _, want := range []string{"Run playbook cluster-recovery on inflow: 3 of 3 steps", "Step 1 · restore database", "Restore inflow from b1",
		"[1 restore database] verify the restore-db", "[2 wait for go-ahead] run `test -e go-ahead`", "[3 provision infrastructure] run `terraform apply"} {
		if !strings.Contains(body, want) {
			t.Errorf("card lacks %q:\n%s", want, body)
		}
	}
	in.click(t, clickPayload(t, w, card, bob, chat.ActionApprove, id))
	w.waitState(t, in.db, id, store.RequestFailed)
	if ex := executions(t, w.restore); !slices.Equal(ex, []string{"b1"}) {
		t.Fatalf("executions = %v, want b1 once", ex)
	}
	final := w.waitCard(t, card.TS, "failed")
	fb := unescape(final.Blocks)
	for _, want := range []string{"stopped at step 2 of 3 (wait for go-ahead)", "test exited with status 1", "Ran: 1 restore database",
		"Not run: 3 provision infrastructure", fmt.Sprintf("/dr playbook resume %d", id)} {
		if !strings.Contains(fb, want) {
			t.Errorf("failed card lacks %q:\n%s", want, fb)
		}
	}
	if len(messagesWith(w, w.channel, fmt.Sprintf("/dr playbook resume %d", id))) == 0 {
		t.Error("the channel was not told how to continue")
	}
	if _, err := os.Stat(filepath.Join(dir, "terraform.tfstate")); err == nil {
		t.Fatal("step 3 ran after step 2 failed")
	}

	// Refusals: another service's request; a request that did not fail.
	opsCmd := func(user, text string) {
		form := fakeslack.SlashCommand{Text: text, UserID: user, UserName: "alice", ChannelID: ops, ChannelName: "ops"}.Form()
		signedPost(t, in.srv.URL+"/slack/commands", form.Encode())
	}
	opsCmd(alice, fmt.Sprintf("playbook resume %d lstm-pfd", id))
	w.waitEphemeral(t, alice, fmt.Sprintf("request #%d is a playbook of inflow, not of lstm-pfd", id))

	// The go-ahead exists now: resume, approved by carol (another person).
	if err := os.WriteFile(filepath.Join(dir, "go-ahead"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	in.command(t, w, alice, fmt.Sprintf("playbook resume #%d", id))
	rcard, rid := w.card(t, in.db, id)
	rb := unescape(rcard.Blocks)
	for _, want := range []string{fmt.Sprintf("Resume playbook cluster-recovery on inflow (request #%d) from step 2 of 3", id),
		fmt.Sprintf("done in request #%d; not run again", id)} {
		if !strings.Contains(rb, want) {
			t.Errorf("resume card lacks %q:\n%s", want, rb)
		}
	}
	if strings.Contains(rb, "Restore inflow from b1") {
		t.Errorf("resume card plans step 1 again:\n%s", rb)
	}
	in.click(t, clickPayload(t, w, rcard, alice, chat.ActionApprove, rid))
	w.waitEphemeral(t, alice, "you cannot approve it")
	in.click(t, clickPayload(t, w, rcard, carol, chat.ActionApprove, rid))
	w.waitState(t, in.db, rid, store.RequestSucceeded)
	w.waitCard(t, rcard.TS, "succeeded")
	if ex := executions(t, w.restore); !slices.Equal(ex, []string{"b1"}) {
		t.Errorf("executions = %v: step 1 ran again", ex)
	}
	st, err := os.ReadFile(filepath.Join(dir, "terraform.tfstate"))
	if err != nil || !strings.Contains(string(st), "terraform_data") {
		t.Errorf("terraform did not apply: %v", err)
	}
	if ms := messagesWith(w, w.channel, "Apply complete! Resources: 1 added"); len(ms) != 1 || ms[0].ThreadTS != rcard.TS {
		t.Errorf("terraform's output tail is not one message in the card's thread: %+v", ms)
	}
	// The original failed and the resumed one succeeded: neither resumes.
	in.command(t, w, alice, fmt.Sprintf("playbook resume %d", rid))
	w.waitEphemeral(t, alice, fmt.Sprintf("request #%d did not fail (it is succeeded); only a failed playbook resumes", rid))
	if as := approvalsOf(t, in.db, rid); len(as) != 1 || as[0].Approver != carol {
		t.Errorf("resume approvals = %+v", as)
	}
}

// TestPlaybookCommandStepTimesOut: a run: step that outlives its timeout is
// killed, the playbook fails at it and says so on the card.
func TestPlaybookCommandStepTimesOut(t *testing.T) {
	w, dir := playbookWorld(t, `          - name: slow
            run: [sleep, "30"]
            timeout: 2s
          - name: provision infrastructure
            run: [terraform, apply, -auto-approve, -input=false, -no-color]`)
	in := startPlaybookInstance(t, w, dir)
	in.command(t, w, alice, "playbook cluster-recovery")
	card, id := w.card(t, in.db, 0)
	in.click(t, clickPayload(t, w, card, bob, chat.ActionApprove, id))
	start := time.Now()
	w.waitState(t, in.db, id, store.RequestFailed)
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("failed after %s", took)
	}
	fb := unescape(w.waitCard(t, card.TS, "failed").Blocks)
	for _, want := range []string{"stopped at step 1 of 2 (slow)", "sleep did not finish within its timeout of 2s", "Not run: 2 provision infrastructure"} {
		if !strings.Contains(fb, want) {
			t.Errorf("card lacks %q:\n%s", want, fb)
		}
	}
	if ms := messagesWith(w, w.channel, "killed after 2s (timeout)"); len(ms) != 1 || ms[0].ThreadTS != card.TS {
		t.Errorf("the card's thread was not told the command was killed: %+v", ms)
	}
}

func terraformOnPath(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("terraform"); err != nil {
		t.Fatalf("terraform is not on PATH: %v", err)
	}
}

// TestKilledServeFinishesPlaybook: the real `drbot serve` binary is killed
// with SIGKILL while a playbook's step 2 (restore-db) is in its record
// step; the next process resumes the playbook from its journal and
// finishes it without running step 1 again (mkdir, which fails when run
// twice) and with one execution of the restore.
func TestKilledServeFinishesPlaybook(t *testing.T) {
	terraformOnPath(t)
	const steps = `          - name: prepare
            run: [mkdir, stage1]
          - name: restore database
            action: restore-db
          - name: provision infrastructure
            run: [terraform, apply, -auto-approve, -input=false, -no-color]`
	w, dir := playbookWorld(t, steps)
	cfgFile := filepath.Join(t.TempDir(), "e2e.yaml")
	if err := os.WriteFile(cfgFile, []byte(fmt.Sprintf(playbookYAML, steps)), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	cmd := exec.Command(e2eBinary(t), "serve", "--config", cfgFile, "--log-format", "json")
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(),
		"DATABASE_URL=" + w.url, "DRBOT_LISTEN=" + addr,
		"SLACK_BOT_TOKEN=" + w.slack.BotToken(), "SLACK_SIGNING_SECRET=" + e2eSecret, "SLACK_API_URL=" + w.slack.APIURL(),
		"DRBOT_E2E_ACTIONS_URL=" + w.url, "DRBOT_EXECUTION_LEASE=5s", "DRBOT_E2E_HOLD=restore-db",
		playbook.DirEnv + "=" + dir,
	}
	srv := startServer(t, cmd, addr)
	form := fakeslack.SlashCommand{Text: "playbook cluster-recovery", UserID: alice, UserName: "alice", ChannelID: w.channel}.Form()
	signedPost(t, srv.base+"/slack/commands", form.Encode())
	probe := startProbe(t, w)
	card, id := w.card(t, probe, 0)
	signedPost(t, srv.base+"/slack/interactions", clickPayload(t, w, card, bob, chat.ActionApprove, id))
	if !w.slack.WaitFor(wait, func() bool { return strings.Contains(srv.logs.String(), "e2e: execution held") }) {
		t.Fatalf("the playbook never reached the held restore step:\n%s", srv.logs.String())
	}
	srv.kill()
	if r := w.waitState(t, probe, id, store.RequestRunning); r.State != store.RequestRunning {
		t.Fatal("not running after the kill")
	}
	if _, err := os.Stat(filepath.Join(dir, "stage1")); err != nil {
		t.Fatalf("step 1 did not run before the kill: %v", err)
	}
	if ex := executions(t, w.restore); len(ex) != 0 {
		t.Fatalf("restored before the kill: %v", ex)
	}

	// The next process (this test's; the restore is not held) finishes it.
	in := startPlaybookInstance(t, w, dir)
	w.waitState(t, in.db, id, store.RequestSucceeded)
	w.waitCard(t, card.TS, "succeeded")
	if ex := executions(t, w.restore); !slices.Equal(ex, []string{"b1"}) {
		t.Errorf("executions = %v, want exactly one of b1", ex)
	}
	if st, err := os.ReadFile(filepath.Join(dir, "terraform.tfstate")); err != nil || !strings.Contains(string(st), "terraform_data") {
		t.Errorf("step 3 did not apply: %v", err)
	}
	started := map[string]int{}
	evs, err := in.db.AuditEvents(context.Background(), store.AuditFilter{RequestID: &id})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if ev.Kind == store.AuditStepStarted {
			var d actions.StepRecord
			if err := jsonUnmarshal(ev.Data, &d); err != nil {
				t.Fatal(err)
			}
			started[d.Step]++
		}
	}
	if started["1.run"] != 1 || started["2.check"] != 1 || started["2.record"] != 2 || started["3.run"] != 1 {
		t.Errorf("step.started per step = %v; want 1.run once, 2.record twice (killed, resumed), 3.run once", started)
	}
	if len(messagesWith(w, w.channel, "Resumed after a restart")) == 0 {
		t.Error("the channel was not told the playbook resumed")
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// TestPlaybookNeedsApprovalsOfItsMostDemandingStep: a playbook with a
// failover step needs failover's two approvals; one does not start it.
func TestPlaybookNeedsApprovalsOfItsMostDemandingStep(t *testing.T) {
	w, dir := playbookWorld(t, `          - name: fail over
            action: failover
          - name: announce
            run: [echo, failed over]
    failover:
      rds:
        replica: inflow-secondary
        region: us-west-2
      dns:
        zone_id: Z0INFLOWAI
        record: api.inflow.ai
        type: CNAME
        value: api.us-west-2.inflow.ai
        ttl: 60`)
	in := startPlaybookInstance(t, w, dir)
	in.command(t, w, alice, "playbook cluster-recovery")
	card, id := w.card(t, in.db, 0)
	if b := unescape(card.Blocks); !strings.Contains(b, "0 of 2") || !strings.Contains(b, "step 1 (failover) needs 2") {
		t.Fatalf("card does not ask for failover's two approvals:\n%s", b)
	}
	in.click(t, clickPayload(t, w, card, bob, chat.ActionApprove, id))
	w.waitCard(t, card.TS, "1 of 2")
	if r, _ := in.db.Request(context.Background(), id); r.State != store.RequestPending {
		t.Fatalf("one approval moved the playbook to %s", r.State)
	}
	in.click(t, clickPayload(t, w, card, carol, chat.ActionApprove, id))
	w.waitState(t, in.db, id, store.RequestSucceeded)
	if ex := executions(t, w.failover); !slices.Equal(ex, []string{"b1"}) {
		t.Errorf("failover executions = %v", ex)
	}
}
