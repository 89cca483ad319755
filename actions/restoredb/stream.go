package restoredb

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/drbot-dev/drbot/actions"
)

// Backup formats, from the object name.
const (
	FormatCustom = "custom" // pg_dump -Fc (.dump), restored with pg_restore
	FormatSQL    = "sql"    // plain SQL (.sql), restored with psql
	FormatSQLGz  = "sql.gz" // gzip-compressed plain SQL (.sql.gz)
)

// FormatOf returns the backup format of an object name, or "" when it is not
// a supported backup.
func FormatOf(name string) string {
	n := strings.ToLower(name)
	switch {
	case strings.HasSuffix(n, ".dump"), strings.HasSuffix(n, ".pgdump"), strings.HasSuffix(n, ".backup"):
		return FormatCustom
	case strings.HasSuffix(n, ".sql.gz"):
		return FormatSQLGz
	case strings.HasSuffix(n, ".sql"):
		return FormatSQL
	}
	return ""
}

// restoreCommand returns the program and arguments that read a backup of
// format from stdin into database. Connection parameters come from the
// environment (PG* variables); argv carries no credentials.
func restoreCommand(format, database string) (string, []string) {
	if format == FormatCustom {
		return "pg_restore", []string{"--exit-on-error", "--no-password", "--dbname", database}
	}
	return "psql", []string{"--no-psqlrc", "--quiet", "--no-password", "--set", "ON_ERROR_STOP=1", "--dbname", database, "--file", "-"}
}

// progressEvery throttles progress reports.
const (
	progressBytes = 8 << 20
	progressTime  = 500 * time.Millisecond
)

// countingReader counts the bytes read and reports progress.
type countingReader struct {
	ctx    context.Context
	r      io.Reader
	j      actions.Journal
	step   string
	total  int64
	n      int64
	lastN  int64
	lastAt time.Time
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n-c.lastN >= progressBytes || time.Since(c.lastAt) >= progressTime || (err != nil && c.n != c.lastN) {
		c.lastN, c.lastAt = c.n, time.Now()
		c.j.Progress(c.ctx, actions.Progress{Step: c.step, Done: c.n, Total: c.total, Unit: "bytes"})
	}
	return n, err
}

// errMetaCommand marks a plain SQL backup that holds a psql meta-command
// that could act outside the side database (\connect, \!, \o, \copy, …).
var errMetaCommand = errors.New("plain SQL backup holds a psql meta-command")

// tailBuffer keeps the last bytes written to it (a program's stderr).
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = t.buf[len(t.buf)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.buf))
}

// stream runs prog with args and env, feeding it src (decompressed when
// format is FormatSQLGz; when plain, preceded by \restrict with a fresh
// random key, so psql itself refuses every meta-command in the backup,
// wherever it stands; only psql's lexer knows a meta-command from a line of
// a quoted string, so nothing before it judges the text). A
// failure to read src is returned as srcErr, the program's own failure as
// err (with the tail of its stderr, which never holds credentials).
func stream(ctx context.Context, src io.Reader, format, prog string, args, env []string) (srcErr, err error) {
	in := src
	if format == FormatSQLGz {
		gz, gerr := gzip.NewReader(src)
		if gerr != nil {
			return fmt.Errorf("not a gzip stream: %w", gerr), nil
		}
		defer func() { _ = gz.Close() }()
		in = gz
	}
	var key string
	if format != FormatCustom {
		var kerr error
		if key, kerr = restrictKey(); kerr != nil {
			return nil, kerr
		}
		in = newRestrictReader(in, key)
	}
	path, err := exec.LookPath(prog)
	if err != nil {
		return nil, fmt.Errorf("%s not found on PATH: %w", prog, err)
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = env
	cmd.SysProcAttr = childAttr()
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	stderr := &tailBuffer{max: 4096}
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", prog, err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", prog, err)
	}
	copyDone := make(chan error, 1)
	go func() {
		_, cerr := io.Copy(stdin, in)
		var readErr error
		if cerr != nil && !errors.Is(cerr, syscall.EPIPE) && !strings.Contains(cerr.Error(), "file already closed") {
			readErr = cerr
			// Kill the program so a partial stream is never taken as a
			// whole one (psql would commit what it got).
			_ = cmd.Process.Kill()
		}
		_ = stdin.Close()
		copyDone <- readErr
	}()
	werr := cmd.Wait()
	srcErr = <-copyDone
	if srcErr != nil {
		return srcErr, nil
	}
	if format != FormatCustom {
		// ON_ERROR_STOP makes psql exit on a refused meta-command; should
		// a psql ever go on instead, its message still fails the restore.
		if rerr := refusedMeta(stderr.String()); rerr != nil {
			return nil, rerr
		}
	}
	if werr != nil {
		if msg := stderr.String(); msg != "" {
			return nil, fmt.Errorf("%s: %w: %s", prog, werr, msg)
		}
		return nil, fmt.Errorf("%s: %w", prog, werr)
	}
	return nil, nil
}
