package models

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/storage"
	"github.com/drbot-dev/drbot/runbook"
)

// snapshotsKept is how many of the newest snapshot folders a plan ranks
// while listing (memory stays bounded however many nightly runs there are):
// the newest of them with objects is restored, and a refusal names a few.
const snapshotsKept = 8

// snapshot is one folder of a backups location laid out by models.snapshots.
type snapshot struct {
	Folder string    // e.g. models-20260115-020000
	At     time.Time // from the name, else the newest object under it
	ByName bool      // At was read from the folder's name
}

// newerSnapshot orders snapshots oldest first. One dated by its name is
// newer than any dated only by its objects: a folder without a timestamp
// (models-20260113-020000-old, a quarantined run copied aside) has objects as
// new as the copy, and must not outrank the real nightly runs.
func newerSnapshot(a, b snapshot) int {
	if a.ByName != b.ByName {
		if a.ByName {
			return 1
		}
		return -1
	}
	if c := a.At.Compare(b.At); c != 0 {
		return c
	}
	return strings.Compare(a.Folder, b.Folder)
}

// stampLayouts are the timestamps a snapshot's * part may be, tried in order.
var stampLayouts = []string{
	"20060102-150405",
	"20060102150405",
	"20060102T150405Z",
	"20060102T150405",
	"20060102-1504",
	"20060102T1504",
	"2006-01-02",
	"20060102",
	time.RFC3339Nano,
	time.RFC3339,
	"2006-01-02T15:04:05",
	"2006-01-02T15-04-05Z",
	"2006-01-02T15-04-05",
	"2006-01-02T150405Z",
	"2006-01-02-150405",
	"2006-01-02_15-04-05",
	"2006-01-02T15:04",
}

// parseStamp reads the time a snapshot's * part names (UTC unless it says).
func parseStamp(s string) (time.Time, bool) {
	for _, l := range stampLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// listSnapshots lists the snapshot folders under s3://bucket/base with a
// delimiter (never every object) and returns the newest `keep` of them,
// newest first, and how many match the pattern. A folder whose name holds
// no timestamp is dated by its newest object under the pattern's inside
// path, and left out when it has none.
func listSnapshots(ctx context.Context, client *s3.Client, bucket, base string, sp runbook.SnapshotPattern, keep int) ([]snapshot, int, error) {
	top := storage.NewTop(keep, newerSnapshot)
	parent := base + sp.Dir
	pages := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{
		Bucket: aws.String(bucket), Prefix: aws.String(base + sp.ListPrefix()), Delimiter: aws.String("/"),
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, 0, listError(bucket, base, err)
		}
		for _, cp := range page.CommonPrefixes {
			folder := strings.TrimSuffix(strings.TrimPrefix(aws.ToString(cp.Prefix), parent), "/")
			star, ok := sp.Match(folder)
			if !ok {
				continue
			}
			s := snapshot{Folder: folder}
			if s.At, s.ByName = parseStamp(star); !s.ByName {
				newest, n, err := newestUnder(ctx, client, bucket, base+sp.Path(folder))
				if err != nil {
					return nil, 0, err
				}
				if n == 0 {
					continue
				}
				s.At = newest
			}
			top.Add(s)
		}
	}
	return top.Sorted(), top.Added(), nil
}

// newestUnder streams the listing of prefix and returns its newest object's
// time and how many objects there are (folder markers left out).
func newestUnder(ctx context.Context, client *s3.Client, bucket, prefix string) (time.Time, int, error) {
	var newest time.Time
	n := 0
	pages := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return time.Time{}, 0, listError(bucket, prefix, err)
		}
		for _, o := range page.Contents {
			if strings.HasSuffix(aws.ToString(o.Key), "/") && aws.ToInt64(o.Size) == 0 {
				continue
			}
			n++
			if t := aws.ToTime(o.LastModified); t.After(newest) {
				newest = t
			}
		}
	}
	return newest, n, nil
}

// hasObjects reports whether anything but folder markers is under prefix.
func hasObjects(ctx context.Context, client *s3.Client, bucket, prefix string) (bool, error) {
	pages := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix), MaxKeys: aws.Int32(100)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return false, listError(bucket, prefix, err)
		}
		for _, o := range page.Contents {
			if !strings.HasSuffix(aws.ToString(o.Key), "/") || aws.ToInt64(o.Size) != 0 {
				return true, nil
			}
		}
	}
	return false, nil
}

func listError(bucket, prefix string, err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "NoSuchBucket" {
		return actions.Refusef("S3 bucket %s does not exist", bucket)
	}
	return fmt.Errorf("list s3://%s/%s: %w", bucket, prefix, err)
}

// chooseSnapshot picks the snapshot a plan restores: the one --backup names,
// else the newest whose inside path holds objects. It returns the folder and
// a sentence for the card on why it was chosen.
func chooseSnapshot(ctx context.Context, client *s3.Client, m *runbook.Models, flag string) (string, string, error) {
	sp := *m.Snapshots
	base := dirPrefix(m.Backups.Prefix)
	where := fmt.Sprintf("s3://%s/%s", m.Backups.Bucket, base)
	if name := strings.TrimSpace(flag); name != "" {
		folder := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "/"), "/"+strings.TrimSuffix(sp.Inside, "/")), "/")
		folder = strings.TrimPrefix(folder, sp.Dir)
		if _, ok := sp.Match(folder); !ok || strings.Contains(name, "://") {
			return "", "", actions.Refusef("--backup takes a snapshot folder of %s named like %s (e.g. %s), got %q%s",
				where, sp.Before+"*"+sp.After, exampleName(sp), name, available(ctx, client, m))
		}
		ok, err := hasObjects(ctx, client, m.Backups.Bucket, base+sp.Path(folder))
		if err != nil {
			return "", "", err
		}
		if !ok {
			return "", "", actions.Refusef("no snapshot %s in %s (nothing under %s)%s", folder, where, sp.Path(folder), available(ctx, client, m))
		}
		return folder, "named by --backup", nil
	}
	snaps, total, err := listSnapshots(ctx, client, m.Backups.Bucket, base, sp, snapshotsKept)
	if err != nil {
		return "", "", err
	}
	for i, s := range snaps {
		ok, err := hasObjects(ctx, client, m.Backups.Bucket, base+sp.Path(s.Folder))
		if err != nil {
			return "", "", err
		}
		if !ok {
			continue
		}
		why := "the newest of %d snapshots by the date in its name"
		if !s.ByName {
			why = "the newest of %d snapshots by its newest object"
		}
		why = fmt.Sprintf(why, total)
		if i > 0 {
			why += fmt.Sprintf("; %d newer had nothing under %s", i, sp.Inside)
		}
		return s.Folder, why, nil
	}
	if total == 0 {
		return "", "", actions.Refusef("no snapshots %s in %s", sp.String(), where)
	}
	return "", "", actions.Refusef("the newest %d of %d snapshots in %s have nothing under %s: name one with --backup", len(snaps), total, where, sp.Inside)
}

// available is "; the newest are a, b, c" for a refusal (best effort).
func available(ctx context.Context, client *s3.Client, m *runbook.Models) string {
	snaps, total, err := listSnapshots(ctx, client, m.Backups.Bucket, dirPrefix(m.Backups.Prefix), *m.Snapshots, 5)
	if err != nil || total == 0 {
		return ""
	}
	names := make([]string, len(snaps))
	for i, s := range snaps {
		names[i] = s.Folder
	}
	return fmt.Sprintf("; the newest of %d: %s — /dr backups lists them", total, strings.Join(names, ", "))
}

func exampleName(sp runbook.SnapshotPattern) string {
	return sp.Before + "20260115-020000" + sp.After
}
