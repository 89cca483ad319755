package approvals

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/drbot-dev/drbot/store"
)

// TestEngineApproveAndDenyAtTheSameInstant: an approver and a denier click at
// the same instant on a request that one approval settles. Exactly one
// decision is taken: approved with one execute job, or denied with none; the
// other click is refused as no longer pending and leaves no approval row.
func TestEngineApproveAndDenyAtTheSameInstant(t *testing.T) {
	ctx := context.Background()
	for round := range 6 {
		e, db, _ := newEngine(t, 1)
		r := create(t, e, fmt.Sprintf("t:approve-deny%d", round))
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := map[string]error{}
		var mu sync.Mutex
		for who, decision := range map[string]store.Decision{"UBOB": store.DecisionApprove, "UCAROL": store.DecisionDeny} {
			wg.Go(func() {
				<-start
				_, err := e.Decide(ctx, r.ID, who, decision, "")
				mu.Lock()
				errs[who] = err
				mu.Unlock()
			})
		}
		close(start)
		wg.Wait()
		cur, err := db.Request(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		as, err := db.Approvals(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		jobsN := len(jobs(t, db, store.KindExecuteRequest))
		winner, loser := "UBOB", "UCAROL"
		wantState, wantJobs := store.RequestApproved, 1
		if cur.State == store.RequestDenied {
			winner, loser, wantState, wantJobs = "UCAROL", "UBOB", store.RequestDenied, 0
		}
		if cur.State != wantState || jobsN != wantJobs || len(as) != 1 || as[0].Approver != winner {
			t.Errorf("round %d: state %s, %d execute jobs, approvals %+v", round, cur.State, jobsN, as)
		}
		if errs[winner] != nil || refusalCode(errs[loser]) != CodeNotPending {
			t.Errorf("round %d: winner %s: %v; loser %s: %v (want refused as not pending)", round, winner, errs[winner], loser, errs[loser])
		}
	}
}
