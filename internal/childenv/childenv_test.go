package childenv

import (
	"os/exec"
	"strings"
	"testing"
)

func TestBuildKeepsOnlyBaseAllowedAndSet(t *testing.T) {
	parent := map[string]string{
		"PATH": "/opt/bin:/usr/bin", "HOME": "/home/drbot", "LANG": "C.UTF-8", "TZ": "UTC", "TMPDIR": "/tmp/d",
		"SLACK_BOT_TOKEN": "xoxb-secret", "SLACK_SIGNING_SECRET": "sig", "SLACK_APP_TOKEN": "xapp",
		"PAGERDUTY_API_TOKEN": "pd", "PAGERDUTY_WEBHOOK_SECRET": "pdw",
		"AWS_ACCESS_KEY_ID": "AKIA", "AWS_SECRET_ACCESS_KEY": "aws-secret", "AWS_SESSION_TOKEN": "sess", "AWS_REGION": "eu-west-1",
		"DATABASE_URL": "postgres://bot:pw@store/drbot", "SHOP_DATABASE_URL": "postgres://app:pw@db/shop",
		"VAULT_TOKEN": "hvs.x", "GIT_TOKEN": "ghp", "PGPASSWORD": "parent-pg", "PGHOST": "elsewhere",
	}
	lookup := func(k string) (string, bool) { v, ok := parent[k]; return v, ok }

	env := build(lookup, nil, []string{"PGHOST=db.internal", "PGPASSWORD=child-pg"})
	got := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if _, dup := got[k]; dup {
			t.Errorf("%s set twice in %v", k, env)
		}
		got[k] = v
	}
	want := map[string]string{"PATH": "/opt/bin:/usr/bin", "HOME": "/home/drbot", "LANG": "C.UTF-8", "TZ": "UTC", "TMPDIR": "/tmp/d",
		"PGHOST": "db.internal", "PGPASSWORD": "child-pg"}
	if len(got) != len(want) {
		t.Errorf("env %v, want exactly %v", env, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	joined := strings.Join(env, "\n")
	for _, secret := range []string{"xoxb-secret", "sig", "xapp", "pd", "aws-secret", "AKIA", "sess", "store/drbot", "db/shop", "hvs.x", "ghp", "parent-pg", "elsewhere"} {
		if strings.Contains(joined, "="+secret) || strings.Contains(joined, secret+"\n") {
			t.Errorf("child env holds %q: %v", secret, env)
		}
	}

	// An explicit allow-list (a playbook step's env_from) adds exactly those names.
	env = build(lookup, []string{"AWS_REGION", "NOT_SET", "", "A=B"}, nil)
	if !contains(env, "AWS_REGION=eu-west-1") || len(env) != 6 {
		t.Errorf("allow AWS_REGION: %v", env)
	}

	// No PATH in drbot's environment: a default one, so programs still start.
	env = build(func(string) (string, bool) { return "", false }, nil, nil)
	if len(env) != 1 || !strings.HasPrefix(env[0], "PATH=/") {
		t.Errorf("empty parent: %v", env)
	}
}

func TestBuildReachesARealChild(t *testing.T) {
	t.Setenv("SLACK_BOT_TOKEN", "xoxb-must-not-reach-children")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "aws-must-not-reach-children")
	cmd := exec.Command("env")
	t.Setenv("DRBOT_TEST_ALLOWED", "yes")
	cmd.Env = Build([]string{"DRBOT_TEST_ALLOWED"}, "PGHOST=h")
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	if strings.Contains(s, "must-not-reach") || !strings.Contains(s, "PGHOST=h\n") || !strings.Contains(s, "DRBOT_TEST_ALLOWED=yes\n") {
		t.Errorf("child env:\n%s", s)
	}
}

func contains(env []string, kv string) bool {
	for _, e := range env {
		if e == kv {
			return true
		}
	}
	return false
}
