package diagnose

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/runbook"
)

// databaseURL reads the database's URL from the env var the runbook names;
// the error names the variable, never a value.
func databaseURL(deps Deps, db runbook.Database) (string, error) {
	if db.URLEnv == "" {
		return "", fmt.Errorf("names no environment variable (url_env)")
	}
	v, ok := deps.lookupEnv(db.URLEnv)
	if !ok || v == "" {
		return "", fmt.Errorf("%s is not set (url_env)", db.URLEnv)
	}
	return v, nil
}

// database connects to db and reads the server version, the database's
// size and its connections against max_connections, in a read-only
// transaction. The detail names the host and port, never the URL.
func database(ctx context.Context, svc runbook.Service, db runbook.Database, dbURL string) actions.Finding {
	f := actions.Finding{Area: "database", Name: "database " + db.Name}
	where := ""
	if pc, err := pgconn.ParseConfig(dbURL); err == nil {
		where = " at " + net.JoinHostPort(pc.Host, strconv.Itoa(int(pc.Port)))
	}
	fail := func(detail string) actions.Finding {
		f.Status, f.Detail, f.Remedy = actions.StatusFail, detail+where, postgresWontStart(db.WaitFor, svc.Namespace())
		return f
	}
	began := time.Now()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return fail(connectReason(err, time.Since(began)))
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	var (
		version      string
		size         int64
		conns, limit int64
	)
	err = pgx.BeginTxFunc(ctx, conn, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT current_setting('server_version'),
			pg_database_size(current_database()),
			(SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()),
			current_setting('max_connections')::bigint`).Scan(&version, &size, &conns, &limit)
	})
	if err != nil {
		return fail("connected, but cannot read its state: " + connectReason(err, time.Since(began)))
	}
	f.Status = actions.StatusOK
	f.Detail = fmt.Sprintf("PostgreSQL %s, %s, %d of %d connections%s", version, actions.HumanSize(size), conns, limit, where)
	if limit > 0 && conns*10 >= limit*9 {
		f.Status = actions.StatusWarn
		f.Detail += " (nearly full)"
		f.Remedy = postgresWontStart(db.WaitFor, svc.Namespace())
	}
	return f
}

// connectReason is a user-safe reason a connection failed: PostgreSQL's own
// error code and message (which never hold the password), a timeout, or the
// network failure.
func connectReason(err error, took time.Duration) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return fmt.Sprintf("%s (SQLSTATE %s)", pe.Message, pe.Code)
	}
	if errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) {
		return fmt.Sprintf("no answer within %s", elapsed(took))
	}
	if errors.Is(err, context.Canceled) {
		return "cancelled"
	}
	var ne *net.OpError
	if errors.As(err, &ne) {
		return "cannot connect: " + oneLine(ne.Err.Error())
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "the server closed the connection"
	}
	return "cannot connect"
}
