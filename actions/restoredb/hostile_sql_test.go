package restoredb_test

import (
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/actions/restoredb"
)

// TestHostileBackupThatRenamesOrDropsLiveIsCaught: plain SQL (no
// meta-command) runs as the role in url_env, which owns live (the swap
// needs it), so a hostile backup can rename or drop live. drbot cannot stop
// the statement, but it must not then say live is untouched or swap: the
// request is refused naming what happened, and the side database is kept.
func TestHostileBackupThatRenamesOrDropsLiveIsCaught(t *testing.T) {
	f := newFixture(t)
	f.exec(f.admin, `DO $$ BEGIN CREATE ROLE shopowner LOGIN CREATEDB; EXCEPTION WHEN duplicate_object THEN NULL; END $$`)
	f.exec(f.admin, `ALTER DATABASE `+pgxIdent(f.live)+` OWNER TO shopowner`)
	u, _ := url.Parse(f.liveURL)
	u.User = url.User("shopowner") // not a superuser: what drbot asks for
	t.Setenv(f.envVar, u.String())
	dir := t.TempDir()
	f.useDir(dir)
	a := restoredb.New(f.options())
	valid := "CREATE TABLE experiments (id int PRIMARY KEY, note text, created timestamptz);\nINSERT INTO experiments (id) VALUES (1), (2);\n"
	writeBackup(t, filepath.Join(dir, "rename.sql"), valid+"ALTER DATABASE "+pgxIdent(f.live)+" RENAME TO moved_live;\n", false)
	f.now = f.now.Add(time.Second)
	p := f.plan(a, map[string]string{"backup": "rename.sql"})
	s := spec(t, p)
	j := newJournal("")
	err := a.Execute(f.ctx, p, j)
	if err == nil || !isRefusal(err) || !strings.Contains(err.Error(), "acted outside the side database") {
		t.Fatalf("Execute = %v, want a refusal saying the backup acted outside the side database", err)
	}
	if all := err.Error() + strings.Join(j.notes(), "\n"); strings.Contains(all, "untouched") {
		t.Errorf("drbot claims live is untouched after the backup renamed it: %q", all)
	}
	if got := f.databases(s.Incoming); len(got) != 1 {
		t.Errorf("side database %v, want it kept for inspection (and never swapped in)", got)
	}
	if got := f.databases(f.live); len(got) != 0 {
		t.Errorf("a database named live exists: %v (the side database was swapped in?)", got)
	}
	if got := f.databases("moved_live"); len(got) != 1 {
		t.Fatalf("the backup did not rename live (%v): this test needs an owner role", got)
	}
}
