package restoredb_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/kube"
	"github.com/drbot-dev/drbot/actions/restoredb"
	"github.com/drbot-dev/drbot/runbook"
)

// pod creates or updates pod name in the test namespace with labels app=app
// and the Ready condition set to ready.
func (f *fixture) pod(name, app string, ready bool) {
	f.t.Helper()
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	st := corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: status}}}
	pods := f.kube.CoreV1().Pods(namespace)
	existing, err := pods.Get(f.ctx, name, metav1.GetOptions{})
	if err != nil {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: map[string]string{"app": app}}, Status: st}
		if _, err := pods.Create(f.ctx, p, metav1.CreateOptions{}); err != nil {
			f.t.Fatal(err)
		}
		return
	}
	existing.Status = st
	if _, err := pods.UpdateStatus(f.ctx, existing, metav1.UpdateOptions{}); err != nil {
		f.t.Fatal(err)
	}
}

// TestWaitForPodsBeforeRestore: runbook 001 §3 step 4 — the database pods
// (databases[].wait_for) must be Ready before a restore starts, both when
// planned and when executed; a refusal names the pods that are not.
func TestWaitForPodsBeforeRestore(t *testing.T) {
	f := newFixture(t)
	file := f.dump(t.TempDir(), "x.dump", restoredb.FormatCustom)
	f.afterBackup()
	f.useS3(file)
	f.db.WaitFor = "app=postgresql"
	f.pod("postgresql-0", "postgresql", true)
	f.pod("postgresql-1", "postgresql", false)
	opts := f.options()
	opts.Kube = kube.New(f.kube)
	a := restoredb.New(opts)

	_, err := a.Plan(f.ctx, actions.Params{Service: service})
	if err == nil || !isRefusal(err) || !strings.Contains(err.Error(), "postgresql-1") || strings.Contains(err.Error(), "postgresql-0") {
		t.Fatalf("Plan with a pod not Ready = %v, want a refusal naming postgresql-1 only", err)
	}

	noKube := f.options()
	if _, err := restoredb.New(noKube).Plan(f.ctx, actions.Params{Service: service}); err == nil || !isRefusal(err) || !strings.Contains(err.Error(), "no Kubernetes access") {
		t.Errorf("Plan with wait_for and no Kubernetes access = %v, want a refusal", err)
	}

	f.pod("postgresql-1", "postgresql", true)
	p := f.plan(a, nil)
	if p.Steps[0].Name != restoredb.StepWaitFor {
		t.Errorf("first step %q, want %q", p.Steps[0].Name, restoredb.StepWaitFor)
	}

	// Between approval and execution a pod went down: nothing is streamed.
	f.pod("postgresql-0", "postgresql", false)
	j := newJournal("")
	err = a.Execute(f.ctx, p, j)
	if err == nil || !isRefusal(err) || !strings.Contains(err.Error(), "postgresql-0") {
		t.Fatalf("Execute with a pod not Ready = %v, want a refusal naming postgresql-0", err)
	}
	if j.ran(restoredb.StepRestoreSide) {
		t.Errorf("the restore started although the database pods were not Ready: %v", j.events())
	}
	if rows, marker := f.count(f.live); rows != seedRows+1 || !marker {
		t.Errorf("live changed: %d rows, marker %v", rows, marker)
	}

	f.pod("postgresql-0", "postgresql", true)
	j = newJournal("")
	if err := a.Execute(f.ctx, p, j); err != nil {
		t.Fatalf("Execute with the pods Ready: %v\n%v", err, j.events())
	}
	f.assertRestored(p, j)
}

// TestVerifyRunsServiceHealthAndPods: runbook 001 §1.3 — after the swap the
// service's health checks and the readiness of its pods are verified, not
// only the database's SQL checks.
func TestVerifyRunsServiceHealthAndPods(t *testing.T) {
	f := newFixture(t)
	file := f.dump(t.TempDir(), "x.dump", restoredb.FormatCustom)
	f.useS3(file)
	var healthy atomic.Bool
	healthy.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !healthy.Load() {
			http.Error(w, "no", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	svc := &f.cfg.Services[0]
	svc.Kubernetes.Selector = "app=shop-api"
	svc.Health = []runbook.HealthCheck{{Name: "predict smoke", HTTP: srv.URL + "/predict", Method: "POST", Body: "{}", ExpectStatus: 200}}
	f.pod("shop-api-0", "shop-api", true)
	opts := f.options()
	opts.Kube = kube.New(f.kube)
	a := restoredb.New(opts)
	p := f.plan(a, nil)
	if err := a.Execute(f.ctx, p, newJournal("")); err != nil {
		t.Fatal(err)
	}

	rep, err := a.Verify(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, c := range rep.Checks {
		kinds[c.Kind] = c.OK
	}
	if !rep.OK() || len(rep.Checks) != 3 || !kinds["sql"] || !kinds["http"] || !kinds["pods"] {
		t.Fatalf("Verify = %+v, want sql, http and pods checks, all ok", rep.Checks)
	}

	healthy.Store(false)
	f.pod("shop-api-0", "shop-api", false)
	rep, err = a.Verify(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() {
		t.Fatalf("Verify with the service unhealthy = %+v, want failed", rep.Checks)
	}
	var failed []string
	for _, c := range rep.Failed() {
		failed = append(failed, c.Name+"="+c.Observed)
	}
	if got := strings.Join(failed, ","); !strings.Contains(got, "predict smoke=503") || !strings.Contains(got, "shop pods=0/1 ready") {
		t.Errorf("failed checks %s, want the health check (503) and the pods (0/1 ready)", got)
	}
}

// TestVerifyWaitsForTheWritersBeforeJudgingPods: the service's pods are the
// writers just scaled back up; verification waits for their rollout rather
// than failing a restore that worked because the pods were still starting.
func TestVerifyWaitsForTheWritersBeforeJudgingPods(t *testing.T) {
	f := newFixture(t)
	file := f.dump(t.TempDir(), "x.dump", restoredb.FormatCustom)
	f.useS3(file)
	f.cfg.Services[0].Kubernetes.Selector = "app=" + writer
	opts := f.options()
	opts.Kube = kube.New(f.kube)
	opts.Kube.Poll = 5 * time.Millisecond
	a := restoredb.New(opts)
	p := f.plan(a, nil)
	if err := a.Execute(f.ctx, p, newJournal("")); err != nil {
		t.Fatal(err)
	}
	rep, err := a.Verify(f.ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("Verify = %+v, want the writers' pods ready", rep.Checks)
	}
	if last := rep.Checks[len(rep.Checks)-1]; last.Kind != "pods" || last.Observed != "3/3 ready" {
		t.Errorf("pods check %+v, want 3/3 ready", last)
	}
}
