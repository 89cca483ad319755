// Package demo prepares what the embedded demo runbook
// (deploy/examples/demo.yaml) points at, so that `drbot shell --demo` can
// run /dr backups, /dr restore-db and /dr verify for real on a fresh
// machine: a seeded demo database on the bot's own PostgreSQL server and a
// real pg_dump backup of it in a file:// location under the data directory.
//
// Prepare is idempotent: the database, its tables and rows are created only
// when missing, and a backup is made only when the backup directory holds
// none.
package demo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/drbot-dev/drbot/internal/childenv"
)

// Names the demo runbook relies on.
const (
	Database   = "demo_shop"          // the demo database
	URLEnv     = "DEMO_DATABASE_URL"  // databases[].url_env in demo.yaml
	BackupsEnv = "DRBOT_DEMO_BACKUPS" // expanded in demo.yaml's file:// location
	BackupsDir = "demo-backups"       // under the data directory
)

// Env is what the demo runbook needs in the environment: URLEnv and BackupsEnv.
type Env map[string]string

// Setenv sets every variable of e in this process.
func (e Env) Setenv() error {
	for k, v := range e {
		if err := os.Setenv(k, v); err != nil {
			return fmt.Errorf("set %s: %w", k, err)
		}
	}
	return nil
}

// Prepare creates (if missing) the seeded demo database on the server of
// serverURL (any database URL on it whose role may create databases, e.g.
// the bot's own store) and a pg_dump backup of it under dataDir/demo-backups
// (if that holds no backup), and returns the environment the demo runbook
// needs. serverURL is never logged.
func Prepare(ctx context.Context, logger *slog.Logger, serverURL, dataDir string) (Env, error) {
	if logger == nil {
		logger = slog.Default()
	}
	cfg, err := pgx.ParseConfig(serverURL)
	if err != nil {
		return nil, errors.New("demo: the database URL does not parse")
	}
	if err := createDatabase(ctx, cfg); err != nil {
		return nil, err
	}
	demoCfg := cfg.Copy()
	demoCfg.Database = Database
	if err := seed(ctx, demoCfg); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(filepath.Join(dataDir, BackupsDir))
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	made, err := ensureBackup(ctx, demoCfg, dir)
	if err != nil {
		return nil, err
	}
	if made != "" {
		logger.Info("demo: made a backup of the demo database", "file", made)
	}
	return Env{URLEnv: urlOf(demoCfg), BackupsEnv: dir}, nil
}

// urlOf builds a postgres:// URL for cfg (TLS off: the demo server is local).
func urlOf(cfg *pgx.ConnConfig) string {
	u := url.URL{Scheme: "postgres", Host: net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))), Path: "/" + cfg.Database}
	if cfg.Password != "" {
		u.User = url.UserPassword(cfg.User, cfg.Password)
	} else {
		u.User = url.User(cfg.User)
	}
	q := url.Values{}
	if strings.HasPrefix(cfg.Host, "/") {
		u.Host = ""
		q.Set("host", cfg.Host)
		q.Set("port", strconv.Itoa(int(cfg.Port)))
	}
	if cfg.TLSConfig == nil {
		q.Set("sslmode", "disable")
	}
	u.RawQuery = q.Encode()
	return u.String()
}

func createDatabase(ctx context.Context, cfg *pgx.ConnConfig) error {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("demo: connect to the bot's PostgreSQL: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", Database).Scan(&exists); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if exists {
		return nil
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{Database}.Sanitize()); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // created concurrently
			return nil
		}
		return fmt.Errorf("demo: create database %s: %w", Database, err)
	}
	return nil
}

// seedSQL creates the demo shop's tables and rows when they are missing.
const seedSQL = `
CREATE TABLE IF NOT EXISTS customers (
	id    int PRIMARY KEY,
	name  text NOT NULL,
	email text NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS orders (
	id          int PRIMARY KEY,
	customer_id int NOT NULL REFERENCES customers(id),
	total_cents int NOT NULL,
	placed_at   timestamptz NOT NULL
);
INSERT INTO customers (id, name, email)
SELECT i, 'Customer ' || i, 'customer' || i || '@example.com' FROM generate_series(1, 50) i
ON CONFLICT DO NOTHING;
INSERT INTO orders (id, customer_id, total_cents, placed_at)
SELECT i, 1 + i % 50, 500 + (i * 37) % 20000, timestamptz '2026-01-01 00:00:00+00' + i * interval '17 minutes'
FROM generate_series(1, 500) i
ON CONFLICT DO NOTHING;
`

func seed(ctx context.Context, cfg *pgx.ConnConfig) error {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("demo: connect to %s: %w", Database, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, seedSQL); err != nil {
		return fmt.Errorf("demo: seed %s: %w", Database, err)
	}
	return nil
}

// ensureBackup runs pg_dump -Fc of the demo database into dir unless dir
// already holds a .dump. It writes to a dot file and renames it, so a
// listing never sees a partial backup. It returns the new file's path.
func ensureBackup(ctx context.Context, cfg *pgx.ConnConfig, dir string) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("demo: %w", err)
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") && strings.HasSuffix(e.Name(), ".dump") {
			return "", nil
		}
	}
	name := Database + "-" + time.Now().UTC().Format("20060102-150405") + ".dump"
	tmp := filepath.Join(dir, "."+name+".tmp")
	cmd := exec.CommandContext(ctx, "pg_dump", "--format", "custom", "--no-password", "--file", tmp)
	// A minimal environment: the connection, none of drbot's secrets.
	pg := []string{"PGHOST=" + cfg.Host, "PGPORT=" + strconv.Itoa(int(cfg.Port)), "PGUSER=" + cfg.User, "PGDATABASE=" + cfg.Database}
	if cfg.Password != "" {
		pg = append(pg, "PGPASSWORD="+cfg.Password)
	}
	if cfg.TLSConfig == nil {
		pg = append(pg, "PGSSLMODE=disable")
	}
	cmd.Env = childenv.Build(nil, pg...)
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("demo: pg_dump of %s: %w: %s", Database, err, strings.TrimSpace(string(out)))
	}
	final := filepath.Join(dir, name)
	if err := os.Rename(tmp, final); err != nil {
		return "", fmt.Errorf("demo: %w", err)
	}
	return final, nil
}
