package backups_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/drbot-dev/drbot/actions/awsconf"
	"github.com/drbot-dev/drbot/actions/backups"
	"github.com/drbot-dev/drbot/actions/storage"
	"github.com/drbot-dev/drbot/commands"
	"github.com/drbot-dev/drbot/internal/testenv"
	"github.com/drbot-dev/drbot/runbook"
)

// noMaterialise is a real store whose List (the whole listing in one slice)
// must not be used by /dr backups.
type noMaterialise struct {
	storage.Store
	t     *testing.T
	lists *atomic.Int64
}

func (n noMaterialise) List(ctx context.Context) ([]storage.Object, error) {
	n.lists.Add(1)
	objs, err := n.Store.List(ctx)
	n.t.Errorf("the listing held all %d objects of %s in memory", len(objs), n.Location())
	return objs, err
}

// TestListingOfManyBackupsIsBounded lists 2,000 database backups and 100
// model snapshots from moto through the real SDK, 100 keys a page: the
// answer is the newest rows, newest first, with how many there are, and no
// more than MaxRows rows are ever held.
func TestListingOfManyBackupsIsBounded(t *testing.T) {
	ctx := context.Background()
	cfg, err := awsconf.Load(ctx, "us-east-1", awsconf.Static(testenv.Moto(t), "test", "test"))
	if err != nil {
		t.Fatal(err)
	}
	c := awsconf.S3(cfg)
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("big")}); err != nil {
		t.Fatal(err)
	}
	put := func(key string) {
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("big"), Key: aws.String(key), Body: strings.NewReader("x")}); err != nil {
			t.Fatal(err)
		}
	}
	// Written in order, so a later index is never older (S3 times are in
	// seconds; ties rank by name).
	const dbBackups, snapshots = 2000, 100
	for i := range dbBackups {
		put(fmt.Sprintf("db/backup-%04d.dump", i))
	}
	for i := range snapshots {
		for _, f := range []string{"lstm_pfd.pt", "scaler.pkl", "meta.json"} {
			put(fmt.Sprintf("models/models-2026%04d-020000/checkpoints/%s", i, f))
		}
	}
	rb := &runbook.Config{Services: []runbook.Service{{
		Name:      "big",
		Databases: []runbook.Database{{Name: "big", URLEnv: "X", Backups: &runbook.Backups{Location: loc(t, "s3://big/db/")}}},
		Models:    &runbook.Models{Backups: loc(t, "s3://big/models/"), Target: loc(t, "s3://big-target/")},
	}}}
	var lists atomic.Int64
	open := func(ctx context.Context, l runbook.Location) (storage.Store, error) {
		st, err := storage.New(ctx, l, storage.Options{S3: c, PageSize: 100})
		return noMaterialise{Store: st, t: t, lists: &lists}, err
	}

	ls, err := backups.List(ctx, rb, "big", "db", open, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	l := ls[0]
	if len(l.Rows) != backups.MaxRows || l.Total != dbBackups {
		t.Fatalf("%d rows of %d, want %d of %d", len(l.Rows), l.Total, backups.MaxRows, dbBackups)
	}
	for i, r := range l.Rows {
		if want := fmt.Sprintf("backup-%04d.dump", dbBackups-1-i); r.Name != want {
			t.Fatalf("row %d = %s, want %s (newest first)", i, r.Name, want)
		}
	}
	if l.Retained > backups.MaxRows {
		t.Fatalf("held %d rows while listing, want at most %d", l.Retained, backups.MaxRows)
	}
	if got := text(commands.BackupsMessage("big", ls)); !strings.Contains(got, fmt.Sprintf("… and %d older", dbBackups-backups.MaxRows)) {
		t.Fatalf("render lacks the count of older backups:\n%s", got)
	}

	ls, err = backups.List(ctx, rb, "big", "models", open, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	l = ls[0]
	if len(l.Rows) != backups.MaxRows || l.Total != snapshots || l.Retained > backups.MaxRows {
		t.Fatalf("models: %d rows of %d, held %d", len(l.Rows), l.Total, l.Retained)
	}
	for i, r := range l.Rows {
		if want := fmt.Sprintf("models-2026%04d-020000/", snapshots-1-i); r.Name != want || r.Objects != 3 || r.Size != 3 {
			t.Fatalf("models row %d = %+v, want %s with 3 objects", i, r, want)
		}
	}
	if lists.Load() != 0 {
		t.Fatalf("List called %d times", lists.Load())
	}
}
