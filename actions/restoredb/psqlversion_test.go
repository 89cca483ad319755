package restoredb_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/restoredb"
)

// oldPsqlOnPath puts a psql first on PATH that reports version (an older
// client than the machine's, which cannot be installed beside it here).
func oldPsqlOnPath(t *testing.T, version string) {
	t.Helper()
	dir := t.TempDir()
	script := "#!/bin/sh\necho 'psql (PostgreSQL) " + version + " (Debian " + version + "-0+deb12u1)'\n"
	if err := os.WriteFile(filepath.Join(dir, "psql"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
}

// TestPlainSQLNeedsAPsqlWithRestrict: a plain-SQL backup is restored with psql,
// which runs a dump's meta-commands (\! runs a shell) unless it has
// \restrict (15.14+). With an older client restore-db refuses plain SQL
// at plan and at execution, and says why; custom-format backups still work.
func TestPlainSQLNeedsAPsqlWithRestrict(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	f.dump(dir, "plain.sql", restoredb.FormatSQL)
	f.dump(dir, "custom.dump", restoredb.FormatCustom)
	f.afterBackup()
	f.useDir(dir)
	a := restoredb.New(f.options())

	// The machine's psql (15.18) has \restrict: plain SQL plans.
	planned := f.plan(a, map[string]string{"backup": "plain.sql"})

	oldPsqlOnPath(t, "15.13")
	_, err := a.Plan(f.ctx, actions.Params{Service: service, Flags: map[string]string{"backup": "plain.sql"}})
	if err == nil || !isRefusal(err) || !strings.Contains(err.Error(), "15.13") || !strings.Contains(err.Error(), `\restrict`) || !strings.Contains(err.Error(), "custom-format") {
		t.Fatalf("plain SQL with psql 15.13: Plan = %v, want a refusal naming the version, \\restrict and the way out", err)
	}
	if p := f.plan(a, map[string]string{"backup": "custom.dump"}); spec(t, p).Format != restoredb.FormatCustom {
		t.Errorf("custom format with an old psql: %+v", spec(t, p))
	}
	// A plan made while the client was recent does not run on an older one.
	before, _ := f.count(f.live)
	j := newJournal("")
	if err := a.Execute(f.ctx, planned, j); err == nil || !isRefusal(err) || !strings.Contains(err.Error(), "15.13") {
		t.Fatalf("Execute with psql 15.13 = %v, want a refusal", err)
	}
	if rows, _ := f.count(f.live); rows != before {
		t.Errorf("live database has %d rows after the refused restore, had %d", rows, before)
	}
	if dbs := f.databases(f.live + "_restore_"); len(dbs) != 0 {
		t.Errorf("side databases after the refused restore: %v", dbs)
	}
}
