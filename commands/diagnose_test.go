package commands

import (
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/bot/chat"
)

// TestDiagnosisMessageFitsOneMessage: however many lines and log lines a
// diagnosis has, it is one message within Slack's limits (50 blocks, 3000
// characters a block), code fences closed, the verdict and the
// not-configured parts kept.
func TestDiagnosisMessageFitsOneMessage(t *testing.T) {
	long := strings.Repeat("x", 290)
	var logs []string
	for i := range 20 {
		logs = append(logs, fmt.Sprintf("%02d %s", i, long))
	}
	d := actions.Diagnosis{Service: "inflow", Deadline: 20 * time.Second, Elapsed: 5 * time.Second,
		NotConfigured: []string{"Kubernetes: no KUBECONFIG"}}
	for i := range 80 {
		d.Findings = append(d.Findings, actions.Finding{Area: "pods", Name: fmt.Sprintf("pod web-%02d", i), Status: actions.StatusFail,
			Detail: "phase Running; container web CrashLoopBackOff", Logs: logs,
			Remedy: &actions.Remedy{Source: "runbook 001, Appendix A.2", Steps: []actions.RemedyStep{{Say: "Check pod logs", Run: "kubectl logs -l app=web --tail=100"}}}})
	}
	d.Findings = append(d.Findings, actions.Finding{Area: "aws", Name: "AWS identity", Status: actions.StatusOK, Detail: "account 1"})
	m := DiagnosisMessage(d)
	if len(m.Blocks) > 50 {
		t.Errorf("%d blocks", len(m.Blocks))
	}
	if !strings.HasPrefix(m.Text, "Diagnosis of inflow: 80 problems") || utf8.RuneCountInString(m.Text) > 3000 {
		t.Errorf("fallback text %d characters: %.80q", utf8.RuneCountInString(m.Text), m.Text)
	}
	var all strings.Builder
	for _, b := range m.Blocks {
		var s string
		switch x := b.(type) {
		case chat.Text:
			s = x.Text
		case chat.Context:
			s = x.Text
		case chat.Header:
			s = x.Text
		}
		if utf8.RuneCountInString(s) > 3000 {
			t.Errorf("a block of %d characters", utf8.RuneCountInString(s))
		}
		if strings.Count(s, "```")%2 != 0 {
			t.Errorf("an unclosed code fence in %.60q…", s)
		}
		all.WriteString(s + "\n")
	}
	for _, want := range []string{"… and 38 more failing lines", "✅ *AWS identity*: account 1", "Not configured, not checked: Kubernetes: no KUBECONFIG", "Read-only: 81 lines in 5s (deadline 20s)"} {
		if !strings.Contains(all.String(), want) {
			t.Errorf("the message lacks %q", want)
		}
	}
}

// TestDiagnosisLogsCannotEscapeTheirBlock: a log line holding a code fence
// stays inside the logs' code block.
func TestDiagnosisLogsCannotEscapeTheirBlock(t *testing.T) {
	d := actions.Diagnosis{Service: "inflow", Findings: []actions.Finding{{Name: "pod web-0", Status: actions.StatusFail, Detail: "phase Running",
		Logs: []string{"ok", "```", "*bold* <!channel>", "```"}}}}
	m := DiagnosisMessage(d)
	txt := m.Blocks[1].(chat.Text).Text
	if strings.Count(txt, "```") != 2 || !strings.Contains(txt, "'''\n*bold* <!channel>\n'''") {
		t.Errorf("logs block:\n%s", txt)
	}
}
