package actions

import "context"

// Drillable is an action with a drill form (issue 11): the same procedure run
// for real against throwaway targets, never touching live — restore-db into
// <db>_drill_<ts> and drop it, restore-models into drills/<ts>/ and delete it,
// failover's preflight checks only, restore-vault's integrity check only, a
// playbook's steps in their drill forms.
//
// DrillPlan plans the drill of p. The plan's Kind stays the action's kind and
// its Target names the throwaway target (so a drill never takes the live
// target's lock); Execute and Verify then run it like any plan, and must
// recognise a drill plan from its Spec. A drill plan's Spec must never name
// a live target as something to change.
type Drillable interface {
	Action
	DrillPlan(ctx context.Context, p Params) (Plan, error)
}
