package restoredb_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/awsconf"
	"github.com/drbot-dev/drbot/actions/restoredb"
	"github.com/drbot-dev/drbot/actions/storage"
	"github.com/drbot-dev/drbot/internal/testenv"
	"github.com/drbot-dev/drbot/runbook"
)

// BenchmarkRestoreFromS3 restores a custom-format dump of about
// DRBOT_BENCH_RESTORE_MIB MiB (default 64) from moto S3 (or, with
// DRBOT_BENCH_S3=versitygw, from a versitygw of its own) the bot's way
// (restore-db's Execute in a child process: streamed into pg_restore, then
// checks and the swap) and the runbook's manual way in the same run
// (`aws s3 cp` to disk, then pg_restore into a new database), and reports
// both times, their ratio and the bot's peak RSS. It never fails on timing.
func BenchmarkRestoreFromS3(b *testing.B) {
	ctx := context.Background()
	mib := 64
	if v := os.Getenv("DRBOT_BENCH_RESTORE_MIB"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("DRBOT_BENCH_RESTORE_MIB=%q: want a positive number of MiB", v)
		}
		mib = n
	}
	liveURL := testenv.PostgresURL(b)
	adminURL := testenv.Cluster(b).URL("postgres")
	u, _ := url.Parse(liveURL)
	live := strings.TrimPrefix(u.Path, "/")
	exec1 := func(dbURL, sql string) {
		b.Helper()
		conn, err := pgx.Connect(ctx, dbURL)
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, sql); err != nil {
			b.Fatalf("%s: %v", sql, err)
		}
	}
	// md5 text compresses to roughly half in a custom dump: ~43 dump bytes a row.
	rows := mib << 20 / 43
	exec1(liveURL, fmt.Sprintf(`CREATE TABLE events AS
		SELECT i AS id, md5(i::text) AS a, md5((i * 7)::text) AS b, now() AS at FROM generate_series(1, %d) i`, rows))
	exec1(liveURL, `ALTER TABLE events ADD PRIMARY KEY (id)`)

	dir := b.TempDir()
	dump := filepath.Join(dir, "bench.dump")
	if out, err := exec.Command("pg_dump", "--format", "custom", "--dbname", liveURL, "--file", dump).CombinedOutput(); err != nil {
		b.Fatalf("pg_dump: %v: %s", err, out)
	}
	fi, err := os.Stat(dump)
	if err != nil {
		b.Fatal(err)
	}
	server, endpoint, access, secret := testenv.BenchS3(b)
	b.Logf("S3 server: %s (%s)", server, endpoint)
	cfg, err := awsconf.Load(ctx, "us-east-1", awsconf.Static(endpoint, access, secret))
	if err != nil {
		b.Fatal(err)
	}
	client := awsconf.S3(cfg)
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("bench")}); err != nil {
		b.Fatal(err)
	}
	f, err := os.Open(dump)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bench"), Key: aws.String("db/bench.dump"), Body: f, ContentLength: aws.Int64(fi.Size())}); err != nil {
		b.Fatal(err)
	}
	f.Close()

	envVar := "BENCH_DB_URL"
	b.Setenv(envVar, liveURL)
	loc, _ := runbook.ParseLocation("s3://bench/db/")
	rb := &runbook.Config{Services: []runbook.Service{{Name: "bench", Databases: []runbook.Database{{
		Name: live, URLEnv: envVar, Backups: &runbook.Backups{Location: loc},
		Checks: []runbook.Check{{Name: "events", SQL: "SELECT count(*) FROM events", Expect: runbook.Expect{Op: ">", Value: 0}}},
	}}}}}
	now := time.Now()
	a := restoredb.New(restoredb.Options{
		Config: func() *runbook.Config { return rb },
		Storage: func(ctx context.Context, loc runbook.Location) (storage.Store, error) {
			return storage.New(ctx, loc, storage.Options{S3: client})
		},
		Now: func() time.Time { return now },
	})
	_, awsErr := exec.LookPath("aws")

	var botTotal, manualTotal, downloadTotal time.Duration
	var botHWM, treeRSS, manualRSS int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		now = now.Add(time.Second)
		p, err := a.Plan(ctx, actions.Params{Service: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		planJSON, _ := json.Marshal(p)
		b.StartTimer()

		// The bot's way, in a child process so its peak RSS is its own.
		began := time.Now()
		cmd := exec.Command(os.Args[0], "-test.run=^TestBenchChildRestore$")
		cmd.Env = append(os.Environ(), "RESTOREDB_BENCH_PLAN="+string(planJSON), "RESTOREDB_BENCH_ENDPOINT="+endpoint,
			"RESTOREDB_BENCH_ACCESS="+access, "RESTOREDB_BENCH_SECRET="+secret)
		out, err := cmd.CombinedOutput()
		botTotal += time.Since(began)
		if err != nil {
			b.Fatalf("bot restore: %v\n%s", err, out)
		}
		if hwm := parseHWM(string(out)); hwm > botHWM {
			botHWM = hwm
		}
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && ru.Maxrss > treeRSS {
			treeRSS = ru.Maxrss
		}

		// The runbook's way: download to disk, then pg_restore into a new database.
		began = time.Now()
		file := filepath.Join(dir, fmt.Sprintf("manual-%d.dump", i))
		if awsErr == nil {
			dl := exec.Command("aws", "s3", "cp", "--endpoint-url", endpoint, "--only-show-errors", "s3://bench/db/bench.dump", file)
			dl.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+access, "AWS_SECRET_ACCESS_KEY="+secret, "AWS_DEFAULT_REGION=us-east-1")
			if out, err := dl.CombinedOutput(); err != nil {
				b.Fatalf("aws s3 cp: %v: %s", err, out)
			}
			if ru, ok := dl.ProcessState.SysUsage().(*syscall.Rusage); ok && ru.Maxrss > manualRSS {
				manualRSS = ru.Maxrss
			}
		} else {
			b.Fatalf("the manual baseline needs the aws CLI: %v", awsErr)
		}
		downloadTotal += time.Since(began)
		manualDB := fmt.Sprintf("%s_manual_%d", live, i)
		exec1(adminURL, "CREATE DATABASE "+pgx.Identifier{manualDB}.Sanitize())
		mu, _ := url.Parse(liveURL)
		mu.Path = "/" + manualDB
		if out, err := exec.Command("pg_restore", "--exit-on-error", "--dbname", mu.String(), file).CombinedOutput(); err != nil {
			b.Fatalf("manual pg_restore: %v: %s", err, out)
		}
		manualTotal += time.Since(began)
		b.StopTimer()
		_ = os.Remove(file)
		s, _ := restoredb.SpecOf(p)
		for _, name := range []string{manualDB, s.Outgoing} {
			_ = testenv.Cluster(b).DropDatabase(ctx, name)
		}
		b.StartTimer()
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(float64(fi.Size())/(1<<20), "dump-MiB")
	b.ReportMetric(botTotal.Seconds()/n, "bot-s")
	b.ReportMetric(manualTotal.Seconds()/n, "manual-s")
	b.ReportMetric(downloadTotal.Seconds()/n, "manual-download-s")
	b.ReportMetric(botTotal.Seconds()/manualTotal.Seconds(), "bot/manual")
	b.ReportMetric(float64(botHWM)/1024, "bot-peak-RSS-MiB")
	b.ReportMetric(float64(treeRSS)/1024, "bot+pg_restore-max-RSS-MiB")
	b.ReportMetric(float64(manualRSS)/1024, "aws-cli-peak-RSS-MiB")
}

// parseHWM reads the child's "VmHWM_KB=N" line.
func parseHWM(out string) int64 {
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "VmHWM_KB="); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

// TestBenchChildRestore is BenchmarkRestoreFromS3's child process: it runs
// Execute of the plan it is given and prints its own peak RSS (VmHWM).
func TestBenchChildRestore(t *testing.T) {
	planJSON := os.Getenv("RESTOREDB_BENCH_PLAN")
	if planJSON == "" {
		return // only meaningful as the child
	}
	ctx := context.Background()
	var p actions.Plan
	if err := json.Unmarshal([]byte(planJSON), &p); err != nil {
		t.Fatal(err)
	}
	cfg, err := awsconf.Load(ctx, "us-east-1", awsconf.Static(os.Getenv("RESTOREDB_BENCH_ENDPOINT"),
		os.Getenv("RESTOREDB_BENCH_ACCESS"), os.Getenv("RESTOREDB_BENCH_SECRET")))
	if err != nil {
		t.Fatal(err)
	}
	client := awsconf.S3(cfg)
	a := restoredb.New(restoredb.Options{
		Config: func() *runbook.Config { return nil },
		Storage: func(ctx context.Context, loc runbook.Location) (storage.Store, error) {
			return storage.New(ctx, loc, storage.Options{S3: client})
		},
	})
	if err := a.Execute(ctx, p, newJournal("")); err != nil {
		t.Fatal(err)
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			fmt.Printf("VmHWM_KB=%s\n", strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
		}
	}
}
