package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/drbot-dev/drbot/internal/pglocal"
	"github.com/drbot-dev/drbot/store/postgres"
)

// StoreFlags says where the bot keeps its state.
type StoreFlags struct {
	DataDir string `help:"Data directory; holds the private PostgreSQL cluster when DATABASE_URL is unset." default:".drbot" env:"DRBOT_DATA_DIR" type:"path"`
}

// defaultDataDir is StoreFlags.DataDir's default, relative to the working directory.
const defaultDataDir = ".drbot"

// rootFallbackDir holds private clusters when drbot runs as root from a
// directory the postgres user cannot reach (a checkout under /root).
const rootFallbackDir = "/var/lib/drbot"

// clusterDir is where the private cluster lives: the data directory, unless it
// is the default and, as root, the postgres user could not reach it; then a
// directory under /var/lib/drbot named after it, so that `make demo` works from
// any checkout. An explicit --data-dir is never second-guessed: Start reports
// exactly which directory blocks the way.
func (f StoreFlags) clusterDir(logger *slog.Logger) string {
	def, err := filepath.Abs(defaultDataDir)
	if err != nil || f.DataDir != def {
		return f.DataDir
	}
	if err := pglocal.Reachable(f.DataDir); !errors.Is(err, pglocal.ErrUnreachable) {
		return f.DataDir
	}
	sum := sha256.Sum256([]byte(f.DataDir))
	dir := filepath.Join(rootFallbackDir, "cluster-"+hex.EncodeToString(sum[:6]))
	logger.Info("the postgres user cannot reach the default data directory; keeping the private PostgreSQL elsewhere",
		"data_dir", f.DataDir, "cluster_dir", dir)
	return dir
}

// openStore connects to DATABASE_URL, or starts (or reuses) the private PostgreSQL
// cluster under the data directory, and applies migrations. The returned close
// function stops what openStore started. now, when not nil, is the jobs'
// clock (tests; see postgres.Options.Now).
func openStore(ctx context.Context, logger *slog.Logger, f StoreFlags, now ...func() time.Time) (*postgres.DB, func(), error) {
	url := os.Getenv("DATABASE_URL")
	var cluster *pglocal.Cluster
	if url == "" {
		dataDir := f.clusterDir(logger)
		logger.Info("DATABASE_URL is unset: using a private PostgreSQL", "data_dir", dataDir)
		var err error
		cluster, err = pglocal.Start(ctx, pglocal.Options{DataDir: dataDir, Logger: logger, Fsync: true})
		if err != nil {
			return nil, nil, fmt.Errorf("start private PostgreSQL: %w", err)
		}
		if err := cluster.CreateDatabase(ctx, "drbot"); err != nil {
			stopCluster(logger, cluster)
			return nil, nil, fmt.Errorf("create the drbot database: %w", err)
		}
		url = cluster.URL("drbot")
	}
	opts := postgres.Options{Logger: logger}
	for _, n := range now {
		opts.Now = n
	}
	db, err := postgres.Open(ctx, url, opts)
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
