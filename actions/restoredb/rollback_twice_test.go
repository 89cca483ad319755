package restoredb_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/restoredb"
	"github.com/drbot-dev/drbot/store"
)

// TestRollbackPastedTwiceInOneSecond: two /dr rollback requests planned in
// the same second (the suggested command pasted twice, by two people) name
// the same databases. The first swaps the kept database back; the second,
// finding the swap done by someone else, must not report that it rolled
// anything back: it is refused, and live stays as the first left it.
func TestRollbackPastedTwiceInOneSecond(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	f.dump(dir, "good.dump", restoredb.FormatCustom)
	f.afterBackup()
	f.useDir(dir)
	b := newBot(f)
	r1 := b.do("restore-db", nil, nil)
	if r1.State != store.RequestSucceeded {
		t.Fatalf("restore #%d is %s (%q)", r1.ID, r1.State, b.cards.reason[r1.ID])
	}
	p1, err := b.plan("rollback", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := b.acts["rollback"].Plan(f.ctx, actions.Params{Service: service}) // the same second
	if err != nil {
		t.Fatal(err)
	}
	if spec(t, p1).Outgoing != spec(t, p2).Outgoing {
		t.Fatalf("plans in one second name %s and %s", spec(t, p1).Outgoing, spec(t, p2).Outgoing)
	}
	run := func(p actions.Plan) store.ActionRequest {
		t.Helper()
		pj, _ := json.Marshal(p)
		par, _ := json.Marshal(actions.Params{Service: service})
		r, err := b.db.CreateRequest(f.ctx, store.ActionRequest{Service: service, Kind: "rollback", Target: p.Target, Params: par, Plan: pj, RequestedBy: "UALICE"}, store.AuditEvent{Kind: "request.created"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.db.TransitionRequest(f.ctx, r.ID, []store.RequestState{store.RequestPending}, store.RequestApproved, store.AuditEvent{Kind: "request.approved"}); err != nil {
			t.Fatal(err)
		}
		if err := b.run.Run(f.ctx, r.ID); err != nil {
			t.Fatal(err)
		}
		r, err = b.db.Request(f.ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	a := run(p1)
	if a.State != store.RequestSucceeded {
		t.Fatalf("first rollback #%d is %s (%q)", a.ID, a.State, b.cards.reason[a.ID])
	}
	second := run(p2)
	if second.State == store.RequestSucceeded {
		t.Errorf("second rollback #%d succeeded although the first had already swapped (notes %q)", second.ID, b.cards.notes)
	}
	if why := b.cards.reason[second.ID]; !strings.Contains(why, "already") {
		t.Errorf("second rollback's reason %q does not say it was already rolled back", why)
	}
	if rows, marker := f.count(f.live); rows != seedRows+1 || !marker {
		t.Errorf("live after two rollbacks: %d rows, marker %v; want the data from before the restore", rows, marker)
	}
	if f.replicas() != replicas {
		t.Errorf("writers at %d", f.replicas())
	}
	f.databases(f.live + "_")
}
