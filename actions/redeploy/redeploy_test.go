package redeploy_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/actiontest"
	"github.com/drbot-dev/drbot/actions/kube"
	"github.com/drbot-dev/drbot/actions/redeploy"
	"github.com/drbot-dev/drbot/actions/redeploy/redeploytest"
	"github.com/drbot-dev/drbot/internal/usererr"
	"github.com/drbot-dev/drbot/runbook"
)

const ns = "inflow-prod"

var (
	deploymentsGVR = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	configmapsGVR  = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	servicesGVR    = schema.GroupVersionResource{Version: "v1", Resource: "services"}
)

func config(t testing.TB, repo, extra string) *runbook.Config {
	t.Helper()
	cfg, err := runbook.Parse("redeploy.yaml", []byte(`
slack:
  approvers: [UBOB]
services:
  - name: inflow
    kubernetes:
      namespace: `+ns+`
      selector: app=inflow-api
      source:
        repo: `+repo+`
        ref: main
        path: infra/kubernetes/environments/prod
`+extra))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

type fixture struct {
	repo    *redeploytest.Repo
	cluster *redeploytest.Cluster
	action  *redeploy.Action
	params  actions.Params
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{repo: redeploytest.NewRepo(t), cluster: redeploytest.NewCluster(t, 5*time.Millisecond)}
	f.repo.Commit("inflow v1", redeploytest.App("inflow-api", ns, "v1", 2))
	f.action = redeploy.New(config(t, f.repo.URL(), ""), f.cluster)
	f.action.Poll = 5 * time.Millisecond
	f.action.Timeout = 10 * time.Second
	f.params = actions.Params{Service: "inflow"}
	return f
}

func spec(t *testing.T, p actions.Plan) redeploy.Spec {
	t.Helper()
	var s redeploy.Spec
	if err := json.Unmarshal(p.Spec, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func fact(p actions.Plan, label string) string {
	for _, f := range p.Facts {
		if f.Label == label {
			return f.Value
		}
	}
	return ""
}

// TestRedeployPlanApplyVerify: the plan pins the commit and lists each
// object as create; planning changes nothing; Execute applies every
// object with field manager drbot, waits for the rollout; Verify passes. A
// second plan of the same commit says unchanged; a new commit that changes
// the image says change with the field.
func TestRedeployPlanApplyVerify(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	head := f.repo.Git("rev-parse", "HEAD")

	p, err := f.action.Plan(ctx, f.params)
	if err != nil {
		t.Fatal(err)
	}
	s := spec(t, p)
	if s.Commit != head || fact(p, "Commit") != head {
		t.Errorf("plan pins %s (fact %q), want %s", s.Commit, fact(p, "Commit"), head)
	}
	if got := fact(p, "Create"); got != "ConfigMap/inflow-api-config, Service/inflow-api, Deployment/inflow-api" {
		t.Errorf("create = %q", got)
	}
	if !strings.Contains(p.Summary, "3 to create, 0 to change, 0 unchanged") || !strings.Contains(p.Summary, head[:12]) {
		t.Errorf("summary %q", p.Summary)
	}
	var steps []string
	for _, st := range p.Steps {
		steps = append(steps, st.Name)
	}
	want := []string{"check-ref", "apply ConfigMap/inflow-api-config", "apply Service/inflow-api", "apply Deployment/inflow-api", "rollout Deployment/inflow-api"}
	if !slices.Equal(steps, want) {
		t.Errorf("steps %v, want %v", steps, want)
	}
	if f.cluster.Object(deploymentsGVR, ns, "inflow-api") != nil || len(f.cluster.Actions()) != 3 {
		t.Fatalf("planning changed the cluster or made other calls than 3 gets: %v", f.cluster.Actions())
	}
	for _, a := range f.cluster.Actions() {
		if a.GetVerb() != "get" {
			t.Errorf("plan made a %s call", a.GetVerb())
		}
	}

	j := actiontest.NewJournal()
	if err := f.action.Execute(ctx, p, j); err != nil {
		t.Fatalf("execute: %v (events %+v)", err, j.Events())
	}
	if !slices.Equal(j.Finished(), want) {
		t.Errorf("finished %v", j.Finished())
	}
	d := f.cluster.Object(deploymentsGVR, ns, "inflow-api")
	img := d["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)["image"]
	if img != "registry.example.com/inflow-api:v1" {
		t.Errorf("image %v", img)
	}
	mf, _ := json.Marshal(d["metadata"].(map[string]any)["managedFields"])
	if !strings.Contains(string(mf), `"manager":"drbot"`) || !strings.Contains(string(mf), `"operation":"Apply"`) {
		t.Errorf("managed fields lack drbot's apply: %s", mf)
	}
	if f.cluster.Object(configmapsGVR, ns, "inflow-api-config") == nil || f.cluster.Object(servicesGVR, ns, "inflow-api") == nil {
		t.Error("the ConfigMap or Service was not applied")
	}
	if pr, ok := j.LastProgress("rollout Deployment/inflow-api"); !ok || pr.Done != 2 || pr.Total != 2 || pr.Unit != "replicas" {
		t.Errorf("rollout progress %+v %v", pr, ok)
	}
	if pr, ok := j.LastProgress("apply Deployment/inflow-api"); !ok || pr.Done != 3 || pr.Total != 3 {
		t.Errorf("apply progress %+v %v", pr, ok)
	}

	rep, err := f.action.Verify(ctx, p)
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %v %+v", err, rep)
	}
	var kinds []string
	for _, c := range rep.Checks {
		kinds = append(kinds, c.Kind+":"+c.Name)
	}
	if !slices.Equal(kinds, []string{"objects:objects as in " + head[:12], "rollout:Deployment/inflow-api rollout", "pods:Deployment/inflow-api pods", "pods:service pods"}) {
		t.Errorf("checks %v", kinds)
	}

	// The same commit again: nothing to do.
	p2, err := f.action.Plan(ctx, f.params)
	if err != nil {
		t.Fatal(err)
	}
	if fact(p2, "Unchanged") != "ConfigMap/inflow-api-config, Service/inflow-api, Deployment/inflow-api" || len(p2.Warnings) != 1 {
		t.Errorf("second plan: unchanged %q, warnings %v", fact(p2, "Unchanged"), p2.Warnings)
	}

	// A new image tag: a change, named by its field.
	f.repo.Commit("inflow v2", redeploytest.App("inflow-api", ns, "v2", 2))
	p3, err := f.action.Plan(ctx, f.params)
	if err != nil {
		t.Fatal(err)
	}
	if got := fact(p3, "Change"); got != "Deployment/inflow-api (spec.template.spec.containers[0].image)" {
		t.Errorf("change = %q", got)
	}
	if h1, _ := p.Hash(); func() bool { h3, _ := p3.Hash(); return h1 == h3 }() {
		t.Error("a new commit kept the plan hash")
	}
}

// TestRedeployRefMovedRefuses: a commit pushed after the plan stops the
// execution before anything is applied, and the re-plan's identity differs
// in the commit (the runner's plan-drift check sees it).
func TestRedeployRefMovedRefuses(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	p, err := f.action.Plan(ctx, f.params)
	if err != nil {
		t.Fatal(err)
	}
	next := f.repo.Commit("inflow v2", redeploytest.App("inflow-api", ns, "v2", 2))
	j := actiontest.NewJournal()
	err = f.action.Execute(ctx, p, j)
	var rf *usererr.Refusal
	if !errors.As(err, &rf) || !strings.Contains(rf.Msg, "main moved from "+spec(t, p).Commit[:12]+" (approved) to "+next[:12]) {
		t.Fatalf("execute after a push: %v", err)
	}
	if f.cluster.Object(deploymentsGVR, ns, "inflow-api") != nil || f.cluster.Object(configmapsGVR, ns, "inflow-api-config") != nil {
		t.Error("something was applied")
	}
	now, err := f.action.Plan(ctx, f.params)
	if err != nil {
		t.Fatal(err)
	}
	was, _ := actions.IdentityOf(f.action, p)
	is, _ := actions.IdentityOf(f.action, now)
	if d := was.Diff(is); !slices.Contains(d, "commit") {
		t.Errorf("identity diff %v lacks the commit", d)
	}
}

// TestRedeployResumesAfterCrash: a crash after the ConfigMap was applied
// and mid-way through the Deployment's apply: the run again skips the done
// step, applies the rest once and completes.
func TestRedeployResumesAfterCrash(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	p, err := f.action.Plan(ctx, f.params)
	if err != nil {
		t.Fatal(err)
	}
	j := actiontest.NewJournal()
	if err := j.MarkDone("check-ref", spec(t, p).Commit); err != nil {
		t.Fatal(err)
	}
	if err := j.MarkDone("apply ConfigMap/inflow-api-config", "1"); err != nil {
		t.Fatal(err)
	}
	j.MarkStarted("apply Service/inflow-api")
	if err := f.action.Execute(ctx, p, j); err != nil {
		t.Fatal(err)
	}
	if got := j.Skipped(); !slices.Equal(got, []string{"check-ref", "apply ConfigMap/inflow-api-config"}) {
		t.Errorf("skipped %v", got)
	}
	if f.cluster.Object(configmapsGVR, ns, "inflow-api-config") != nil {
		t.Error("the step journaled done ran again")
	}
	if f.cluster.Object(servicesGVR, ns, "inflow-api") == nil {
		t.Error("the started step did not run again")
	}
}

// TestRedeployRolloutTimeout: a rollout that never completes fails its
// step with a user-safe reason after the timeout; Verify reports the
// rollout and the pods as failing, the objects as applied.
func TestRedeployRolloutTimeout(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.action.Timeout = 300 * time.Millisecond
	f.cluster.Hang(ns, "inflow-api", true)
	p, err := f.action.Plan(ctx, f.params)
	if err != nil {
		t.Fatal(err)
	}
	j := actiontest.NewJournal()
	err = f.action.Execute(ctx, p, j)
	var rf *usererr.Refusal
	if !errors.As(err, &rf) || !strings.Contains(rf.Msg, "rollout of deployment/inflow-api in inflow-prod failed: it did not finish in 300ms") {
		t.Fatalf("execute: %v", err)
	}
	if got := j.Failed(); !slices.Equal(got, []string{"rollout Deployment/inflow-api"}) {
		t.Errorf("failed steps %v", got)
	}
	rep, err := f.action.Verify(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	var failed []string
	for _, c := range rep.Failed() {
		failed = append(failed, c.Name)
	}
	if !slices.Equal(failed, []string{"Deployment/inflow-api rollout", "Deployment/inflow-api pods", "service pods"}) || !rep.Checks[0].OK {
		t.Errorf("verify: failed %v, checks %+v", failed, rep.Checks)
	}
}

// TestRedeployRefForms: ref may be a branch, a tag or a commit SHA; a SHA
// pins itself (no ref to check before applying); an unknown ref or
// commit is refused.
func TestRedeployRefForms(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	v1 := f.repo.Git("rev-parse", "HEAD")
	f.repo.Git("tag", "release-1")
	f.repo.Git("tag", "-a", "release-1a", "-m", "annotated")
	f.repo.Commit("inflow v2", redeploytest.App("inflow-api", ns, "v2", 2))
	for _, c := range []struct {
		ref, commit string
		checkRef    bool
		refusal     string
	}{
		{ref: "release-1", commit: v1, checkRef: true},
		{ref: "release-1a", commit: v1, checkRef: true},
		{ref: v1, commit: v1},
		{ref: "nope", refusal: `has no branch or tag "nope"`},
		{ref: strings.Repeat("a", 40), refusal: "has no commit " + strings.Repeat("a", 40)},
	} {
		t.Run(c.ref, func(t *testing.T) {
			cfg := config(t, f.repo.URL(), "")
			cfg.Services[0].Kubernetes.Source.Ref = c.ref
			a := redeploy.New(cfg, f.cluster)
			p, err := a.Plan(ctx, f.params)
			if c.refusal != "" {
				var rf *usererr.Refusal
				if !errors.As(err, &rf) || !strings.Contains(rf.Msg, c.refusal) {
					t.Fatalf("plan: %v, want a refusal with %q", err, c.refusal)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := spec(t, p).Commit; got != c.commit {
				t.Errorf("commit %s, want %s", got, c.commit)
			}
			if got := p.Steps[0].Name == "check-ref"; got != c.checkRef {
				t.Errorf("first step %s", p.Steps[0].Name)
			}
			a.Poll, a.Timeout = 5*time.Millisecond, 10*time.Second
			if err := a.Execute(ctx, p, actiontest.NewJournal()); err != nil {
				t.Errorf("execute: %v", err)
			}
		})
	}
}

// TestRedeployOverHTTP: the same redeploy through client-go's real dynamic
// client over HTTP (a kubeconfig naming the simulated cluster's API), as a
// separate drbot process reaches it.
func TestRedeployOverHTTP(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	srv := f.cluster.Serve(t)
	t.Setenv("KUBECONFIG", redeploytest.Kubeconfig(t, srv.URL))
	rc, err := kube.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	dc, err := dynamic.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	a := redeploy.New(config(t, f.repo.URL(), ""), dc)
	a.Poll, a.Timeout = 5*time.Millisecond, 10*time.Second
	p, err := a.Plan(ctx, f.params)
	if err != nil {
		t.Fatal(err)
	}
	if fact(p, "Create") != "ConfigMap/inflow-api-config, Service/inflow-api, Deployment/inflow-api" {
		t.Errorf("create %q", fact(p, "Create"))
	}
	if err := a.Execute(ctx, p, actiontest.NewJournal()); err != nil {
		t.Fatal(err)
	}
	rep, err := a.Verify(ctx, p)
	if err != nil || !rep.OK() {
		t.Fatalf("verify %v %+v", err, rep)
	}
	if f.cluster.Object(deploymentsGVR, ns, "inflow-api") == nil {
		t.Error("not applied")
	}
}
