package main

import (
	"context"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/vaultrestore"
)

// restore-vault: Vault's address and token come from the variables each
// service's vault block names, read when planning and executing.
func buildVaultRestore(_ context.Context, env actionEnv) (actions.Procedure, error) {
	return vaultrestore.New(env.cfg, loadAWS, env.logger), nil
}
