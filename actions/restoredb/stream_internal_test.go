package restoredb

import (
	"strings"
	"testing"
)

func TestLibpqEnvCarriesCredentialsOutsideArgv(t *testing.T) {
	for k, v := range map[string]string{"SLACK_BOT_TOKEN": "xoxb-nope", "AWS_SECRET_ACCESS_KEY": "aws-nope",
		"PAGERDUTY_API_TOKEN": "pd-nope", "DATABASE_URL": "postgres://bot:store-nope@x/drbot", "PGPASSWORD": "parent-nope"} {
		t.Setenv(k, v)
	}
	tg, err := parseTarget("postgres://app:s3cr%40t@db.internal:6543/shop?sslmode=require&connect_timeout=5&application_name=x")
	if err != nil {
		t.Fatal(err)
	}
	if tg.Server != "db.internal:6543" || tg.Live != "shop" {
		t.Errorf("target %s/%s", tg.Server, tg.Live)
	}
	env := strings.Join(tg.libpqEnv(), "\n")
	for _, want := range []string{"PGHOST=db.internal", "PGPORT=6543", "PGUSER=app", "PGPASSWORD=s3cr@t", "PGSSLMODE=require", "PGCONNECT_TIMEOUT=5"} {
		if !strings.Contains(env, want+"\n") && !strings.HasSuffix(env, want) {
			t.Errorf("env lacks %s", want)
		}
	}
	if strings.Contains(env, "nope") {
		t.Errorf("pg_restore/psql environment holds drbot's secrets:\n%s", env)
	}
	for _, f := range []string{FormatCustom, FormatSQL, FormatSQLGz} {
		prog, args := restoreCommand(f, "shop_restore_1")
		if joined := prog + " " + strings.Join(args, " "); strings.Contains(joined, "s3cr") || strings.Contains(joined, "db.internal") {
			t.Errorf("argv carries connection details: %s", joined)
		}
	}
	if _, err := parseTarget("postgres://app:s3cret@[bad"); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("parse error %v must not repeat the URL", err)
	}
}

func TestDerivedNamesFitIdentifiers(t *testing.T) {
	long := strings.Repeat("a", 63)
	for _, suffix := range []string{"_restore_20261123161500", "_pre_restore_20261123161500", "_rolled_back_20261123161500"} {
		if n := derivedName(long, suffix); len(n) != 63 || !strings.HasSuffix(n, suffix) {
			t.Errorf("derivedName(63 chars, %s) = %s (%d)", suffix, n, len(n))
		}
	}
	if got := preRestorePrefix(long); got != derivedName(long, "_pre_restore_20261123161500")[:63-14] {
		t.Errorf("preRestorePrefix = %s", got)
	}
	if got := derivedName("shop", "_restore_1"); got != "shop_restore_1" {
		t.Errorf("derivedName(shop) = %s", got)
	}
}
