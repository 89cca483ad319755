package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/store"
	"github.com/drbot-dev/drbot/store/postgres"
)

// TestExecutionLeaseIsExclusiveAcrossPools: a lease is taken atomically by
// one holder, refused to others naming the holder, renewed and fenced by its
// token, taken over only once expired (with a larger token), and held on no
// connection.
func TestExecutionLeaseIsExclusiveAcrossPools(t *testing.T) {
	ctx := context.Background()
	db, url := openDB(t)
	other, err := postgres.Open(ctx, url, postgres.Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()

	l1, err := db.AcquireLease(ctx, "db:inflow/main", 7, "host-a/1/r1", time.Minute)
	if err != nil {
		t.Fatalf("first lease: %v", err)
	}
	if got := db.Pool().Stat().AcquiredConns(); got != 0 {
		t.Errorf("a held lease keeps %d connections acquired", got)
	}
	_, err = other.AcquireLease(ctx, "db:inflow/main", 8, "host-b/2/r2", time.Minute)
	var le *store.LeaseError
	if !errors.As(err, &le) || !errors.Is(err, store.ErrLeaseBusy) || le.Holder != "host-a/1/r1" || le.RequestID != 7 {
		t.Fatalf("second holder took a held lease or was not told who holds it: %v", err)
	}
	if l, err := other.AcquireLease(ctx, "db:inflow/other", 9, "host-b/2/r3", time.Minute); err != nil {
		t.Fatalf("another target's lease: %v", err)
	} else if err := other.ReleaseLease(ctx, l); err != nil {
		t.Fatal(err)
	}
	if l1, err = db.RenewLease(ctx, l1, time.Minute); err != nil {
		t.Fatalf("renew: %v", err)
	}
	if err := db.CheckLease(ctx, l1); err != nil {
		t.Fatalf("check: %v", err)
	}

	// Expired (its holder stopped renewing): another takes it over with a
	// larger token, and the first holder's fence and renewal fail naming it.
	if _, err := db.Pool().Exec(ctx, "UPDATE execution_leases SET expires_at = now() - interval '1 second'"); err != nil {
		t.Fatal(err)
	}
	l2, err := other.AcquireLease(ctx, "db:inflow/main", 7, "host-b/2/r4", time.Minute)
	if err != nil || l2.Token <= l1.Token {
		t.Fatalf("take-over of an expired lease: %+v, %v (first token %d)", l2, err, l1.Token)
	}
	for name, err := range map[string]error{"check": db.CheckLease(ctx, l1), "renew": func() error { _, err := db.RenewLease(ctx, l1, time.Minute); return err }()} {
		if !errors.As(err, &le) || !errors.Is(err, store.ErrLeaseLost) || le.Holder != "host-b/2/r4" {
			t.Errorf("%s by the old holder: %v", name, err)
		}
	}
	if err := db.ReleaseLease(ctx, l1); err != nil { // no longer its own: nothing
		t.Fatal(err)
	}
	if live, err := db.LiveLeases(ctx); err != nil || live["db:inflow/main"].Token != l2.Token {
		t.Fatalf("live leases after the old holder's release: %+v, %v", live, err)
	}
	if err := other.ReleaseLease(ctx, l2); err != nil {
		t.Fatal(err)
	}
	if live, err := db.LiveLeases(ctx); err != nil || len(live) != 0 {
		t.Fatalf("live leases after release: %+v, %v", live, err)
	}
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
	if _, err := db.TransitionRequest(ctx, r.ID, []store.RequestState{store.RequestPending}, store.RequestApproved, store.AuditEvent{}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.TransitionRequest(ctx, r.ID, []store.RequestState{store.RequestApproved}, store.RequestRunning, store.AuditEvent{}); err != nil {
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
