// Package pglocal runs a private PostgreSQL cluster from the server binaries
// installed on the machine (initdb, pg_ctl, postgres). drbot uses it when
// DATABASE_URL is unset, and the tests use it for throwaway databases.
//
// Layout under Options.DataDir:
//
//	pgdata/         the PostgreSQL data directory (pgdata/drbot.conf holds our settings)
//	pgrun/          the Unix socket (when its path is short enough) and postgres.log
//	port            the TCP port last used, reused on the next start when free
//	owner.pid       the process that started the server and will stop it
//
// The server listens on 127.0.0.1 only and trusts every local connection, so
// the superuser "postgres" needs no password. When the caller runs as root the
// programs run as the "postgres" OS user, because PostgreSQL refuses root.
package pglocal

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Superuser is the role every cluster is initialized with.
const Superuser = "postgres"

const (
	pgdataName   = "pgdata"
	runName      = "pgrun"
	portName     = "port"
	ownerName    = "owner.pid"
	logName      = "postgres.log"
	confName     = "drbot.conf"
	includeLine  = "include_if_exists = 'drbot.conf'"
	maxSunPath   = 107 // sizeof(sockaddr_un.sun_path) minus the terminating NUL
	maxLogSize   = 16 << 20
	startTimeout = 60 * time.Second
	readyTimeout = 30 * time.Second
)

// Options configures Start.
type Options struct {
	// DataDir holds the cluster (see the package documentation). Required;
	// created when missing.
	DataDir string
	// Port is the TCP port on 127.0.0.1. 0 picks one: the port remembered in
	// DataDir when it is free, otherwise a free one.
	Port int
	// Logger receives progress messages; nil discards them.
	Logger *slog.Logger
	// Fsync keeps the server's durability settings. Tests turn it off for speed
	// (initdb --no-sync, fsync=off, synchronous_commit=off); the product keeps it on.
	Fsync bool
	// BinDir is the directory of initdb, pg_ctl and postgres; empty means FindBinaries.
	BinDir string
}

// Cluster is a PostgreSQL server running on a private data directory.
// Its methods are safe for concurrent use.
type Cluster struct {
	binDir    string
	dataDir   string
	pgdata    string
	runDir    string
	socketDir string
	logPath   string
	fsync     bool
	acct      *account // nil: the programs run as the current user
	logger    *slog.Logger

	mu      sync.Mutex
	port    int
	running bool
	owned   bool // Stop stops the server (we started it, or adopted it from a dead process)
}

// Start initializes the cluster under opts.DataDir when needed and starts it, or
// reuses a server already running there (e.g. left behind by a killed drbot).
// It returns once the server accepts connections.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if opts.DataDir == "" {
		return nil, errors.New("start PostgreSQL: no data directory given")
	}
	dataDir, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, fmt.Errorf("start PostgreSQL: data directory %q: %w", opts.DataDir, err)
	}
	if strings.ContainsAny(dataDir, "\"$`\\\n'") {
		return nil, fmt.Errorf("start PostgreSQL: the data directory path %q contains a quote, $, backquote, backslash or newline, which pg_ctl cannot pass safely: choose another data directory", dataDir)
	}
	if opts.Port < 0 || opts.Port > 65535 {
		return nil, fmt.Errorf("start PostgreSQL: port %d is out of range", opts.Port)
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	binDir := opts.BinDir
	if binDir == "" {
		if binDir, err = FindBinaries(); err != nil {
			return nil, err
		}
	}
	c := &Cluster{
		binDir:  binDir,
		dataDir: dataDir,
		pgdata:  filepath.Join(dataDir, pgdataName),
		runDir:  filepath.Join(dataDir, runName),
		logPath: filepath.Join(dataDir, runName, logName),
		fsync:   opts.Fsync,
		logger:  logger.With("component", "pglocal", "data_dir", dataDir),
	}
	// As root, directories we create must let the server account pass through
	// (0711: enter, not list); the data itself lives in 0700 subdirectories.
	mode := os.FileMode(0o700)
	if os.Geteuid() == 0 {
		mode = 0o711
	}
	if err := os.MkdirAll(dataDir, mode); err != nil {
		return nil, fmt.Errorf("start PostgreSQL: create data directory: %w", err)
	}
	if os.Geteuid() == 0 {
		if err := c.setupRoot(); err != nil {
			return nil, fmt.Errorf("start PostgreSQL: %w", err)
		}
	}
	if err := c.prepare(ctx); err != nil {
		return nil, fmt.Errorf("start PostgreSQL in %s: %w", dataDir, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.start(ctx, opts.Port); err != nil {
		return nil, fmt.Errorf("start PostgreSQL in %s: %w", dataDir, err)
	}
	return c, nil
}

// setupRoot picks the OS user the server runs as and makes sure it can reach
// the data directory: o+x on the data directory itself, never on its parents.
func (c *Cluster) setupRoot() error {
	acct, err := serverAccount(c.pgdata)
	if err != nil {
		return err
	}
	c.acct = acct
	fi, err := os.Stat(c.dataDir)
	if err != nil {
		return err
	}
	if !acct.canTraverse(fi) {
		if err := os.Chmod(c.dataDir, fi.Mode().Perm()|0o001); err != nil {
			return fmt.Errorf("let user %s enter %s: %w", acct.name, c.dataDir, err)
		}
	}
	return acct.checkAncestors(c.dataDir)
}

// prepare creates the directories, runs initdb when the data directory is new,
// and checks that the binaries match an existing one.
func (c *Cluster) prepare(ctx context.Context) error {
	if err := ensureOwnedDir(c.runDir, c.acct); err != nil {
		return err
	}
	_, err := os.Stat(filepath.Join(c.pgdata, "PG_VERSION"))
	switch {
	case err == nil:
		if err := c.checkVersion(); err != nil {
			return err
		}
	case errors.Is(err, os.ErrNotExist):
		if err := c.initdb(ctx); err != nil {
			return err
		}
	default:
		return fmt.Errorf("read %s: %w", filepath.Join(c.pgdata, "PG_VERSION"), err)
	}
	return c.ensureInclude()
}

func (c *Cluster) initdb(ctx context.Context) error {
	entries, err := os.ReadDir(c.pgdata)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read %s: %w", c.pgdata, err)
	}
	if len(entries) > 0 {
		return fmt.Errorf("%s is not empty but holds no PostgreSQL cluster (no PG_VERSION): move it away or choose another data directory", c.pgdata)
	}
	if err := ensureOwnedDir(c.pgdata, c.acct); err != nil {
		return err
	}
	args := []string{"-D", c.pgdata, "-U", Superuser, "-E", "UTF8", "--locale=C", "--auth=trust", "--no-instructions"}
	if !c.fsync {
		args = append(args, "--no-sync")
	}
	c.logger.Info("initializing a new PostgreSQL cluster", "bin_dir", c.binDir)
	began := time.Now()
	if out, err := c.run(ctx, "initdb", args...); err != nil {
		return fmt.Errorf("initdb failed: %w\n%s", err, out)
	}
	c.logger.Debug("initdb done", "took", time.Since(began))
	return nil
}

// checkVersion makes sure the binaries can run the existing data directory,
// switching to the matching installed major version when there is one.
func (c *Cluster) checkVersion() error {
	dataMajor, err := dataDirMajor(c.pgdata)
	if err != nil {
		return err
	}
	binMajor, err := serverMajor(c.binDir)
	if err != nil {
		return err
	}
	if dataMajor == binMajor {
		return nil
	}
	if dir, ok := binariesForMajor(dataMajor); ok {
		c.logger.Info("using the binaries matching the data directory", "bin_dir", dir, "version", dataMajor)
		c.binDir = dir
		return nil
	}
	return fmt.Errorf("%s was created by PostgreSQL %d but the server binaries in %s are PostgreSQL %d: install PostgreSQL %d's server, or move the directory away (its data needs pg_upgrade or a dump and restore)",
		c.pgdata, dataMajor, c.binDir, binMajor, dataMajor)
}

// ensureInclude makes postgresql.conf load drbot.conf, which start rewrites.
func (c *Cluster) ensureInclude() error {
	path := filepath.Join(c.pgdata, "postgresql.conf")
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if bytes.Contains(b, []byte(includeLine)) {
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	_, err = fmt.Fprintf(f, "\n# Added by drbot: settings drbot manages (port, sockets, durability).\n%s\n", includeLine)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// start brings the server up; the caller holds c.mu. port 0 picks one.
func (c *Cluster) start(ctx context.Context, port int) error {
	reused, err := c.adoptRunning(ctx)
	if err != nil || reused {
		return err
	}
	auto := port == 0
	if auto {
		if port, err = c.pickPort(); err != nil {
			return err
		}
	}
	if err := c.chooseSocketDir(port); err != nil {
		return err
	}
	c.rotateLog()
	deadline := time.Now().Add(startTimeout)
	for attempt := 1; ; attempt++ {
		if err := c.writeConf(port); err != nil {
			return err
		}
		logStart := fileSize(c.logPath)
		c.logger.Debug("starting PostgreSQL", "port", port, "attempt", attempt)
		out, runErr := c.run(ctx, "pg_ctl", "start", "-D", c.pgdata, "-l", c.logPath, "-w", "-t", strconv.Itoa(int(startTimeout/time.Second)), "-s")
		if runErr == nil {
			break
		}
		if ctx.Err() != nil {
			return fmt.Errorf("pg_ctl start: %w", ctx.Err())
		}
		newLog := readFrom(c.logPath, logStart)
		switch {
		case auto && attempt < 5 && (strings.Contains(newLog, "could not bind") || strings.Contains(newLog, "Address already in use")):
			// Someone took the port between our check and the server's bind.
			c.logger.Info("port taken, picking another", "port", port)
			if port, err = freePort(); err != nil {
				return err
			}
			if err := c.chooseSocketDir(port); err != nil {
				return err
			}
			continue
		case time.Now().Before(deadline) && (strings.Contains(newLog, "pre-existing shared memory block") || strings.Contains(newLog, "lock file") && strings.Contains(newLog, "already exists")):
			// Backends of a killed server are still exiting.
			c.logger.Info("waiting for the processes of a previous PostgreSQL server to exit")
			time.Sleep(500 * time.Millisecond)
			continue
		case !auto && (strings.Contains(newLog, "could not bind") || strings.Contains(newLog, "Address already in use")):
			return fmt.Errorf("port %d on 127.0.0.1 is in use by another program: choose another port or stop that program\n%s", port, c.logTail())
		}
		// Make sure nothing half-started stays behind.
		_, _ = c.run(context.WithoutCancel(ctx), "pg_ctl", "stop", "-D", c.pgdata, "-m", "immediate", "-s")
		return fmt.Errorf("pg_ctl start failed: %w\n%s\nlast lines of %s:\n%s", runErr, out, c.logPath, c.logTail())
	}
	c.port = port
	if err := c.waitReady(ctx); err != nil {
		return err
	}
	c.running, c.owned = true, true
	c.remember()
	c.logger.Info("PostgreSQL started", "port", port, "socket_dir", c.socketDir)
	return nil
}

// adoptRunning handles a postmaster.pid left in the data directory: a server
// still running there is reused; a pid file naming some other live process (a
// reused pid, e.g. after a container restart) is removed once the old server's
// shared memory is free. A pid file of a dead process is left to PostgreSQL,
// which recovers from it itself.
func (c *Cluster) adoptRunning(ctx context.Context) (bool, error) {
	pidPath := filepath.Join(c.pgdata, "postmaster.pid")
	pf, err := readPidFile(pidPath)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !isPostgresProcess(pf.pid) {
		if processAlive(pf.pid) {
			// A zombie postmaster, or the pid now belongs to another program:
			// PostgreSQL would refuse to start, so clear the way ourselves.
			if err := waitSharedMemoryReleased(pf.shmID, 10*time.Second); err != nil {
				return false, err
			}
			c.logger.Info("removing the pid file of a PostgreSQL server that is gone", "pid", pf.pid)
			if pf.socketDir != "" && pf.port > 0 {
				lock := filepath.Join(pf.socketDir, ".s.PGSQL."+strconv.Itoa(pf.port)+".lock")
				if lf, err := readPidFile(lock); err == nil && lf.pid == pf.pid {
					_ = os.Remove(lock)
				}
			}
			if err := os.Remove(pidPath); err != nil && !errors.Is(err, os.ErrNotExist) {
				return false, fmt.Errorf("remove stale %s: %w", pidPath, err)
			}
		} else {
			c.logger.Info("recovering after a PostgreSQL server that did not shut down cleanly", "pid", pf.pid)
		}
		return false, nil
	}
	if pf.port == 0 {
		return false, fmt.Errorf("a PostgreSQL server (pid %d) is running on %s but its pid file names no port: stop it with pg_ctl stop -D %s", pf.pid, c.pgdata, c.pgdata)
	}
	c.port = pf.port
	if err := c.chooseSocketDir(pf.port); err != nil {
		return false, err
	}
	c.logger.Info("reusing the PostgreSQL server already running on the data directory", "pid", pf.pid, "port", pf.port)
	if err := c.waitReady(ctx); err != nil {
		return false, fmt.Errorf("a PostgreSQL server (pid %d) is already running on %s but does not accept connections on 127.0.0.1:%d: stop it (pg_ctl stop -D %s) and try again: %w", pf.pid, c.pgdata, pf.port, c.pgdata, err)
	}
	c.running = true
	// Stop it at the end only if the process that started it is gone.
	owner := readInt(filepath.Join(c.dataDir, ownerName))
	c.owned = owner == os.Getpid() || !processRunning(owner)
	if c.owned {
		c.remember()
	} else {
		c.logger.Info("the PostgreSQL server belongs to another running process; it will be left running", "owner_pid", owner)
	}
	return true, nil
}

// pickPort returns the remembered port if it is free, otherwise a free port.
func (c *Cluster) pickPort() (int, error) {
	if p := readInt(filepath.Join(c.dataDir, portName)); p > 0 && p <= 65535 && portFree(p) {
		return p, nil
	}
	return freePort()
}

// chooseSocketDir uses pgrun inside the data directory, or a short directory
// under os.TempDir when the socket path would exceed the kernel's limit.
func (c *Cluster) chooseSocketDir(port int) error {
	sock := "/.s.PGSQL." + strconv.Itoa(port)
	if len(c.runDir)+len(sock) <= maxSunPath {
		c.socketDir = c.runDir
		return nil
	}
	sum := sha256.Sum256([]byte(c.dataDir))
	dir := filepath.Join(os.TempDir(), "drbot-pg-"+hex.EncodeToString(sum[:6]))
	if len(dir)+len(sock) > maxSunPath {
		return fmt.Errorf("the Unix socket path for %s would be too long, even under %s: set TMPDIR to a short directory", c.dataDir, os.TempDir())
	}
	if err := ensureOwnedDir(dir, c.acct); err != nil {
		return err
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	want := uint32(os.Geteuid()) //nolint:gosec // a uid is never negative
	if c.acct != nil {
		want = c.acct.uid
	}
	if !fi.IsDir() || ownerUID(fi) != want {
		return fmt.Errorf("socket directory %s is not a directory owned by uid %d: remove it and try again", dir, want)
	}
	c.socketDir = dir
	return nil
}

// writeConf writes the settings drbot manages; postgresql.conf includes them.
func (c *Cluster) writeConf(port int) error {
	var b strings.Builder
	b.WriteString("# Written by drbot at every start: changes here are lost. Put your own settings in postgresql.conf above the include line, or use ALTER SYSTEM.\n")
	fmt.Fprintf(&b, "listen_addresses = '127.0.0.1'\nport = %d\n", port)
	fmt.Fprintf(&b, "unix_socket_directories = '%s'\nunix_socket_permissions = 0700\n", strings.ReplaceAll(c.socketDir, "'", "''"))
	b.WriteString("max_connections = 200\n")
	if c.fsync {
		b.WriteString("fsync = on\nsynchronous_commit = on\nfull_page_writes = on\n")
	} else {
		// synchronous_commit stays on: a commit then reaches the OS before it
		// returns, so tests that kill -9 the server lose nothing they were told
		// was committed (only an OS crash could).
		b.WriteString("fsync = off\nsynchronous_commit = on\nfull_page_writes = off\n")
	}
	return writeOwnedFile(filepath.Join(c.pgdata, confName), []byte(b.String()), c.acct)
}

// rotateLog keeps the server log from growing without bound: above 16 MiB the
// log moves to postgres.log.1 (replacing an older one).
func (c *Cluster) rotateLog() {
	if fileSize(c.logPath) > maxLogSize {
		_ = os.Rename(c.logPath, c.logPath+".1")
	}
}

// remember records the port and this process as the server's owner.
func (c *Cluster) remember() {
	for name, v := range map[string]int{portName: c.port, ownerName: os.Getpid()} {
		if err := os.WriteFile(filepath.Join(c.dataDir, name), []byte(strconv.Itoa(v)+"\n"), 0o600); err != nil {
			c.logger.Warn("could not record the server's state", "file", name, "err", err)
		}
	}
}

// waitReady waits until the server accepts a connection as the superuser.
func (c *Cluster) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	var lastErr error
	for {
		connCtx, connCancel := context.WithTimeout(ctx, 2*time.Second)
		conn, err := pgx.Connect(connCtx, urlFor(c.port, "postgres"))
		if err == nil {
			err = conn.Close(connCtx)
			connCancel()
			return err
		}
		connCancel()
		lastErr = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("PostgreSQL on 127.0.0.1:%d did not accept connections within %s (%w)\nlast lines of %s:\n%s", c.port, readyTimeout, lastErr, c.logPath, c.logTail())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Start starts the server again after Stop, on the same port. It does nothing
// when the server is running.
func (c *Cluster) Start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		return nil
	}
	if err := c.start(ctx, c.port); err != nil {
		return fmt.Errorf("restart PostgreSQL in %s: %w", c.dataDir, err)
	}
	return nil
}

// Stop shuts the server down (pg_ctl stop -m fast) and waits for it to exit.
// It is idempotent. A server that was found running and belongs to another live
// process (e.g. `drbot serve` while this is `drbot shell`) is left running.
func (c *Cluster) Stop(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.running {
		return nil
	}
	c.running = false
	if !c.owned {
		c.logger.Info("leaving PostgreSQL running for the process that started it")
		return nil
	}
	pf, err := readPidFile(filepath.Join(c.pgdata, "postmaster.pid"))
	if errors.Is(err, os.ErrNotExist) || err == nil && !isPostgresProcess(pf.pid) {
		return nil
	}
	out, err := c.run(ctx, "pg_ctl", "stop", "-D", c.pgdata, "-m", "fast", "-w", "-t", "60", "-s")
	if err != nil {
		if _, statErr := os.Stat(filepath.Join(c.pgdata, "postmaster.pid")); errors.Is(statErr, os.ErrNotExist) {
			return nil // it went away by itself meanwhile
		}
		c.running = true
		return fmt.Errorf("stop PostgreSQL in %s: %w\n%s", c.dataDir, err, out)
	}
	_ = os.Remove(filepath.Join(c.dataDir, ownerName))
	if c.socketDir != c.runDir {
		_ = os.Remove(c.socketDir) // the short fallback under os.TempDir, if empty now
	}
	c.logger.Info("PostgreSQL stopped")
	return nil
}

// URL returns the connection URL of database on this cluster, e.g.
// postgres://postgres@127.0.0.1:5432/drbot?sslmode=disable.
func (c *Cluster) URL(database string) string {
	c.mu.Lock()
	port := c.port
	c.mu.Unlock()
	return urlFor(port, database)
}

func urlFor(port int, database string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User(Superuser),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		Path:     "/" + database,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Port returns the TCP port the server listens on (127.0.0.1).
func (c *Cluster) Port() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.port
}

// DataDir returns the absolute data directory given to Start.
func (c *Cluster) DataDir() string { return c.dataDir }

// SocketDir returns the directory holding the server's Unix socket, for
// clients such as `psql -h DIR -U postgres`.
func (c *Cluster) SocketDir() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.socketDir
}

// LogPath returns the path of the server log.
func (c *Cluster) LogPath() string { return c.logPath }

// PID returns the process id of the running postmaster.
func (c *Cluster) PID() (int, error) {
	pf, err := readPidFile(filepath.Join(c.pgdata, "postmaster.pid"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, fmt.Errorf("PostgreSQL in %s is not running", c.dataDir)
		}
		return 0, err
	}
	if !isPostgresProcess(pf.pid) {
		return 0, fmt.Errorf("PostgreSQL in %s is not running (stale pid %d)", c.dataDir, pf.pid)
	}
	return pf.pid, nil
}

// CreateDatabase creates database name unless it exists.
func (c *Cluster) CreateDatabase(ctx context.Context, name string) error {
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return fmt.Errorf("create database %s: connect: %w", name, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	if exists {
		return nil
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // duplicate_database: created concurrently
			return nil
		}
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// DropDatabase drops database name if it exists, disconnecting its sessions.
func (c *Cluster) DropDatabase(ctx context.Context, name string) error {
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return fmt.Errorf("drop database %s: connect: %w", name, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}

// run executes one of the server programs, as the server account when root.
func (c *Cluster) run(ctx context.Context, prog string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(c.binDir, prog), args...)
	cmd.Dir = c.dataDir
	cmd.Env = cleanEnv(c.acct)
	// Own process group: a Ctrl-C aimed at drbot does not reach the server.
	attr := &syscall.SysProcAttr{Setpgid: true}
	if c.acct != nil {
		attr.Credential = c.acct.credential()
	}
	cmd.SysProcAttr = attr
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// logTail returns the last lines of the server log.
func (c *Cluster) logTail() string {
	size := fileSize(c.logPath)
	text := readFrom(c.logPath, max(0, size-8192))
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	if len(lines) == 1 && lines[0] == "" {
		return "(the log is empty)"
	}
	return strings.Join(lines, "\n")
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func readFrom(path string, offset int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return ""
	}
	b, _ := io.ReadAll(io.LimitReader(f, 1<<20))
	return string(b)
}

func readInt(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	v, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return v
}

// portFree reports whether 127.0.0.1:port can be bound now.
func portFree(port int) bool {
	var lc net.ListenConfig
	l, err := lc.Listen(context.Background(), "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	var lc net.ListenConfig
	l, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port on 127.0.0.1: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
