package runbook

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that no input panics, and that Parse either returns a
// config or a *ValidationError with at least one located problem.
func FuzzParse(f *testing.F) {
	for _, p := range []string{"../deploy/examples/drbot.yaml", "testdata/minimal.yaml", "testdata/anchors.yaml"} {
		if data, err := os.ReadFile(filepath.FromSlash(p)); err == nil {
			f.Add(data)
		}
	}
	for _, s := range []string{
		"",
		"services: [{name: a}]",
		"services:\n  - name: a\n    escalation:\n      - after: 15\n",
		"a: &a {<<: *a}\n",
		"x: &x [*x, *x]\nservices: *x\n",
		"services:\n  - &s {name: a, databases: [{name: d, url_env: E, checks: [{name: c, sql: q, expect: '> 0'}]}]}\n  - <<: *s\n    name: b\n",
		"services: [\n",
		"approvals: {commands: {failover: {required: 0}}}\nservices: [{name: a}]\n",
		"---\nservices: []\n---\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.yaml", data)
		if err == nil {
			if cfg == nil {
				t.Fatal("nil config without error")
			}
			return
		}
		var verr *ValidationError
		if !errors.As(err, &verr) || len(verr.Problems) == 0 {
			t.Fatalf("error is not a non-empty *ValidationError: %T %v", err, err)
		}
		for _, p := range verr.Problems {
			if p.Line < 1 || p.Msg == "" {
				t.Fatalf("problem without a line or message: %+v", p)
			}
		}
	})
}
