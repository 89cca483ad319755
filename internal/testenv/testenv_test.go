package testenv

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) {
	SetTemplateSetup(func(ctx context.Context, url string) error {
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, "CREATE TABLE migrated (v text); INSERT INTO migrated VALUES ('from the template')")
		return err
	})
	Main(m)
}

func query(t *testing.T, url, sql string) string {
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

func TestPostgresURLClonesTemplateAndDropsAfterTest(t *testing.T) {
	began := time.Now()
	url := PostgresURL(t)
	t.Logf("first PostgresURL took %s", time.Since(began).Round(time.Millisecond))
	if got := query(t, url, "SELECT v FROM migrated"); got != "from the template" {
		t.Fatalf("template content = %q", got)
	}

	var inner string
	t.Run("sub", func(t *testing.T) {
		began := time.Now()
		inner = PostgresURL(t)
		t.Logf("next PostgresURL took %s", time.Since(began).Round(time.Millisecond))
		if inner == url {
			t.Fatal("two calls returned the same database")
		}
		// Each test's database is its own.
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, inner)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "INSERT INTO migrated VALUES ('only in sub')"); err != nil {
			t.Fatal(err)
		}
	})
	if got := query(t, url, "SELECT count(*)::text FROM migrated"); got != "1" {
		t.Errorf("the sub-test's write leaked into this database: %s rows", got)
	}
	name := inner[strings.LastIndex(inner, "/")+1 : strings.Index(inner, "?")]
	if got := query(t, url, "SELECT count(*)::text FROM pg_database WHERE datname = '"+name+"'"); got != "0" {
		t.Errorf("database %s of the finished sub-test still exists", name)
	}
	// Nobody can connect to the template, so cloning never finds it busy.
	c := Cluster(t)
	if _, err := pgx.Connect(context.Background(), c.URL(TemplateDatabase)); err == nil {
		t.Error("connected to the template database")
	}
}

func TestPostgresURLParallel(t *testing.T) {
	for i := range 4 {
		t.Run("p", func(t *testing.T) {
			t.Parallel()
			url := PostgresURL(t)
			if got := query(t, url, "SELECT current_database()"); !strings.HasPrefix(got, "t") {
				t.Errorf("database %d = %q", i, got)
			}
		})
	}
}

func TestNewClusterStopStartKeepsData(t *testing.T) {
	c := NewCluster(t)
	ctx := context.Background()
	if c == Cluster(t) {
		t.Fatal("NewCluster returned the shared cluster")
	}
	if err := c.CreateDatabase(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, c.URL("app"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE kept AS SELECT 'still here'::text AS v"); err != nil {
		t.Fatal(err)
	}
	_ = conn.Close(ctx)
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := pgx.Connect(ctx, c.URL("app")); err == nil {
		t.Fatal("connected to a stopped cluster")
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if got := query(t, c.URL("app"), "SELECT v FROM kept"); got != "still here" {
		t.Errorf("after restart: %q", got)
	}
}

func TestMotoAnswersAndResets(t *testing.T) {
	began := time.Now()
	endpoint := Moto(t)
	t.Logf("first Moto took %s", time.Since(began).Round(time.Millisecond))
	if !strings.HasPrefix(endpoint, "http://127.0.0.1:") {
		t.Fatalf("endpoint = %s", endpoint)
	}
	// Create a bucket with a plain S3 REST call (moto does not check signatures).
	req, _ := http.NewRequest(http.MethodPut, endpoint+"/testenv-bucket", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("create bucket: %s", resp.Status)
	}
	if !strings.Contains(listBuckets(t, endpoint), "<Name>testenv-bucket</Name>") {
		t.Fatal("bucket not listed")
	}
	if again := Moto(t); again != endpoint {
		t.Errorf("second Moto = %s, want the same server %s", again, endpoint)
	}
	if strings.Contains(listBuckets(t, endpoint), "testenv-bucket") {
		t.Error("Moto did not reset the state")
	}
}

func listBuckets(t *testing.T, endpoint string) string {
	t.Helper()
	resp, err := http.Get(endpoint + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /: %s: %s", resp.Status, b)
	}
	return string(b)
}

func TestDatabaseName(t *testing.T) {
	n := databaseName("TestX/sub case#1/" + strings.Repeat("y", 80))
	if len(n) > 63 || strings.ContainsAny(n, "/# ") || n != strings.ToLower(n) {
		t.Errorf("databaseName = %q", n)
	}
}

func TestSweepRemovesDirsOfDeadTestBinaries(t *testing.T) {
	dead := filepath.Join(os.TempDir(), "drbot-testenv-2147483646-sweep")
	if err := os.MkdirAll(filepath.Join(dead, "shared", "pgdata"), 0o700); err != nil {
		t.Fatal(err)
	}
	// A pid file naming a process that is not postgres must not get it signalled.
	if err := os.WriteFile(filepath.Join(dead, "shared", "pgdata", "postmaster.pid"), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	alive := filepath.Join(os.TempDir(), "drbot-testenv-"+strconv.Itoa(os.Getppid())+"-sweep")
	if err := os.MkdirAll(alive, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(alive); _ = os.RemoveAll(dead) })
	sweepStale()
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("directory of a dead test binary survived: %v", err)
	}
	if _, err := os.Stat(alive); err != nil {
		t.Errorf("directory of a live process was removed: %v", err)
	}
}
