package restoredb_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/restoredb"
)

// wrap puts a script named prog first on PATH that runs script (shell
// text, may use $REAL for the real program) and then execs the machine's
// prog with the same arguments.
func wrap(t *testing.T, bin, prog, script string) {
	t.Helper()
	realProg, err := exec.LookPath(prog)
	if err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf("#!/bin/sh\nREAL=%s\n%s\nexec \"$REAL\" \"$@\"\n", realProg, script)
	if err := os.WriteFile(filepath.Join(bin, prog), []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestChildProgramsGetNoSecrets restores a plain SQL and a custom-format
// backup while drbot's environment holds Slack, PagerDuty, AWS, Vault and
// database secrets; psql and pg_restore (wrapped to record their
// environment, then the real programs) see their own connection variables
// and none of those.
func TestChildProgramsGetNoSecrets(t *testing.T) {
	secrets := map[string]string{
		"SLACK_BOT_TOKEN": "xoxb-child-must-not-see", "SLACK_SIGNING_SECRET": "signing-child-must-not-see",
		"PAGERDUTY_API_TOKEN": "pd-child-must-not-see", "PAGERDUTY_WEBHOOK_SECRET": "pdw-child-must-not-see",
		"AWS_ACCESS_KEY_ID": "AKIACHILDMUSTNOTSEE", "AWS_SECRET_ACCESS_KEY": "aws-child-must-not-see",
		"DATABASE_URL": "postgres://drbot:store-child-must-not-see@store/drbot", "VAULT_TOKEN": "hvs.child-must-not-see",
		"OTHER_DATABASE_URL": "postgres://app:other-child-must-not-see@db/other",
	}
	for k, v := range secrets {
		t.Setenv(k, v)
	}
	f := newFixture(t)
	dir := t.TempDir()
	f.dump(dir, "shop.sql", restoredb.FormatSQL)
	f.dump(dir, "shop.dump", restoredb.FormatCustom)
	f.useDir(dir)

	bin, envDir := t.TempDir(), t.TempDir()
	for _, prog := range []string{"psql", "pg_restore"} {
		wrap(t, bin, prog, fmt.Sprintf("/usr/bin/env > %s/%s.$$.env", envDir, prog))
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))

	a := restoredb.New(f.options())
	for _, name := range []string{"shop.sql", "shop.dump"} {
		f.now = f.now.Add(time.Second)
		p := f.plan(a, map[string]string{"backup": name})
		j := newJournal("")
		if err := a.Execute(f.ctx, p, j); err != nil {
			t.Fatalf("Execute(%s): %v (notes %v)", name, err, j.notes())
		}
		f.databases(f.live + "_pre_restore_") // dropped at cleanup
	}

	files, _ := filepath.Glob(filepath.Join(envDir, "*.env"))
	connected := map[string]bool{}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		env := string(b)
		for k, v := range secrets {
			if strings.Contains(env, v) || strings.Contains(env, k+"=") {
				t.Errorf("%s: the child's environment holds %s", filepath.Base(file), k)
			}
		}
		if strings.Contains(env, f.envVar+"=") {
			t.Errorf("%s: the child's environment holds the database URL variable %s", filepath.Base(file), f.envVar)
		}
		if strings.Contains(env, "PGHOST=") && strings.Contains(env, "PGPASSWORD="+password+"\n") {
			connected[strings.SplitN(filepath.Base(file), ".", 2)[0]] = true
		}
	}
	if !connected["psql"] || !connected["pg_restore"] {
		t.Errorf("recorded environments %v: psql and pg_restore should each have run with their PG* connection variables", files)
	}
}

// TestOldPsqlRefusesPlainSQL: a psql without \restrict (15.13 here, a wrapper
// around the real one that answers --version) makes a plain SQL backup a
// refusal naming the version, at plan time and again when an approved plan
// runs; a custom-format backup still restores through pg_restore.
func TestOldPsqlRefusesPlainSQL(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	f.dump(dir, "shop.sql.gz", restoredb.FormatSQLGz)
	f.dump(dir, "shop.dump", restoredb.FormatCustom)
	f.afterBackup()
	f.useDir(dir)
	a := restoredb.New(f.options())
	approved := f.plan(a, map[string]string{"backup": "shop.sql.gz"}) // with the machine's psql 15.14+

	bin := t.TempDir()
	wrap(t, bin, "psql", `if [ "$1" = "--version" ]; then echo "psql (PostgreSQL) 15.13"; exit 0; fi`)
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))

	f.now = f.now.Add(time.Second)
	_, err := a.Plan(f.ctx, actions.Params{Service: service, Flags: map[string]string{"backup": "shop.sql.gz"}})
	if !isRefusal(err) || !strings.Contains(err.Error(), "psql 15.13") || !strings.Contains(err.Error(), "shop.sql.gz") {
		t.Errorf("Plan with psql 15.13 = %v, want a refusal naming psql 15.13 and the backup", err)
	}

	j := newJournal("")
	err = a.Execute(f.ctx, approved, j)
	if !isRefusal(err) || !strings.Contains(err.Error(), "psql 15.13") {
		t.Fatalf("Execute with psql 15.13 = %v, want a refusal naming psql 15.13", err)
	}
	if rows, marker := f.count(f.live); rows != seedRows+1 || !marker {
		t.Errorf("live changed: %d rows, marker %v", rows, marker)
	}
	if got := f.databases(spec(t, approved).Incoming); len(got) != 0 {
		t.Errorf("side database left behind: %v", got)
	}

	f.now = f.now.Add(time.Second)
	p := f.plan(a, map[string]string{"backup": "shop.dump"})
	j = newJournal("")
	if err := a.Execute(f.ctx, p, j); err != nil {
		t.Fatalf("custom format with psql 15.13 on PATH: %v (notes %v)", err, j.notes())
	}
	f.assertRestored(p, j)
}

// TestRefusedMetaFailsEvenIfPsqlGoesOn: a psql that carries on after
// refusing a meta-command (here the real one with ON_ERROR_STOP turned back
// off by a wrapper) still fails the restore, from its message.
func TestRefusedMetaFailsEvenIfPsqlGoesOn(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	f.useDir(dir)
	pwned := filepath.Join(t.TempDir(), "pwned")
	writeBackup(t, filepath.Join(dir, "goes-on.sql"), "CREATE TABLE experiments (id int);\nINSERT INTO experiments VALUES (1);\nSELECT 1; \\! touch "+pwned+"\nSELECT 2;\n", false)
	bin := t.TempDir()
	wrap(t, bin, "psql", `if [ "$1" != "--version" ]; then "$REAL" "$@" --set ON_ERROR_STOP=0; exit $?; fi`)
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	a := restoredb.New(f.options())
	p := f.plan(a, map[string]string{"backup": "goes-on.sql"})
	err := a.Execute(f.ctx, p, newJournal(""))
	if !isRefusal(err) || !strings.Contains(err.Error(), "meta-command (at line 3)") {
		t.Fatalf("Execute = %v, want the meta-command refusal", err)
	}
	if _, err := os.Stat(pwned); err == nil {
		t.Errorf("the backup's \\! ran")
	}
	if rows, marker := f.count(f.live); rows != seedRows || marker {
		t.Errorf("live changed: %d rows, marker %v", rows, marker)
	}
	if got := f.databases(spec(t, p).Incoming); len(got) != 0 {
		t.Errorf("side database left behind: %v", got)
	}
}
