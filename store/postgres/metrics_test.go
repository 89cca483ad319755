package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	"github.com/drbot-dev/drbot/store"
	"github.com/drbot-dev/drbot/store/postgres"
)

type failArgs struct{}

func (failArgs) Kind() string { return "test.fail" }

type failWorker struct {
	river.WorkerDefaults[failArgs]
}

func (failWorker) Work(context.Context, *river.Job[failArgs]) error {
	return errors.New("always fails")
}

// gather returns the collector's series as "name{k=v,…}" → value.
func gather(t *testing.T, c prometheus.Collector) map[string]float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			out[mf.GetName()+"{"+strings.Join(labels, ",")+"}"] = m.GetGauge().GetValue()
		}
	}
	return out
}

func waitMetric(t *testing.T, c prometheus.Collector, series string, want float64) map[string]float64 {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		got := gather(t, c)
		if v, ok := got[series]; ok && v == want {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never became %v: %v", series, want, got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestCollectorReportsJobsAuditAndStore: the metrics the chart's alert rules
// use come from the real store: a job that keeps failing, the audit chain
// verification's outcome (intact, then tampered with), and the store going away.
func TestCollectorReportsJobsAuditAndStore(t *testing.T) {
	ctx := ctxT(t)
	db, url := openDB(t)
	c := db.Collector()
	if _, err := db.AppendAudit(ctx, store.AuditEvent{Actor: "U1", Kind: "test.write", Data: json.RawMessage(`{"i":1}`)}); err != nil {
		t.Fatal(err)
	}
	got := gather(t, c)
	if got["drbot_store_up{}"] != 1 {
		t.Errorf("store up = %v before anything ran", got)
	}
	if _, ok := got["drbot_audit_chain_ok{}"]; ok {
		t.Errorf("drbot_audit_chain_ok before any verification: %v", got)
	}

	workers := river.NewWorkers()
	db.RegisterWorkers(workers)
	river.AddWorker(workers, failWorker{})
	if err := db.StartJobs(ctx, workers, []*river.PeriodicJob{postgres.AuditVerifyPeriodicJob(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = db.StopJobs(sctx)
	})
	got = waitMetric(t, c, "drbot_audit_chain_ok{}", 1)
	if got["drbot_audit_chain_verified_timestamp_seconds{}"] < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("verified timestamp %v", got)
	}

	if err := db.InsertJobs(ctx, store.Job{Args: failArgs{}}); err != nil {
		t.Fatal(err)
	}
	waitMetric(t, c, "drbot_jobs{kind=test.fail,state=retryable}", 1)

	// Tamper with the chain; the next verification reports it.
	conn := sqlConn(t, url)
	if _, err := conn.Exec(ctx, "SET session_replication_role = replica"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "UPDATE audit_events SET actor = 'mallory'"); err != nil {
		t.Fatal(err)
	}
	if err := db.InsertJobs(ctx, store.Job{Args: postgres.AuditVerifyArgs{}}); err != nil {
		t.Fatal(err)
	}
	waitMetric(t, c, "drbot_audit_chain_ok{}", 0)

	// The store goes away: the scrape still answers, and says so.
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_ = db.StopJobs(sctx)
	db.Close()
	got = gather(t, c)
	if got["drbot_store_up{}"] != 0 || len(got) != 1 {
		t.Errorf("after the store closed: %v, want only drbot_store_up 0", got)
	}
}
