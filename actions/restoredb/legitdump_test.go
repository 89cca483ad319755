package restoredb_test

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/drbot-dev/drbot/actions/restoredb"
)

// TestPgDumpOfBackslashDataRestores: a real pg_dump (COPY and --inserts) of
// a database whose text holds lines that start with psql meta-command
// look-alikes (\! \o \section, in data and in a function body) restores:
// only psql's lexer knows what is a meta-command, so a legitimate dump is
// never refused for its data.
func TestPgDumpOfBackslashDataRestores(t *testing.T) {
	for _, mode := range []string{"copy", "inserts"} {
		t.Run(mode, func(t *testing.T) {
			f := newFixture(t)
			f.exec(f.liveURL, `INSERT INTO experiments (id, note) VALUES
				(1001, E'intro\n\\! touch /tmp/never\n\\o /tmp/never'),
				(1002, E'\\section{Results}\nbody'),
				(1003, E'C:\\\\drbot\\\\x')`)
			f.exec(f.liveURL, "CREATE FUNCTION latex() RETURNS text LANGUAGE sql AS $body$\nSELECT '\n\\section{x}\n\\! not a command'\n$body$")
			dir := t.TempDir()
			out := filepath.Join(dir, "shop.sql")
			args := []string{"--dbname", f.liveURL, "--no-password", "--file", out}
			if mode == "inserts" {
				args = append(args, "--inserts")
			}
			if b, err := exec.Command("pg_dump", args...).CombinedOutput(); err != nil {
				t.Fatalf("pg_dump: %v: %s", err, b)
			}
			f.useDir(dir)
			a := restoredb.New(f.options())
			p := f.plan(a, nil)
			j := newJournal("")
			if err := a.Execute(f.ctx, p, j); err != nil {
				t.Fatalf("Execute: %v (notes %v)", err, j.notes())
			}
			if rows, _ := f.count(f.live); rows != seedRows+3 {
				t.Errorf("live after restore: %d rows, want %d", rows, seedRows+3)
			}
		})
	}
}
