package storage_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/drbot-dev/drbot/actions/awsconf"
	"github.com/drbot-dev/drbot/actions/storage"
	"github.com/drbot-dev/drbot/internal/testenv"
	"github.com/drbot-dev/drbot/runbook"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func motoS3(t *testing.T) *s3.Client {
	t.Helper()
	cfg, err := awsconf.Load(context.Background(), "us-east-1", awsconf.Static(testenv.Moto(t), "test", "test"))
	if err != nil {
		t.Fatal(err)
	}
	return awsconf.S3(cfg)
}

func mkBucket(t *testing.T, c *s3.Client, bucket string, versioned bool) {
	t.Helper()
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	if versioned {
		if _, err := c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String(bucket),
			VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled}}); err != nil {
			t.Fatal(err)
		}
	}
}

func put(t *testing.T, c *s3.Client, bucket, key, body string) {
	t.Helper()
	if _, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
}

func readAll(t *testing.T, st storage.Store, obj storage.Object) (string, error) {
	t.Helper()
	rc, err := st.Open(context.Background(), obj)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	return string(b), err
}

func TestS3ListStatOpen(t *testing.T) {
	ctx := context.Background()
	c := motoS3(t)
	mkBucket(t, c, "backups", false)
	put(t, c, "backups", "db/a-old.dump", "old")
	time.Sleep(1100 * time.Millisecond) // S3 times have one-second resolution
	put(t, c, "backups", "db/b-new.dump", "newer backup")
	put(t, c, "backups", "db/sub/", "")               // a directory placeholder
	put(t, c, "backups", "other/x.dump", "elsewhere") // outside the prefix

	loc, _ := runbook.ParseLocation("s3://backups/db/")
	st, err := storage.New(ctx, loc, storage.Options{S3: c, PageSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	objs, err := st.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range objs {
		names = append(names, o.Name)
	}
	if got := strings.Join(names, ","); got != "b-new.dump,a-old.dump" {
		t.Fatalf("List names = %s, want newest first without placeholders or other prefixes", got)
	}
	if objs[0].Key != "db/b-new.dump" || objs[0].Size != int64(len("newer backup")) || objs[0].ETag == "" || objs[0].LastModified.IsZero() {
		t.Errorf("List()[0] = %+v", objs[0])
	}
	// Stat by name relative to the prefix and by full key give the same pin.
	a, err := st.Stat(ctx, "b-new.dump")
	if err != nil {
		t.Fatal(err)
	}
	b, err := st.Stat(ctx, "db/b-new.dump")
	if err != nil {
		t.Fatal(err)
	}
	if a != b || a.ETag != objs[0].ETag || a.Size != objs[0].Size {
		t.Errorf("Stat by name %+v, by key %+v, listed %+v", a, b, objs[0])
	}
	got, err := readAll(t, st, a)
	if err != nil || got != "newer backup" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if _, err := st.Stat(ctx, "missing.dump"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat(missing) = %v, want ErrNotFound", err)
	}
}

func TestS3PinnedObjectReplacedOrDeleted(t *testing.T) {
	ctx := context.Background()
	c := motoS3(t)
	mkBucket(t, c, "backups", false)
	put(t, c, "backups", "db/x.dump", "original")
	loc, _ := runbook.ParseLocation("s3://backups/db/")
	st, err := storage.New(ctx, loc, storage.Options{S3: c})
	if err != nil {
		t.Fatal(err)
	}
	pin, err := st.Stat(ctx, "x.dump")
	if err != nil {
		t.Fatal(err)
	}
	put(t, c, "backups", "db/x.dump", "replaced!")
	if _, err := readAll(t, st, pin); !errors.Is(err, storage.ErrChanged) {
		t.Fatalf("Open(replaced) = %v, want ErrChanged", err)
	}
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("backups"), Key: aws.String("db/x.dump")}); err != nil {
		t.Fatal(err)
	}
	if _, err := readAll(t, st, pin); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Open(deleted) = %v, want ErrNotFound", err)
	}
}

func TestS3VersionedBucketReadsThePinnedVersion(t *testing.T) {
	ctx := context.Background()
	c := motoS3(t)
	mkBucket(t, c, "vbackups", true)
	put(t, c, "vbackups", "db/x.dump", "version one")
	loc, _ := runbook.ParseLocation("s3://vbackups/db/")
	st, err := storage.New(ctx, loc, storage.Options{S3: c})
	if err != nil {
		t.Fatal(err)
	}
	pin, err := st.Stat(ctx, "x.dump")
	if err != nil {
		t.Fatal(err)
	}
	if pin.VersionID == "" {
		t.Fatalf("Stat on a versioned bucket has no VersionID: %+v", pin)
	}
	put(t, c, "vbackups", "db/x.dump", "version two, longer")
	got, err := readAll(t, st, pin)
	if err != nil || got != "version one" {
		t.Fatalf("Open(pinned version) = %q, %v; want the pinned version's content", got, err)
	}
	// The pinned version deleted for good: not found, never the newer one.
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("vbackups"), Key: aws.String("db/x.dump"), VersionId: aws.String(pin.VersionID)}); err != nil {
		t.Fatal(err)
	}
	if got, err := readAll(t, st, pin); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Open(deleted version) = %q, %v; want ErrNotFound", got, err)
	}
}

func TestFileListStatOpen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	write := func(name, body string, mod time.Time) {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mod, mod); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	write("old.sql", "old", now.Add(-2*time.Hour))
	write("2026/new.dump", "the newest", now.Add(-time.Minute))
	write(".partial.dump", "in progress", now)
	loc, err := runbook.ParseLocation("file://" + dir + "/")
	if err != nil {
		t.Fatal(err)
	}
	st, err := storage.New(ctx, loc, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	objs, err := st.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 2 || objs[0].Name != "2026/new.dump" || objs[1].Name != "old.sql" {
		t.Fatalf("List = %+v, want 2026/new.dump then old.sql", objs)
	}
	pin, err := st.Stat(ctx, "2026/new.dump")
	if err != nil {
		t.Fatal(err)
	}
	if pin != objs[0] {
		t.Errorf("Stat = %+v, List = %+v", pin, objs[0])
	}
	if got, err := readAll(t, st, pin); err != nil || got != "the newest" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if _, err := st.Stat(ctx, "../../etc/passwd"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat outside the location = %v, want ErrNotFound", err)
	}

	// Replaced (new inode, same size) and deleted objects are refused.
	tmp := filepath.Join(dir, "2026", ".tmp")
	if err := os.WriteFile(tmp, []byte("THE NEWEST"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "2026", "new.dump")); err != nil {
		t.Fatal(err)
	}
	if _, err := readAll(t, st, pin); !errors.Is(err, storage.ErrChanged) {
		t.Fatalf("Open(replaced) = %v, want ErrChanged", err)
	}
	if err := os.Remove(filepath.Join(dir, "2026", "new.dump")); err != nil {
		t.Fatal(err)
	}
	if _, err := readAll(t, st, pin); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Open(deleted) = %v, want ErrNotFound", err)
	}
}

func TestFileRewrittenWhileReadingIsDetected(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p := filepath.Join(dir, "x.dump")
	body := bytes.Repeat([]byte("a"), 1<<20)
	if err := os.WriteFile(p, body, 0o644); err != nil {
		t.Fatal(err)
	}
	loc, _ := runbook.ParseLocation("file://" + dir)
	st, _ := storage.New(ctx, loc, storage.Options{})
	pin, err := st.Stat(ctx, "x.dump")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := st.Open(ctx, pin)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.ReadFull(rc, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	// Rewritten in place (same inode and size, new mtime) during the read.
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(p, later, later); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(rc); !errors.Is(err, storage.ErrChanged) {
		t.Fatalf("reading a file changed mid-read = %v, want ErrChanged at the end", err)
	}
}

func TestFileLocationOfOneFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p := filepath.Join(dir, "only.sql.gz")
	if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	loc, _ := runbook.ParseLocation("file://" + p)
	st, _ := storage.New(ctx, loc, storage.Options{})
	objs, err := st.List(ctx)
	if err != nil || len(objs) != 1 || objs[0].Name != "only.sql.gz" {
		t.Fatalf("List = %+v, %v", objs, err)
	}
	if _, err := st.Stat(ctx, "only.sql.gz"); err != nil {
		t.Fatal(err)
	}
	missing, _ := runbook.ParseLocation("file://" + filepath.Join(dir, "nope") + "/")
	st2, _ := storage.New(ctx, missing, storage.Options{})
	if _, err := st2.List(ctx); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("List(missing dir) = %v, want ErrNotFound", err)
	}

}

func TestFileLocationExpandsEnvironmentVariables(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "x.dump"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("STORAGE_TEST_ROOT", dir)
	for _, s := range []string{"file:///$STORAGE_TEST_ROOT/", "file:///${STORAGE_TEST_ROOT}/"} {
		loc, err := runbook.ParseLocation(s)
		if err != nil {
			t.Fatal(err)
		}
		st, err := storage.New(ctx, loc, storage.Options{})
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		objs, err := st.List(ctx)
		if err != nil || len(objs) != 1 || objs[0].Name != "x.dump" {
			t.Errorf("%s: List = %+v, %v", s, objs, err)
		}
	}
	loc, _ := runbook.ParseLocation("file:///$STORAGE_TEST_UNSET_VAR/db/")
	if _, err := storage.New(ctx, loc, storage.Options{}); err == nil || !strings.Contains(err.Error(), "STORAGE_TEST_UNSET_VAR is not set") {
		t.Errorf("unset variable: %v", err)
	}
}
