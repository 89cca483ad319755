package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/drbot-dev/drbot/internal/testenv"
	"github.com/drbot-dev/drbot/store"
	"github.com/drbot-dev/drbot/store/postgres"
)

func TestJobsCommitAndRollBackWithState(t *testing.T) {
	ctx := ctxT(t)
	db, url := openDB(t)
	conn := sqlConn(t, url)
	jobs := func(note string) int {
		return count(t, conn, "SELECT count(*) FROM river_job WHERE kind = 'test.note' AND args->>'note' = $1", note)
	}

	inc, _, err := db.OpenIncident(ctx, store.Incident{PagerDutyID: "PJOB"}, store.Job{
		Args: noteArgs{Note: "escalate"}, RunAt: time.Now().Add(10 * time.Minute), Queue: "timers",
	})
	if err != nil {
		t.Fatal(err)
	}
	var queue string
	var scheduled time.Time
	if err := conn.QueryRow(ctx, "SELECT queue, scheduled_at FROM river_job WHERE args->>'note' = 'escalate'").Scan(&queue, &scheduled); err != nil {
		t.Fatalf("the job inserted with the incident: %v", err)
	}
	if queue != "timers" || time.Until(scheduled) < 9*time.Minute {
		t.Errorf("job queue = %s, scheduled in %v; want timers, ~10m", queue, time.Until(scheduled))
	}

	// A failure after the job was inserted (here: the audit row is invalid)
	// rolls back the state change and the job together.
	r, err := db.CreateRequest(ctx, newRequest("postgres/main"), store.AuditEvent{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.TransitionRequest(ctx, r.ID, []store.RequestState{store.RequestPending}, store.RequestApproved,
		store.AuditEvent{Actor: "U2", Data: json.RawMessage(`{not json`)}, noteJob("run-restore"))
	if err == nil {
		t.Fatal("transition with an invalid audit row succeeded")
	}
	if got, _ := db.Request(ctx, r.ID); got.State != store.RequestPending {
		t.Errorf("state after the failed transition = %s, want pending", got.State)
	}
	if n := jobs("run-restore"); n != 0 {
		t.Errorf("jobs after the failed transition = %d, want 0", n)
	}
	if _, err := db.UpdateIncident(ctx, inc.ID, func(i *store.Incident) error { i.Title = "renamed"; return nil },
		store.AuditEvent{Kind: "incident.renamed"}, noteJob("rename")); err == nil {
		t.Error("update with an audit row without actor succeeded")
	}
	if got, _ := db.Incident(ctx, inc.ID); got.Title != "" || jobs("rename") != 0 {
		t.Errorf("after the failed update: title %q, %d jobs; want both rolled back", got.Title, jobs("rename"))
	}

	// And a successful one commits both.
	if _, err := db.TransitionRequest(ctx, r.ID, []store.RequestState{store.RequestPending}, store.RequestApproved,
		store.AuditEvent{Actor: "U2"}, noteJob("run-restore")); err != nil {
		t.Fatal(err)
	}
	if n := jobs("run-restore"); n != 1 {
		t.Errorf("jobs after the transition = %d, want 1", n)
	}

	// InsertJobs on its own, deduplicated by args.
	for range 3 {
		if err := db.InsertJobs(ctx, store.Job{Args: noteArgs{Note: "once"}, UniqueByArgs: true}); err != nil {
			t.Fatal(err)
		}
	}
	if n := jobs("once"); n != 1 {
		t.Errorf("unique jobs = %d, want 1", n)
	}
	if err := db.InsertJobs(ctx, store.Job{}); err == nil {
		t.Error("InsertJobs of a job without args succeeded")
	}
}

type noteWorker struct {
	river.WorkerDefaults[noteArgs]
	done chan string
}

func (w *noteWorker) Work(_ context.Context, j *river.Job[noteArgs]) error {
	w.done <- j.Args.Note
	return nil
}

func TestAuditVerifyJobReportsBrokenChain(t *testing.T) {
	ctx := ctxT(t)
	url := testenv.PostgresURL(t)
	logs := &recordingHandler{}
	db, err := postgres.Open(ctx, url, postgres.Options{Logger: slog.New(logs), SoftStopTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	var seqs []int64
	for i := range 4 {
		ev, err := db.AppendAudit(ctx, store.AuditEvent{Actor: "U1", Kind: "test.write", Data: json.RawMessage(`{"i":` + string(rune('0'+i)) + `}`)})
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, ev.Seq)
	}
	conn := sqlConn(t, url)
	if _, err := conn.Exec(ctx, "SET session_replication_role = replica"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "UPDATE audit_events SET actor = 'mallory' WHERE seq = $1", seqs[2]); err != nil {
		t.Fatal(err)
	}

	workers := river.NewWorkers()
	db.RegisterWorkers(workers)
	notes := &noteWorker{done: make(chan string, 1)}
	river.AddWorker(workers, notes)
	if err := db.StartJobs(ctx, workers, []*river.PeriodicJob{postgres.AuditVerifyPeriodicJob(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := db.StartJobs(ctx, workers, nil); err == nil {
		t.Error("second StartJobs succeeded")
	}

	// A job inserted with a state change is worked.
	if _, _, err := db.OpenIncident(ctx, store.Incident{PagerDutyID: "PWORK"}, noteJob("hello")); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-notes.done:
		if got != "hello" {
			t.Errorf("worked note %q", got)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the job inserted with the incident was not worked within 30s")
	}

	// The periodic verification runs on start and reports the broken row.
	deadline := time.Now().Add(60 * time.Second)
	var attrs map[string]slog.Value
	for {
		var ok bool
		if attrs, ok = logs.find("audit chain is broken"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no 'audit chain is broken' log within 60s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := attrs["first_broken_seq"].Int64(); got != seqs[2] {
		t.Errorf("first_broken_seq = %d, want %d", got, seqs[2])
	}
	// The job completes and keeps the report as its output.
	var output string
	for {
		err := conn.QueryRow(ctx, "SELECT metadata->>'output' FROM river_job WHERE kind = 'audit.verify' AND state = 'completed'").Scan(&output)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit.verify job not completed: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var rep store.ChainReport
	if err := json.Unmarshal([]byte(output), &rep); err != nil || rep.FirstBroken != seqs[2] || rep.Rows != 5 {
		t.Errorf("job output = %s (%v), want first broken %d over 5 rows", output, err, seqs[2])
	}

	stopCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.StopJobs(stopCtx); err != nil {
		t.Errorf("StopJobs: %v", err)
	}
	if err := db.StopJobs(stopCtx); err != nil {
		t.Errorf("second StopJobs: %v", err)
	}
	// Still insert-only after stopping.
	if err := db.InsertJobs(ctx, noteJob("after-stop")); err != nil {
		t.Errorf("InsertJobs after StopJobs: %v", err)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatal("test context expired")
	}
}
