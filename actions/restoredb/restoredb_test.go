package restoredb_test

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/awsconf"
	"github.com/drbot-dev/drbot/actions/kube"
	"github.com/drbot-dev/drbot/actions/kube/kubetest"
	"github.com/drbot-dev/drbot/actions/restoredb"
	"github.com/drbot-dev/drbot/actions/storage"
	"github.com/drbot-dev/drbot/internal/testenv"
	"github.com/drbot-dev/drbot/runbook"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const (
	service   = "shop"
	namespace = "shop-prod"
	writer    = "web"
	replicas  = 3
	password  = "hunter2-not-for-logs" // in the URL; trust auth ignores it, nothing may show it
	seedRows  = 100
)

var envSeq atomic.Int64

// fixture is a live database with a backup made by the machine's pg_dump,
// a runbook config pointing at both, and a simulated Kubernetes cluster
// holding the writer.
type fixture struct {
	t       *testing.T
	ctx     context.Context
	liveURL string // without the password, for the test's own queries
	live    string
	admin   string // URL of the cluster's postgres database
	envVar  string
	s3      *s3.Client
	kube    *kubetest.Cluster
	cfg     *runbook.Config
	db      *runbook.Database
	now     time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{t: t, ctx: ctx, liveURL: testenv.PostgresURL(t), admin: testenv.Cluster(t).URL("postgres"), now: time.Now()}
	u, _ := url.Parse(f.liveURL)
	f.live = strings.TrimPrefix(u.Path, "/")
	u.User = url.UserPassword(u.User.Username(), password)
	f.envVar = fmt.Sprintf("SHOP_DB_URL_%d", envSeq.Add(1))
	t.Setenv(f.envVar, u.String())
	f.exec(f.liveURL, `CREATE TABLE experiments (id int PRIMARY KEY, note text, created timestamptz DEFAULT now())`)
	// Notes that start COPY data lines with \N (NULL) and escapes.
	f.exec(f.liveURL, fmt.Sprintf(`INSERT INTO experiments (id, note)
		SELECT i, CASE WHEN i %% 3 = 0 THEN NULL WHEN i %% 3 = 1 THEN E'\tline\nbreak \\ back' ELSE 'run ' || i END
		FROM generate_series(1, %d) i`, seedRows))
	f.kube = kubetest.New(t, 5*time.Millisecond, kubetest.Deployment(namespace, writer, replicas))
	f.db = &runbook.Database{
		Name: f.live, URLEnv: f.envVar,
		Writers: []runbook.WorkloadRef{{Kind: runbook.KindDeployment, Name: writer}},
		Checks:  []runbook.Check{{Name: "experiments present", SQL: "SELECT count(*) FROM experiments", Expect: runbook.Expect{Op: ">", Value: 0}}},
	}
	f.cfg = &runbook.Config{Services: []runbook.Service{{
		Name: service, Objectives: runbook.Objectives{RPO: runbook.Duration{Duration: 4 * time.Hour}},
		Kubernetes: &runbook.Kubernetes{Namespace: namespace},
	}}}
	return f
}

func (f *fixture) exec(dbURL, sql string) {
	f.t.Helper()
	conn, err := pgx.Connect(f.ctx, dbURL)
	if err != nil {
		f.t.Fatal(err)
	}
	defer conn.Close(f.ctx)
	if _, err := conn.Exec(f.ctx, sql); err != nil {
		f.t.Fatalf("%s: %v", sql, err)
	}
}

func (f *fixture) dbURL(name string) string {
	u, _ := url.Parse(f.liveURL)
	u.Path = "/" + name
	return u.String()
}

// count returns the rows of experiments in database name and whether the
// live-only marker row (id -1, written after the backup) is there.
func (f *fixture) count(name string) (rows int, marker bool) {
	f.t.Helper()
	conn, err := pgx.Connect(f.ctx, f.dbURL(name))
	if err != nil {
		f.t.Fatalf("connect to %s: %v", name, err)
	}
	defer conn.Close(f.ctx)
	if err := conn.QueryRow(f.ctx, `SELECT count(*), count(*) FILTER (WHERE id = -1) > 0 FROM experiments`).Scan(&rows, &marker); err != nil {
		f.t.Fatalf("count in %s: %v", name, err)
	}
	return rows, marker
}

// databases returns the databases whose names start with prefix.
func (f *fixture) databases(prefix string) []string {
	f.t.Helper()
	conn, err := pgx.Connect(f.ctx, f.admin)
	if err != nil {
		f.t.Fatal(err)
	}
	defer conn.Close(f.ctx)
	rows, err := conn.Query(f.ctx, `SELECT datname FROM pg_database WHERE starts_with(datname, $1) ORDER BY datname`, prefix)
	if err != nil {
		f.t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() {
		for _, n := range names {
			if n != f.live {
				_ = testenv.Cluster(f.t).DropDatabase(context.Background(), n)
			}
		}
	})
	return names
}

// dump runs pg_dump on the live database in format ("custom", "sql",
// "sql.gz") into dir and returns the file.
func (f *fixture) dump(dir, name, format string) string {
	f.t.Helper()
	out := filepath.Join(dir, name)
	args := []string{"--dbname", f.liveURL, "--no-password"}
	if format == restoredb.FormatCustom {
		args = append(args, "--format", "custom")
	}
	cmd := exec.Command("pg_dump", args...)
	file, err := os.Create(out)
	if err != nil {
		f.t.Fatal(err)
	}
	defer file.Close()
	var w io.Writer = file
	var gz *gzip.Writer
	if format == restoredb.FormatSQLGz {
		gz = gzip.NewWriter(file)
		w = gz
	}
	cmd.Stdout = w
	if b, err := func() ([]byte, error) {
		var stderr strings.Builder
		cmd.Stderr = &stderr
		err := cmd.Run()
		return []byte(stderr.String()), err
	}(); err != nil {
		f.t.Fatalf("pg_dump: %v: %s", err, b)
	}
	if gz != nil {
		if err := gz.Close(); err != nil {
			f.t.Fatal(err)
		}
	}
	return out
}

// afterBackup changes live so it differs from the backup: a marker row.
func (f *fixture) afterBackup() {
	f.exec(f.liveURL, `INSERT INTO experiments (id, note) VALUES (-1, 'written after the backup')`)
}

// useS3 creates a bucket in moto, uploads files to prefix db/ and points
// the database's backups at it.
func (f *fixture) useS3(files ...string) {
	f.t.Helper()
	cfg, err := awsconf.Load(f.ctx, "us-east-1", awsconf.Static(testenv.Moto(f.t), "test", "test"))
	if err != nil {
		f.t.Fatal(err)
	}
	f.s3 = awsconf.S3(cfg)
	if _, err := f.s3.CreateBucket(f.ctx, &s3.CreateBucketInput{Bucket: aws.String("shop-backups")}); err != nil {
		f.t.Fatal(err)
	}
	for _, p := range files {
		f.upload(filepath.Base(p), p)
	}
	loc, _ := runbook.ParseLocation("s3://shop-backups/db/")
	f.db.Backups = &runbook.Backups{Location: loc}
}

func (f *fixture) upload(name, path string) {
	f.t.Helper()
	file, err := os.Open(path)
	if err != nil {
		f.t.Fatal(err)
	}
	defer file.Close()
	if _, err := f.s3.PutObject(f.ctx, &s3.PutObjectInput{Bucket: aws.String("shop-backups"), Key: aws.String("db/" + name), Body: file}); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) useDir(dir string) {
	loc, err := runbook.ParseLocation("file://" + dir + "/")
	if err != nil {
		f.t.Fatal(err)
	}
	f.db.Backups = &runbook.Backups{Location: loc}
}

func (f *fixture) options() restoredb.Options {
	f.cfg.Services[0].Databases = []runbook.Database{*f.db}
	return restoredb.Options{
		Config: func() *runbook.Config { return f.cfg },
		Scaler: kube.New(f.kube),
		Storage: func(ctx context.Context, loc runbook.Location) (storage.Store, error) {
			return storage.New(ctx, loc, storage.Options{S3: f.s3})
		},
		Now: func() time.Time { return f.now },
	}
}

func (f *fixture) replicas() int32 {
	f.t.Helper()
	d, err := f.kube.AppsV1().Deployments(namespace).Get(f.ctx, writer, metav1.GetOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	return *d.Spec.Replicas
}

func (f *fixture) plan(a actions.Action, flags map[string]string) actions.Plan {
	f.t.Helper()
	p, err := a.Plan(f.ctx, actions.Params{Service: service, Flags: flags})
	if err != nil {
		f.t.Fatalf("Plan: %v", err)
	}
	f.noSecret(p)
	return p
}

// noSecret fails when v's JSON (or text) holds the password.
func (f *fixture) noSecret(v any) {
	f.t.Helper()
	b, _ := json.Marshal(v)
	if strings.Contains(string(b), password) || strings.Contains(fmt.Sprint(v), password) {
		f.t.Fatalf("the database password leaked into %T: %s", v, b)
	}
}

func spec(t *testing.T, p actions.Plan) restoredb.Spec {
	t.Helper()
	s, err := restoredb.SpecOf(p)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func isRefusal(err error) bool {
	var r *actions.Refusal
	return errors.As(err, &r)
}

// assertRestored checks the outcome of a successful restore.
func (f *fixture) assertRestored(p actions.Plan, j *journal) {
	f.t.Helper()
	s := spec(f.t, p)
	if rows, marker := f.count(f.live); rows != seedRows || marker {
		f.t.Errorf("live after restore: %d rows, marker %v; want the backup's %d rows without the marker", rows, marker, seedRows)
	}
	if rows, marker := f.count(s.Outgoing); rows != seedRows+1 || !marker {
		f.t.Errorf("pre-restore database %s: %d rows, marker %v; want the old live data", s.Outgoing, rows, marker)
	}
	if got := f.databases(s.Incoming); len(got) != 0 {
		f.t.Errorf("side database still exists: %v", got)
	}
	if got := f.replicas(); got != replicas {
		f.t.Errorf("writer replicas = %d after the restore, want %d", got, replicas)
	}
	for _, n := range j.notes() {
		f.noSecret(n)
	}
}

func TestRestoreEachFormatFromS3(t *testing.T) {
	for _, tc := range []struct{ format, name string }{
		{restoredb.FormatCustom, "shop-20261123.dump"},
		{restoredb.FormatSQL, "shop-20261123.sql"},
		{restoredb.FormatSQLGz, "shop-20261123.sql.gz"},
	} {
		t.Run(tc.format, func(t *testing.T) {
			f := newFixture(t)
			file := f.dump(t.TempDir(), tc.name, tc.format)
			f.afterBackup()
			f.useS3(file)
			a := restoredb.New(f.options())
			p := f.plan(a, nil)
			s := spec(t, p)
			if s.Backup == nil || s.Backup.Key != "db/"+tc.name || s.Backup.ETag == "" || s.Format != tc.format {
				t.Fatalf("plan pins %+v (format %s), want db/%s with its ETag", s.Backup, s.Format, tc.name)
			}
			stamp := f.now.UTC().Format(restoredb.StampFormat)
			if !strings.HasSuffix(s.Incoming, "_restore_"+stamp) || !strings.HasSuffix(s.Outgoing, "_pre_restore_"+stamp) ||
				!strings.HasPrefix(f.live, strings.TrimSuffix(s.Outgoing, "_pre_restore_"+stamp)) || len(s.Outgoing) > 63 {
				t.Errorf("side %s, pre-restore %s", s.Incoming, s.Outgoing)
			}
			if w := notSuperuser(p.Warnings); len(w) != 0 {
				t.Errorf("warnings for a fresh backup: %v", w)
			}
			wantSteps := []string{"restore-side", "check-side", "scale-down/deployment/web", "terminate-connections", "swap", "scale-up/deployment/web", "check-live"}
			var got []string
			for _, st := range p.Steps {
				got = append(got, st.Name)
			}
			if strings.Join(got, ",") != strings.Join(wantSteps, ",") {
				t.Errorf("steps %v, want %v", got, wantSteps)
			}

			j := newJournal("")
			if err := a.Execute(f.ctx, p, j); err != nil {
				t.Fatalf("Execute: %v\nevents %v\nnotes %v", err, j.events(), j.notes())
			}
			f.assertRestored(p, j)
			pr, ok := j.lastProgress()
			if !ok || pr.Done != s.Backup.Size || pr.Total != s.Backup.Size || pr.Unit != "bytes" || pr.Step != restoredb.StepRestoreSide {
				t.Errorf("last progress %+v, want %d of %d bytes", pr, s.Backup.Size, s.Backup.Size)
			}
			rep, err := a.Verify(f.ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			if !rep.OK() || len(rep.Checks) != 1 || rep.Checks[0].Observed != fmt.Sprint(seedRows) || rep.Checks[0].Kind != "sql" || rep.Checks[0].Expected != "> 0" {
				t.Errorf("Verify = %+v", rep)
			}
			// Execute again: every step is done, nothing runs twice.
			j2 := j
			before := len(j2.events())
			if err := a.Execute(f.ctx, p, j2); err != nil {
				t.Fatalf("second Execute: %v", err)
			}
			for _, e := range j2.events()[before:] {
				if strings.HasPrefix(e, "begin ") {
					t.Errorf("second Execute ran %s", e)
				}
			}
		})
	}
}

func TestRestoreFromFileLocation(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	f.dump(dir, "old.sql", restoredb.FormatSQL)
	old := f.now.Add(-time.Hour)
	if err := os.Chtimes(filepath.Join(dir, "old.sql"), old, old); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "README.txt"), []byte("not a backup"), 0o644); err != nil {
		t.Fatal(err)
	}
	f.dump(dir, "new.dump", restoredb.FormatCustom)
	f.afterBackup()
	f.useDir(dir)
	a := restoredb.New(f.options())
	p := f.plan(a, nil)
	if s := spec(t, p); s.Backup.Name != "new.dump" {
		t.Fatalf("latest backup = %s, want new.dump (README.txt is not a backup)", s.Backup.Name)
	}
	j := newJournal("")
	if err := a.Execute(f.ctx, p, j); err != nil {
		t.Fatalf("Execute: %v (notes %v)", err, j.notes())
	}
	f.assertRestored(p, j)

	// --backup picks an older one by name.
	f.now = f.now.Add(time.Second)
	p2 := f.plan(a, map[string]string{"backup": "old.sql"})
	if s := spec(t, p2); s.Backup.Name != "old.sql" || s.Format != restoredb.FormatSQL {
		t.Errorf("--backup old.sql pinned %+v", s.Backup)
	}
}

func TestCorruptBackupLeavesLiveUntouched(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	good := f.dump(dir, "good.dump", restoredb.FormatCustom)
	f.afterBackup()
	b, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"garbage.dump":   []byte("this is not a pg_dump archive at all\n"),
		"truncated.dump": b[:len(b)*2/3],
		"garbage.sql.gz": []byte("not gzip"),
		"shell.sql":      []byte("CREATE TABLE x (id int);\n\\! touch /tmp/drbot-pwned\n"),
		"broken.sql":     []byte("CREATE TABLE experiments (id int);\nINSERT INTO nope VALUES (1);\n"),
	}
	f.useS3()
	for name, body := range cases {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, body, 0o644); err != nil {
			t.Fatal(err)
		}
		f.upload(name, p)
	}
	a := restoredb.New(f.options())
	for name := range cases {
		t.Run(name, func(t *testing.T) {
			f.now = f.now.Add(time.Second) // a fresh side database name
			p := f.plan(a, map[string]string{"backup": name})
			s := spec(t, p)
			j := newJournal("")
			err := a.Execute(f.ctx, p, j)
			if err == nil || !isRefusal(err) {
				t.Fatalf("Execute(%s) = %v, want a refusal", name, err)
			}
			f.noSecret(err.Error())
			if rows, marker := f.count(f.live); rows != seedRows+1 || !marker {
				t.Errorf("live changed: %d rows, marker %v", rows, marker)
			}
			if got := f.databases(s.Incoming); len(got) != 0 {
				t.Errorf("side database left behind: %v", got)
			}
			if j.ran("scale-down/deployment/web") || f.replicas() != replicas {
				t.Errorf("writers touched after a failed restore (replicas %d)", f.replicas())
			}
			if notes := strings.Join(j.notes(), "\n"); !strings.Contains(notes, "untouched") {
				t.Errorf("notes %q do not say live is untouched", notes)
			}
		})
	}
	if _, err := os.Stat("/tmp/drbot-pwned"); err == nil {
		t.Error("a \\! line in a plain backup ran a shell command")
	}
}

func TestFailingCheckStopsBeforeSwap(t *testing.T) {
	f := newFixture(t)
	file := f.dump(t.TempDir(), "x.dump", restoredb.FormatCustom)
	f.afterBackup()
	f.useS3(file)
	f.db.Checks = append(f.db.Checks, runbook.Check{Name: "enough experiments", SQL: "SELECT count(*) FROM experiments", Expect: runbook.Expect{Op: ">=", Value: 1000}})
	a := restoredb.New(f.options())
	p := f.plan(a, nil)
	s := spec(t, p)
	j := newJournal("")
	err := a.Execute(f.ctx, p, j)
	if err == nil || !isRefusal(err) || !strings.Contains(err.Error(), "enough experiments") {
		t.Fatalf("Execute = %v, want a refusal naming the failed check", err)
	}
	if rows, marker := f.count(f.live); rows != seedRows+1 || !marker {
		t.Errorf("live changed: %d rows, marker %v", rows, marker)
	}
	if j.ran("scale-down/deployment/web") || j.ran("swap") || f.replicas() != replicas {
		t.Errorf("went past the checks: events %v", j.events())
	}
	if got := f.databases(s.Incoming); len(got) != 1 {
		t.Errorf("side database should be kept for inspection, found %v", got)
	}
}

func TestPinnedObjectReplacedOrDeleted(t *testing.T) {
	f := newFixture(t)
	file := f.dump(t.TempDir(), "x.dump", restoredb.FormatCustom)
	f.afterBackup()
	f.useS3(file)
	a := restoredb.New(f.options())
	p := f.plan(a, nil)

	other := f.dump(t.TempDir(), "x.dump", restoredb.FormatCustom) // a different backup, same key
	f.upload("x.dump", other)
	err := a.Execute(f.ctx, p, newJournal(""))
	if err == nil || !isRefusal(err) || !strings.Contains(err.Error(), "changed") {
		t.Fatalf("Execute with the object replaced = %v, want a refusal saying it changed", err)
	}
	if _, err := f.s3.DeleteObject(f.ctx, &s3.DeleteObjectInput{Bucket: aws.String("shop-backups"), Key: aws.String("db/x.dump")}); err != nil {
		t.Fatal(err)
	}
	err = a.Execute(f.ctx, p, newJournal(""))
	if err == nil || !isRefusal(err) || !strings.Contains(err.Error(), "gone") {
		t.Fatalf("Execute with the object deleted = %v, want a refusal saying it is gone", err)
	}
	if rows, marker := f.count(f.live); rows != seedRows+1 || !marker {
		t.Errorf("live changed: %d rows, marker %v", rows, marker)
	}
}

// runUntilCrash runs Execute and recovers the journal's simulated crash.
func runUntilCrash(t *testing.T, a actions.Action, p actions.Plan, j *journal) {
	t.Helper()
	defer func() {
		r := recover()
		if _, ok := r.(crash); !ok {
			t.Fatalf("Execute did not crash where expected (recovered %v)", r)
		}
	}()
	err := a.Execute(context.Background(), p, j)
	t.Fatalf("Execute returned %v instead of crashing", err)
}

func TestCrashAfterLiveRenamedFinishesTheSwap(t *testing.T) {
	f := newFixture(t)
	file := f.dump(t.TempDir(), "x.dump", restoredb.FormatCustom)
	f.afterBackup()
	f.useS3(file)
	a := restoredb.New(f.options())
	p := f.plan(a, nil)
	s := spec(t, p)

	j := newJournal("")
	j.crashBegin = restoredb.StepSwap // dies right before the swap…
	runUntilCrash(t, a, p, j)
	if f.replicas() != 0 {
		t.Fatalf("writers at %d before the swap, want 0", f.replicas())
	}
	// …and, as a non-transactional rename would, after renaming live only.
	j.st.Started[restoredb.StepSwap] = true
	f.exec(f.admin, "ALTER DATABASE "+pgx.Identifier{f.live}.Sanitize()+" RENAME TO "+pgx.Identifier{s.Outgoing}.Sanitize())
	j.crashBegin = ""

	if err := a.Execute(f.ctx, p, j); err != nil {
		t.Fatalf("Execute after the crash: %v (notes %v)", err, j.notes())
	}
	if notes := strings.Join(j.notes(), "\n"); !strings.Contains(notes, "half done") {
		t.Errorf("notes %q do not say the half-done swap was finished", notes)
	}
	f.assertRestored(p, j)
}

func TestCrashAfterSwapCommittedResumes(t *testing.T) {
	f := newFixture(t)
	file := f.dump(t.TempDir(), "x.sql", restoredb.FormatSQL)
	f.afterBackup()
	f.useS3(file)
	a := restoredb.New(f.options())
	p := f.plan(a, nil)

	j := newJournal("")
	j.crashFinish = restoredb.StepSwap // the swap committed, its finish never recorded
	runUntilCrash(t, a, p, j)
	if rows, _ := f.count(f.live); rows != seedRows {
		t.Fatalf("live has %d rows after the committed swap", rows)
	}
	j.crashFinish = ""
	if err := a.Execute(f.ctx, p, j); err != nil {
		t.Fatalf("Execute after the crash: %v (notes %v)", err, j.notes())
	}
	if notes := strings.Join(j.notes(), "\n"); !strings.Contains(notes, "had completed") {
		t.Errorf("notes %q do not say the swap had completed", notes)
	}
	if j.ran(restoredb.StepRestoreSide+"x") || strings.Count(strings.Join(j.events(), "\n"), "begin restore-side") != 1 {
		t.Errorf("the restore ran twice: %v", j.events())
	}
	f.assertRestored(p, j)
}

func TestCrashDuringScaleDownThenRerun(t *testing.T) {
	f := newFixture(t)
	file := f.dump(t.TempDir(), "x.dump", restoredb.FormatCustom)
	f.afterBackup()
	f.useS3(file)
	a := restoredb.New(f.options())
	p := f.plan(a, nil)
	j := newJournal("")
	j.crashFinish = "scale-down/deployment/web" // scaled to 0, previous count lost
	runUntilCrash(t, a, p, j)
	j.crashFinish = ""
	if err := a.Execute(f.ctx, p, j); err != nil {
		t.Fatalf("Execute after the crash: %v", err)
	}
	if rows, marker := f.count(f.live); rows != seedRows || marker {
		t.Errorf("live: %d rows, marker %v", rows, marker)
	}
	if got := f.replicas(); got < 1 {
		t.Errorf("writer left at %d replicas", got)
	}
	if notes := strings.Join(j.notes(), "\n"); !strings.Contains(notes, "scaled back to 1") {
		t.Errorf("notes %q do not say the replica count was unknown", notes)
	}
}

// TestKill9DuringRestoreThenRestart kills (SIGKILL) a child process running
// Execute in the middle of streaming the backup, then runs Execute again
// with the same (file-backed) journal.
func TestKill9DuringRestoreThenRestart(t *testing.T) {
	f := newFixture(t)
	// Enough data that pg_restore is still busy when the child dies.
	f.exec(f.liveURL, `CREATE TABLE filler AS SELECT i, md5(i::text) AS h FROM generate_series(1, 200000) i`)
	file := f.dump(t.TempDir(), "x.dump", restoredb.FormatCustom)
	f.afterBackup()
	dir := filepath.Dir(file)
	f.useDir(dir)
	f.db.Writers = nil // the child process has no cluster to scale
	a := restoredb.New(f.options())
	p := f.plan(a, nil)
	s := spec(t, p)
	planJSON, _ := json.Marshal(p)
	jpath := filepath.Join(t.TempDir(), "journal.json")

	cmd := exec.Command(os.Args[0], "-test.run=^TestChildExecute$", "-test.v")
	cmd.Env = append(os.Environ(), "RESTOREDB_CHILD_PLAN="+string(planJSON), "RESTOREDB_CHILD_JOURNAL="+jpath)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys() == nil || !strings.Contains(ee.String(), "killed") {
		t.Fatalf("child was not killed: %v\n%s", err, out)
	}
	j := newJournal(jpath)
	if _, done := j.st.Done[restoredb.StepRestoreSide]; done || !j.st.Started[restoredb.StepRestoreSide] {
		t.Fatalf("journal after the kill: %+v", j.st.Events)
	}
	if rows, marker := f.count(f.live); rows != seedRows+1 || !marker {
		t.Fatalf("live changed by the killed restore: %d rows", rows)
	}
	if err := a.Execute(f.ctx, p, j); err != nil {
		t.Fatalf("Execute after kill -9: %v (notes %v)", err, j.notes())
	}
	if notes := strings.Join(j.notes(), "\n"); !strings.Contains(notes, "interrupted") {
		t.Errorf("notes %q do not say the restore was restarted", notes)
	}
	if rows, marker := f.count(f.live); rows != seedRows || marker {
		t.Errorf("live after the resumed restore: %d rows, marker %v", rows, marker)
	}
	if rows, marker := f.count(s.Outgoing); rows != seedRows+1 || !marker {
		t.Errorf("pre-restore: %d rows, marker %v", rows, marker)
	}
	f.databases(s.Outgoing) // cleanup
}

// TestChildExecute is the child process of TestKill9DuringRestoreThenRestart.
func TestChildExecute(t *testing.T) {
	planJSON := os.Getenv("RESTOREDB_CHILD_PLAN")
	if planJSON == "" {
		return // only meaningful as the child
	}
	var p actions.Plan
	if err := json.Unmarshal([]byte(planJSON), &p); err != nil {
		t.Fatal(err)
	}
	j := newJournal(os.Getenv("RESTOREDB_CHILD_JOURNAL"))
	j.crashProgress = func() { _ = syscallKillSelf() }
	a := restoredb.New(restoredb.Options{Config: func() *runbook.Config { return nil }})
	err := a.Execute(context.Background(), p, j)
	t.Fatalf("the child should have been killed mid-restore; Execute returned %v", err)
}

func TestPlanRefusalsAndWarnings(t *testing.T) {
	f := newFixture(t)
	file := f.dump(t.TempDir(), "x.dump", restoredb.FormatCustom)
	f.useS3(file)
	a := restoredb.New(f.options())

	f.now = f.now.Add(5 * time.Hour) // the backup is now older than the 4h RPO
	p := f.plan(a, nil)
	if len(p.Warnings) == 0 || !strings.Contains(p.Warnings[0], "older than the RPO") {
		t.Errorf("warnings = %v, want an RPO warning", p.Warnings)
	}
	for name, params := range map[string]actions.Params{
		"unknown service": {Service: "nope"},
		"unknown db":      {Service: service, Flags: map[string]string{"db": "nope"}},
		"unknown backup":  {Service: service, Flags: map[string]string{"backup": "missing.dump"}},
	} {
		if _, err := a.Plan(f.ctx, params); err == nil || !isRefusal(err) {
			t.Errorf("%s: Plan = %v, want a refusal", name, err)
		}
	}
	t.Setenv(f.envVar, "")
	if _, err := a.Plan(f.ctx, actions.Params{Service: service}); err == nil || !isRefusal(err) || !strings.Contains(err.Error(), f.envVar) {
		t.Errorf("Plan with the URL variable empty = %v, want a refusal naming it", err)
	}
	// No scaler while writers are configured.
	opts := f.options()
	opts.Scaler = nil
	t.Setenv(f.envVar, f.liveURL)
	if _, err := restoredb.New(opts).Plan(f.ctx, actions.Params{Service: service}); err == nil || !isRefusal(err) {
		t.Errorf("Plan without a scaler = %v, want a refusal", err)
	}
}

func TestExecuteRefusesWhenTheURLNowPointsElsewhere(t *testing.T) {
	f := newFixture(t)
	file := f.dump(t.TempDir(), "x.dump", restoredb.FormatCustom)
	f.useS3(file)
	a := restoredb.New(f.options())
	p := f.plan(a, nil)
	t.Setenv(f.envVar, f.dbURL("some_other_db"))
	if err := a.Execute(f.ctx, p, newJournal("")); err == nil || !isRefusal(err) {
		t.Fatalf("Execute = %v, want a refusal", err)
	}
}

// notSuperuser drops the warning every plan carries when the test connects
// as the superuser postgres (privilege_test.go covers it).
func notSuperuser(warnings []string) []string {
	var out []string
	for _, w := range warnings {
		if !strings.Contains(w, "a superuser: a crafted backup") {
			out = append(out, w)
		}
	}
	return out
}
