package shell

import (
	"fmt"
	"strings"

	"github.com/drbot-dev/drbot/bot/chat"
)

// barWidth is the number of cells in a progress bar.
const barWidth = 10

// Render formats a message as terminal text. numbers are the labels of its
// buttons and checklist items, in order; missing numbers render as [?].
func Render(m chat.Message, numbers []int) string {
	if len(m.Blocks) == 0 {
		return m.Text
	}
	var lines []string
	i := 0
	next := func() string {
		if i < len(numbers) {
			i++
			return fmt.Sprintf("[%d]", numbers[i-1])
		}
		i++
		return "[?]"
	}
	for _, blk := range m.Blocks {
		switch b := blk.(type) {
		case chat.Header:
			lines = append(lines, "*"+strings.Trim(b.Text, "*")+"*")
		case chat.Text:
			lines = append(lines, strings.Split(b.Text, "\n")...)
		case chat.Fields:
			for _, f := range b.Fields {
				lines = append(lines, f.Label+": "+f.Value)
			}
		case chat.Actions:
			var parts []string
			for _, btn := range b.Buttons {
				label := btn.Label
				if btn.Style == chat.StyleDanger {
					label += " (!)"
				}
				parts = append(parts, next()+" "+label)
			}
			lines = append(lines, strings.Join(parts, "   "))
		case chat.Checklist:
			if b.Title != "" {
				lines = append(lines, b.Title)
			}
			for _, it := range b.Items {
				box := "[ ]"
				if it.Done {
					box = "[x]"
				}
				lines = append(lines, next()+" "+box+" "+it.Label)
			}
		case chat.Progress:
			lines = append(lines, progressLine(b))
		case chat.Context:
			lines = append(lines, "  "+b.Text)
		case chat.Alert:
			lines = append(lines, "(!) "+b.Text)
		}
	}
	return strings.Join(lines, "\n")
}

func progressLine(p chat.Progress) string {
	prefix := ""
	if p.Label != "" {
		prefix = p.Label + " "
	}
	if p.Total <= 0 {
		return prefix + "[" + strings.Repeat("?", barWidth) + "] " + amount(p.Done, p.Unit) + " so far"
	}
	done := min(max(p.Done, 0), p.Total)
	pct := int(done * 100 / p.Total)
	filled := int(done * barWidth / p.Total)
	bar := strings.Repeat("#", filled) + strings.Repeat("-", barWidth-filled)
	return fmt.Sprintf("%s[%s] %d%% (%s of %s)", prefix, bar, pct, amount(p.Done, p.Unit), amount(p.Total, p.Unit))
}

// amount formats n in unit; bytes use binary units (512 MiB, 1.0 GiB).
func amount(n int64, unit string) string {
	if unit != "bytes" {
		if unit == "" {
			return fmt.Sprint(n)
		}
		return fmt.Sprintf("%d %s", n, unit)
	}
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v := float64(n)
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	u := -1
	for v >= 1024 && u < len(units)-1 {
		v /= 1024
		u++
	}
	if v < 10 {
		return fmt.Sprintf("%.1f %s", v, units[u])
	}
	return fmt.Sprintf("%.0f %s", v, units[u])
}
