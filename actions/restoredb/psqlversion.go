package restoredb

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/drbot-dev/drbot/actions"
)

// restrictSince is, per major version, the first minor release whose psql has
// \restrict (the CVE-2025-8714 fix, August 2025): in restricted mode psql
// refuses every meta-command, so a crafted plain-SQL dump cannot run a shell
// command (\!) or write files (\o, \copy) on drbot's host. Majors after 17
// have it from their first release; majors before 13 never got it.
var restrictSince = map[int]int{13: 22, 14: 19, 15: 14, 16: 10, 17: 6}

var psqlVersionRe = regexp.MustCompile(`\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?`)

// parsePsqlVersion reads `psql --version` output, e.g.
// "psql (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)" or "psql (PostgreSQL) 18beta1".
func parsePsqlVersion(out string) (major, minor int, err error) {
	m := psqlVersionRe.FindStringSubmatch(out)
	if m == nil {
		return 0, 0, fmt.Errorf("unrecognised psql --version output %q", strings.TrimSpace(out))
	}
	major, _ = strconv.Atoi(m[1])
	if m[2] != "" {
		minor, _ = strconv.Atoi(m[2])
	}
	return major, minor, nil
}

// hasRestrict reports whether psql major.minor has \restrict.
func hasRestrict(major, minor int) bool {
	if since, ok := restrictSince[major]; ok {
		return minor >= since
	}
	return major > 17
}

// checkPlainSQLClient refuses a plain-SQL restore when the psql on PATH
// predates \restrict (or cannot be run): such a client would run whatever
// meta-commands a crafted dump holds. Custom-format backups (pg_restore)
// are not affected.
func checkPlainSQLClient(ctx context.Context, backup string) error {
	path, err := exec.LookPath("psql")
	if err != nil {
		return actions.Refusef("the backup %s is plain SQL and needs psql, which is not installed where drbot runs", backup)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "--version").Output()
	if err != nil {
		return fmt.Errorf("run %s --version: %w", path, err)
	}
	major, minor, err := parsePsqlVersion(string(out))
	if err != nil {
		return err
	}
	if !hasRestrict(major, minor) {
		return actions.Refusef("the backup %s is plain SQL, and drbot's psql is %d.%d, older than the releases with \\restrict (13.22, 14.19, 15.14, 16.10, 17.6 or later): "+
			"a crafted dump could run commands on drbot's host, so drbot does not restore it. Upgrade the PostgreSQL client where drbot runs (its container image ships one), or restore a custom-format backup (pg_dump -Fc)",
			backup, major, minor)
	}
	return nil
}
