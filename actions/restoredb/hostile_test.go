package restoredb_test

import (
	"bytes"
	"compress/gzip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/actions/restoredb"
)

// hostileForms are psql meta-commands that do not start a line (issue 8,
// point 1): each would create the file at path when psql ran it.
func hostileForms(path string) map[string]string {
	return map[string]string{
		"after-statement": "SELECT 1; \\! touch " + path + "\n",
		"leading-spaces":  "   \\! touch " + path + "\n",
		"tab-then-o":      "\t\\o " + path + "\nSELECT 1;\n",
		"select-g":        "SELECT 2 \\g " + path + "\n",
	}
}

// TestHostileBackupMetaCommandsAreRefused restores plain SQL backups that
// hold a psql meta-command anywhere but column 0, plain and gzipped, with the
// machine's psql into the test's PostgreSQL: each request ends refused with
// a message naming the meta-command, the command never ran (no file), the
// live database is unchanged and no side database is left behind.
func TestHostileBackupMetaCommandsAreRefused(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	f.useDir(dir)
	a := restoredb.New(f.options())
	pwnDir := t.TempDir()
	for form := range hostileForms("") {
		for _, ext := range []string{".sql", ".sql.gz"} {
			t.Run(form+ext, func(t *testing.T) {
				pwned := filepath.Join(pwnDir, form+ext+".pwned")
				body := "CREATE TABLE experiments (id int PRIMARY KEY, note text, created timestamptz);\n" +
					"INSERT INTO experiments (id) VALUES (1);\n" + hostileForms(pwned)[form] +
					"INSERT INTO experiments (id) VALUES (2);\n"
				name := form + ext
				writeBackup(t, filepath.Join(dir, name), body, ext == ".sql.gz")
				f.now = f.now.Add(time.Second) // a fresh side database name
				p := f.plan(a, map[string]string{"backup": name})
				s := spec(t, p)
				j := newJournal("")
				err := a.Execute(f.ctx, p, j)
				if err == nil || !isRefusal(err) {
					t.Fatalf("Execute(%s) = %v, want a refusal", name, err)
				}
				t.Logf("refusal: %v", err)
				if msg := err.Error(); !strings.Contains(msg, "meta-command (at line 3)") || !strings.Contains(msg, name) || !strings.Contains(msg, "untouched") {
					t.Errorf("refusal %q does not say the backup holds a meta-command", msg)
				}
				f.noSecret(err.Error())
				if _, err := os.Stat(pwned); err == nil {
					t.Errorf("the backup's meta-command ran: %s exists", pwned)
				}
				if rows, marker := f.count(f.live); rows != seedRows || marker {
					t.Errorf("live changed: %d rows, marker %v", rows, marker)
				}
				if got := f.databases(s.Incoming); len(got) != 0 {
					t.Errorf("side database left behind: %v", got)
				}
				if j.ran("scale-down/deployment/web") || f.replicas() != replicas {
					t.Errorf("writers touched after a refused restore (replicas %d)", f.replicas())
				}
				if notes := strings.Join(j.notes(), "\n"); !strings.Contains(notes, "untouched") || !strings.Contains(notes, "dropped") {
					t.Errorf("notes %q do not say live is untouched and the side database dropped", notes)
				}
			})
		}
	}
}

// TestUnrestrictInBackupCannotLiftTheRestriction: a backup that tries to
// end a restriction itself (with pg_dump's syntax, a guessed key, a key of
// its own) still has its meta-command refused.
func TestUnrestrictInBackupCannotLiftTheRestriction(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	f.useDir(dir)
	a := restoredb.New(f.options())
	pwned := filepath.Join(t.TempDir(), "pwned")
	for name, body := range map[string]string{
		"own-pair.sql":  "\\restrict abc\nSELECT 1;\n\\unrestrict abc\n\\! touch " + pwned + "\n",
		"guess.sql":     "\\unrestrict abc\n\\! touch " + pwned + "\n",
		"twice.sql":     "\\restrict abc\n\\restrict def\n\\unrestrict def\n\\unrestrict abc\n\\! touch " + pwned + "\n",
		"mid-line.sql":  "SELECT 1; \\unrestrict abc\nSELECT 1; \\! touch " + pwned + "\n",
		"no-key.sql":    "\\unrestrict\n\\! touch " + pwned + "\n",
		"restrict1.sql": "\\restrict abc\n\\restrict abc\n\\unrestrict abc\n \\! touch " + pwned + "\n",
	} {
		t.Run(name, func(t *testing.T) {
			writeBackup(t, filepath.Join(dir, name), body, false)
			f.now = f.now.Add(time.Second)
			p := f.plan(a, map[string]string{"backup": name})
			s := spec(t, p)
			err := a.Execute(f.ctx, p, newJournal(""))
			if err == nil || !isRefusal(err) {
				t.Fatalf("Execute(%s) = %v, want a refusal", name, err)
			}
			if _, err := os.Stat(pwned); err == nil {
				t.Fatalf("the backup's meta-command ran: %s exists", pwned)
			}
			if got := f.databases(s.Incoming); len(got) != 0 {
				t.Errorf("side database left behind: %v", got)
			}
			if rows, marker := f.count(f.live); rows != seedRows || marker {
				t.Errorf("live changed: %d rows, marker %v", rows, marker)
			}
		})
	}
}

// TestPgDumpPlainWithItsOwnRestrictRestores: the machine's pg_dump (15.14 or
// later) writes \restrict KEY ... \unrestrict KEY into plain dumps; such a
// dump, plain and gzipped, still restores under drbot's own restriction.
func TestPgDumpPlainWithItsOwnRestrictRestores(t *testing.T) {
	for _, format := range []string{restoredb.FormatSQL, restoredb.FormatSQLGz} {
		t.Run(format, func(t *testing.T) {
			f := newFixture(t)
			dir := t.TempDir()
			file := f.dump(dir, "shop."+format, format)
			if format == restoredb.FormatSQL {
				b, err := os.ReadFile(file)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Contains(b, []byte("\n\\restrict ")) || !bytes.Contains(b, []byte("\n\\unrestrict ")) {
					out, _ := exec.Command("pg_dump", "--version").Output()
					t.Fatalf("%s writes no \\restrict pair; this test needs pg_dump 15.14 or later", strings.TrimSpace(string(out)))
				}
			}
			f.afterBackup()
			f.useDir(dir)
			a := restoredb.New(f.options())
			p := f.plan(a, nil)
			j := newJournal("")
			if err := a.Execute(f.ctx, p, j); err != nil {
				t.Fatalf("Execute: %v (notes %v)", err, j.notes())
			}
			f.assertRestored(p, j)
		})
	}
}

func writeBackup(t *testing.T, path, body string, gz bool) {
	t.Helper()
	data := []byte(body)
	if gz {
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		data = buf.Bytes()
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
