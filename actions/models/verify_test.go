package models_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/actiontest"
	"github.com/drbot-dev/drbot/actions/models"
	"github.com/drbot-dev/drbot/runbook"
)

// TestRestoreModelsVerifiesModelsVerifyChecks: runbook 001 §2.3 — after the
// restart the checks named in models.verify must pass; a model that did not
// load (lstm_pfd_model_loaded 0) fails verification with what was observed.
func TestRestoreModelsVerifiesModelsVerifyChecks(t *testing.T) {
	w := newWorld(t)
	w.seed(t)
	var loaded atomic.Int64
	metrics := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(rw, "# TYPE lstm_pfd_model_loaded gauge\nlstm_pfd_model_loaded %d\n", loaded.Load())
	}))
	t.Cleanup(metrics.Close)
	expect, err := runbook.ParseExpect("== 1")
	if err != nil {
		t.Fatal(err)
	}
	cfg := w.config(t)
	cfg.Services[0].Health = []runbook.HealthCheck{
		{Name: "model loaded", Metric: &runbook.MetricCheck{URL: metrics.URL + "/metrics", Name: "lstm_pfd_model_loaded", Expect: expect}},
	}
	cfg.Services[0].Models.Verify = []string{"model loaded"}
	a := models.New(cfg, w.load, w.kube)
	a.RolloutTimeout = time.Minute
	plan, err := a.Plan(ctx(t), actions.Params{Service: "lstm-pfd", Flags: map[string]string{"backup": "2026-11-22"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := fact(plan, "Verified by"); got != "model loaded" {
		t.Errorf("fact Verified by = %q", got)
	}
	if err := a.Execute(ctx(t), plan, actiontest.NewJournal()); err != nil {
		t.Fatal(err)
	}

	rep, err := a.Verify(ctx(t), plan)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() {
		t.Fatalf("verify with the model not loaded passed: %+v", rep.Checks)
	}
	failed := rep.Failed()
	if len(failed) != 1 || failed[0].Name != "model loaded" || failed[0].Observed != "0" || failed[0].Expected != "== 1" {
		t.Fatalf("failed checks %+v, want model loaded observed 0, expected == 1", failed)
	}

	loaded.Store(1)
	rep, err = a.Verify(ctx(t), plan)
	if err != nil || !rep.OK() {
		t.Fatalf("verify with the model loaded: %+v, %v", rep.Checks, err)
	}
	var names []string
	for _, c := range rep.Checks {
		names = append(names, c.Name)
	}
	if !strings.Contains(strings.Join(names, ","), "model loaded") {
		t.Errorf("checks %v do not include model loaded", names)
	}
}
