// Package postgres keeps drbot's state in PostgreSQL: incidents, action
// requests, approvals, the hash-chained audit log and webhook deliveries, with
// River (github.com/riverqueue/river) for durable jobs in the same database.
//
// Every state change is one transaction holding the change, its audit row and
// the jobs it schedules.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/drbot-dev/drbot/store"
)

// DefaultMaxConns is the pool size used when neither Options nor the URL's
// pool_max_conns sets one.
const DefaultMaxConns = 10

// Options tune Open. The zero value is usable.
type Options struct {
	// MaxConns caps the connection pool; 0 means the URL's pool_max_conns or DefaultMaxConns.
	MaxConns int32
	// Logger receives the store's and River's logs; nil means slog.Default().
	Logger *slog.Logger
	// Queues maps River queue names to their number of workers for StartJobs;
	// nil means {"default": 10}.
	Queues map[string]int
	// SoftStopTimeout is how long StopJobs and Close let running jobs finish
	// before cancelling them; 0 means 10 seconds.
	SoftStopTimeout time.Duration
	// RescueStuckJobsAfter is how long a job may stay running before River
	// runs it again, assuming its process died (kill -9); 0 means
	// DefaultRescueStuckJobsAfter. River leaves a job whose worker declares a
	// longer Timeout alone until that Timeout has passed, so workers with a
	// longer Timeout (audit.verify: 1 h; request.execute: 12 h) must not rely
	// on the rescue to recover: request executions are recovered by their
	// lease and the periodic resume (actions/runner), within a minute.
	RescueStuckJobsAfter time.Duration
	// Now is the jobs' clock: when set, River schedules, fetches, snoozes and
	// records jobs by it instead of the database's clock, so tests move
	// timers (escalations, header refreshes) by moving a clock instead of
	// sleeping. nil: the database's clock (production).
	Now func() time.Time
}

// DB is the PostgreSQL store. It implements store.Store.
type DB struct {
	pool     *pgxpool.Pool
	log      *slog.Logger
	opts     Options
	inserter *river.Client[pgx.Tx]
	riverMig *rivermigrate.Migrator[pgx.Tx]

	mu     sync.Mutex
	worker *river.Client[pgx.Tx]
}

var _ store.Store = (*DB)(nil)

// Open connects to the database at url, applies all migrations (River's, then
// ours) and returns the store. Jobs are inserted from the start; call StartJobs
// to also work them.
func Open(ctx context.Context, url string, opts Options) (*DB, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.SoftStopTimeout <= 0 {
		opts.SoftStopTimeout = 10 * time.Second
	}
	pool, err := newPool(ctx, url, opts.MaxConns)
	if err != nil {
		return nil, err
	}
	db := &DB{pool: pool, log: opts.Logger, opts: opts}
	if err := migrate(ctx, pool, opts.Logger); err != nil {
		pool.Close()
		return nil, err
	}
	db.riverMig, err = rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Logger: opts.Logger})
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("set up job queue migrator: %w", err)
	}
	db.inserter, err = river.NewClient(riverpgxv5.New(pool), &river.Config{Logger: opts.Logger, Test: db.riverTest()})
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("set up job queue client: %w", err)
	}
	return db, nil
}

// riverTest is River's test configuration: the injected clock, if any.
func (db *DB) riverTest() river.TestConfig {
	if db.opts.Now == nil {
		return river.TestConfig{}
	}
	return river.TestConfig{Time: clock(db.opts.Now)}
}

// clock is an injected clock as River's rivertype.TimeGenerator. NowOrNil
// answers the time too, so that River's queries use it rather than now().
type clock func() time.Time

func (c clock) Now() time.Time { return c() }

func (c clock) NowOrNil() *time.Time {
	t := c()
	return &t
}

func newPool(ctx context.Context, url string, maxConns int32) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's parse errors can echo the URL with its password: keep them out.
		return nil, errors.New("parse database URL: invalid connection string (expected postgres://user:pass@host:port/db or key=value form)")
	}
	switch {
	case maxConns > 0:
		cfg.MaxConns = maxConns
	case !strings.Contains(url, "pool_max_conns"):
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.MaxConns < 2 {
		cfg.MaxConns = 2 // migrations hold one connection while River migrates on another
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "drbot"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to database %s on %s: %w", cfg.ConnConfig.Database, cfg.ConnConfig.Host, err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to database %s on %s:%d: %w", cfg.ConnConfig.Database, cfg.ConnConfig.Host, cfg.ConnConfig.Port, err)
	}
	return pool, nil
}

// Pool returns the connection pool, for callers that need River's or pgx's own API.
func (db *DB) Pool() *pgxpool.Pool { return db.pool }

// Ping checks that the database answers and that both River's migrations and
// ours are at the latest version. /readyz uses it.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping database: %w", err)
	}
	have, want, err := schemaVersion(ctx, db.pool)
	if err != nil {
		return err
	}
	if have != want {
		return fmt.Errorf("drbot schema is at version %d, want %d: run drbot's migrations", have, want)
	}
	res, err := db.riverMig.Validate(ctx, nil)
	if err != nil {
		return fmt.Errorf("check job queue schema: %w", err)
	}
	if !res.OK {
		return fmt.Errorf("job queue schema is not up to date: %s", strings.Join(res.Messages, "; "))
	}
	return nil
}

// Close stops job workers (if started), waiting up to Options.SoftStopTimeout,
// and closes the pool.
func (db *DB) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), db.opts.SoftStopTimeout)
	defer cancel()
	if err := db.StopJobs(ctx); err != nil {
		db.log.Warn("stop job workers", "err", err)
	}
	db.pool.Close()
}

// inTx runs fn in a transaction and commits it when fn returns nil.
func (db *DB) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, db.pool, fn)
}

// Unique and foreign-key violation codes.
const (
	codeUniqueViolation     = "23505"
	codeForeignKeyViolation = "23503"
)

// pgErr returns the PostgreSQL error code and constraint name of err, if any.
func pgErr(err error) (code, constraint string) {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code, pe.ConstraintName
	}
	return "", ""
}

func notFound(what string, err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	return fmt.Errorf("read %s: %w", what, err)
}
