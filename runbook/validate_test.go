package runbook

import (
	"errors"
	"strings"
	"testing"
)

// TestValidationErrors feeds broken configs and asserts the exact report:
// one "file:line: path: message" line per problem.
func TestValidationErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		yaml string
		want []string
	}{
		{
			name: "unknown key with a suggestion",
			yaml: `services:
  - name: inflow
    failover:
      dns:
        zone_id: Z0INFLOWAI
        recod: api.inflow.ai
        type: CNAME
        value: api.us-west-2.inflow.ai
        ttl: 60
`,
			want: []string{
				`drbot.yaml:4: services[0].failover.dns.record: missing (the record name, e.g. api.inflow.ai)`,
				`drbot.yaml:6: services[0].failover.dns.recod: unknown key "recod" (did you mean "record"?)`,
			},
		},
		{
			name: "unknown key without a close match lists the known keys",
			yaml: "slack:\n  webhook: https://hooks.slack.com/x\nservices: [{name: a}]\n",
			want: []string{`drbot.yaml:2: slack.webhook: unknown key "webhook" (known keys here: channel_prefix, announce_channel, approvers, requesters, responders)`},
		},
		{
			name: "unknown top-level key",
			yaml: "service:\n  - name: a\n",
			want: []string{
				`drbot.yaml:1: service: unknown key "service" (did you mean "services"?)`,
				`drbot.yaml:1: services: missing (want a list of services, each with at least a name)`,
			},
		},
		{
			name: "bad duration",
			yaml: `services:
  - name: lstm-pfd
    escalation:
      - after: 15m
        notify: [platform-lead@example.com]
      - after: 15
        notify: [dba@example.com]
`,
			want: []string{`drbot.yaml:6: services[0].escalation[1].after: "15" is not a duration (want e.g. 15m)`},
		},
		{
			name: "negative duration",
			yaml: "services:\n  - name: a\n    objectives:\n      rto: -1h\n",
			want: []string{`drbot.yaml:4: services[0].objectives.rto: must be positive, got "-1h"`},
		},
		{
			name: "missing url_env",
			yaml: `services:
  - name: lstm-pfd
    databases:
      - name: lstm_pfd
        backups:
          location: s3://lstm-pfd-backups/db/
`,
			want: []string{`drbot.yaml:4: services[0].databases[0].url_env: missing (the name of the environment variable that holds the database URL, e.g. LSTM_PFD_DATABASE_URL)`},
		},
		{
			name: "url_env holding a URL instead of a variable name",
			yaml: "services:\n  - name: a\n    databases:\n      - name: db\n        url_env: postgres://u:p@h/db\n",
			want: []string{`drbot.yaml:5: services[0].databases[0].url_env: "postgres://u:p@h/db" is not an environment variable name (name the variable, e.g. LSTM_PFD_DATABASE_URL; never put the URL itself here)`},
		},
		{
			name: "escalation with neither after nor on",
			yaml: "services:\n  - name: a\n    escalation:\n      - role: Platform\n        notify: [U0PLATFORM1]\n",
			want: []string{`drbot.yaml:4: services[0].escalation[0]: needs after (a delay since the incident opened, e.g. 15m) or on (an event: security)`},
		},
		{
			name: "escalation with both after and on",
			yaml: "services:\n  - name: a\n    escalation:\n      - after: 15m\n        on: security\n        notify: [U0PLATFORM1]\n",
			want: []string{`drbot.yaml:4: services[0].escalation[0]: has both after and on: use after for a delay since the incident opened, or on for an event (security), not both`},
		},
		{
			name: "escalation on an unknown event",
			yaml: "services:\n  - name: a\n    escalation:\n      - on: outage\n        notify: [U0PLATFORM1]\n",
			want: []string{`drbot.yaml:4: services[0].escalation[0].on: "outage" is not a known event (known: security)`},
		},
		{
			name: "escalation notify must be people",
			yaml: "services:\n  - name: a\n    escalation:\n      - after: 5m\n        notify: [bob]\n      - after: 9m\n",
			want: []string{
				`drbot.yaml:5: services[0].escalation[0].notify[0]: "bob" is not a Slack user id (U…), user group id (S…) or e-mail address`,
				`drbot.yaml:6: services[0].escalation[1].notify: missing (who to notify: Slack user ids, user group ids or e-mail addresses)`,
			},
		},
		{
			name: "malformed expect",
			yaml: `services:
  - name: a
    databases:
      - name: db
        url_env: DB_URL
        checks:
          - name: rows
            sql: SELECT 1
            expect: "=> 0"
`,
			want: []string{`drbot.yaml:9: services[0].databases[0].checks[0].expect: "=> 0" is not an expectation (want an operator ==, !=, >, >=, <, <= and a number, e.g. "> 0")`},
		},
		{
			name: "expect without a number",
			yaml: "services:\n  - name: a\n    health:\n      - name: m\n        metric: {url: 'http://a/metrics', name: up, expect: '> many'}\n",
			want: []string{`drbot.yaml:5: services[0].health[0].metric.expect: "> many": "many" is not a number (want e.g. "> 0")`},
		},
		{
			name: "s3 location without a bucket",
			yaml: "services:\n  - name: a\n    databases:\n      - name: db\n        url_env: DB_URL\n        backups:\n          location: s3:///db/\n",
			want: []string{`drbot.yaml:7: services[0].databases[0].backups.location: "s3:///db/" has no bucket (want s3://bucket/prefix/)`},
		},
		{
			name: "unknown scheme in a backup location",
			yaml: "services:\n  - name: a\n    databases:\n      - name: db\n        url_env: DB_URL\n        backups:\n          location: gs://bucket/db/\n",
			want: []string{`drbot.yaml:7: services[0].databases[0].backups.location: unknown scheme "gs" in "gs://bucket/db/" (want s3://bucket/prefix/ or file:///absolute/path/)`},
		},
		{
			name: "relative file location",
			yaml: "services:\n  - name: a\n    models:\n      backups: file://backups/models/\n      target: file:///srv/models/\n",
			want: []string{`drbot.yaml:4: services[0].models.backups: "file://backups/models/" must be an absolute path with an empty host (want file:///absolute/path/)`},
		},
		{
			name: "models without a target",
			yaml: "services:\n  - name: a\n    models:\n      backups: s3://b-backup/\n      restart: [pod/x, deployment/Web]\n",
			want: []string{
				`drbot.yaml:3: services[0].models.target: missing (where the service loads its models from, e.g. s3://bucket/checkpoints/)`,
				`drbot.yaml:5: services[0].models.restart[0]: "pod/x": unsupported kind "pod": want deployment/NAME or statefulset/NAME`,
				`drbot.yaml:5: services[0].models.restart[1]: "deployment/Web": "Web" is not a valid Kubernetes name (lowercase letters, digits, '-' and '.')`,
			},
		},
		{
			name: "missing service name",
			yaml: "services:\n  - pagerduty:\n      service_ids: [PX]\n",
			want: []string{`drbot.yaml:2: services[0].name: missing (a short lowercase name such as lstm-pfd; it becomes part of the incident channel name)`},
		},
		{
			name: "invalid service name",
			yaml: "services:\n  - name: LSTM_PFD\n",
			want: []string{`drbot.yaml:2: services[0].name: "LSTM_PFD" is not a valid service name: use lowercase letters, digits and hyphens (it becomes part of the channel name incident-<name>-<yyyymmdd>)`},
		},
		{
			name: "service name too long for a channel",
			yaml: "slack:\n  channel_prefix: major-incident\nservices:\n  - name: " + strings.Repeat("a", 54) + "\n",
			want: []string{`drbot.yaml:4: services[0].name: "` + strings.Repeat("a", 54) + `" is too long: at most 53 characters, so that the channel name major-incident-<name>-<yyyymmdd> fits in Slack's 80`},
		},
		{
			name: "duplicate service names",
			yaml: "services:\n  - name: inflow\n  - name: lstm-pfd\n  - name: inflow\n",
			want: []string{`drbot.yaml:4: services[2].name: duplicate service name "inflow" (first at line 2)`},
		},
		{
			name: "duplicate PagerDuty service ids across services",
			yaml: `services:
  - name: lstm-pfd
    pagerduty:
      service_ids: [PLSTMPF]
  - name: inflow
    pagerduty:
      service_ids:
        - PINFLOW
        - PLSTMPF
`,
			want: []string{`drbot.yaml:9: services[1].pagerduty.service_ids[1]: PagerDuty service "PLSTMPF" is already mapped to service "lstm-pfd" (line 4); each PagerDuty service maps to one runbook service`},
		},
		{
			name: "approvals.required below one",
			yaml: "approvals:\n  required: 0\nservices: [{name: a}]\n",
			want: []string{`drbot.yaml:2: approvals.required: must be at least 1, got 0 (approvals come from people other than the requester)`},
		},
		{
			name: "approvals.required not a number",
			yaml: "approvals:\n  required: two\nservices: [{name: a}]\n",
			want: []string{`drbot.yaml:2: approvals.required: "two" is not a whole number`},
		},
		{
			name: "per-command approvals",
			yaml: "approvals:\n  commands:\n    failover: {required: 0}\n    Restore DB: {required: 2}\n    restore-db: {requried: 2}\nservices: [{name: a}]\n", //nolint:misspell // the typo is the test
			want: []string{
				`drbot.yaml:3: approvals.commands.failover.required: must be at least 1, got 0`,
				`drbot.yaml:4: approvals.commands.Restore DB: "Restore DB" is not a command name (want e.g. failover or restore-db)`,
				`drbot.yaml:5: approvals.commands.restore-db.requried: unknown key "requried" (did you mean "required"?)`, //nolint:misspell // the typo is the test
			},
		},
		{
			name: "http health URL that does not parse",
			yaml: "services:\n  - name: a\n    health:\n      - name: api\n        http: https://api.inflow.ai:port/health\n",
			want: []string{`drbot.yaml:5: services[0].health[0].http: "https://api.inflow.ai:port/health" is not a valid URL: invalid port ":port" after host`},
		},
		{
			name: "health URL that is not http",
			yaml: "services:\n  - name: a\n    health:\n      - name: api\n        http: api.inflow.ai/health\n",
			want: []string{`drbot.yaml:5: services[0].health[0].http: "api.inflow.ai/health" is not an http(s) URL (want e.g. https://api.example.com/health)`},
		},
		{
			name: "health check with both or neither kind",
			yaml: "services:\n  - name: a\n    health:\n      - name: one\n        http: http://a/\n        metric: {url: 'http://a/m', name: up, expect: '== 1'}\n      - name: two\n",
			want: []string{
				`drbot.yaml:4: services[0].health[0]: has both http and metric: one health check is either an http URL or a metric`,
				`drbot.yaml:7: services[0].health[1]: needs http (a URL that must answer 2xx) or metric (url, name, expect)`,
			},
		},
		{
			name: "metric without expect",
			yaml: "services:\n  - name: a\n    health:\n      - name: m\n        metric:\n          url: http://a/metrics\n          name: up\n",
			want: []string{`drbot.yaml:5: services[0].health[0].metric.expect: missing (what the metric must be, e.g. "== 1")`},
		},
		{
			name: "string where a list is wanted",
			yaml: "slack:\n  approvers: dba@example.com\nservices: [{name: a}]\n",
			want: []string{`drbot.yaml:2: slack.approvers: want a list, got the single value "dba@example.com" (write [dba@example.com])`},
		},
		{
			name: "mapping where a value is wanted",
			yaml: "services:\n  - name:\n      first: a\n",
			want: []string{`drbot.yaml:3: services[0].name: want a single value, got a mapping`},
		},
		{
			name: "list where a mapping is wanted",
			yaml: "slack: [a, b]\nservices: [{name: a}]\n",
			want: []string{`drbot.yaml:1: slack: want a mapping with keys channel_prefix, announce_channel, approvers, requesters, responders, got a list`},
		},
		{
			name: "duplicate key",
			yaml: "services:\n  - name: a\n    objectives:\n      rto: 1h\n      rto: 2h\n",
			want: []string{`drbot.yaml:5: services[0].objectives.rto: duplicate key (first at line 4)`},
		},
		{
			name: "failover problems",
			yaml: `services:
  - name: inflow
    failover:
      rds:
        replica: inflow-secondary
        region: west
      dns:
        zone_id: Z0INFLOWAI
        record: api.inflow.ai
        type: MX
        value: api.us-west-2.inflow.ai
      health: ftp://api.inflow.ai/
  - name: other
    failover:
      health: https://other/health
`,
			want: []string{
				`drbot.yaml:6: services[0].failover.rds.region: "west" is not an AWS region (want e.g. us-west-2)`,
				`drbot.yaml:7: services[0].failover.dns.ttl: missing (the record's TTL in seconds, e.g. 60)`,
				`drbot.yaml:10: services[0].failover.dns.type: "MX" is not a supported record type (want A, AAAA or CNAME)`,
				`drbot.yaml:12: services[0].failover.health: "ftp://api.inflow.ai/" is not an http(s) URL (want e.g. https://api.example.com/health)`,
				`drbot.yaml:14: services[1].failover: needs rds (a read replica to promote) and/or dns (a record to repoint)`,
			},
		},
		{
			name: "channel prefix and announce channel",
			yaml: "slack:\n  channel_prefix: Incident!\n  announce_channel: 'my channel'\nservices: [{name: a}]\n",
			want: []string{
				`drbot.yaml:2: slack.channel_prefix: "Incident!" is not a valid channel name prefix: use at most 40 lowercase letters, digits, hyphens or underscores`,
				`drbot.yaml:3: slack.announce_channel: "my channel" is not a channel: use a channel id such as C0INCIDENTS`,
			},
		},
		{
			name: "no services",
			yaml: "slack:\n  channel_prefix: inc\nservices: []\n",
			want: []string{`drbot.yaml:3: services: want at least one service`},
		},
		{
			name: "YAML syntax error",
			yaml: "services:\n  - name: a\n   databases:\n",
			want: []string{`drbot.yaml:3: YAML syntax error: did not find expected '-' indicator`},
		},
		{
			name: "YAML syntax error reported on the problem line, not the enclosing block",
			yaml: "slack:\n  channel_prefix: inc\n\nservices:\n  - name: a\n    escalation:\n      - after: 5m\n      notify: [U0AB]\n",
			want: []string{`drbot.yaml:8: YAML syntax error: did not find expected '-' indicator`},
		},
		{
			name: "unclosed flow list",
			yaml: "services:\n  - name: a\n    pagerduty:\n      service_ids: [PA, PB\n    objectives:\n      rto: 1h\n",
			want: []string{`drbot.yaml:4: YAML syntax error: did not find expected ',' or ']'`},
		},
		{
			name: "YAML syntax error on line 1",
			yaml: "services: a: b\n",
			want: []string{`drbot.yaml:1: YAML syntax error: mapping values are not allowed in this context`},
		},
		{
			name: "tab indentation",
			yaml: "services:\n\t- name: a\n",
			want: []string{`drbot.yaml:2: YAML syntax error: found character that cannot start any token`},
		},
		{
			name: "undefined alias",
			yaml: "services:\n  - name: a\n    escalation: *esc\n",
			want: []string{`drbot.yaml:3: YAML syntax error: alias *esc refers to an anchor &esc that is not defined above it`},
		},
		{
			name: "empty file",
			yaml: "# nothing yet\n",
			want: []string{`drbot.yaml:1: the file is empty (want the keys slack, approvals and services)`},
		},
		{
			name: "two documents",
			yaml: "services: [{name: a}]\n---\nservices: [{name: b}]\n",
			want: []string{`drbot.yaml:2: a second YAML document (after ---) is not allowed: put the whole config in one document`},
		},
		{
			name: "top level is not a mapping",
			yaml: "- name: a\n",
			want: []string{`drbot.yaml:1: want a mapping with keys slack, approvals, services, got a list`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse("drbot.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatalf("Parse accepted a broken config: %+v", cfg)
			}
			if cfg != nil {
				t.Errorf("Parse returned a config with an error")
			}
			var verr *ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("error is %T, want *ValidationError: %v", err, err)
			}
			if got, want := err.Error(), strings.Join(tc.want, "\n"); got != want {
				t.Errorf("error report differs\n--- got:\n%s\n--- want:\n%s", got, want)
			}
			if len(verr.Problems) != len(tc.want) {
				t.Errorf("%d problems, want %d", len(verr.Problems), len(tc.want))
			}
		})
	}
}

// TestAllProblemsReported checks that one bad file yields every problem, in
// line order, with the file name as the caller gave it.
func TestAllProblemsReported(t *testing.T) {
	const src = `slack:
  channel_prefix: incident
  aprovers: [U0PLATFORM1]
approvals:
  required: 0
  expires_after: 15
services:
  - name: lstm-pfd
    pagerduty:
      service_ids: [PLSTMPF]
    escalation:
      - role: Platform Lead
        notify: [platform-lead@example.com]
    databases:
      - name: lstm_pfd
        backups:
          location: s3:///db/
          every: daily
        checks:
          - name: experiments present
            sql: SELECT COUNT(*) FROM experiments
            expect: "> zero"
  - name: lstm-pfd
    pagerduty:
      service_ids: [PLSTMPF]
    health:
      - name: api
        http: "http://bad host/health"
`
	_, err := Parse("deploy/examples/broken.yaml", []byte(src))
	var verr *ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("err = %v, want *ValidationError", err)
	}
	want := []string{
		`deploy/examples/broken.yaml:3: slack.aprovers: unknown key "aprovers" (did you mean "approvers"?)`,
		`deploy/examples/broken.yaml:5: approvals.required: must be at least 1, got 0 (approvals come from people other than the requester)`,
		`deploy/examples/broken.yaml:6: approvals.expires_after: "15" is not a duration (want e.g. 15m)`,
		`deploy/examples/broken.yaml:12: services[0].escalation[0]: needs after (a delay since the incident opened, e.g. 15m) or on (an event: security)`,
		`deploy/examples/broken.yaml:15: services[0].databases[0].url_env: missing (the name of the environment variable that holds the database URL, e.g. LSTM_PFD_DATABASE_URL)`,
		`deploy/examples/broken.yaml:17: services[0].databases[0].backups.location: "s3:///db/" has no bucket (want s3://bucket/prefix/)`,
		`deploy/examples/broken.yaml:18: services[0].databases[0].backups.every: "daily" is not a duration (want e.g. 15m)`,
		`deploy/examples/broken.yaml:22: services[0].databases[0].checks[0].expect: "> zero": "zero" is not a number (want e.g. "> 0")`,
		`deploy/examples/broken.yaml:23: services[1].name: duplicate service name "lstm-pfd" (first at line 8)`,
		`deploy/examples/broken.yaml:25: services[1].pagerduty.service_ids[0]: PagerDuty service "PLSTMPF" is already mapped to service "lstm-pfd" (line 10); each PagerDuty service maps to one runbook service`,
		`deploy/examples/broken.yaml:28: services[1].health[0].http: "http://bad host/health" is not a valid URL: invalid character " " in host name`,
	}
	if got := err.Error(); got != strings.Join(want, "\n") {
		t.Errorf("error report differs\n--- got:\n%s\n--- want:\n%s", got, strings.Join(want, "\n"))
	}
	for _, p := range verr.Problems {
		if p.File != "deploy/examples/broken.yaml" || p.Line == 0 || p.Path == "" || p.Msg == "" {
			t.Errorf("incomplete problem %+v", p)
		}
	}
}

// TestLoadReportsPathAsGiven checks that Load names the file as the caller did.
func TestLoadReportsPathAsGiven(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/bad.yaml"
	if err := writeFile(path, "services:\n  - name: a\n    drills:\n      every: 90\n"); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	want := path + `:4: services[0].drills.every: "90" is not a duration (want e.g. 15m)`
	if err == nil || err.Error() != want {
		t.Errorf("Load error = %v\nwant %s", err, want)
	}
}

// TestProblemCap checks that a file with very many problems yields a
// readable report: 100 lines, the last counting the rest.
func TestProblemCap(t *testing.T) {
	var b strings.Builder
	b.WriteString("services:\n")
	for range 150 {
		b.WriteString("  - name: BAD\n")
	}
	_, err := Parse("many.yaml", []byte(b.String()))
	var verr *ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("err = %v", err)
	}
	if len(verr.Problems) != 100 {
		t.Fatalf("%d problems reported, want 100", len(verr.Problems))
	}
	if got, want := verr.Problems[99].String(), "many.yaml:100: … and 51 more problems"; got != want {
		t.Errorf("last line = %q, want %q", got, want)
	}
}
