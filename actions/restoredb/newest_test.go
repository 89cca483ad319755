package restoredb_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/drbot-dev/drbot/actions/restoredb"
	"github.com/drbot-dev/drbot/actions/storage"
	"github.com/drbot-dev/drbot/runbook"
)

// wholeListing is a real store whose List (every object in one slice) a plan
// must not use.
type wholeListing struct {
	storage.Store
	t *testing.T
}

func (w wholeListing) List(ctx context.Context) ([]storage.Object, error) {
	objs, err := w.Store.List(ctx)
	w.t.Errorf("the plan held all %d objects of %s in memory to pick one", len(objs), w.Location())
	return objs, err
}

// TestPlanPicksTheNewestBackupPageByPage: among 300 other objects listed 50
// a page, the plan pins the newest restorable backup without holding the
// listing.
func TestPlanPicksTheNewestBackupPageByPage(t *testing.T) {
	f := newFixture(t)
	file := f.dump(t.TempDir(), "x.dump", restoredb.FormatCustom)
	f.useS3(file)
	for i := range 300 {
		if _, err := f.s3.PutObject(f.ctx, &s3.PutObjectInput{Bucket: aws.String("shop-backups"),
			Key: aws.String(fmt.Sprintf("db/logs/run-%03d.log", i)), Body: strings.NewReader("log")}); err != nil {
			t.Fatal(err)
		}
	}
	f.upload("y-new.dump", file) // written last (and y > x on a same-second tie)
	opts := f.options()
	opts.Storage = func(ctx context.Context, loc runbook.Location) (storage.Store, error) {
		st, err := storage.New(ctx, loc, storage.Options{S3: f.s3, PageSize: 50})
		return wholeListing{Store: st, t: t}, err
	}
	p := f.plan(restoredb.New(opts), nil)
	if s := spec(t, p); s.Backup == nil || s.Backup.Name != "y-new.dump" || s.Backup.ETag == "" {
		t.Fatalf("pinned %+v, want y-new.dump", s.Backup)
	}
}
