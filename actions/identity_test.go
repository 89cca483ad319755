package actions_test

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/drbot-dev/drbot/actions"
)

type transientAction struct{ actions.Action }

func (transientAction) TransientSpec() []string { return []string{"stamp"} }

func TestIdentityIgnoresDisplayTextAndTransientSpec(t *testing.T) {
	base := actions.Plan{Kind: "restore-db", Service: "shop", Target: "db:shop/orders",
		Summary: "Restore orders from x.dump (3m old)", Facts: []actions.Fact{{Label: "Age", Value: "3m old"}},
		Steps: []actions.Step{{Name: "swap", Description: "rename orders → orders_pre_restore_20261201140000"}},
		Spec:  json.RawMessage(`{"stamp":"20261201140000","backup":{"key":"x.dump","etag":"a"}}`)}
	later := base
	later.Summary, later.Facts = "Restore orders from x.dump (5m old)", []actions.Fact{{Label: "Age", Value: "5m old"}}
	later.Steps = []actions.Step{{Name: "swap", Description: "rename orders → orders_pre_restore_20261201140200"}}
	later.Spec = json.RawMessage(`{ "backup": {"key":"x.dump", "etag":"a"}, "stamp":"20261201140200"}`)
	a := transientAction{}
	was, err := actions.IdentityOf(a, base)
	if err != nil {
		t.Fatal(err)
	}
	is, err := actions.IdentityOf(a, later)
	if err != nil {
		t.Fatal(err)
	}
	if d := was.Diff(is); len(d) != 0 {
		t.Errorf("Diff = %v, want none", d)
	}
	changed := later
	changed.Spec = json.RawMessage(`{"backup":{"key":"x.dump","etag":"b"},"stamp":"20261201140200"}`)
	changed.Steps = append(changed.Steps, actions.Step{Name: "check-live"})
	is, _ = actions.IdentityOf(a, changed)
	if d := was.Diff(is); !slices.Equal(d, []string{"steps", "backup"}) {
		t.Errorf("Diff = %v, want [steps backup]", d)
	}
	// Without Transient the stamp counts.
	was, _ = actions.IdentityOf(nil, base)
	is, _ = actions.IdentityOf(nil, later)
	if d := was.Diff(is); !slices.Equal(d, []string{"stamp"}) {
		t.Errorf("Diff without Transient = %v, want [stamp]", d)
	}
	// The approval still binds the whole plan.
	h1, _ := base.Hash()
	h2, _ := later.Hash()
	if h1 == h2 {
		t.Error("Hash ignores display text: approvals would not bind what approvers saw")
	}
}
