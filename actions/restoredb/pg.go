package restoredb

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/drbot-dev/drbot/actions"
	sqlcheck "github.com/drbot-dev/drbot/actions/verify"
	"github.com/drbot-dev/drbot/internal/childenv"
	"github.com/drbot-dev/drbot/runbook"
)

// target is a database server and the live database on it, parsed from the
// url_env URL. It holds the credentials: never log or show it; Server and
// Live are the safe parts.
type target struct {
	cfg    *pgx.ConnConfig
	params map[string]string // libpq parameters from the URL (sslmode, …)
	Server string            // host:port, for messages
	Live   string            // the database named in the URL
}

// parseTarget parses a PostgreSQL URL or key=value DSN. Errors never repeat
// the URL.
func parseTarget(raw string) (*target, error) {
	cfg, err := pgx.ParseConfig(raw)
	if err != nil {
		return nil, errors.New("the database URL does not parse") // pgx's error may quote the URL
	}
	if cfg.Database == "" {
		return nil, errors.New("the database URL names no database")
	}
	return &target{cfg: cfg, params: urlParams(raw), Server: net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))), Live: cfg.Database}, nil
}

// urlParams returns the query parameters of a URL, or the key=value pairs of
// a DSN (unquoted values only).
func urlParams(raw string) map[string]string {
	out := map[string]string{}
	if strings.HasPrefix(raw, "postgres://") || strings.HasPrefix(raw, "postgresql://") {
		u, err := url.Parse(raw)
		if err != nil {
			return out
		}
		for k, v := range u.Query() {
			if len(v) > 0 {
				out[k] = v[len(v)-1]
			}
		}
		return out
	}
	for _, f := range strings.Fields(raw) {
		if k, v, ok := strings.Cut(f, "="); ok {
			out[k] = strings.Trim(v, "'")
		}
	}
	return out
}

// connect opens a connection to database on the target's server.
func (t *target) connect(ctx context.Context, database string) (*pgx.Conn, error) {
	cfg := t.cfg.Copy()
	cfg.Database = database
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["application_name"] = "drbot"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to %s on %s: %w", database, t.Server, safeErr(err))
	}
	return conn, nil
}

// admin connects to a maintenance database (postgres, else template1) for
// CREATE/DROP/ALTER DATABASE.
func (t *target) admin(ctx context.Context) (*pgx.Conn, error) {
	conn, err := t.connect(ctx, "postgres")
	if err == nil {
		return conn, nil
	}
	if conn2, err2 := t.connect(ctx, "template1"); err2 == nil {
		return conn2, nil
	}
	return nil, err
}

// libpqEnv is the environment for pg_restore and psql: a minimal one
// (childenv: PATH, HOME, locale; none of drbot's secrets, tokens or other
// database URLs), plus the target's connection parameters as PG* variables
// (the password never appears in argv).
func (t *target) libpqEnv() []string {
	pg := []string{
		"PGHOST=" + t.cfg.Host,
		"PGPORT=" + strconv.Itoa(int(t.cfg.Port)),
		"PGUSER=" + t.cfg.User,
		"PGAPPNAME=drbot-restore",
	}
	if t.cfg.Password != "" {
		pg = append(pg, "PGPASSWORD="+t.cfg.Password)
	}
	for param, name := range map[string]string{
		"sslmode": "PGSSLMODE", "sslrootcert": "PGSSLROOTCERT", "sslcert": "PGSSLCERT", "sslkey": "PGSSLKEY",
		"sslcrl": "PGSSLCRL", "connect_timeout": "PGCONNECT_TIMEOUT", "options": "PGOPTIONS",
		"passfile": "PGPASSFILE", "channel_binding": "PGCHANNELBINDING", "gssencmode": "PGGSSENCMODE",
	} {
		if v, ok := t.params[param]; ok && v != "" {
			pg = append(pg, name+"="+v)
		}
	}
	if _, ok := t.params["sslmode"]; !ok && t.cfg.TLSConfig == nil {
		pg = append(pg, "PGSSLMODE=disable")
	}
	return childenv.Build(nil, pg...)
}

// safeErr keeps a PostgreSQL error's server message and drops the rest of
// pgconn's wrapping, which can name the user and host configuration.
func safeErr(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr
	}
	var cerr *pgconn.ConnectError
	if errors.As(err, &cerr) {
		return errors.Unwrap(cerr)
	}
	return err
}

// ident quotes a database name.
func ident(name string) string { return pgx.Identifier{name}.Sanitize() }

// dbExists reports whether database name exists.
func dbExists(ctx context.Context, conn *pgx.Conn, name string) (bool, error) {
	var ok bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&ok); err != nil {
		return false, fmt.Errorf("look up database %s: %w", name, err)
	}
	return ok, nil
}

// terminate ends every other session connected to one of dbs and returns how many.
func terminate(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, dbs ...string) (int, error) {
	var n int
	err := q.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = ANY($1) AND pid <> pg_backend_pid()`, dbs).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("terminate connections to %s: %w", strings.Join(dbs, ", "), err)
	}
	return n, nil
}

// dropDatabase drops name if it exists, disconnecting its sessions.
func dropDatabase(ctx context.Context, conn *pgx.Conn, name string) error {
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+ident(name)+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}

// maxIdent is PostgreSQL's identifier length limit (NAMEDATALEN-1).
const maxIdent = 63

// derivedName is base + suffix, with base shortened so the result fits in an identifier.
func derivedName(base, suffix string) string {
	if room := maxIdent - len(suffix); len(base) > room {
		base = base[:room]
	}
	return base + suffix
}

// checkTimeout bounds each configured check query.
const checkTimeout = 30 * time.Second

// runChecks runs the database's checks against database, each in a
// read-only transaction with a statement timeout. With no checks configured
// it reports one "connect" check (the database answers SELECT 1).
func runChecks(ctx context.Context, t *target, database string, checks []runbook.Check) actions.Report {
	if len(checks) == 0 {
		checks = []runbook.Check{{Name: "connect", SQL: "SELECT 1", Expect: runbook.Expect{Op: "==", Value: 1}}}
	}
	var rep actions.Report
	conn, err := t.connect(ctx, database)
	if err != nil {
		for _, c := range checks {
			rep.Checks = append(rep.Checks, actions.CheckResult{Name: c.Name, Kind: "sql", Target: database,
				Expected: c.Expect.String(), Observed: "not run", Error: "cannot connect to " + database + ": " + userSafe(err)})
		}
		return rep
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, c := range checks {
		rep.Checks = append(rep.Checks, runCheck(ctx, conn, database, c))
	}
	return rep
}

func runCheck(ctx context.Context, conn *pgx.Conn, database string, c runbook.Check) actions.CheckResult {
	res := sqlcheck.SQLOnConn(ctx, conn, c, checkTimeout)
	res.Target = database
	if res.Error != "" {
		res.Observed = "error"
	}
	return res
}

// userSafe is an error's text fit for a chat message: a PostgreSQL error's
// message (no SQL text, no connection details), else a generic phrase.
func userSafe(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Message
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timed out"
	}
	return "the query failed"
}

// renameTx renames each pairs[i][0] to pairs[i][1] in one transaction,
// terminating their sessions first (PostgreSQL waits a few seconds for them
// to exit before it gives up with object_in_use).
func renameTx(ctx context.Context, conn *pgx.Conn, pairs ...[2]string) error {
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		from := make([]string, len(pairs))
		for i, p := range pairs {
			from[i] = p[0]
		}
		if _, err := terminate(ctx, tx, from...); err != nil {
			return err
		}
		for _, p := range pairs {
			if _, err := tx.Exec(ctx, "ALTER DATABASE "+ident(p[0])+" RENAME TO "+ident(p[1])); err != nil {
				return fmt.Errorf("rename database %s to %s: %w", p[0], p[1], err)
			}
		}
		return nil
	})
}

// isObjectInUse reports PostgreSQL's "database is being accessed by other users".
func isObjectInUse(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "55006"
}

// serverProgramRisk says, for the approval card, when the role in url_env
// can run programs on the database server: a superuser, or a member of
// pg_execute_server_program. A restore runs the backup's SQL as that role,
// so a crafted backup could then run COPY … TO PROGRAM — no client-side
// filter stops server-side SQL. "" when the role cannot (or the check itself
// could not run: the restore does not depend on it).
func serverProgramRisk(ctx context.Context, conn *pgx.Conn) string {
	var role string
	var super, programs bool
	err := conn.QueryRow(ctx, `SELECT current_user, r.rolsuper, pg_has_role(current_user, 'pg_execute_server_program', 'MEMBER')
		FROM pg_roles r WHERE r.rolname = current_user`).Scan(&role, &super, &programs)
	switch {
	case err != nil:
		return ""
	case super:
		return fmt.Sprintf("the backup's SQL runs as %s, a superuser: a crafted backup could run programs on the database server (COPY … TO PROGRAM); give drbot a role that owns the database and has CREATEDB, without superuser (docs/operations.md)", role)
	case programs:
		return fmt.Sprintf("the backup's SQL runs as %s, a member of pg_execute_server_program: a crafted backup could run programs on the database server (COPY … TO PROGRAM); revoke it from drbot's role (docs/operations.md)", role)
	}
	return ""
}
