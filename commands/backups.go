package commands

import (
	"fmt"
	"strings"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/bot/chat"
)

// BackupsMessage renders /dr backups' listings (actions/backups): a
// header, then per listing its location, its newest rows (name, size, age)
// and the RPO verdict.
func BackupsMessage(service string, ls []actions.BackupListing) chat.Message {
	head := "Backups of " + service
	blocks := []chat.Block{chat.Header{Text: head}}
	var text []string
	for _, l := range ls {
		var b strings.Builder
		fmt.Fprintf(&b, "*%s* — %s", l.Title, l.Location)
		for i, r := range l.Rows {
			if i == actions.MaxBackupRows {
				break
			}
			extra := ""
			if r.Objects > 1 {
				extra = fmt.Sprintf(", %d objects", r.Objects)
			}
			fmt.Fprintf(&b, "\n`%s` — %s%s — %s old", r.Name, actions.HumanSize(r.Size), extra, actions.HumanAge(r.Age))
		}
		if more := max(l.Total, len(l.Rows)) - min(len(l.Rows), actions.MaxBackupRows); more > 0 {
			fmt.Fprintf(&b, "\n… and %d older", more)
		}
		mark := "✅ "
		if !l.OK {
			mark = "⚠ "
		}
		blocks = append(blocks, chat.Text{Text: b.String()}, chat.Text{Text: mark + l.Verdict})
		text = append(text, l.Title+": "+l.Verdict)
	}
	return chat.Message{Text: head + ": " + strings.Join(text, "; "), Blocks: blocks}
}
