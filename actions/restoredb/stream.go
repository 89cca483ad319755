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

// metaFilter passes SQL through and fails on a line that starts with a psql
// meta-command other than what pg_dump writes (\restrict, \unrestrict) and
// what COPY data lines can start with (\. \\ \N and escapes \b \f \n \r \t \v,
// octal digits, \x).
type metaFilter struct {
	r         io.Reader
	lineStart bool
	pending   []byte // a backslash at a line start whose command word is incomplete
}

func newMetaFilter(r io.Reader) *metaFilter { return &metaFilter{r: r, lineStart: true} }

func (m *metaFilter) Read(p []byte) (int, error) {
	n, err := m.r.Read(p)
	buf := p[:n]
	for i := 0; i < len(buf); i++ {
		b := buf[i]
		if len(m.pending) > 0 {
			m.pending = append(m.pending, b)
			if done, bad := m.judge(); bad != "" {
				return i, fmt.Errorf("%w: a line starting %s", errMetaCommand, bad)
			} else if done {
				m.pending = m.pending[:0]
			}
		} else if m.lineStart && b == '\\' {
			m.pending = append(m.pending[:0], b)
		}
		m.lineStart = b == '\n'
	}
	if errors.Is(err, io.EOF) && len(m.pending) > 0 {
		if _, bad := m.judgeFinal(); bad != "" {
			return n, fmt.Errorf("%w: a line starting %s", errMetaCommand, bad)
		}
	}
	return n, err
}

// judge decides on m.pending (a backslash and the bytes after it): done when
// it is allowed, bad (non-empty) when it is not; neither when more is needed.
// Allowed: \. \\ octal digits (COPY data), a first letter that starts a COPY
// escape (\N \b \f \n \r \t \v \x; as psql commands these only change
// output settings), and \unrestrict (\restrict starts with r).
func (m *metaFilter) judge() (done bool, bad string) {
	rest := m.pending[1:]
	c := rest[0]
	switch {
	case c == '.' || c == '\\' || c == '\n' || c == '\r' || (c >= '0' && c <= '7'):
		return true, ""
	case !isLetter(c):
		return false, string(m.pending)
	case strings.IndexByte("NbfnrtvxX", c) >= 0:
		return true, ""
	}
	last := rest[len(rest)-1]
	if isLetter(last) && len(rest) < 16 {
		return false, "" // the word goes on
	}
	word := strings.TrimRightFunc(string(rest), func(r rune) bool { return r > 0x7f || !isLetter(byte(r&0x7f)) })
	if word == "unrestrict" {
		return true, ""
	}
	return false, "\\" + word
}

func (m *metaFilter) judgeFinal() (bool, string) {
	m.pending = append(m.pending, '\n')
	return m.judge()
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

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
// format is FormatSQLGz; when plain, filtered for line-start psql
// meta-commands and preceded by \restrict with a fresh random key, so psql
// itself refuses every meta-command in the backup, wherever it stands). A
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
		in = newRestrictReader(newMetaFilter(in), key)
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
