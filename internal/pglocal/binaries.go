package pglocal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// ErrNoBinaries is returned (wrapped or as is) when no PostgreSQL server binaries
// can be found on the machine. Its message tells the user what to do.
var ErrNoBinaries = errors.New("no PostgreSQL server binaries found (looked for initdb on PATH and in /usr/lib/postgresql/*/bin): install PostgreSQL (e.g. apt-get install postgresql) or set DATABASE_URL")

// serverBinGlob is where distribution packages (Debian, Ubuntu) put the server
// binaries of each major version. A variable so tests can point it elsewhere.
var serverBinGlob = "/usr/lib/postgresql/*/bin"

// serverBinaries are the programs a directory must hold to run a cluster.
var serverBinaries = []string{"initdb", "pg_ctl", "postgres"}

// FindBinaries returns the directory holding initdb, pg_ctl and postgres. It looks
// on PATH first, then under /usr/lib/postgresql/*/bin, highest major version first.
// When nothing is found the error is ErrNoBinaries.
func FindBinaries() (dir string, err error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		// Prefer the real directory when PATH holds symlinks (e.g. /usr/local/bin).
		var candidates []string
		if resolved, err := filepath.EvalSymlinks(p); err == nil {
			candidates = append(candidates, filepath.Dir(resolved))
		}
		candidates = append(candidates, filepath.Dir(p))
		for _, d := range candidates {
			if hasServerBinaries(d) {
				return d, nil
			}
		}
	}
	for _, d := range versionDirs() {
		if hasServerBinaries(d) {
			return d, nil
		}
	}
	return "", ErrNoBinaries
}

// binariesForMajor returns the directory of the server binaries of one major
// version under serverBinGlob, if installed.
func binariesForMajor(major int) (string, bool) {
	for _, d := range versionDirs() {
		if versionOfDir(d) == major && hasServerBinaries(d) {
			return d, true
		}
	}
	return "", false
}

// versionDirs lists the directories matching serverBinGlob, highest major first.
func versionDirs() []string {
	dirs, err := filepath.Glob(serverBinGlob)
	if err != nil {
		return nil
	}
	sort.SliceStable(dirs, func(i, j int) bool {
		vi, vj := versionOfDir(dirs[i]), versionOfDir(dirs[j])
		if vi != vj {
			return vi > vj
		}
		return dirs[i] > dirs[j]
	})
	return dirs
}

// versionOfDir extracts the major version from .../postgresql/<version>/bin
// ("9.6" counts as 9); -1 when the name carries none.
func versionOfDir(dir string) int {
	name := filepath.Base(filepath.Dir(dir))
	major, _, _ := strings.Cut(name, ".")
	v, err := strconv.Atoi(major)
	if err != nil {
		return -1
	}
	return v
}

func hasServerBinaries(dir string) bool {
	for _, name := range serverBinaries {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
			return false
		}
	}
	return true
}

var versionRE = regexp.MustCompile(`\(PostgreSQL\)\s+(\d+)`)

// serverMajor runs `postgres --version` from binDir and returns the major version.
func serverMajor(binDir string) (int, error) {
	out, err := exec.CommandContext(context.Background(), filepath.Join(binDir, "postgres"), "--version").Output()
	if err != nil {
		return 0, fmt.Errorf("run %s --version: %w", filepath.Join(binDir, "postgres"), err)
	}
	m := versionRE.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("unexpected output of %s --version: %q", filepath.Join(binDir, "postgres"), strings.TrimSpace(string(out)))
	}
	return strconv.Atoi(string(m[1]))
}

// dataDirMajor reads PG_VERSION of an initialized data directory.
func dataDirMajor(pgdata string) (int, error) {
	b, err := os.ReadFile(filepath.Join(pgdata, "PG_VERSION"))
	if err != nil {
		return 0, err
	}
	major, _, _ := strings.Cut(strings.TrimSpace(string(b)), ".")
	v, err := strconv.Atoi(major)
	if err != nil {
		return 0, fmt.Errorf("%s: unexpected content %q", filepath.Join(pgdata, "PG_VERSION"), strings.TrimSpace(string(b)))
	}
	return v, nil
}
