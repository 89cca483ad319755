package commands

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/bot/chat"
)

// CheckTable renders r as a fixed-width text table: pass/fail, name, kind,
// expected, observed (with the reason when a check could not run).
func CheckTable(r actions.Report) string {
	rows := [][]string{{"", "CHECK", "KIND", "EXPECTED", "OBSERVED"}}
	for _, c := range r.Checks {
		mark := "PASS"
		if !c.OK {
			mark = "FAIL"
		}
		obs := c.Observed
		if c.Error != "" {
			if obs != "" {
				obs += " — " + c.Error
			} else {
				obs = c.Error
			}
		}
		rows = append(rows, []string{mark, clip(c.Name, 40), c.Kind, clip(c.Expected, 24), clip(oneLine(obs), 80)})
	}
	widths := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, cell := range row {
			widths[i] = max(widths[i], utf8.RuneCountInString(cell))
		}
	}
	var b strings.Builder
	for _, row := range rows {
		for i, cell := range row {
			if i == len(row)-1 {
				b.WriteString(cell)
				break
			}
			b.WriteString(cell)
			b.WriteString(strings.Repeat(" ", widths[i]-utf8.RuneCountInString(cell)+2))
		}
		b.WriteString("\n")
	}
	return strings.TrimRight(b.String(), "\n")
}

// CheckTableMessage builds the chat message of a verification report (moved
// from actions/verify, which returns reports and renders nothing): a header
// with the verdict, the table, and a one-line summary.
func CheckTableMessage(title string, r actions.Report) chat.Message {
	failed := len(r.Failed())
	verdict := "all checks passed"
	switch {
	case len(r.Checks) == 0:
		verdict = "no checks ran"
	case failed > 0:
		verdict = fmt.Sprintf("%d of %d checks failed", failed, len(r.Checks))
	}
	icon := "✅"
	if !r.OK() {
		icon = "❌"
	}
	text := fmt.Sprintf("%s %s: %s", icon, title, verdict)
	blocks := []chat.Block{chat.Header{Text: icon + " " + title}}
	if len(r.Checks) > 0 {
		blocks = append(blocks, chat.Text{Text: "```\n" + CheckTable(r) + "\n```"})
	}
	blocks = append(blocks, chat.Context{Text: verdict})
	return chat.Message{Text: text, Blocks: blocks}
}

func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
