package postgres_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/store"
	"github.com/drbot-dev/drbot/store/postgres"
)

func TestLockRequestIsExclusiveAcrossPools(t *testing.T) {
	ctx := context.Background()
	db, url := openDB(t)
	other, err := postgres.Open(ctx, url, postgres.Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()

	release, ok, err := db.LockRequest(ctx, 7)
	if err != nil || !ok {
		t.Fatalf("first lock: %t, %v", ok, err)
	}
	if _, ok, err := other.LockRequest(ctx, 7); err != nil || ok {
		t.Fatalf("second process took a held lock: %t, %v", ok, err)
	}
	if r2, ok, err := other.LockRequest(ctx, 8); err != nil || !ok {
		t.Fatalf("another request's lock: %t, %v", ok, err)
	} else {
		r2()
	}
	release()
	release() // idempotent
	r3, ok, err := other.LockRequest(ctx, 7)
	if err != nil || !ok {
		t.Fatalf("lock after release: %t, %v", ok, err)
	}
	r3()
}

func TestCreateRequestWithJobsAndListings(t *testing.T) {
	ctx := context.Background()
	db, _ := openDB(t)
	var seen store.ActionRequest
	r, err := db.CreateRequestWith(ctx, store.ActionRequest{Service: "inflow", Kind: "scale", Target: "k8s:web", Plan: json.RawMessage(`{"a":1}`),
		RequestedBy: "UALICE", ExpiresAt: time.Now().Add(time.Hour)}, store.AuditEvent{},
		func(r store.ActionRequest) []store.Job {
			seen = r
			return []store.Job{{Args: store.ExpireRequestArgs{RequestID: r.ID}, RunAt: r.ExpiresAt}}
		})
	if err != nil {
		t.Fatal(err)
	}
	if seen.ID != r.ID {
		t.Errorf("jobsFor saw request %d, created %d", seen.ID, r.ID)
	}
	var n int
	if err := db.Pool().QueryRow(ctx, "SELECT count(*) FROM river_job WHERE kind = $1 AND (args->>'request_id')::bigint = $2", store.KindExpireRequest, r.ID).Scan(&n); err != nil || n != 1 {
		t.Fatalf("expiry jobs = %d, %v", n, err)
	}
	if _, err := db.TransitionRequest(ctx, r.ID, []string{store.RequestPending}, store.RequestApproved, store.AuditEvent{}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.TransitionRequest(ctx, r.ID, []string{store.RequestApproved}, store.RequestRunning, store.AuditEvent{}); err != nil {
		t.Fatal(err)
	}
	running, err := db.RequestsInState(ctx, store.RequestRunning, store.RequestVerifying)
	if err != nil || len(running) != 1 || running[0].ID != r.ID {
		t.Fatalf("RequestsInState = %+v, %v", running, err)
	}
	recent, err := db.RecentRequests(ctx, "inflow", 5)
	if err != nil || len(recent) != 1 {
		t.Fatalf("RecentRequests = %+v, %v", recent, err)
	}
	if none, err := db.RecentRequests(ctx, "other", 5); err != nil || len(none) != 0 {
		t.Fatalf("RecentRequests(other) = %+v, %v", none, err)
	}
}
