package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/drbot-dev/drbot/runbook"
)

// fileStore reads a directory (or a single file) of backups.
type fileStore struct {
	loc runbook.Location
	dir string // the directory the names are relative to
}

// newFile expands environment variables in the location's path ($VAR or
// ${VAR}), so a config can say file:///$BACKUP_ROOT/db/ and work from any
// working directory; a variable that is not set is an error.
func newFile(loc runbook.Location) (*fileStore, error) {
	var missing []string
	dir := os.Expand(loc.Path, func(name string) string {
		v, ok := os.LookupEnv(name)
		if !ok || v == "" {
			missing = append(missing, name)
		}
		return v
	})
	if len(missing) > 0 {
		return nil, fmt.Errorf("storage %s: environment variable %s is not set", loc.String(), strings.Join(missing, ", "))
	}
	dir = filepath.Clean(dir)
	if !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("storage %s: path %s must be absolute", loc.String(), dir)
	}
	return &fileStore{loc: loc, dir: dir}, nil
}

func (s *fileStore) Location() runbook.Location { return s.loc }

func (s *fileStore) List(ctx context.Context) ([]Object, error) { return collect(ctx, s) }

// readDirBatch is how many directory entries Walk reads at a time.
const readDirBatch = 256

func (s *fileStore) Walk(ctx context.Context, fn func(Object) error) error {
	fi, err := os.Stat(s.dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("list %s: %w", s.loc.String(), ErrNotFound)
		}
		return fmt.Errorf("list %s: %w", s.loc.String(), err)
	}
	if fi.Mode().IsRegular() { // the location is one file
		return fn(fileObject(filepath.Base(s.dir), fi))
	}
	if err := s.walkDir(ctx, s.dir, "", fn); err != nil {
		var stop walkStop
		if errors.As(err, &stop) {
			return stop.err
		}
		return fmt.Errorf("list %s: %w", s.loc.String(), err)
	}
	return nil
}

// walkStop carries fn's own error out of walkDir unwrapped.
type walkStop struct{ err error }

func (w walkStop) Error() string { return w.err.Error() }

// walkDir visits dir depth-first, reading its entries readDirBatch at a time
// (filepath.WalkDir would read and sort a whole directory at once).
func (s *fileStore) walkDir(ctx context.Context, dir, rel string, fn func(Object) error) error {
	f, err := os.Open(dir)
	if err != nil {
		if rel != "" && errors.Is(err, fs.ErrNotExist) {
			return nil // removed while listing
		}
		return err
	}
	defer f.Close()
	for {
		ents, err := f.ReadDir(readDirBatch)
		for _, d := range ents {
			if err := ctx.Err(); err != nil {
				return err
			}
			name := d.Name()
			if rel != "" {
				name = rel + "/" + name
			}
			switch {
			case d.IsDir():
				if err := s.walkDir(ctx, filepath.Join(dir, d.Name()), name, fn); err != nil {
					return err
				}
			case strings.HasPrefix(d.Name(), "."):
				// dot files: partial uploads
			case d.Type().IsRegular():
				info, err := d.Info()
				if err != nil {
					if errors.Is(err, fs.ErrNotExist) {
						continue // removed while listing
					}
					return err
				}
				if err := fn(fileObject(name, info)); err != nil {
					return walkStop{err}
				}
			}
			// symlinks, sockets and the like are left out
		}
		if errors.Is(err, io.EOF) || (err == nil && len(ents) == 0) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// path resolves a name relative to the location, refusing to leave it.
func (s *fileStore) path(key string) (string, error) {
	fi, err := os.Stat(s.dir)
	if err == nil && fi.Mode().IsRegular() {
		if key != filepath.Base(s.dir) {
			return "", fmt.Errorf("stat %s: %q: %w", s.loc.String(), key, ErrNotFound)
		}
		return s.dir, nil
	}
	clean := filepath.Clean("/" + filepath.FromSlash(key))
	if clean == "/" {
		return "", fmt.Errorf("stat %s: %q: %w", s.loc.String(), key, ErrNotFound)
	}
	return filepath.Join(s.dir, clean), nil
}

func (s *fileStore) Stat(_ context.Context, key string) (Object, error) {
	p, err := s.path(key)
	if err != nil {
		return Object{}, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Object{}, fmt.Errorf("stat %s: %q: %w", s.loc.String(), key, ErrNotFound)
		}
		return Object{}, fmt.Errorf("stat %s: %w", s.loc.String(), err)
	}
	if !fi.Mode().IsRegular() {
		return Object{}, fmt.Errorf("stat %s: %q is not a regular file: %w", s.loc.String(), key, ErrNotFound)
	}
	rel, err := filepath.Rel(s.dir, p)
	if err != nil || rel == "." {
		rel = filepath.Base(p)
	}
	return fileObject(filepath.ToSlash(rel), fi), nil
}

func (s *fileStore) Open(_ context.Context, obj Object) (io.ReadCloser, error) {
	p, err := s.path(obj.Key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("open %s: %q: %w", s.loc.String(), obj.Key, ErrNotFound)
		}
		return nil, fmt.Errorf("open %s: %w", s.loc.String(), err)
	}
	check := func() error {
		fi, err := f.Stat()
		if err != nil {
			return fmt.Errorf("stat %s: %w", p, err)
		}
		if got := fileETag(fi); got != obj.ETag {
			return fmt.Errorf("%s: %q is not the pinned file (identity %s, pinned %s): %w", s.loc.String(), obj.Key, got, obj.ETag, ErrChanged)
		}
		return nil
	}
	if err := check(); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("open %w", err)
	}
	return &sizedReader{r: f, c: f, want: obj.Size, what: p, atEOF: check}, nil
}

func fileObject(rel string, fi fs.FileInfo) Object {
	return Object{Key: rel, Name: rel, Size: fi.Size(), LastModified: fi.ModTime().UTC(), ETag: fileETag(fi)}
}

// fileETag identifies a file's content without reading it: device, inode,
// size and modification time (ns). A replaced or rewritten file changes it.
func fileETag(fi fs.FileInfo) string {
	var dev, ino uint64
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		dev, ino = uint64(st.Dev), st.Ino //nolint:unconvert // Dev is int32 on some platforms
	}
	return fmt.Sprintf("%x-%x-%x-%x", dev, ino, fi.Size(), fi.ModTime().UnixNano())
}
