package verify

import (
	"context"

	"github.com/drbot-dev/drbot/actions"
)

// Command declares /dr verify: read-only, it runs at once.
var Command = actions.Command{
	Name:        Kind,
	Summary:     "Run a service's checks and show a pass/fail table",
	Description: "Read-only: runs every configured check (HTTP health, metrics, SQL, pod readiness) and shows what was observed.",
	Examples:    []string{"/dr verify lstm-pfd"},
}

// Command implements actions.Action.
func (a *Action) Command() actions.Command { return Command }

var _ actions.Reader = (*Action)(nil)

// Read implements actions.Reader: it plans the checks and runs them,
// returning the actions.Report.
func (a *Action) Read(ctx context.Context, p actions.Params) (any, error) {
	plan, err := a.Plan(ctx, p)
	if err != nil {
		return nil, err
	}
	return a.Verify(ctx, plan)
}
