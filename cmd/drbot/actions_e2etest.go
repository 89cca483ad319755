//go:build e2etest

package main

// Built only with -tags e2etest (by the end-to-end tests): the test action of
// actions/runner/runnertest replaces restore-db and failover when
// DRBOT_E2E_ACTIONS_URL names its database, so a real `drbot serve` process
// can be killed in the middle of an execution.

import (
	"context"
	"errors"
	"os"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/runner/runnertest"
)

func init() {
	for _, kind := range []string{"restore-db", "failover"} {
		overrideAction(kind, func(ctx context.Context, env actionEnv) (actions.Action, error) {
			logger := env.logger
			url := os.Getenv("DRBOT_E2E_ACTIONS_URL")
			if url == "" {
				return nil, errors.New("DRBOT_E2E_ACTIONS_URL is unset")
			}
			a, err := runnertest.New(ctx, kind, url)
			if err != nil {
				return nil, err
			}
			if os.Getenv("DRBOT_E2E_HOLD") == kind {
				entered := a.Hold()
				go func() {
					<-entered
					logger.Warn("e2e: execution held", "kind", kind)
				}()
			}
			if os.Getenv("DRBOT_E2E_HOLD_REPLAN") == kind {
				entered := a.HoldPlanAfter(1)
				go func() {
					<-entered
					logger.Warn("e2e: re-plan held", "kind", kind)
				}()
			}
			return a, nil
		})
	}
}
