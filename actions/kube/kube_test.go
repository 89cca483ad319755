package kube_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/actiontest"
	"github.com/drbot-dev/drbot/actions/kube"
	"github.com/drbot-dev/drbot/actions/kube/kubetest"
	"github.com/drbot-dev/drbot/internal/testenv"
	"github.com/drbot-dev/drbot/runbook"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const ns = "prod"

var web = runbook.WorkloadRef{Kind: runbook.KindDeployment, Name: "web"}

func cluster(t *testing.T) (*kubetest.Cluster, *kube.Client) {
	t.Helper()
	c := kubetest.New(t, 2*time.Millisecond,
		kubetest.Deployment(ns, "web", 3),
		kubetest.Deployment(ns, "stuck", 2),
		kubetest.StatefulSet(ns, "db", 2),
	)
	k := kube.New(c)
	k.Poll = 2 * time.Millisecond
	return c, k
}

func config() *runbook.Config {
	return &runbook.Config{Services: []runbook.Service{{
		Name:       "inflow",
		Kubernetes: &runbook.Kubernetes{Namespace: ns, Selector: "app=web"},
	}}}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

func TestScaleReturnsPreviousCountAndRollsOut(t *testing.T) {
	_, k := cluster(t)
	prev, err := k.Scale(ctx(t), ns, web, 5)
	if err != nil || prev != 3 {
		t.Fatalf("Scale = %d, %v; want 3, nil", prev, err)
	}
	w, err := k.Get(ctx(t), ns, web)
	if err != nil || w.Replicas != 5 || w.Generation != 2 {
		t.Fatalf("after scale: %+v, %v; want 5 replicas at generation 2", w, err)
	}
	var readings []int32
	st, err := k.WaitRollout(ctx(t), ns, web, kube.WaitOptions{Timeout: time.Minute, OnProgress: func(ready, total int32, _ string) {
		if total != 5 {
			t.Errorf("progress total %d, want 5", total)
		}
		readings = append(readings, ready)
	}})
	if err != nil || !st.Done {
		t.Fatalf("WaitRollout = %+v, %v", st, err)
	}
	if len(readings) == 0 || readings[len(readings)-1] != 5 {
		t.Fatalf("progress readings %v: want the last to be 5", readings)
	}
	ready, total, err := k.PodsReady(ctx(t), ns, "app=web")
	if err != nil || ready != 5 || total != 5 {
		t.Fatalf("PodsReady = %d/%d, %v; want 5/5", ready, total, err)
	}
	// Scaling to the count it has changes nothing.
	prev, err = k.Scale(ctx(t), ns, web, 5)
	if err != nil || prev != 5 {
		t.Fatalf("second Scale = %d, %v", prev, err)
	}
	if w, _ := k.Get(ctx(t), ns, web); w.Generation != 2 {
		t.Fatalf("a no-op scale bumped the generation to %d", w.Generation)
	}
}

func TestScaleStatefulSetToZeroAndBack(t *testing.T) {
	_, k := cluster(t)
	db := runbook.WorkloadRef{Kind: runbook.KindStatefulSet, Name: "db"}
	prev, err := k.Scale(ctx(t), ns, db, 0)
	if err != nil || prev != 2 {
		t.Fatalf("Scale = %d, %v; want 2", prev, err)
	}
	if _, err := k.WaitRollout(ctx(t), ns, db, kube.WaitOptions{Timeout: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if ready, total, _ := k.PodsReady(ctx(t), ns, "app=db"); ready != 0 || total != 0 {
		t.Fatalf("pods after scale to 0: %d/%d", ready, total)
	}
	if prev, err := k.Scale(ctx(t), ns, db, 2); err != nil || prev != 0 {
		t.Fatalf("Scale back = %d, %v", prev, err)
	}
	if _, err := k.WaitRollout(ctx(t), ns, db, kube.WaitOptions{Timeout: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if ready, total, _ := k.PodsReady(ctx(t), ns, "app=db"); ready != 2 || total != 2 {
		t.Fatalf("pods after scale back: %d/%d", ready, total)
	}
}

func TestScaleMissingWorkload(t *testing.T) {
	_, k := cluster(t)
	_, err := k.Scale(ctx(t), ns, runbook.WorkloadRef{Kind: runbook.KindDeployment, Name: "nope"}, 1)
	var nf *kube.NotFoundError
	if !errors.As(err, &nf) {
		t.Fatalf("err = %v, want *NotFoundError", err)
	}
}

func TestRolloutRestartActionPlanExecuteVerify(t *testing.T) {
	c, k := cluster(t)
	a := kube.NewRolloutRestart(config(), k)
	plan, err := a.Plan(ctx(t), actions.Params{Service: "inflow", Args: map[string]string{"deployment": "web"}})
	if err != nil {
		t.Fatal(err)
	}
	if plan.Kind != "rollout-restart" || plan.Target != "k8s:prod/deployment/web" || len(plan.Steps) != 2 {
		t.Fatalf("plan = %+v", plan)
	}
	if !strings.Contains(plan.Summary, "3 replicas") {
		t.Fatalf("summary %q does not pin the replicas", plan.Summary)
	}
	// Plan is deterministic for the same world.
	again, _ := a.Plan(ctx(t), actions.Params{Service: "inflow", Args: map[string]string{"deployment": "deployment/web"}})
	h1, _ := plan.Hash()
	h2, _ := again.Hash()
	if h1 != h2 {
		t.Fatal("two plans of the same world differ")
	}

	j := actiontest.NewJournal()
	if err := a.Execute(ctx(t), plan, j); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(j.Finished(), ","); got != "restart,wait-rollout" {
		t.Fatalf("finished steps %q", got)
	}
	d, err := c.AppsV1().Deployments(ns).Get(ctx(t), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Spec.Template.Annotations[kube.RestartedAtAnnotation] == "" {
		t.Fatalf("no %s annotation on the template: %v", kube.RestartedAtAnnotation, d.Spec.Template.Annotations)
	}
	if d.Generation != 2 {
		t.Fatalf("generation %d, want 2", d.Generation)
	}
	p, ok := j.LastProgress("wait-rollout")
	if !ok || p.Done != 3 || p.Total != 3 || p.Unit != "replicas" {
		t.Fatalf("last progress %+v, %v; want 3 of 3 replicas", p, ok)
	}
	var sawPartial bool
	for _, p := range j.ProgressReports() {
		if p.Done < p.Total {
			sawPartial = true
		}
	}
	if !sawPartial {
		t.Fatal("no progress report before the rollout completed")
	}

	rep, err := a.Verify(ctx(t), plan)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || len(rep.Checks) != 2 {
		t.Fatalf("verify report %+v", rep)
	}
	if rep.Checks[1].Observed != "3/3 ready" {
		t.Fatalf("pods observed %q", rep.Checks[1].Observed)
	}

	// Running it again after it finished changes nothing.
	gen := d.Generation
	if err := a.Execute(ctx(t), plan, j); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(j.Skipped(), ","); got != "restart,wait-rollout" {
		t.Fatalf("second run skipped %q, want both steps", got)
	}
	d, _ = c.AppsV1().Deployments(ns).Get(ctx(t), "web", metav1.GetOptions{})
	if d.Generation != gen {
		t.Fatal("a finished restart ran again")
	}
}

func TestRolloutRestartStatefulSet(t *testing.T) {
	c, k := cluster(t)
	a := kube.NewRolloutRestart(config(), k)
	plan, err := a.Plan(ctx(t), actions.Params{Service: "inflow", Args: map[string]string{"deployment": "statefulset/db"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Execute(ctx(t), plan, actiontest.NewJournal()); err != nil {
		t.Fatal(err)
	}
	s, _ := c.AppsV1().StatefulSets(ns).Get(ctx(t), "db", metav1.GetOptions{})
	if s.Status.CurrentRevision != s.Status.UpdateRevision || s.Status.UpdateRevision == "db-1" {
		t.Fatalf("statefulset did not move to a new revision: %+v", s.Status)
	}
	rep, _ := a.Verify(ctx(t), plan)
	if !rep.OK() {
		t.Fatalf("verify %+v", rep)
	}
}

func TestRolloutProgressDeadlineExceededFails(t *testing.T) {
	c, k := cluster(t)
	c.SetBehaviour(ns, "stuck", kubetest.Deadline)
	a := kube.NewRolloutRestart(config(), k)
	plan, err := a.Plan(ctx(t), actions.Params{Service: "inflow", Args: map[string]string{"deployment": "stuck"}})
	if err != nil {
		t.Fatal(err)
	}
	j := actiontest.NewJournal()
	err = a.Execute(ctx(t), plan, j)
	if !errors.Is(err, kube.ErrProgressDeadline) {
		t.Fatalf("Execute = %v, want ErrProgressDeadline", err)
	}
	var rf *kube.RolloutFailedError
	if !errors.As(err, &rf) || !strings.Contains(rf.UserMessage(), "progress deadline") {
		t.Fatalf("error %v is not a user-safe rollout failure", err)
	}
	if got := strings.Join(j.Failed(), ","); got != "wait-rollout" {
		t.Fatalf("failed steps %q", got)
	}
	rep, err := a.Verify(ctx(t), plan)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || rep.Checks[0].OK || !strings.Contains(rep.Checks[0].Error, "progress deadline") {
		t.Fatalf("verify of a failed rollout: %+v", rep)
	}
}

func TestRolloutThatNeverProgressesTimesOut(t *testing.T) {
	c, k := cluster(t)
	c.SetBehaviour(ns, "stuck", kubetest.Hang)
	a := kube.NewRolloutRestart(config(), k)
	a.Timeout = 50 * time.Millisecond
	plan, err := a.Plan(ctx(t), actions.Params{Service: "inflow", Args: map[string]string{"deployment": "stuck"}})
	if err != nil {
		t.Fatal(err)
	}
	err = a.Execute(ctx(t), plan, actiontest.NewJournal())
	if !errors.Is(err, kube.ErrRolloutTimeout) {
		t.Fatalf("Execute = %v, want ErrRolloutTimeout", err)
	}
	if !strings.Contains(err.Error(), "spec update to be observed") {
		t.Fatalf("timeout error %q does not say where it stopped", err)
	}
}

func TestScaleActionPlanExecuteVerify(t *testing.T) {
	_, k := cluster(t)
	a := kube.NewScale(config(), k)
	plan, err := a.Plan(ctx(t), actions.Params{Service: "inflow", Args: map[string]string{"deployment": "web", "replicas": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	if plan.Summary != "Scale deployment/web in prod from 3 to 1 replicas" {
		t.Fatalf("summary %q", plan.Summary)
	}
	j := actiontest.NewJournal()
	if err := a.Execute(ctx(t), plan, j); err != nil {
		t.Fatal(err)
	}
	rep, err := a.Verify(ctx(t), plan)
	if err != nil || !rep.OK() {
		t.Fatalf("verify %+v, %v", rep, err)
	}
	if p, _ := j.LastProgress("wait-rollout"); p.Done != 1 || p.Total != 1 {
		t.Fatalf("last progress %+v", p)
	}
}

func TestScaleActionRefusesWhenReplicasChangedSincePlan(t *testing.T) {
	_, k := cluster(t)
	a := kube.NewScale(config(), k)
	plan, err := a.Plan(ctx(t), actions.Params{Service: "inflow", Args: map[string]string{"deployment": "web", "n": "0"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Scale(ctx(t), ns, web, 4); err != nil {
		t.Fatal(err)
	}
	err = a.Execute(ctx(t), plan, actiontest.NewJournal())
	var rc *kube.ReplicasChangedError
	if !errors.As(err, &rc) || rc.Now != 4 || rc.Planned != 3 {
		t.Fatalf("Execute = %v, want ReplicasChangedError 3→4", err)
	}
	if w, _ := k.Get(ctx(t), ns, web); w.Replicas != 4 {
		t.Fatalf("replicas %d: a refused scale changed them", w.Replicas)
	}
}

func TestScaleActionResumesAfterCrashMidStep(t *testing.T) {
	_, k := cluster(t)
	a := kube.NewScale(config(), k)
	plan, err := a.Plan(ctx(t), actions.Params{Service: "inflow", Args: map[string]string{"deployment": "web", "replicas": "2"}})
	if err != nil {
		t.Fatal(err)
	}
	// The earlier attempt scaled and died before recording it.
	if _, err := k.Scale(ctx(t), ns, web, 2); err != nil {
		t.Fatal(err)
	}
	j := actiontest.NewJournal()
	j.MarkStarted("scale")
	if err := a.Execute(ctx(t), plan, j); err != nil {
		t.Fatalf("resumed Execute: %v", err)
	}
	if w, _ := k.Get(ctx(t), ns, web); w.Replicas != 2 {
		t.Fatalf("replicas %d", w.Replicas)
	}
}

func TestPlanRefusals(t *testing.T) {
	_, k := cluster(t)
	cases := []struct {
		name string
		a    actions.Action
		p    actions.Params
		want string
	}{
		{"unknown service", kube.NewRolloutRestart(config(), k), actions.Params{Service: "nope", Args: map[string]string{"deployment": "web"}}, "unknown service"},
		{"missing deployment", kube.NewRolloutRestart(config(), k), actions.Params{Service: "inflow", Args: map[string]string{"deployment": "ghost"}}, "not found in namespace prod"},
		{"no deployment", kube.NewRolloutRestart(config(), k), actions.Params{Service: "inflow"}, "name a deployment"},
		{"bad kind", kube.NewRolloutRestart(config(), k), actions.Params{Service: "inflow", Args: map[string]string{"deployment": "daemonset/x"}}, "unsupported kind"},
		{"bad count", kube.NewScale(config(), k), actions.Params{Service: "inflow", Args: map[string]string{"deployment": "web", "replicas": "-1"}}, "whole number"},
		{"no kube", kube.NewScale(config(), nil), actions.Params{Service: "inflow", Args: map[string]string{"deployment": "web", "replicas": "1"}}, "no Kubernetes access"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.a.Plan(ctx(t), tc.p)
			var r *actions.Refusal
			if !errors.As(err, &r) || !strings.Contains(r.Msg, tc.want) {
				t.Fatalf("Plan = %v, want a refusal containing %q", err, tc.want)
			}
		})
	}
}

func TestPodsReadyCountsOnlyLivePods(t *testing.T) {
	c, k := cluster(t)
	now := metav1.Now()
	mk := func(name string, ready corev1.ConditionStatus, phase corev1.PodPhase, deleting bool) {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "other", Labels: map[string]string{"app": "x"}},
			Status: corev1.PodStatus{Phase: phase, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: ready}}}}
		if deleting {
			p.DeletionTimestamp = &now
		}
		if _, err := c.CoreV1().Pods("other").Create(ctx(t), p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	mk("a", corev1.ConditionTrue, corev1.PodRunning, false)
	mk("b", corev1.ConditionFalse, corev1.PodRunning, false)
	mk("c", corev1.ConditionTrue, corev1.PodRunning, true)
	mk("d", corev1.ConditionFalse, corev1.PodSucceeded, false)
	ready, total, err := k.PodsReady(ctx(t), "other", "app=x")
	if err != nil || ready != 1 || total != 2 {
		t.Fatalf("PodsReady = %d/%d, %v; want 1/2", ready, total, err)
	}
	if _, _, err := k.PodsReady(ctx(t), "other", "app in (("); err == nil {
		t.Fatal("a bad selector was accepted")
	}
}

func TestDeploymentStatusFollowsKubectl(t *testing.T) {
	three := int32(3)
	d := func(gen, observed int64, updated, replicas, available int32, reason string) *appsv1.Deployment {
		dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Generation: gen}, Spec: appsv1.DeploymentSpec{Replicas: &three},
			Status: appsv1.DeploymentStatus{ObservedGeneration: observed, UpdatedReplicas: updated, Replicas: replicas, AvailableReplicas: available}}
		if reason != "" {
			dep.Status.Conditions = []appsv1.DeploymentCondition{{Type: appsv1.DeploymentProgressing, Reason: reason}}
		}
		return dep
	}
	cases := []struct {
		name         string
		d            *appsv1.Deployment
		done, failed bool
		msg          string
	}{
		{"not observed", d(2, 1, 3, 3, 3, ""), false, false, "spec update to be observed"},
		{"updating", d(2, 2, 1, 4, 1, ""), false, false, "1 of 3 new replicas updated"},
		{"old pending", d(2, 2, 3, 4, 3, ""), false, false, "1 old replicas pending termination"},
		{"unavailable", d(2, 2, 3, 3, 2, ""), false, false, "2 of 3 updated replicas available"},
		{"done", d(2, 2, 3, 3, 3, "NewReplicaSetAvailable"), true, false, "successfully rolled out"},
		{"deadline", d(2, 2, 1, 4, 1, "ProgressDeadlineExceeded"), false, true, "exceeded its progress deadline"},
	}
	for _, tc := range cases {
		st, failed := kube.DeploymentStatus(tc.d)
		if st.Done != tc.done || failed != tc.failed || !strings.Contains(st.Message, tc.msg) {
			t.Errorf("%s: got %+v failed=%v; want done=%v failed=%v message ~%q", tc.name, st, failed, tc.done, tc.failed, tc.msg)
		}
	}
}
