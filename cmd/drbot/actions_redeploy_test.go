package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/redeploy"
	"github.com/drbot-dev/drbot/actions/redeploy/redeploytest"
	"github.com/drbot-dev/drbot/bot/chat"
	"github.com/drbot-dev/drbot/bot/slack"
	"github.com/drbot-dev/drbot/internal/fakeslack"
	"github.com/drbot-dev/drbot/runbook"
	"github.com/drbot-dev/drbot/store"
	"github.com/drbot-dev/drbot/store/postgres"
)

// redeployWorld is the e2e world with the real redeploy action: a real git
// repository (file://) holding the runbook's kustomization layout and a
// simulated cluster behind client-go's fake dynamic client.
type redeployWorld struct {
	*world
	repo    *redeploytest.Repo
	cluster *redeploytest.Cluster
	action  *redeploy.Action
	cfgText string // the runbook config, for a separate drbot process
}

const redeployNS = "inflow-prod"

func newRedeployWorld(t *testing.T) *redeployWorld {
	t.Helper()
	rw := &redeployWorld{world: newWorld(t, "15m"), repo: redeploytest.NewRepo(t), cluster: redeploytest.NewCluster(t, 5*time.Millisecond)}
	rw.repo.Commit("inflow v1", redeploytest.App("inflow-api", redeployNS, "v1", 2))
	rw.cfgText = `
slack:
  approvers: [UBOB, SDBA, carol@example.com]
approvals:
  required: 1
services:
  - name: inflow
    pagerduty:
      service_ids: [PINFLOW]
    kubernetes:
      namespace: ` + redeployNS + `
      selector: app=inflow-api
      source:
        repo: ` + rw.repo.URL() + `
        ref: main
        path: infra/kubernetes/environments/prod
`
	cfg, err := runbook.Parse("redeploy.yaml", []byte(rw.cfgText))
	if err != nil {
		t.Fatal(err)
	}
	rw.cfg = cfg
	rw.action = redeploy.New(cfg, rw.cluster)
	rw.action.Poll = 10 * time.Millisecond
	rw.action.Timeout = 20 * time.Second
	return rw
}

func (rw *redeployWorld) start(t *testing.T) *instance {
	t.Helper()
	return serveWith(t, rw.world, func(ctx context.Context, log *slog.Logger, db *postgres.DB, client *slack.Client) *runtime {
		reg := actions.Registry{}
		reg.Register(rw.action)
		return newRuntimeWith(ctx, log, rw.cfg, db, client, reg)
	})
}

func (rw *redeployWorld) image(t *testing.T) string {
	t.Helper()
	d := rw.cluster.Object(schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, redeployNS, "inflow-api")
	if d == nil {
		return ""
	}
	b, _ := json.Marshal(d["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["containers"])
	var cs []struct{ Image string }
	_ = json.Unmarshal(b, &cs)
	return cs[0].Image
}

// TestRedeployEndToEnd: runbook 000 "Kubernetes Recovery" through the whole
// bot. /dr redeploy --dry-run shows the plan only; /dr redeploy posts a
// card naming the commit SHA and each object as create; another person's
// approval applies them, waits for the rollout and verifies (each step in
// the audit log). Then a commit is pushed after a second request was
// approved-to-be: the runner's re-plan sees the commit changed, execution
// applies nothing and the request fails asking for a new plan; a new
// request names the new commit and, approved, deploys it.
func TestRedeployEndToEnd(t *testing.T) {
	rw := newRedeployWorld(t)
	in := rw.start(t)
	ctx := context.Background()
	v1 := rw.repo.Git("rev-parse", "HEAD")

	in.command(t, rw.world, alice, "redeploy inflow --dry-run")
	rw.waitEphemeral(t, alice, "Dry run: Redeploy inflow from main@"+v1[:12])
	if rw.image(t) != "" {
		t.Fatal("a dry run applied something")
	}

	in.command(t, rw.world, alice, `redeploy --reason "cluster rebuilt"`)
	card, id := rw.card(t, in.db, 0)
	blocks := unescape(card.Blocks)
	for _, want := range []string{v1, "ConfigMap/inflow-api-config, Service/inflow-api, Deployment/inflow-api", "3 to create", "cluster rebuilt"} {
		if !strings.Contains(blocks, want) {
			t.Errorf("card lacks %q:\n%s", want, blocks)
		}
	}
	in.click(t, clickPayload(t, rw.world, card, alice, chat.ActionApprove, id))
	rw.waitEphemeral(t, alice, "you cannot approve it")
	in.click(t, clickPayload(t, rw.world, card, bob, chat.ActionApprove, id))
	rw.waitState(t, in.db, id, store.RequestSucceeded)
	final := rw.waitCard(t, card.TS, "succeeded")
	for _, want := range []string{"objects as in " + v1[:12], "Deployment/inflow-api rollout", "service pods", "2/2 ready"} {
		if !strings.Contains(unescape(final.Blocks), want) {
			t.Errorf("final card lacks %q:\n%s", want, final.Blocks)
		}
	}
	if got := rw.image(t); got != "registry.example.com/inflow-api:v1" {
		t.Fatalf("image after redeploy: %q", got)
	}
	rid := id
	evs, err := in.db.AuditEvents(ctx, store.AuditFilter{RequestID: &rid})
	if err != nil {
		t.Fatal(err)
	}
	finished := map[string]bool{}
	for _, ev := range evs {
		if ev.Kind == store.AuditStepFinished {
			var rec actions.StepRecord
			_ = json.Unmarshal(ev.Data, &rec)
			finished[rec.Step] = true
		}
	}
	for _, s := range []string{"check-ref", "apply ConfigMap/inflow-api-config", "apply Service/inflow-api", "apply Deployment/inflow-api", "rollout Deployment/inflow-api"} {
		if !finished[s] {
			t.Errorf("no audit row for step %s: %v", s, finished)
		}
	}

	// A new commit lands between the request and its approval.
	in.command(t, rw.world, alice, "redeploy")
	card, id = rw.card(t, in.db, id)
	if !strings.Contains(unescape(card.Blocks), v1) {
		t.Fatalf("second card does not name %s", v1)
	}
	v2 := rw.repo.Commit("inflow v2", redeploytest.App("inflow-api", redeployNS, "v2", 2))
	in.click(t, clickPayload(t, rw.world, card, bob, chat.ActionApprove, id))
	rw.waitState(t, in.db, id, store.RequestFailed)
	rw.waitCard(t, card.TS, "main moved from "+v1[:12]+" (approved) to "+v2[:12]+" since the plan: nothing was applied. Request /dr redeploy again")
	if !rw.slack.WaitFor(wait, func() bool {
		for _, m := range rw.slack.Messages(rw.channel) {
			if strings.Contains(m.Text, "The plan would be different now (commit, ") {
				return true
			}
		}
		return false
	}) {
		t.Error("the runner's re-plan did not note the changed commit")
	}
	if got := rw.image(t); got != "registry.example.com/inflow-api:v1" {
		t.Fatalf("the refused request changed the image to %q", got)
	}

	// A new request: the new commit, a change of the image, a new approval.
	in.command(t, rw.world, alice, "redeploy")
	card, id = rw.card(t, in.db, id)
	blocks = unescape(card.Blocks)
	if !strings.Contains(blocks, v2) || !strings.Contains(blocks, "Deployment/inflow-api (spec.template.spec.containers[0].image)") {
		t.Errorf("third card lacks %s or the image change:\n%s", v2, blocks)
	}
	in.click(t, clickPayload(t, rw.world, card, carol, chat.ActionApprove, id))
	rw.waitState(t, in.db, id, store.RequestSucceeded)
	if got := rw.image(t); got != "registry.example.com/inflow-api:v2" {
		t.Fatalf("image after the second redeploy: %q", got)
	}
}

// stepRows counts the request's audit rows of kind per step.
func stepRows(t *testing.T, db *postgres.DB, id int64, kind string) map[string]int {
	t.Helper()
	evs, err := db.AuditEvents(context.Background(), store.AuditFilter{RequestID: &id})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, ev := range evs {
		if ev.Kind == kind {
			var rec actions.StepRecord
			_ = json.Unmarshal(ev.Data, &rec)
			out[rec.Step]++
		}
	}
	return out
}

// TestRedeployResumesAfterRestart: the bot stops while an approved
// redeploy waits for its rollout (every object applied); the next process
// resumes it from the journal: no object is applied again, the rollout
// wait runs again and the request succeeds once.
func TestRedeployResumesAfterRestart(t *testing.T) {
	rw := newRedeployWorld(t)
	rw.cluster.Hang(redeployNS, "inflow-api", true)
	first := rw.start(t)
	ctx := context.Background()

	first.command(t, rw.world, alice, "redeploy")
	card, id := rw.card(t, first.db, 0)
	first.click(t, clickPayload(t, rw.world, card, bob, chat.ActionApprove, id))
	deadline := time.Now().Add(wait)
	for stepRows(t, first.db, id, store.AuditStepStarted)["rollout Deployment/inflow-api"] == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the rollout step never started: %v", stepRows(t, first.db, id, store.AuditStepStarted))
		}
		time.Sleep(20 * time.Millisecond)
	}
	first.srv.Close()
	first.rt.stopJobs(quietLog())
	if r, err := first.db.Request(ctx, id); err != nil || r.State != store.RequestRunning {
		t.Fatalf("after the stop the request is %s (%v), want running", r.State, err)
	}

	rw.cluster.Hang(redeployNS, "inflow-api", false)
	second := rw.start(t)
	if err := second.rt.req.resume(ctx); err != nil {
		t.Fatal(err)
	}
	rw.waitState(t, second.db, id, store.RequestSucceeded)
	started := stepRows(t, second.db, id, store.AuditStepStarted)
	for _, s := range []string{"check-ref", "apply ConfigMap/inflow-api-config", "apply Service/inflow-api", "apply Deployment/inflow-api"} {
		if started[s] != 1 {
			t.Errorf("step %s started %d times, want once", s, started[s])
		}
	}
	if started["rollout Deployment/inflow-api"] != 2 {
		t.Errorf("the rollout wait started %d times, want twice (before and after the restart)", started["rollout Deployment/inflow-api"])
	}
	if !rw.slack.WaitFor(wait, func() bool {
		for _, m := range rw.slack.Messages(rw.channel) {
			if strings.Contains(m.Text, "Resumed after a restart") {
				return true
			}
		}
		return false
	}) {
		t.Error("no note that the request resumed")
	}
	if got := rw.image(t); got != "registry.example.com/inflow-api:v1" {
		t.Errorf("image %q", got)
	}
}

// TestKilledServeResumesRedeploy: a real `drbot serve` process reaches the
// simulated cluster through a kubeconfig (client-go's dynamic client over
// HTTP), applies every object of an approved redeploy and is killed with
// SIGKILL while it waits for the rollout. The next process resumes the
// request from the journal: nothing is applied again, the rollout wait
// runs again and the request succeeds once.
func TestKilledServeResumesRedeploy(t *testing.T) {
	rw := newRedeployWorld(t)
	rw.cluster.Hang(redeployNS, "inflow-api", true)
	api := rw.cluster.Serve(t)
	cfgFile := filepath.Join(t.TempDir(), "redeploy.yaml")
	if err := os.WriteFile(cfgFile, []byte(rw.cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	cmd := exec.Command(e2eBinary(t), "serve", "--config", cfgFile, "--log-format", "json")
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(),
		"DATABASE_URL=" + rw.url, "DRBOT_LISTEN=" + addr,
		"SLACK_BOT_TOKEN=" + rw.slack.BotToken(), "SLACK_SIGNING_SECRET=" + e2eSecret, "SLACK_API_URL=" + rw.slack.APIURL(),
		"KUBECONFIG=" + redeploytest.Kubeconfig(t, api.URL), "DRBOT_EXECUTION_LEASE=5s",
	}
	srv := startServer(t, cmd, addr)
	form := fakeslack.SlashCommand{Text: "redeploy", UserID: alice, UserName: "alice", ChannelID: rw.channel}.Form()
	signedPost(t, srv.base+"/slack/commands", form.Encode())
	probe := startProbe(t, rw.world)
	card, id := rw.card(t, probe, 0)
	v1 := rw.repo.Git("rev-parse", "HEAD")
	if !strings.Contains(unescape(card.Blocks), v1) {
		t.Errorf("card does not name %s:\n%s", v1, card.Blocks)
	}
	signedPost(t, srv.base+"/slack/interactions", clickPayload(t, rw.world, card, bob, chat.ActionApprove, id))
	deadline := time.Now().Add(wait)
	for stepRows(t, probe, id, store.AuditStepStarted)["rollout Deployment/inflow-api"] == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the rollout step never started: %v\n%s", stepRows(t, probe, id, store.AuditStepStarted), srv.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := rw.image(t); got != "registry.example.com/inflow-api:v1" {
		t.Fatalf("the process did not apply the deployment: %q", got)
	}
	srv.kill()
	rw.waitState(t, probe, id, store.RequestRunning)
	applies := 0
	for _, a := range rw.cluster.Actions() {
		if a.GetVerb() == "patch" {
			applies++
		}
	}

	rw.cluster.Hang(redeployNS, "inflow-api", false)
	in := rw.start(t)
	rw.waitState(t, in.db, id, store.RequestSucceeded)
	started := stepRows(t, in.db, id, store.AuditStepStarted)
	for _, s := range []string{"check-ref", "apply ConfigMap/inflow-api-config", "apply Service/inflow-api", "apply Deployment/inflow-api"} {
		if started[s] != 1 {
			t.Errorf("step %s started %d times, want once", s, started[s])
		}
	}
	if started["rollout Deployment/inflow-api"] != 2 {
		t.Errorf("the rollout wait started %d times, want twice (before and after the kill)", started["rollout Deployment/inflow-api"])
	}
	after := 0
	for _, a := range rw.cluster.Actions() {
		if a.GetVerb() == "patch" {
			after++
		}
	}
	if applies != 3 || after != applies {
		t.Errorf("server-side applies: %d before the kill (want 3), %d in all (want no more)", applies, after)
	}
	if !rw.slack.WaitFor(wait, func() bool {
		for _, m := range rw.slack.Messages(rw.channel) {
			if strings.Contains(m.Text, "Resumed after a restart") {
				return true
			}
		}
		return false
	}) {
		t.Error("the channel was not told the request resumed")
	}
	rw.waitCard(t, card.TS, "succeeded")
}
