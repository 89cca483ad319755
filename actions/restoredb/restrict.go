package restoredb

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"strconv"
	"strings"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/internal/childenv"
)

// A plain SQL backup is a psql script, and psql meta-commands can run a
// shell (\!), write files (\o, \g, \copy), reconnect (\c) or read the
// environment. pg_dump's fix for the same hole (CVE-2025-8714) is psql's
// \restrict KEY: after it psql refuses every meta-command until
// \unrestrict KEY. drbot writes \restrict with a random key, never shown to
// anyone and never in the backup, as the first line psql reads, so no text
// in the backup (at any column) can run a meta-command or lift the
// restriction. With ON_ERROR_STOP psql exits on the first refused one.

// restrictKey returns a fresh random key of letters and digits (what psql
// and pg_dump accept).
func restrictKey() (string, error) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 40)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("restrict key: %w", err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b), nil
}

// maxRestrictLine bounds a line restrictReader inspects: pg_dump's
// "\unrestrict KEY" with a 64-character key is 76 bytes.
const maxRestrictLine = 256

// restrictReader feeds psql "\restrict KEY" first and then the backup. A
// plain dump from pg_dump 15.14 or later holds its own "\restrict K" and
// "\unrestrict K" lines at column 0; psql refuses a nested \restrict and an
// \unrestrict with another key, so exactly those two lines (the first
// "\restrict K" with a key of letters and digits, and "\unrestrict K" with
// that same K) are replaced with empty lines, keeping line numbers. That
// lifts nothing: drbot's restriction stays, and any other \restrict or
// \unrestrict reaches psql, which refuses it.
type restrictReader struct {
	br        *bufio.Reader
	out       []byte
	lineStart bool
	dumpKey   string
	err       error
}

func newRestrictReader(r io.Reader, key string) *restrictReader {
	return &restrictReader{br: bufio.NewReaderSize(r, 64<<10), out: []byte("\\restrict " + key + "\n"), lineStart: true}
}

var dumpRestrictLine = regexp.MustCompile(`^\\(restrict|unrestrict) ([A-Za-z0-9]+)\r?$`)

func (r *restrictReader) Read(p []byte) (int, error) {
	for len(r.out) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		r.fill()
	}
	n := copy(p, r.out)
	r.out = r.out[n:]
	return n, nil
}

// fill reads the next line, or the next buffer of a long one, into r.out.
func (r *restrictReader) fill() {
	if r.lineStart {
		peek, _ := r.br.Peek(maxRestrictLine)
		if len(peek) > 0 && peek[0] == '\\' {
			if i := bytes.IndexByte(peek, '\n'); i >= 0 || len(peek) < maxRestrictLine {
				line := peek
				if i >= 0 {
					line = peek[:i]
				}
				if m := dumpRestrictLine.FindSubmatch(line); m != nil && r.dumpLine(string(m[1]), string(m[2])) {
					if i >= 0 {
						_, _ = r.br.Discard(i + 1)
						r.out = append(r.out[:0], '\n')
					} else {
						_, _ = r.br.Discard(len(line))
					}
					return
				}
			}
		}
	}
	chunk, err := r.br.ReadSlice('\n')
	r.out = append(r.out[:0], chunk...)
	r.lineStart = len(chunk) > 0 && chunk[len(chunk)-1] == '\n'
	switch {
	case errors.Is(err, bufio.ErrBufferFull):
	case err != nil:
		r.err = err
	}
}

// dumpLine reports whether a \restrict or \unrestrict line is pg_dump's own pair.
func (r *restrictReader) dumpLine(cmd, key string) bool {
	if cmd == "restrict" {
		if r.dumpKey == "" {
			r.dumpKey = key
			return true
		}
		return false
	}
	return r.dumpKey != "" && key == r.dumpKey
}

// refusedMetaLine matches psql's message for a refused meta-command:
// "psql:<stdin>:LINE: error: backslash commands are restricted; only \unrestrict is allowed"
// (and "\unrestrict: wrong key" for an attempt to lift it).
var refusedMetaLine = regexp.MustCompile(`psql:[^\n]*?:(\d+): error: (backslash commands are restricted|\\unrestrict: wrong key)`)

// refusedMeta returns errMetaCommand naming the backup's line when psql's
// stderr says it refused a meta-command, else nil.
func refusedMeta(stderr string) error {
	m := refusedMetaLine.FindStringSubmatch(stderr)
	if m == nil {
		return nil
	}
	line, _ := strconv.Atoi(m[1])
	// drbot's \restrict line comes first: the backup's line is one less.
	return fmt.Errorf("%w: at line %d", errMetaCommand, line-1)
}

// minPsqlMinor is, per major version, the first psql release with
// \restrict (CVE-2025-8714, August 2025); 18 and later all have it.
var minPsqlMinor = map[int]int{13: 22, 14: 19, 15: 14, 16: 10, 17: 6}

var psqlVersionRe = regexp.MustCompile(`\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?`)

// psqlRestrictOK reports whether the psql --version output names a psql
// with \restrict, and the version it names.
func psqlRestrictOK(out string) (ok bool, version string) {
	m := psqlVersionRe.FindStringSubmatch(out)
	if m == nil {
		return false, strings.TrimSpace(out)
	}
	major, _ := strconv.Atoi(m[1])
	minor := -1
	version = m[1]
	if m[2] != "" {
		minor, _ = strconv.Atoi(m[2])
		version += "." + m[2]
	}
	if major >= 18 {
		return true, version
	}
	need, known := minPsqlMinor[major]
	return known && minor >= need, version
}

// checkPsql refuses a plain SQL restore when the psql on PATH lacks
// \restrict (older than 13.22, 14.19, 15.14, 16.10, 17.6): it would run a
// hostile backup's meta-commands. pg_restore (custom format) is unaffected.
func checkPsql(ctx context.Context, backup string) error {
	path, err := exec.LookPath("psql")
	if err != nil {
		return actions.Refusef("%s is a plain SQL backup and psql is not installed here: restore a custom-format (.dump) backup with --backup", backup)
	}
	cmd := exec.CommandContext(ctx, path, "--version")
	cmd.Env = childenv.Build(nil)
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("psql --version: %w", err)
	}
	ok, version := psqlRestrictOK(string(out))
	if !ok {
		return actions.Refusef("%s is a plain SQL backup, and psql %s here cannot restore plain SQL safely: it lacks \\restrict "+
			"(PostgreSQL clients 13.22, 14.19, 15.14, 16.10, 17.6, 18 and later have it). Upgrade the PostgreSQL client, or restore a custom-format (.dump) backup with --backup",
			backup, version)
	}
	return nil
}
