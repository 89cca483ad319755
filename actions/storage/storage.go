// Package storage reads backups where a runbook says they are: an S3 prefix
// (s3://bucket/prefix/) or a directory on a file system (file:///path/, for
// on-premises or NFS backups).
//
// A Store lists the objects of a location newest first, pins one (Stat: key,
// size, ETag and, on a versioned bucket, VersionId) and opens a streaming
// reader of exactly that pinned object: S3 reads are conditional on the ETag
// (If-Match) and, when known, the version; file reads check the file's
// identity (device, inode, size, modification time) when opened and again at
// the end. An object that is gone or changed since it was pinned is an error
// wrapping ErrNotFound or ErrChanged — never a read of a different object.
// Nothing is copied to a temporary file.
//
// A file location's path may name environment variables ($VAR or ${VAR}),
// expanded when the store is made: file:///$DRBOT_DEMO_BACKUPS/ works from
// any working directory. File objects whose names start with a dot are left
// out (write a backup as .name.tmp, then rename it).
//
// Usage:
//
//	st, err := storage.New(ctx, loc, storage.Options{}) // S3 client from the environment
//	objs, n, err := storage.Newest(ctx, st, 10, nil)    // the 10 newest of n
//	obj, err := st.Stat(ctx, objs[0].Key)               // pin
//	rc, err := st.Open(ctx, obj)                        // exactly obj
package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/drbot-dev/drbot/runbook"
)

// ErrNotFound means the object (or its pinned version) does not exist.
var ErrNotFound = errors.New("backup object not found")

// ErrChanged means the object exists but is no longer the pinned one (its
// ETag, version, size or file identity differ).
var ErrChanged = errors.New("backup object changed since it was pinned")

// Object is one stored object.
type Object struct {
	// Key is the S3 object key (prefix included), or for a file location the
	// path relative to the location's directory, with forward slashes.
	Key string `json:"key"`
	// Name is Key relative to the location (what users see and type).
	Name         string    `json:"name"`
	Size         int64     `json:"size"`
	LastModified time.Time `json:"last_modified"`
	// ETag identifies the content (S3: the ETag with its quotes; files:
	// "dev-inode-size-mtime" in hex).
	ETag string `json:"etag,omitempty"`
	// VersionID is the S3 version id when the bucket is versioned (set by
	// Stat; ListObjectsV2 does not report versions).
	VersionID string `json:"version_id,omitempty"`
}

// Store is a backup location.
type Store interface {
	// Location is the location the store reads.
	Location() runbook.Location
	// List returns every object under the location, newest first (ties by
	// key, descending). "Directory" placeholder objects are left out. It
	// holds the whole listing in memory: commands use Newest or Walk.
	List(ctx context.Context) ([]Object, error)
	// Walk calls fn for every object under the location, one page at a time,
	// in the backend's order (S3: by key; files: depth-first), so that the
	// objects under one folder come one after another. It never holds more
	// than a page of the listing; an error from fn stops it and is returned.
	Walk(ctx context.Context, fn func(Object) error) error
	// Stat pins the object called key: the full S3 key, or the name relative
	// to the location. A missing object is an error wrapping ErrNotFound.
	Stat(ctx context.Context, key string) (Object, error)
	// Open streams exactly the pinned object obj (as Stat or List returned
	// it). The reader's Read returns an error wrapping ErrChanged if the
	// object turns out to differ; Open itself returns errors wrapping
	// ErrNotFound or ErrChanged when it is gone or replaced.
	Open(ctx context.Context, obj Object) (io.ReadCloser, error)
}

// Options configure New.
type Options struct {
	// S3 is the client for s3:// locations; nil builds one from the
	// environment (awsconf.Load and awsconf.S3).
	S3 S3API
	// PageSize is the ListObjectsV2 page size (0: S3's default, 1000).
	PageSize int32
}

// New returns the store for loc.
func New(ctx context.Context, loc runbook.Location, opts Options) (Store, error) {
	switch loc.Scheme {
	case runbook.SchemeS3:
		return newS3(ctx, loc, opts)
	case runbook.SchemeFile:
		return newFile(loc)
	default:
		return nil, fmt.Errorf("storage: unsupported location %q", loc.String())
	}
}

// Newest returns the n newest objects under the location for which keep
// returns true (all objects when keep is nil), newest first, and how many
// objects keep accepted in all. Memory stays proportional to n however large
// the listing is.
func Newest(ctx context.Context, st Store, n int, keep func(Object) bool) ([]Object, int, error) {
	top := NewTop(n, NewerFirst)
	err := st.Walk(ctx, func(o Object) error {
		if keep == nil || keep(o) {
			top.Add(o)
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return top.Sorted(), top.Added(), nil
}

// collect is List on top of Walk.
func collect(ctx context.Context, st Store) ([]Object, error) {
	var out []Object
	if err := st.Walk(ctx, func(o Object) error { out = append(out, o); return nil }); err != nil {
		return nil, err
	}
	sortNewestFirst(out)
	return out, nil
}

// sortNewestFirst orders objects newest first, then by key descending (so
// same-second backups named by time still come newest first).
func sortNewestFirst(objs []Object) {
	slices.SortStableFunc(objs, func(a, b Object) int {
		if c := b.LastModified.Compare(a.LastModified); c != 0 {
			return c
		}
		return strings.Compare(b.Key, a.Key)
	})
}

// Describe returns a short, user-safe description of obj: its name and
// version or ETag.
func Describe(obj Object) string {
	switch {
	case obj.VersionID != "":
		return obj.Name + " (version " + obj.VersionID + ")"
	case obj.ETag != "":
		return obj.Name + " (ETag " + obj.ETag + ")"
	}
	return obj.Name
}

// Base returns the last element of the object's name.
func Base(obj Object) string { return path.Base(obj.Name) }
