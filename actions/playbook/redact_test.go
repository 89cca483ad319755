package playbook_test

import (
	"context"
	"strings"
	"testing"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/actiontest"
	"github.com/drbot-dev/drbot/actions/playbook"
)

// TestUnnamedRunStepLabelIsRedacted: a run: step without name: is named
// after its argv. An env_from value or a secret-looking token a careless
// operator typed into the argv (a password in a URL, --token=…, KEY=…, a
// Slack token, an AWS key id, a word after --password) reaches neither the
// card (summary, facts, steps, in a plan and in a drill plan) nor the
// thread, nor the failure; the program and harmless words still show.
func TestUnnamedRunStepLabelIsRedacted(t *testing.T) {
	const pw = "s3cr3t-env-value"
	secrets := []string{pw, "url-pass-9", "tok-abc-123456", "hunter22", "xoxb-1234-abcdEFGH", "AKIAIOSFODNN7EXAMPLE", "apikey-zz9"}
	cfg := config(t, `
services:
  - name: lstm-pfd
    pagerduty:
      service_ids: [PLSTMPF]
    playbooks:
      - name: careless
        steps:
          - run: [sh-free-echo-missing, "postgres://app:url-pass-9@db/shop", --token=tok-abc-123456, --password, hunter22, xoxb-1234-abcdEFGH, AKIAIOSFODNN7EXAMPLE, API_KEY=apikey-zz9, `+pw+`, visible-word]
            env_from: [DEPLOY_PASSWORD]
            drill: true
`)
	env := func(k string) (string, bool) {
		if k == "DEPLOY_PASSWORD" {
			return pw, true
		}
		return "", false
	}
	a := playbook.New(opts(cfg, t.TempDir(), env))
	ctx := context.Background()
	p := params(t, cfg, "lstm-pfd", map[string]string{"name": "careless"})
	plan, err := a.Plan(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	drill, err := a.DrillPlan(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	j := actiontest.NewJournal()
	xerr := a.Execute(ctx, plan, j)
	if xerr == nil {
		t.Fatal("a missing program ran")
	}
	rep, _ := a.Verify(ctx, plan)
	text := cardText(plan) + cardText(drill) + notes(j) + xerr.Error()
	for _, c := range rep.Checks {
		text += c.Name + c.Target + c.Observed + c.Error
	}
	for _, s := range secrets {
		if strings.Contains(text, s) {
			t.Errorf("%q reached the card or thread:\n%s", s, text)
		}
	}
	for _, s := range []string{"sh-free-echo-missing", "visible-word", "postgres://app:", "--token=", "API_KEY="} {
		if !strings.Contains(text, s) {
			t.Errorf("%q (not a secret) is not shown:\n%s", s, text)
		}
	}
}

func cardText(p actions.Plan) string {
	var b strings.Builder
	b.WriteString(p.Summary + "\n")
	for _, f := range p.Facts {
		b.WriteString(f.Label + ": " + f.Value + "\n")
	}
	for _, s := range p.Steps {
		b.WriteString(s.Name + ": " + s.Description + "\n")
	}
	for _, w := range append(p.Warnings, p.Danger...) {
		b.WriteString(w + "\n")
	}
	return b.String()
}
