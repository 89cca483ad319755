package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/commands"
	"github.com/drbot-dev/drbot/store"
)

func TestRollbackReadsTheNamedRestoreRequest(t *testing.T) {
	plan := actions.Plan{Kind: "restore-db", Service: "demo-shop", Target: "db:demo-shop/demo_shop", Spec: json.RawMessage(`{"outgoing":"demo_shop_pre_restore_20261123120000"}`)}
	raw, err := json.Marshal(plan)
	if err != nil {
		t.Fatal(err)
	}
	reqs := map[int64]store.ActionRequest{
		1: {ID: 1, Kind: "restore-db", State: store.RequestSucceeded, Plan: raw},
		2: {ID: 2, Kind: "restore-db", State: store.RequestFailed, Plan: raw},
		3: {ID: 3, Kind: "failover", State: store.RequestSucceeded, Plan: raw},
	}
	get := requestPlan(func(_ context.Context, id int64) (store.ActionRequest, error) {
		r, ok := reqs[id]
		if !ok {
			return store.ActionRequest{}, fmt.Errorf("request %d: %w", id, store.ErrNotFound)
		}
		return r, nil
	})
	got, err := get(context.Background(), "#1")
	if err != nil {
		t.Fatalf("request 1: %v", err)
	}
	if got.Target != plan.Target || string(got.Spec) != string(plan.Spec) {
		t.Errorf("plan of request 1 = %+v, want %+v", got, plan)
	}
	for req, want := range map[string]string{
		"2":   "request #2 is failed",
		"3":   "request #3 is a failover, not a restore-db",
		"9":   "there is no request #9",
		"abc": "not a request number",
	} {
		_, err := get(context.Background(), req)
		rf, ok := commands.AsRefusal(err)
		if !ok || !strings.Contains(rf.Msg, want) {
			t.Errorf("request %q: err = %v, want a refusal containing %q", req, err, want)
		}
	}
}
