package testenv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/drbot-dev/drbot/internal/pglocal"
)

// TemplateDatabase is the database every PostgresURL database is cloned from.
const TemplateDatabase = "drbot_template"

var (
	shared      *pglocal.Cluster
	sharedErr   error
	templateFn  func(ctx context.Context, url string) error
	templateSet bool // the template has been built (successfully or not)
	templateErr error
	dbSeq       atomic.Int64
)

// SetTemplateSetup registers fn to prepare the template database once, before
// the first PostgresURL of this test binary (e.g. to run migrations, so every
// test database starts migrated). Call it from TestMain before Main, or from
// init. fn must close its connections before returning; testenv terminates any
// it leaves open. It panics when the template is already built.
func SetTemplateSetup(fn func(ctx context.Context, url string) error) {
	mu.Lock()
	defer mu.Unlock()
	if templateSet {
		panic("testenv.SetTemplateSetup called after the template database was built: call it in TestMain before testenv.Main")
	}
	templateFn = fn
}

// PostgresURL returns the URL of a new, empty (or template-prepared) database
// on this test binary's shared cluster. The database is dropped when t ends.
func PostgresURL(t testing.TB) string {
	t.Helper()
	c := Cluster(t)
	mu.Lock()
	if !templateSet {
		began := time.Now()
		templateErr = buildTemplate(c)
		templateSet = true
		if templateErr == nil {
			t.Logf("testenv: template database ready in %s", time.Since(began).Round(time.Millisecond))
		}
	}
	err := templateErr
	mu.Unlock()
	if err != nil {
		t.Fatalf("testenv: prepare the template database: %v", err)
	}

	name := databaseName(t.Name())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := adminExec(ctx, c, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" TEMPLATE "+TemplateDatabase); err != nil {
		t.Fatalf("testenv: create test database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := c.DropDatabase(ctx, name); err != nil {
			t.Errorf("testenv: %v", err)
		}
	})
	return c.URL(name)
}

// Cluster returns this test binary's shared cluster, starting it on first use.
// Tests share it: do not stop it (use NewCluster for that).
func Cluster(t testing.TB) *pglocal.Cluster {
	t.Helper()
	requireMain(t)
	mu.Lock()
	if shared == nil && sharedErr == nil {
		began := time.Now()
		shared, sharedErr = startShared()
		if sharedErr == nil {
			t.Logf("testenv: PostgreSQL cluster started in %s (%s)", time.Since(began).Round(time.Millisecond), shared.URL(""))
		}
	}
	c, err := shared, sharedErr
	mu.Unlock()
	if err != nil {
		unavailable(t, err)
	}
	return c
}

// NewCluster starts a separate cluster owned by t, which may stop and start it
// freely (e.g. to test restarts). It is stopped and removed when t ends.
func NewCluster(t testing.TB) *pglocal.Cluster {
	t.Helper()
	requireMain(t)
	mu.Lock()
	base, err := workDir()
	mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp(base, "cluster-")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	if err := os.Chmod(dir, 0o711); err != nil { //nolint:gosec // postgres must traverse, not list
		t.Fatalf("testenv: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := pglocal.Start(ctx, pglocal.Options{DataDir: dir, Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		_ = os.RemoveAll(dir)
		unavailable(t, missingWrap(err))
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := c.Stop(ctx); err != nil {
			t.Errorf("testenv: %v", err)
		}
		_ = os.RemoveAll(dir)
	})
	return c
}

// startShared starts the shared cluster; the caller holds mu.
func startShared() (*pglocal.Cluster, error) {
	base, err := workDir()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(base, "shared")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c, err := pglocal.Start(ctx, pglocal.Options{DataDir: dir, Logger: logger})
	if err != nil {
		return nil, missingWrap(err)
	}
	return c, nil
}

// missingWrap marks pglocal's "no binaries" error as a missing program.
func missingWrap(err error) error {
	if errors.Is(err, pglocal.ErrNoBinaries) {
		return fmt.Errorf("%w: %w", errMissing, err)
	}
	return err
}

// stopPostgres stops the shared cluster (at teardown).
func stopPostgres(ctx context.Context) {
	mu.Lock()
	c := shared
	shared, sharedErr = nil, errors.New("testenv: the tests are over")
	mu.Unlock()
	if c != nil {
		if err := c.Stop(ctx); err != nil {
			fmt.Fprintf(os.Stderr, "testenv: %v\n", err)
		}
	}
}

// buildTemplate creates the template database and runs the registered setup;
// afterwards nobody may connect to it, so cloning never finds it busy.
func buildTemplate(c *pglocal.Cluster) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := c.DropDatabase(ctx, TemplateDatabase); err != nil {
		return err
	}
	if err := c.CreateDatabase(ctx, TemplateDatabase); err != nil {
		return err
	}
	if templateFn != nil {
		if err := templateFn(ctx, c.URL(TemplateDatabase)); err != nil {
			return fmt.Errorf("template setup: %w", err)
		}
	}
	for _, sql := range []string{
		"ALTER DATABASE " + TemplateDatabase + " WITH IS_TEMPLATE true ALLOW_CONNECTIONS false",
		"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '" + TemplateDatabase + "'",
	} {
		if err := adminExec(ctx, c, sql); err != nil {
			return err
		}
	}
	return nil
}

// adminExec runs one statement on the cluster's postgres database.
func adminExec(ctx context.Context, c *pglocal.Cluster, sql string) error {
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return fmt.Errorf("connect to %s: %w", c.URL("postgres"), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("%s: %w", sql, err)
	}
	return nil
}

// databaseName derives a unique, valid database name from a test name.
func databaseName(testName string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(testName) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	name := fmt.Sprintf("t%d_%s", dbSeq.Add(1), b.String())
	if len(name) > 63 {
		name = name[:63]
	}
	return name
}
