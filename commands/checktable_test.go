package commands

import (
	"strings"
	"testing"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/bot/chat"
)

func TestMessageTable(t *testing.T) {
	rep := actions.Report{Checks: []actions.CheckResult{
		{Name: "dashboard", Kind: "http", Expected: "2xx", Observed: "200 in 41ms", OK: true},
		{Name: "readings present", Kind: "sql", Expected: "> 0", Observed: "0"},
		{Name: "model loaded", Kind: "metric", Expected: "== 1", Error: "metric lstm_pfd_model_loaded not found", Observed: "absent"},
	}}
	want := "" +
		"      CHECK             KIND    EXPECTED  OBSERVED\n" +
		"PASS  dashboard         http    2xx       200 in 41ms\n" +
		"FAIL  readings present  sql     > 0       0\n" +
		"FAIL  model loaded      metric  == 1      absent — metric lstm_pfd_model_loaded not found"
	if got := CheckTable(rep); got != want {
		t.Fatalf("table:\n%s\nwant:\n%s", got, want)
	}
	m := CheckTableMessage("Verify lstm-pfd", rep)
	if m.Text != "❌ Verify lstm-pfd: 2 of 3 checks failed" {
		t.Fatalf("text %q", m.Text)
	}
	if len(m.Blocks) != 3 {
		t.Fatalf("blocks %+v", m.Blocks)
	}
	if tb, ok := m.Blocks[1].(chat.Text); !ok || !strings.Contains(tb.Text, want) {
		t.Fatalf("table block %+v", m.Blocks[1])
	}
	ok := CheckTableMessage("Verify x", actions.Report{Checks: rep.Checks[:1]})
	if ok.Text != "✅ Verify x: all checks passed" {
		t.Fatalf("text %q", ok.Text)
	}
}
