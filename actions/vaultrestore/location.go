package vaultrestore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/drbot-dev/drbot/actions/awsconf"
	"github.com/drbot-dev/drbot/actions/storage"
	"github.com/drbot-dev/drbot/runbook"
)

// snapshots is the snapshots location: the shared reader (actions/storage)
// and the one write this action makes there, the pre-restore snapshot.
type snapshots struct {
	storage.Store
	// put stores the file at name (relative to the location) unless an
	// object of that name exists; it reports whether it wrote.
	put func(ctx context.Context, name string, f *os.File, size int64) (wrote bool, err error)
	// url is the user-visible address of name.
	url func(name string) string
}

// open returns the snapshots location loc.
func (a *Action) open(ctx context.Context, loc runbook.Location) (*snapshots, error) {
	switch loc.Scheme {
	case runbook.SchemeS3:
		cfg, err := a.load(ctx, "")
		if err != nil {
			return nil, fmt.Errorf("AWS configuration: %w", err)
		}
		client := awsconf.S3(cfg)
		st, err := storage.New(ctx, loc, storage.Options{S3: client})
		if err != nil {
			return nil, err
		}
		key := func(name string) string { return loc.Prefix + name }
		return &snapshots{
			Store: st,
			url:   func(name string) string { return "s3://" + loc.Bucket + "/" + key(name) },
			put: func(ctx context.Context, name string, f *os.File, size int64) (bool, error) {
				if _, err := st.Stat(ctx, key(name)); err == nil {
					return false, nil
				} else if !errors.Is(err, storage.ErrNotFound) {
					return false, err
				}
				if _, err := f.Seek(0, 0); err != nil {
					return false, err
				}
				_, err := client.PutObject(ctx, &s3.PutObjectInput{
					Bucket: aws.String(loc.Bucket), Key: aws.String(key(name)), Body: f, ContentLength: aws.Int64(size),
					ContentType: aws.String("application/gzip"),
				})
				if err != nil {
					return false, fmt.Errorf("put s3://%s/%s: %w", loc.Bucket, key(name), err)
				}
				return true, nil
			},
		}, nil
	case runbook.SchemeFile:
		st, err := storage.New(ctx, loc, storage.Options{})
		if err != nil {
			return nil, err
		}
		dir, err := fileDir(loc)
		if err != nil {
			return nil, err
		}
		return &snapshots{
			Store: st,
			url:   func(name string) string { return "file://" + path.Join(filepath.ToSlash(dir), name) },
			put: func(_ context.Context, name string, f *os.File, _ int64) (bool, error) {
				return putFile(dir, name, f)
			},
		}, nil
	}
	return nil, fmt.Errorf("unsupported snapshots location %s", loc)
}

// fileDir is the directory of a file:// location, with environment
// variables expanded as actions/storage does.
func fileDir(loc runbook.Location) (string, error) {
	var missing []string
	dir := os.Expand(loc.Path, func(name string) string {
		v := os.Getenv(name)
		if v == "" {
			missing = append(missing, name)
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("snapshots %s: environment variable %s is not set", loc, strings.Join(missing, ", "))
	}
	dir = filepath.Clean(dir)
	if fi, err := os.Stat(dir); err == nil && fi.Mode().IsRegular() {
		dir = filepath.Dir(dir)
	}
	return dir, nil
}

// putFile writes f to dir/name through a dot-file (which listings leave
// out) and a hard link, so the name appears complete or not at all and an
// existing file is never replaced.
func putFile(dir, name string, f *os.File) (bool, error) {
	final := filepath.Join(dir, filepath.FromSlash(name))
	if _, err := os.Stat(final); err == nil {
		return false, nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(final), "."+filepath.Base(final)+".*.tmp")
	if err != nil {
		return false, err
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if _, err := f.Seek(0, 0); err != nil {
		_ = tmp.Close()
		return false, err
	}
	if _, err := tmp.ReadFrom(f); err != nil {
		_ = tmp.Close()
		return false, err
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return false, err
	}
	if err := tmp.Close(); err != nil {
		return false, err
	}
	if err := os.Link(tmp.Name(), final); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}
