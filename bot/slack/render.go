package slack

// Block Kit rendering: the one place where chat.Block values become Slack blocks,
// within Slack's size limits (https://api.slack.com/reference/block-kit).

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/drbot-dev/drbot/bot/chat"
)

// Slack Block Kit limits.
const (
	maxBlocks         = 50
	maxHeaderChars    = 150
	maxSectionChars   = 3000
	maxFieldChars     = 2000
	maxFieldsPer      = 10
	maxActionElements = 25
	maxButtonText     = 75
	maxButtonValue    = 2000
	maxOptionText     = 75
	maxOptionValue    = 150
	maxCheckOptions   = 10
	maxContextItems   = 10
	maxFallbackChars  = 4000
	progressBarCells  = 20
)

// CheckboxValue is how a checklist tick reaches chat.Handler until chat.Click
// has a Checked field: Value is "<item value>=1" when the item was ticked and
// "<item value>=0" when it was unticked.
func CheckboxValue(item string, checked bool) string {
	if checked {
		return item + "=1"
	}
	return item + "=0"
}

// ParseCheckboxValue splits a Value made by CheckboxValue.
func ParseCheckboxValue(v string) (item string, checked bool, ok bool) {
	i := strings.LastIndexByte(v, '=')
	if i < 0 {
		return v, false, false
	}
	switch v[i+1:] {
	case "1":
		return v[:i], true, true
	case "0":
		return v[:i], false, true
	}
	return v, false, false
}

// escape makes text safe for mrkdwn: no text can form a link or a special
// mention (@here, @channel). Exactly two forms pass through: a user mention
// <@U…> and a channel reference <#C…>, which the bot writes to notify
// escalation contacts and point at incident channels.
func escape(s string) string {
	var b strings.Builder
	last := 0
	for _, m := range allowedRef.FindAllStringIndex(s, -1) {
		b.WriteString(escaper.Replace(s[last:m[0]]))
		b.WriteString(s[m[0]:m[1]])
		last = m[1]
	}
	b.WriteString(escaper.Replace(s[last:]))
	return b.String()
}

var (
	escaper    = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")
	allowedRef = regexp.MustCompile(`<(?:@[UW]|#[CG]|!subteam\^S)[A-Z0-9]{2,20}>`)
)

// truncate cuts s to at most n runes, ending in "…" when cut.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// chunks splits s into pieces of at most n bytes, preferring line breaks and
// never splitting a UTF-8 sequence or an escape entity.
func chunks(s string, n int) []string {
	var out []string
	for len(s) > n {
		cut := strings.LastIndexByte(s[:n], '\n')
		if cut < n/2 {
			cut = n
			for cut > 0 && !utf8.RuneStart(s[cut]) {
				cut--
			}
			if amp := strings.LastIndexByte(s[:cut], '&'); amp >= 0 && amp > cut-6 && !strings.Contains(s[amp:cut], ";") {
				cut = amp
			}
		}
		out = append(out, s[:cut])
		s = strings.TrimPrefix(s[cut:], "\n")
	}
	if s != "" || len(out) == 0 {
		out = append(out, s)
	}
	return out
}

func mrkdwn(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, s, false, false)
}

func plain(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, s, false, false)
}

// alertPrefix starts every chat.Alert section.
const alertPrefix = ":red_circle: "

// fallbackText is the notification text: m.Text, or the first text in the blocks.
func fallbackText(m chat.Message) string {
	t := m.Text
	if t == "" {
		for _, b := range m.Blocks {
			switch b := b.(type) {
			case chat.Header:
				t = b.Text
			case chat.Text:
				t = b.Text
			}
			if t != "" {
				break
			}
		}
	}
	if t == "" {
		t = "drbot"
	}
	return truncate(t, maxFallbackChars)
}

// render turns a message into Block Kit blocks. A message without blocks is
// rendered as one paragraph of its text, so an update always replaces old blocks.
func render(m chat.Message) []slack.Block {
	src := m.Blocks
	if len(src) == 0 {
		src = []chat.Block{chat.Text{Text: m.Text}}
	}
	var out []slack.Block
	checklists := 0
	for _, b := range src {
		switch b := b.(type) {
		case chat.Header:
			if strings.TrimSpace(b.Text) != "" {
				out = append(out, slack.NewHeaderBlock(plain(truncate(b.Text, maxHeaderChars))))
			}
		case chat.Text:
			if strings.TrimSpace(b.Text) == "" {
				continue
			}
			for _, part := range chunks(escape(strings.TrimRight(b.Text, " \n")), maxSectionChars) {
				out = append(out, slack.NewSectionBlock(mrkdwn(part), nil, nil))
			}
		case chat.Fields:
			out = append(out, renderFields(b)...)
		case chat.Actions:
			out = append(out, renderActions(b)...)
		case chat.Checklist:
			out = append(out, renderChecklist(b, checklists)...)
			checklists++
		case chat.Progress:
			out = append(out, slack.NewSectionBlock(mrkdwn(progressText(b)), nil, nil))
		case chat.Alert:
			// Block Kit has no coloured text: a red circle and bold type
			// mark it (cards that carry one also get a red Approve button).
			if strings.TrimSpace(b.Text) == "" {
				continue
			}
			for _, part := range chunks(escape(strings.TrimSpace(b.Text)), maxSectionChars-len(alertPrefix)-2) {
				out = append(out, slack.NewSectionBlock(mrkdwn(alertPrefix+"*"+part+"*"), nil, nil))
			}
		case chat.Context:
			if strings.TrimSpace(b.Text) == "" {
				continue
			}
			parts := chunks(escape(b.Text), maxSectionChars)
			for len(parts) > 0 {
				n := min(len(parts), maxContextItems)
				els := make([]slack.MixedElement, 0, n)
				for _, p := range parts[:n] {
					els = append(els, mrkdwn(p))
				}
				out = append(out, slack.NewContextBlock("", els...))
				parts = parts[n:]
			}
		}
	}
	if len(out) > maxBlocks {
		hidden := len(out) - (maxBlocks - 1)
		out = append(out[:maxBlocks-1:maxBlocks-1],
			slack.NewContextBlock("", mrkdwn(fmt.Sprintf("(%d more blocks not shown: Slack allows %d per message)", hidden, maxBlocks))))
	}
	return out
}

func renderFields(f chat.Fields) []slack.Block {
	var out []slack.Block
	for i := 0; i < len(f.Fields); i += maxFieldsPer {
		group := f.Fields[i:min(i+maxFieldsPer, len(f.Fields))]
		objs := make([]*slack.TextBlockObject, 0, len(group))
		for _, fl := range group {
			label := escape(fl.Label)
			if label != "" {
				label = "*" + label + "*\n"
			}
			objs = append(objs, mrkdwn(truncate(label+escape(fl.Value), maxFieldChars)))
		}
		out = append(out, slack.NewSectionBlock(nil, objs, nil))
	}
	return out
}

// renderActions puts buttons in actions blocks of at most 25, starting a new
// block when an action id repeats (Slack wants them unique within a block).
func renderActions(a chat.Actions) []slack.Block {
	var out []slack.Block
	var els []slack.BlockElement
	seen := map[string]bool{}
	flush := func() {
		if len(els) > 0 {
			out = append(out, slack.NewActionBlock("", els...))
		}
		els, seen = nil, map[string]bool{}
	}
	for _, b := range a.Buttons {
		if len(els) == maxActionElements || seen[b.ActionID] {
			flush()
		}
		seen[b.ActionID] = true
		btn := slack.NewButtonBlockElement(b.ActionID, truncate(b.Value, maxButtonValue), plain(truncate(b.Label, maxButtonText)))
		switch b.Style {
		case chat.StylePrimary:
			btn = btn.WithStyle(slack.StylePrimary)
		case chat.StyleDanger:
			btn = btn.WithStyle(slack.StyleDanger)
		}
		els = append(els, btn)
	}
	flush()
	return out
}

// checklistBlockID names the n-th checkbox group of the idx-th checklist; block
// ids must be unique within a message.
func checklistBlockID(idx, n int) string {
	return "checklist-" + strconv.Itoa(idx) + "-" + strconv.Itoa(n)
}

func renderChecklist(c chat.Checklist, idx int) []slack.Block {
	var out []slack.Block
	if strings.TrimSpace(c.Title) != "" {
		out = append(out, slack.NewSectionBlock(mrkdwn("*"+truncate(escape(c.Title), maxSectionChars-2)+"*"), nil, nil))
	}
	for i := 0; i < len(c.Items); i += maxCheckOptions {
		group := c.Items[i:min(i+maxCheckOptions, len(c.Items))]
		opts := make([]*slack.OptionBlockObject, 0, len(group))
		var initial []*slack.OptionBlockObject
		for _, it := range group {
			o := slack.NewOptionBlockObject(truncate(it.Value, maxOptionValue), plain(truncate(it.Label, maxOptionText)), nil)
			opts = append(opts, o)
			if it.Done {
				initial = append(initial, o)
			}
		}
		el := slack.NewCheckboxGroupsBlockElement(c.ActionID, opts...)
		el.InitialOptions = initial
		out = append(out, slack.NewActionBlock(checklistBlockID(idx, i/maxCheckOptions), el))
	}
	return out
}

// progressText renders a text progress bar: label, bar, percentage and amounts.
func progressText(p chat.Progress) string {
	var b strings.Builder
	if p.Label != "" {
		b.WriteString("*" + escape(p.Label) + "*\n")
	}
	if p.Total <= 0 {
		fmt.Fprintf(&b, "%s so far", amount(p.Done, p.Unit))
		return b.String()
	}
	done := min(max(p.Done, 0), p.Total)
	cells := int(done * progressBarCells / p.Total)
	pct := float64(done) * 100 / float64(p.Total)
	fmt.Fprintf(&b, "`%s%s` %.0f%% (%s of %s)", strings.Repeat("█", cells), strings.Repeat("░", progressBarCells-cells),
		pct, amount(p.Done, p.Unit), amount(p.Total, p.Unit))
	return b.String()
}

func amount(n int64, unit string) string {
	if unit != "bytes" {
		if unit == "" {
			return strconv.FormatInt(n, 10)
		}
		return strconv.FormatInt(n, 10) + " " + escape(unit)
	}
	const k = 1024
	if n < k {
		return strconv.FormatInt(n, 10) + " B"
	}
	v := float64(n)
	for _, u := range []string{"KiB", "MiB", "GiB", "TiB", "PiB"} {
		v /= k
		if v < k || u == "PiB" {
			return strconv.FormatFloat(v, 'f', 1, 64) + " " + u
		}
	}
	return strconv.FormatInt(n, 10) + " B"
}
