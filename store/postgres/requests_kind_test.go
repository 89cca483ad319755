package postgres_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/drbot-dev/drbot/store"
)

func TestRequestsOfKindNewestFirst(t *testing.T) {
	ctx := ctxT(t)
	db, _ := openDB(t)
	var want []int64
	for i, kind := range []string{"restore-db", "scale", "restore-db", "restore-db"} {
		r := newRequest(fmt.Sprintf("db:t%d", i))
		r.Kind = kind
		got, err := db.CreateRequest(ctx, r, store.AuditEvent{})
		if err != nil {
			t.Fatal(err)
		}
		if kind == "restore-db" {
			want = append([]int64{got.ID}, want...)
		}
	}
	other := newRequest("db:other")
	other.Service = "lstm-pfd"
	if _, err := db.CreateRequest(ctx, other, store.AuditEvent{}); err != nil {
		t.Fatal(err)
	}
	rs, err := db.RequestsOfKind(ctx, "inflow", "restore-db", 10)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, r := range rs {
		ids = append(ids, r.ID)
	}
	if !slices.Equal(ids, want) {
		t.Errorf("RequestsOfKind = %v, want %v (inflow's restore-db requests, newest first)", ids, want)
	}
	if rs, _ := db.RequestsOfKind(ctx, "inflow", "restore-db", 2); len(rs) != 2 || rs[0].ID != want[0] {
		t.Errorf("limit 2 = %v", rs)
	}
}
