package runbook

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"gopkg.in/yaml.v3"
)

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(Schema()))
	if err != nil {
		t.Fatalf("the schema is not JSON: %v", err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(SchemaID, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(SchemaID)
	if err != nil {
		t.Fatalf("the schema does not compile: %v", err)
	}
	return s
}

// schemaVerdict validates a YAML config against the schema and returns the
// unknown keys it reports (as loader paths, e.g. services[0].models.every);
// ok is false when the schema rejects the file for any reason.
func schemaVerdict(t *testing.T, s *jsonschema.Schema, data []byte) (ok bool, unknown []string) {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatalf("YAML: %v", err)
	}
	j, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("as JSON: %v", err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		t.Fatal(err)
	}
	err = s.Validate(inst)
	if err == nil {
		return true, nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		t.Fatal(err)
	}
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if ap, ok := e.ErrorKind.(*kind.AdditionalProperties); ok {
			for _, p := range ap.Properties {
				unknown = append(unknown, loaderPath(append(slices.Clone(e.InstanceLocation), p)))
			}
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	sort.Strings(unknown)
	return false, slices.Compact(unknown)
}

// loaderPath writes an instance location as the loader's key paths.
func loaderPath(loc []string) string {
	var b strings.Builder
	for _, p := range loc {
		if _, err := strconv.Atoi(p); err == nil {
			b.WriteString("[" + p + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(p)
	}
	return b.String()
}

// loaderVerdict parses data with the loader and returns the unknown keys it reports.
func loaderVerdict(t *testing.T, name string, data []byte) (ok bool, unknown []string, problems string) {
	t.Helper()
	_, err := Parse(name, data)
	if err == nil {
		return true, nil, ""
	}
	var verr *ValidationError
	if !errors.As(err, &verr) {
		t.Fatal(err)
	}
	for _, p := range verr.Problems {
		if strings.HasPrefix(p.Msg, "unknown key ") {
			unknown = append(unknown, p.Path)
		}
	}
	sort.Strings(unknown)
	return false, unknown, verr.Error()
}

// exampleFiles are the example configs: this repository's and the shared reference's.
func exampleFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("../deploy/examples/*.yaml")
	if err != nil || len(files) < 2 {
		t.Fatalf("example configs: %v %v", files, err)
	}
	shared, _ := filepath.Glob("../../shared/examples/*.yaml")
	if len(shared) == 0 {
		t.Log("../../shared/examples is not checked out beside the repository: only deploy/examples are checked")
	}
	return append(files, shared...)
}

// TestSchemaAgreesWithTheLoader: on every example config the schema and the
// strict loader give the same verdict and name the same unknown keys (the
// shared runbook-v2.yaml has keys the loader does not know yet: both reject
// exactly those).
func TestSchemaAgreesWithTheLoader(t *testing.T) {
	s := compileSchema(t)
	for _, f := range exampleFiles(t) {
		t.Run(filepath.Base(filepath.Dir(filepath.Dir(f)))+"/"+filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			lok, lunknown, problems := loaderVerdict(t, f, data)
			sok, sunknown := schemaVerdict(t, s, data)
			if lok != sok || !slices.Equal(lunknown, sunknown) {
				t.Errorf("loader: ok=%v unknown=%v; schema: ok=%v unknown=%v\nloader problems:\n%s", lok, lunknown, sok, sunknown, problems)
			}
			if !lok {
				t.Logf("both reject %s (unknown keys %v): the loader does not know these keys yet", f, lunknown)
			}
		})
	}
}

// TestSchemaRejectsWhatTheLoaderRejects: structural mistakes are caught by
// editors as by `drbot config validate`.
func TestSchemaRejectsWhatTheLoaderRejects(t *testing.T) {
	s := compileSchema(t)
	base := "services:\n  - name: web\n    pagerduty: {service_ids: [PWEB]}\n"
	for name, tc := range map[string]struct {
		yaml string
		ok   bool
	}{
		"minimal":                 {base, true},
		"x- keys anywhere":        {"x-defaults: &d {rto: 1h}\n" + base + "    objectives: {<<: *d, x-note: fine}\n", true},
		"unknown top-level key":   {"slak: {}\n" + base, false},
		"unknown nested key":      {base + "    objectives: {rto: 1h, rtoo: 2h}\n", false},
		"unknown key in a list":   {base + "    escalation:\n      - {after: 15m, notify: [a@example.com], ping: true}\n", false},
		"missing services":        {"slack: {channel_prefix: inc}\n", false},
		"missing service name":    {"services:\n  - pagerduty: {service_ids: [PWEB]}\n", false},
		"bare number duration":    {base + "    objectives: {rto: \"15\"}\n", false},
		"after and on":            {base + "    escalation:\n      - {after: 15m, on: security, notify: [a@example.com]}\n", false},
		"neither after nor on":    {base + "    escalation:\n      - {notify: [a@example.com]}\n", false},
		"check without expect":    {base + "    databases:\n      - name: d\n        url_env: D_URL\n        checks: [{name: n, sql: SELECT 1}]\n", false},
		"bad location scheme":     {base + "    databases:\n      - name: d\n        url_env: D_URL\n        backups: {location: ftp://x/}\n", false},
		"command approval policy": {"approvals:\n  commands:\n    failover: {required: 3, expires_after: 30m}\n" + base, true},
		"unknown key in command":  {"approvals:\n  commands:\n    failover: {requird: 3}\n" + base, false},
	} {
		t.Run(name, func(t *testing.T) {
			lok, lunknown, problems := loaderVerdict(t, "x.yaml", []byte(tc.yaml))
			sok, sunknown := schemaVerdict(t, s, []byte(tc.yaml))
			if lok != tc.ok {
				t.Fatalf("test case wrong: the loader says ok=%v:\n%s", lok, problems)
			}
			if sok != tc.ok || !slices.Equal(lunknown, sunknown) {
				t.Errorf("schema: ok=%v unknown=%v; want ok=%v unknown=%v", sok, sunknown, tc.ok, lunknown)
			}
		})
	}
}

// TestSchemaKeysAreLoaderKeys fills every key the model has (one level of
// every list, every optional object) and checks that the loader knows each
// one: a field whose key name the loader spells otherwise fails here.
func TestSchemaKeysAreLoaderKeys(t *testing.T) {
	var fill func(n *Node, depth int) any
	fill = func(n *Node, depth int) any {
		switch {
		case n.Items != nil:
			return []any{fill(n.Items, depth+1)}
		case n.Values != nil:
			return map[string]any{"failover": fill(n.Values, depth+1)}
		case n.Name != "":
			m := map[string]any{}
			for _, p := range n.Props {
				m[p.Key] = fill(p.Node, depth+1)
			}
			return m
		case n.Example != "":
			return n.Example
		case n.Type == "integer":
			return 1
		case n.Type == "boolean":
			return true
		}
		return "x"
	}
	data, err := yaml.Marshal(fill(Model(), 0))
	if err != nil {
		t.Fatal(err)
	}
	_, unknown, problems := loaderVerdict(t, "all-keys.yaml", data)
	if len(unknown) > 0 {
		t.Errorf("the loader does not know these keys of the model: %v\n%s\n%s", unknown, problems, data)
	}
}

// TestSchemaDescribesEveryKey: editors show a description for every key.
func TestSchemaDescribesEveryKey(t *testing.T) {
	seen := map[*Node]bool{}
	var walk func(path string, n *Node)
	walk = func(path string, n *Node) {
		if n.Items != nil {
			walk(path+"[]", n.Items)
			return
		}
		if n.Values != nil {
			walk(path+".*", n.Values)
			return
		}
		if n.Name == "" || seen[n] {
			return
		}
		seen[n] = true
		if n.Description == "" {
			t.Errorf("type %s (%s) has no doc comment: document it (in a file runbook/schema.go embeds)", n.Name, path)
		}
		for _, p := range n.Props {
			elem := p.Node
			for elem.Items != nil {
				elem = elem.Items
			}
			if p.Description == "" && elem.Name == "" && elem.Description == "" {
				t.Errorf("%s.%s (%s.%s) has no description: give the field a comment", path, p.Key, n.Name, p.Key)
			}
			walk(path+"."+p.Key, p.Node)
		}
	}
	walk("", Model())
}

func TestKeyOf(t *testing.T) {
	for in, want := range map[string]string{
		"ChannelPrefix": "channel_prefix", "URLEnv": "url_env", "ServiceIDs": "service_ids",
		"EscalationPolicyID": "escalation_policy_id", "RTO": "rto", "TTL": "ttl", "ZoneID": "zone_id",
		"HTTP": "http", "SQL": "sql", "ExpiresAfter": "expires_after", "Name": "name",
	} {
		if got := snake(in); got != want {
			t.Errorf("snake(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestSchemaFileIsCurrent: deploy/schema/drbot.schema.json is what
// `drbot config schema` prints, and the example configs point editors at it.
func TestSchemaFileIsCurrent(t *testing.T) {
	got, err := os.ReadFile("../deploy/schema/drbot.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, Schema()) {
		t.Error("deploy/schema/drbot.schema.json is stale: run `go run ./cmd/drbot config schema > deploy/schema/drbot.schema.json`")
	}
	comment := regexp.MustCompile(`(?m)^# yaml-language-server: \$schema=\.\./schema/drbot\.schema\.json$`)
	demo, err := os.ReadFile("../deploy/examples/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !comment.Match(demo) {
		t.Error("deploy/examples/demo.yaml lacks the yaml-language-server schema comment")
	}
}

// TestDocsFileIsCurrent: docs/config.md is what `drbot config docs` prints.
func TestDocsFileIsCurrent(t *testing.T) {
	got, err := os.ReadFile("../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, Docs()) {
		t.Error("docs/config.md is stale: run `go run ./cmd/drbot config docs > docs/config.md`")
	}
	// Every key of the model is in it.
	for _, want := range []string{"| `url_env` |", "| `channel_prefix` |", "| `expires_after` |", "## FailoverDNS", "list of [Service](#service)"} {
		if !bytes.Contains(got, []byte(want)) {
			t.Errorf("docs/config.md lacks %q", want)
		}
	}
}
