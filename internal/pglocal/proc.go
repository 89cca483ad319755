package pglocal

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/drbot-dev/drbot/internal/childenv"
)

// account is the OS user the server programs run as when drbot runs as root
// (PostgreSQL refuses to run as root).
type account struct {
	name string
	uid  uint32
	gid  uint32
	gids []uint32
}

// credential returns the process credential for programs run as a.
func (a *account) credential() *syscall.Credential {
	return &syscall.Credential{Uid: a.uid, Gid: a.gid, Groups: a.gids}
}

// lookupAccount resolves an OS user by name or numeric id.
func lookupAccount(nameOrID string, byID bool) (*account, error) {
	var u *user.User
	var err error
	if byID {
		u, err = user.LookupId(nameOrID)
	} else {
		u, err = user.Lookup(nameOrID)
	}
	if err != nil {
		return nil, err
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %s: uid %q: %w", u.Username, u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %s: gid %q: %w", u.Username, u.Gid, err)
	}
	a := &account{name: u.Username, uid: uint32(uid), gid: uint32(gid)}
	if ids, err := u.GroupIds(); err == nil {
		for _, s := range ids {
			if g, err := strconv.ParseUint(s, 10, 32); err == nil {
				a.gids = append(a.gids, uint32(g))
			}
		}
	}
	return a, nil
}

// serverAccount picks who runs the server when we are root: the owner of an
// existing data directory when that is not root, otherwise the "postgres" user.
func serverAccount(pgdata string) (*account, error) {
	if fi, err := os.Stat(filepath.Join(pgdata, "PG_VERSION")); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 {
			if a, err := lookupAccount(strconv.FormatUint(uint64(st.Uid), 10), true); err == nil {
				return a, nil
			}
		}
	}
	a, err := lookupAccount("postgres", false)
	if err != nil {
		return nil, fmt.Errorf("drbot runs as root and PostgreSQL refuses to run as root, but there is no \"postgres\" OS user to run it as (%w): create one (e.g. useradd --system postgres, or install the postgresql package) or set DATABASE_URL", err)
	}
	return a, nil
}

// canTraverse reports whether a may enter directory fi (search permission).
func (a *account) canTraverse(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return true
	}
	mode := fi.Mode().Perm()
	if st.Uid == a.uid {
		return mode&0o100 != 0
	}
	if st.Gid == a.gid || contains(a.gids, st.Gid) {
		return mode&0o010 != 0
	}
	return mode&0o001 != 0
}

func contains(s []uint32, v uint32) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// checkAncestors makes sure a can reach dir: every parent directory must be
// searchable by a. It never changes the permissions of a parent; the error names
// the first directory that blocks the way.
func (a *account) checkAncestors(dir string) error {
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("stat %s: %w", p, err)
		}
		if !a.canTraverse(fi) {
			return fmt.Errorf("PostgreSQL must run as the %q user (it refuses to run as root), but %s cannot enter %s (mode %04o, owner uid %d), which lies above the data directory %s: use a data directory outside %s (e.g. /var/lib/drbot or /srv/drbot) or set DATABASE_URL",
				a.name, a.name, p, fi.Mode().Perm(), ownerUID(fi), dir, p)
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

func ownerUID(fi fs.FileInfo) uint32 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Uid
	}
	return 0
}

// ensureOwnedDir creates dir (mode 0700) if needed and, when a is set, makes a its owner.
func ensureOwnedDir(dir string, a *account) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil { //nolint:gosec // a directory needs x
		return fmt.Errorf("chmod %s: %w", dir, err)
	}
	if a != nil {
		if err := os.Chown(dir, int(a.uid), int(a.gid)); err != nil {
			return fmt.Errorf("give %s to user %s: %w", dir, a.name, err)
		}
	}
	return nil
}

// writeOwnedFile writes a file readable by the server account.
func writeOwnedFile(path string, data []byte, a *account) error {
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if a != nil {
		if err := os.Chown(path, int(a.uid), int(a.gid)); err != nil {
			return fmt.Errorf("give %s to user %s: %w", path, a.name, err)
		}
	}
	return nil
}

// processAlive reports whether a process with this pid exists.
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// isPostgresProcess reports whether pid is alive and runs the postgres program.
// On systems without /proc it trusts the liveness check alone.
func isPostgresProcess(pid int) bool {
	if !processRunning(pid) {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return true
	}
	return strings.TrimSpace(string(b)) == "postgres"
}

// cleanEnv is the environment for the server programs: a minimal one
// (childenv: PATH, HOME, locale, TZ, TMPDIR; none of drbot's tokens, keys or
// database URLs, which SQL such as COPY ... TO PROGRAM could read from the
// server), no PG* variables (which could redirect pg_ctl), with messages
// forced to English so errors can be recognized.
func cleanEnv(a *account) []string {
	set := []string{"LC_ALL=C", "LANG=C"}
	if a != nil {
		set = append(set, "USER="+a.name, "LOGNAME="+a.name, "HOME=/")
	}
	return childenv.Build(nil, set...)
}

// ErrUnreachable is returned (wrapped) by Reachable when, as root, the user the
// server would run as cannot enter a directory above the data directory.
var ErrUnreachable = errors.New("data directory unreachable by the PostgreSQL user")

// Reachable reports whether a cluster under dataDir could be started: when
// drbot runs as root the server runs as another user, who must be able to pass
// through every directory above dataDir (a checkout under /root is the usual
// trap). It changes nothing. As a non-root user it always returns nil.
func Reachable(dataDir string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return err
	}
	acct, err := serverAccount(filepath.Join(abs, pgdataName))
	if err != nil {
		return err
	}
	// The data directory itself may not exist yet; check from its nearest
	// existing ancestor up.
	p := abs
	for {
		if _, err := os.Stat(p); err == nil || p == filepath.Dir(p) {
			break
		}
		p = filepath.Dir(p)
	}
	probe := abs // setupRoot opens up the data directory itself, not its parents
	if p != abs {
		probe = filepath.Join(p, "x")
	}
	if err := acct.checkAncestors(probe); err != nil {
		return fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	return nil
}
