package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	ternmigrate "github.com/jackc/tern/v2/migrate"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// versionTable is tern's table holding drbot's schema version.
const versionTable = "drbot_schema_version"

// migrateLockKey is the session advisory lock held while migrating, so that
// processes starting at once migrate one after the other. rivermigrate takes
// no lock of its own; tern takes its own inside ours.
const migrateLockKey = int64(0x6472626f746d6967) // "drbotmig"

// Migrate applies River's migrations (to the latest version) and then drbot's
// embedded migrations to the database at url. It is safe to run concurrently
// from several processes and a no-op when the schema is current.
func Migrate(ctx context.Context, url string) error {
	pool, err := newPool(ctx, url, 2)
	if err != nil {
		return err
	}
	defer pool.Close()
	return migrate(ctx, pool, slog.Default())
}

func migrate(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger) error {
	// A dedicated connection holds the lock: closing it releases the lock
	// whatever happens, and it never goes back to the pool still locked.
	conn, err := pgx.ConnectConfig(ctx, pool.Config().ConnConfig.Copy())
	if err != nil {
		return fmt.Errorf("migrate: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrateLockKey); err != nil {
		return fmt.Errorf("migrate: wait for migration lock: %w", err)
	}

	rm, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Logger: log})
	if err != nil {
		return fmt.Errorf("migrate job queue: %w", err)
	}
	if _, err := rm.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil { // logs each applied version
		return fmt.Errorf("migrate job queue: %w", err)
	}

	m, err := ternmigrate.NewMigrator(ctx, conn, versionTable)
	if err != nil {
		return fmt.Errorf("migrate drbot schema: %w", err)
	}
	files, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return fmt.Errorf("migrate drbot schema: %w", err)
	}
	if err := m.LoadMigrations(files); err != nil {
		return fmt.Errorf("migrate drbot schema: load migrations: %w", err)
	}
	m.OnStart = func(seq int32, name, direction, _ string) {
		log.Info("applying drbot migration", "version", seq, "name", name, "direction", direction)
	}
	if err := m.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate drbot schema: %w", err)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_unlock($1)", migrateLockKey); err != nil {
		return fmt.Errorf("migrate: release migration lock: %w", err)
	}
	return nil
}

// schemaVersion returns the applied and the latest version of drbot's schema.
func schemaVersion(ctx context.Context, pool *pgxpool.Pool) (have, want int32, err error) {
	files, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return 0, 0, fmt.Errorf("read embedded migrations: %w", err)
	}
	names, err := ternmigrate.FindMigrations(files)
	if err != nil {
		return 0, 0, fmt.Errorf("read embedded migrations: %w", err)
	}
	want = int32(len(names)) //nolint:gosec // a handful of embedded files
	var exists bool
	if err := pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", versionTable).Scan(&exists); err != nil {
		return 0, want, fmt.Errorf("check drbot schema version: %w", err)
	}
	if !exists {
		return 0, want, nil
	}
	if err := pool.QueryRow(ctx, "SELECT version FROM "+versionTable).Scan(&have); err != nil {
		return 0, want, fmt.Errorf("check drbot schema version: %w", err)
	}
	return have, want, nil
}
