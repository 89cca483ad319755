package restoredb_test

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/actions/restoredb"
)

// TestSuperuserRestoreIsFlaggedOnTheCard: a restore runs the backup's SQL as
// the role in url_env. As a superuser, a crafted backup can run programs on
// the database server (COPY … TO PROGRAM), which no client-side filter can
// stop; the approvers must see that on the card, with what to do instead.
func TestSuperuserRestoreIsFlaggedOnTheCard(t *testing.T) {
	f := newFixture(t) // connects as the superuser postgres
	dir := t.TempDir()
	f.useDir(dir)
	writeBackup(t, filepath.Join(dir, "lstm_pfd_20260115.sql"), "CREATE TABLE experiments (id int);\n", false)
	a := restoredb.New(f.options())
	p := f.plan(a, nil)
	all := strings.Join(p.Warnings, "\n")
	if !strings.Contains(all, "superuser") || !strings.Contains(all, "TO PROGRAM") || !strings.Contains(all, "docs/operations.md") {
		t.Errorf("warnings %q do not say that a superuser restore lets a crafted backup run programs on the server", p.Warnings)
	}
}

// TestNonSuperuserRestoreCannotRunServerPrograms: with the role drbot asks
// for (owns the database, CREATEDB, no superuser), a backup that tries COPY
// … TO PROGRAM fails the restore, the program never runs, and the card
// carries no superuser warning.
func TestNonSuperuserRestoreCannotRunServerPrograms(t *testing.T) {
	f := newFixture(t)
	f.exec(f.admin, `DO $$ BEGIN CREATE ROLE shopowner LOGIN CREATEDB; EXCEPTION WHEN duplicate_object THEN NULL; END $$`)
	f.exec(f.admin, `ALTER DATABASE `+pgxIdent(f.live)+` OWNER TO shopowner`)
	u, _ := url.Parse(f.liveURL)
	u.User = url.User("shopowner")
	t.Setenv(f.envVar, u.String())
	dir := t.TempDir()
	f.useDir(dir)
	marker := filepath.Join(os.TempDir(), "drbot-pwned-"+time.Now().Format("150405.000000000"))
	t.Cleanup(func() { _ = os.Remove(marker) })
	body := "CREATE TABLE experiments (id int);\nCOPY (SELECT 1) TO PROGRAM 'touch " + marker + "';\n"
	writeBackup(t, filepath.Join(dir, "lstm_pfd_20260115.sql"), body, false)
	a := restoredb.New(f.options())
	f.now = f.now.Add(time.Second)
	p := f.plan(a, nil)
	if all := strings.Join(p.Warnings, "\n"); strings.Contains(all, "superuser") {
		t.Errorf("a non-superuser restore is flagged as superuser: %q", p.Warnings)
	}
	err := a.Execute(f.ctx, p, newJournal(""))
	if err == nil {
		t.Fatal("a backup running COPY … TO PROGRAM restored without error")
	}
	if _, statErr := os.Stat(marker); statErr == nil {
		t.Fatalf("the backup ran a program on the database server (%s exists)", marker)
	}
	if got := f.databases(f.live); len(got) != 1 {
		t.Errorf("live database %v, want it in place after the refused restore", got)
	}
}
