package main

import (
	"context"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/restoredb"
	"github.com/drbot-dev/drbot/runbook"
)

// restore-db and rollback: writers are scaled through Kubernetes when it is
// reachable (KUBECONFIG or in-cluster); without it, databases that name
// writers refuse to plan and the others work.
func restoredbOptions(env actionEnv) restoredb.Options {
	cfg, logger := env.cfg, env.logger
	o := restoredb.Options{Config: func() *runbook.Config { return cfg }, Logger: logger}
	if env.history != nil {
		o.History = env.history
	}
	if env.drills != nil {
		o.Drills = env.drills
	}
	if c, err := kubeClient(); err == nil {
		o.Scaler = c
		o.Kube = c
	} else {
		logger.Info("restore-db: no Kubernetes access; databases with writers cannot be restored", "err", err)
	}
	return o
}

func buildRestoreDB(_ context.Context, env actionEnv) (actions.Procedure, error) {
	return restoredb.New(restoredbOptions(env)), nil
}

func buildRollback(_ context.Context, env actionEnv) (actions.Procedure, error) {
	return restoredb.NewRollback(restoredbOptions(env)), nil
}
