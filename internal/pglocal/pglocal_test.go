package pglocal

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// requireBinaries fails the test when the server binaries are missing, unless
// DRBOT_TEST_ALLOW_SKIP=1 is set outside CI (then it skips, loudly).
func requireBinaries(t *testing.T) {
	t.Helper()
	if _, err := FindBinaries(); err != nil {
		if os.Getenv("DRBOT_TEST_ALLOW_SKIP") == "1" && os.Getenv("CI") == "" {
			t.Skipf("SKIPPED (DRBOT_TEST_ALLOW_SKIP=1): %v", err)
		}
		t.Fatal(err)
	}
}

// dataDir returns a fresh directory the server account can reach even when the
// tests run as root (t.TempDir's parent is mode 0700).
func dataDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Chmod(filepath.Dir(dir), 0o711); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Dir(filepath.Dir(dir)), 0o711); err != nil {
		t.Fatal(err)
	}
	return dir
}

func startCluster(t *testing.T, dir string) *Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := Start(ctx, Options{DataDir: dir, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Stop(context.Background()); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return c
}

func exec1(t *testing.T, url, sql string, args ...any) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func queryString(t *testing.T, url, sql string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	defer conn.Close(ctx)
	var s string
	if err := conn.QueryRow(ctx, sql).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

func TestFindBinariesReal(t *testing.T) {
	requireBinaries(t)
	dir, err := FindBinaries()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"initdb", "pg_ctl", "postgres"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("FindBinaries returned %s without %s: %v", dir, name, err)
		}
	}
}

func TestFindBinariesPrefersHighestMajor(t *testing.T) {
	root := t.TempDir()
	mk := func(version string, progs ...string) {
		bin := filepath.Join(root, version, "bin")
		if err := os.MkdirAll(bin, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, p := range progs {
			if err := os.WriteFile(filepath.Join(bin, p), []byte("#!/bin/sh\n"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	mk("9.6", "initdb", "pg_ctl", "postgres")
	mk("14", "initdb", "pg_ctl", "postgres")
	mk("16", "initdb", "pg_ctl") // incomplete: no postgres
	t.Setenv("PATH", t.TempDir())
	old := serverBinGlob
	serverBinGlob = filepath.Join(root, "*", "bin")
	t.Cleanup(func() { serverBinGlob = old })

	dir, err := FindBinaries()
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(root, "14", "bin"); dir != want {
		t.Errorf("FindBinaries = %s, want %s", dir, want)
	}
	if d, ok := binariesForMajor(9); !ok || d != filepath.Join(root, "9.6", "bin") {
		t.Errorf("binariesForMajor(9) = %s, %v", d, ok)
	}

	serverBinGlob = filepath.Join(t.TempDir(), "*", "bin")
	_, err = FindBinaries()
	if !errors.Is(err, ErrNoBinaries) {
		t.Fatalf("err = %v, want ErrNoBinaries", err)
	}
	const want = "no PostgreSQL server binaries found (looked for initdb on PATH and in /usr/lib/postgresql/*/bin): install PostgreSQL (e.g. apt-get install postgresql) or set DATABASE_URL"
	if err.Error() != want {
		t.Errorf("message = %q\nwant      %q", err, want)
	}
}

func TestStartCreateQueryStopRestart(t *testing.T) {
	requireBinaries(t)
	t.Parallel()
	dir := dataDir(t)
	c := startCluster(t, dir)

	if !strings.HasPrefix(c.URL("app"), "postgres://postgres@127.0.0.1:") || !strings.HasSuffix(c.URL("app"), "/app?sslmode=disable") {
		t.Errorf("URL = %s", c.URL("app"))
	}
	ctx := context.Background()
	for range 2 { // idempotent
		if err := c.CreateDatabase(ctx, "app"); err != nil {
			t.Fatal(err)
		}
	}
	exec1(t, c.URL("app"), "CREATE TABLE kept (v text)")
	exec1(t, c.URL("app"), "INSERT INTO kept VALUES ('before restart')")
	if got := queryString(t, c.URL("app"), "SHOW listen_addresses"); got != "127.0.0.1" {
		t.Errorf("listen_addresses = %q", got)
	}
	if got := queryString(t, c.URL("app"), "SHOW fsync"); got != "off" {
		t.Errorf("fsync = %q, want off for Fsync=false", got)
	}
	if got := queryString(t, c.URL("app"), "SHOW server_encoding"); got != "UTF8" {
		t.Errorf("server_encoding = %q", got)
	}
	port := c.Port()

	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(ctx); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if _, err := c.PID(); err == nil {
		t.Fatal("PID succeeds after Stop")
	}

	// A new Start on the same data directory: same port, same data.
	c2 := startCluster(t, dir)
	if c2.Port() != port {
		t.Errorf("port after restart = %d, want the remembered %d", c2.Port(), port)
	}
	if got := queryString(t, c2.URL("app"), "SELECT v FROM kept"); got != "before restart" {
		t.Errorf("after restart: %q", got)
	}

	// Stop and Start on the same Cluster value.
	if err := c2.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if got := queryString(t, c2.URL("app"), "SELECT v FROM kept"); got != "before restart" {
		t.Errorf("after Cluster.Start: %q", got)
	}

	// The Unix socket works too.
	sock := filepath.Join(c2.SocketDir(), ".s.PGSQL."+strconv.Itoa(c2.Port()))
	if _, err := os.Stat(sock); err != nil {
		t.Errorf("no Unix socket: %v", err)
	}
	if got := queryString(t, "host="+c2.SocketDir()+" port="+strconv.Itoa(c2.Port())+" user=postgres dbname=app", "SELECT v FROM kept"); got != "before restart" {
		t.Errorf("over the socket: %q", got)
	}
}

func TestRecoversAfterKill9OfPostgres(t *testing.T) {
	requireBinaries(t)
	t.Parallel()
	dir := dataDir(t)
	c := startCluster(t, dir)
	ctx := context.Background()
	if err := c.CreateDatabase(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	exec1(t, c.URL("app"), "CREATE TABLE kept AS SELECT 'survives kill -9'::text AS v")
	pid, err := c.PID()
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitGone(t, pid)
	if _, err := os.Stat(filepath.Join(dir, "pgdata", "postmaster.pid")); err != nil {
		t.Fatalf("expected a stale postmaster.pid after kill -9: %v", err)
	}

	c2 := startCluster(t, dir)
	if got := queryString(t, c2.URL("app"), "SELECT v FROM kept"); got != "survives kill -9" {
		t.Errorf("after recovery: %q", got)
	}
	if pid2, err := c2.PID(); err != nil || pid2 == pid {
		t.Errorf("PID after recovery = %d, %v (old %d)", pid2, err, pid)
	}
}

// waitGone waits until pid has exited (a zombie counts as exited).
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for processRunning(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still running after SIGKILL", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestReusesServerLeftRunning(t *testing.T) {
	requireBinaries(t)
	t.Parallel()
	dir := dataDir(t)
	ctx := context.Background()
	c1 := startCluster(t, dir)
	pid1, err := c1.PID()
	if err != nil {
		t.Fatal(err)
	}

	// Another process (here: a live sleep) owns the server: reuse it, never stop it.
	owner := exec.Command("sleep", "60")
	if err := owner.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = owner.Process.Kill(); _ = owner.Wait() })
	if err := os.WriteFile(filepath.Join(dir, "owner.pid"), []byte(strconv.Itoa(owner.Process.Pid)), 0o600); err != nil {
		t.Fatal(err)
	}
	guest := startCluster(t, dir)
	if guest.Port() != c1.Port() {
		t.Errorf("guest port %d, want %d", guest.Port(), c1.Port())
	}
	if pid, _ := guest.PID(); pid != pid1 {
		t.Errorf("guest started a new server (pid %d, want %d)", pid, pid1)
	}
	if err := guest.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if !processRunning(pid1) {
		t.Fatal("Stop of a guest stopped the owner's server")
	}

	// The owner died (drbot was kill -9'd) but postgres survived: adopt it.
	_ = owner.Process.Kill()
	_ = owner.Wait()
	adopter := startCluster(t, dir)
	if pid, _ := adopter.PID(); pid != pid1 {
		t.Errorf("adopter started a new server (pid %d, want %d)", pid, pid1)
	}
	if err := adopter.CreateDatabase(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	if err := adopter.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	waitGone(t, pid1)
}

func TestLongDataDirUsesShortSocketDir(t *testing.T) {
	requireBinaries(t)
	t.Parallel()
	dir := filepath.Join(dataDir(t), strings.Repeat("d", 60), strings.Repeat("e", 40))
	c := startCluster(t, dir)
	if strings.HasPrefix(c.SocketDir(), c.DataDir()) {
		t.Fatalf("socket dir %s is inside the long data dir", c.SocketDir())
	}
	if len(filepath.Join(c.SocketDir(), ".s.PGSQL.65535")) > maxSunPath {
		t.Fatalf("socket path too long: %s", c.SocketDir())
	}
	if got := queryString(t, "host="+c.SocketDir()+" port="+strconv.Itoa(c.Port())+" user=postgres dbname=postgres", "SELECT 'ok'"); got != "ok" {
		t.Errorf("socket query = %q", got)
	}
}

func TestRootUnreachableParentIsNamed(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only meaningful as root: the server then runs as the postgres user")
	}
	requireBinaries(t)
	private := filepath.Join(t.TempDir(), "private")
	if err := os.Mkdir(private, 0o700); err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(filepath.Dir(private), 0o711)
	_, err := Start(context.Background(), Options{DataDir: filepath.Join(private, ".drbot")})
	if err == nil {
		t.Fatal("Start succeeded under a directory postgres cannot enter")
	}
	if !strings.Contains(err.Error(), "cannot enter "+private+" ") || !strings.Contains(err.Error(), "DATABASE_URL") {
		t.Errorf("error does not name the blocking directory and the way out: %v", err)
	}
	fi, err := os.Stat(private)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("the parent's mode was changed: %v %v", fi.Mode(), err)
	}
}

func TestRejectsForeignNonEmptyDir(t *testing.T) {
	requireBinaries(t)
	dir := dataDir(t)
	if err := os.MkdirAll(filepath.Join(dir, "pgdata"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pgdata", "notes.txt"), []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Start(context.Background(), Options{DataDir: dir})
	if err == nil || !strings.Contains(err.Error(), "holds no PostgreSQL cluster") {
		t.Fatalf("err = %v", err)
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func TestReachable(t *testing.T) {
	if os.Geteuid() != 0 {
		if err := Reachable(filepath.Join(t.TempDir(), "data")); err != nil {
			t.Fatalf("as a normal user Reachable = %v, want nil", err)
		}
		return
	}
	base := t.TempDir()
	closed := filepath.Join(base, "closed")
	open := filepath.Join(base, "open")
	for _, d := range []string{closed, open} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{filepath.Dir(base), base, open} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(open, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Reachable(filepath.Join(closed, "sub", ".drbot")); !errors.Is(err, ErrUnreachable) {
		t.Errorf("under a 0700 root-owned dir: Reachable = %v, want ErrUnreachable", err)
	}
	if err := Reachable(filepath.Join(open, ".drbot")); err != nil {
		t.Errorf("under an open dir: Reachable = %v, want nil", err)
	}
	// An existing 0700 data directory is fine: Start opens it up itself.
	own := filepath.Join(open, "own")
	if err := os.Mkdir(own, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := Reachable(own); err != nil {
		t.Errorf("existing 0700 data dir: Reachable = %v, want nil", err)
	}
}

// TestServerEnvironmentHoldsNoSecrets: the private server drbot starts (where
// the demo database lives, and which SQL such as COPY ... TO PROGRAM could
// read) gets a minimal environment, none of drbot's tokens and keys.
func TestServerEnvironmentHoldsNoSecrets(t *testing.T) {
	requireBinaries(t)
	secrets := map[string]string{"SLACK_BOT_TOKEN": "xoxb-server-must-not-see", "AWS_SECRET_ACCESS_KEY": "aws-server-must-not-see",
		"PAGERDUTY_API_TOKEN": "pd-server-must-not-see", "SHOP_DATABASE_URL": "postgres://app:server-must-not-see@db/shop"}
	for k, v := range secrets {
		t.Setenv(k, v)
	}
	c := startCluster(t, dataDir(t))
	pid, err := c.PID()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		t.Skipf("no /proc environ here: %v", err)
	}
	env := string(b)
	for k := range secrets {
		if strings.Contains(env, k+"=") {
			t.Errorf("the server's environment holds %s", k)
		}
	}
	if !strings.Contains(env, "PATH=") || !strings.Contains(env, "LC_ALL=C\x00") {
		t.Errorf("the server's environment lacks PATH or LC_ALL=C: %q", env)
	}
}
