package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/drbot-dev/drbot/internal/pglocal"
	"github.com/drbot-dev/drbot/store/postgres"
)

// StoreFlags says where the bot keeps its state.
type StoreFlags struct {
	DataDir string `help:"Data directory; holds the private PostgreSQL cluster when DATABASE_URL is unset." default:".drbot" env:"DRBOT_DATA_DIR" type:"path"`
}

// openStore connects to DATABASE_URL, or starts (or reuses) the private PostgreSQL
// cluster under the data directory, and applies migrations. The returned close
// function stops what openStore started.
func openStore(ctx context.Context, logger *slog.Logger, f StoreFlags) (*postgres.DB, func(), error) {
	url := os.Getenv("DATABASE_URL")
	var cluster *pglocal.Cluster
	if url == "" {
		logger.Info("DATABASE_URL is unset: using a private PostgreSQL", "data_dir", f.DataDir)
		var err error
		cluster, err = pglocal.Start(ctx, pglocal.Options{DataDir: f.DataDir, Logger: logger, Fsync: true})
		if err != nil {
			return nil, nil, fmt.Errorf("start private PostgreSQL: %w", err)
		}
		if err := cluster.CreateDatabase(ctx, "drbot"); err != nil {
			stopCluster(logger, cluster)
			return nil, nil, fmt.Errorf("create the drbot database: %w", err)
		}
		url = cluster.URL("drbot")
	}
	db, err := postgres.Open(ctx, url, postgres.Options{Logger: logger})
	if err != nil {
		if cluster != nil {
			stopCluster(logger, cluster)
		}
		return nil, nil, fmt.Errorf("open the store: %w", err)
	}
	return db, func() {
		db.Close()
		if cluster != nil {
			stopCluster(logger, cluster)
		}
	}, nil
}

func stopCluster(logger *slog.Logger, c *pglocal.Cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Stop(ctx); err != nil {
		logger.Error("stop private PostgreSQL", "err", err)
	}
}
