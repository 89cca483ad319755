package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/drbot-dev/drbot/internal/demo"
	"github.com/drbot-dev/drbot/store/postgres"
)

// prepareDemo creates, on the bot's own PostgreSQL server, what the embedded
// demo runbook points at (a seeded demo database and a real pg_dump backup
// under the data directory; idempotent) and sets the environment variables
// the runbook names.
func prepareDemo(ctx context.Context, logger *slog.Logger, db *postgres.DB, dataDir string) error {
	env, err := demo.Prepare(ctx, logger, db.Pool().Config().ConnString(), dataDir)
	if err != nil {
		return fmt.Errorf("prepare the demo database: %w", err)
	}
	return env.Setenv()
}
