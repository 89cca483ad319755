package commands

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/bot/chat"
)

// maxDiagnosisBlocks keeps a diagnosis within one message (Slack allows 50
// blocks); maxDiagnosisBlock bounds one block's text (Slack: 3000 characters).
const (
	maxDiagnosisBlocks = 45
	maxDiagnosisBlock  = 2900
)

// DiagnosisMessage renders /dr diagnose's report (actions/diagnose) as one
// message: a header with the verdict; the passing lines together; each
// failing or warning line on its own with what was observed, a failing
// pod's last log lines and the runbook's remedy; then what is not
// configured, and how long it took.
func DiagnosisMessage(d actions.Diagnosis) chat.Message {
	failed, warned := d.Count(actions.StatusFail), d.Count(actions.StatusWarn)
	verdict := "nothing wrong found"
	icon := "✅"
	switch {
	case failed > 0:
		icon = "❌"
		verdict = plural(failed, "problem")
		if warned > 0 {
			verdict += ", " + plural(warned, "warning")
		}
	case warned > 0:
		icon = "⚠"
		verdict = plural(warned, "warning")
	case len(d.Findings) == 0:
		icon = "❔"
		verdict = "nothing to check"
	}
	head := fmt.Sprintf("Diagnosis of %s: %s", d.Service, verdict)
	blocks := []chat.Block{chat.Header{Text: icon + " " + head}}
	var text []string

	var ok []string
	var bad []chat.Block
	for _, f := range d.Findings {
		if f.Status == actions.StatusOK {
			ok = append(ok, fmt.Sprintf("✅ *%s*: %s", f.Name, f.Detail))
		}
	}
	for _, f := range d.Findings {
		if f.Status == actions.StatusOK {
			continue
		}
		mark := "❌"
		if f.Status == actions.StatusWarn {
			mark = "⚠"
		}
		var b strings.Builder
		fmt.Fprintf(&b, "%s *%s*: %s", mark, f.Name, f.Detail)
		text = append(text, f.Name+": "+f.Detail)
		if len(f.Logs) > 0 {
			// A pod's log is the pod's text, not ours: a backquote in it
			// must not end the code block and format the rest.
			fmt.Fprintf(&b, "\nLast %d log lines:\n```\n%s\n```", len(f.Logs), strings.ReplaceAll(strings.Join(f.Logs, "\n"), "`", "'"))
		}
		if r := f.Remedy; r != nil {
			b.WriteString("\n" + RemedyText(*r))
		}
		bad = append(bad, chat.Text{Text: clipBlock(b.String())})
	}
	// The header, the passing lines and the "more" line take three blocks.
	if limit := maxDiagnosisBlocks - 3; len(bad) > limit {
		more := len(bad) - limit
		bad = append(bad[:limit], chat.Text{Text: fmt.Sprintf("… and %d more failing lines (run /dr diagnose %s again after fixing the first ones)", more, d.Service)})
	}
	blocks = append(blocks, bad...)
	if len(ok) > 0 {
		blocks = append(blocks, chat.Text{Text: clipBlock(strings.Join(ok, "\n"))})
	}
	if len(d.NotConfigured) > 0 {
		blocks = append(blocks, chat.Context{Text: clipBlock("Not configured, not checked: " + strings.Join(d.NotConfigured, "; "))})
	}
	blocks = append(blocks, chat.Context{Text: fmt.Sprintf("Read-only: %s in %s (deadline %s); nothing was changed.",
		plural(len(d.Findings), "line"), roundElapsed(d.Elapsed), d.Deadline)})
	fallback := head
	if len(text) > 0 {
		fallback += " — " + strings.Join(text, "; ")
	}
	return chat.Message{Text: clipBlock(fallback), Blocks: blocks}
}

// RemedyText renders a remedy: its source (or "drbot's advice"), its steps
// with their command lines as code, and the drbot command that does it.
func RemedyText(r actions.Remedy) string {
	var b strings.Builder
	src := "drbot's advice (not in the runbook)"
	if r.Source != "" {
		src = r.Source
	}
	fmt.Fprintf(&b, "↳ _%s_:", src)
	for i, s := range r.Steps {
		if i > 0 {
			b.WriteString(" ·")
		}
		b.WriteString(" " + s.Say)
		if s.Run != "" {
			b.WriteString(": `" + s.Run + "`")
		}
	}
	if r.Command != "" {
		fmt.Fprintf(&b, " → `%s`", r.Command)
	}
	return b.String()
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func roundElapsed(d time.Duration) time.Duration {
	if d >= time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}

// clipBlock keeps a text within one block, closing a code fence it cut.
func clipBlock(s string) string {
	if utf8.RuneCountInString(s) <= maxDiagnosisBlock {
		return s
	}
	r := []rune(s)
	out := string(r[:maxDiagnosisBlock-8]) + "…"
	if strings.Count(out, "```")%2 == 1 {
		out += "\n```"
	}
	return out
}
