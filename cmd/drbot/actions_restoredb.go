package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/restoredb"
	"github.com/drbot-dev/drbot/commands"
	"github.com/drbot-dev/drbot/runbook"
	"github.com/drbot-dev/drbot/store"
)

// restore-db and rollback: writers are scaled through Kubernetes when it is
// reachable (KUBECONFIG or in-cluster); without it, databases that name
// writers refuse to plan and the others work.
func init() {
	opts := func(env actionEnv) restoredb.Options {
		cfg, logger := env.cfg, env.logger
		o := restoredb.Options{Config: func() *runbook.Config { return cfg }, Logger: logger}
		if env.request != nil {
			o.RequestPlan = requestPlan(env.request)
		}
		if c, err := kubeClient(); err == nil {
			o.Scaler = c
		} else {
			logger.Info("restore-db: no Kubernetes access; databases with writers cannot be restored", "err", err)
		}
		return o
	}
	registerAction(restoredb.KindRestore, func(_ context.Context, env actionEnv) (actions.Action, error) {
		return restoredb.New(opts(env)), nil
	})
	registerAction(restoredb.KindRollback, func(_ context.Context, env actionEnv) (actions.Action, error) {
		return restoredb.NewRollback(opts(env)), nil
	})
}

// requestPlan gives rollback the plan of the restore-db request the user
// named, so it swaps back exactly the database that restore kept, never
// merely the newest one. Only a restore that went through can be rolled back.
func requestPlan(get func(ctx context.Context, id int64) (store.ActionRequest, error)) func(ctx context.Context, request string) (actions.Plan, error) {
	return func(ctx context.Context, request string) (actions.Plan, error) {
		id, err := commands.RequestID(request)
		if err != nil {
			return actions.Plan{}, err
		}
		req, err := get(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return actions.Plan{}, actions.Refusef("there is no request #%d", id)
		}
		if err != nil {
			return actions.Plan{}, fmt.Errorf("read request %d: %w", id, err)
		}
		if req.Kind != restoredb.KindRestore {
			return actions.Plan{}, actions.Refusef("request #%d is a %s, not a restore-db: only a restore can be rolled back", id, req.Kind)
		}
		if req.State != store.RequestSucceeded {
			return actions.Plan{}, actions.Refusef("request #%d is %s: only a restore that succeeded swapped a database out to roll back to", id, req.State)
		}
		var plan actions.Plan
		if err := json.Unmarshal(req.Plan, &plan); err != nil {
			return actions.Plan{}, fmt.Errorf("decode the plan of request %d: %w", id, err)
		}
		return plan, nil
	}
}
