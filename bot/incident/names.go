package incident

// People in timelines and summaries are quoted as @id (a mention would
// notify them again); where the chat platform can name users, the ids are
// replaced by the names it shows.

import (
	"context"
	"log/slog"
	"regexp"
	"strings"

	"github.com/drbot-dev/drbot/bot/chat"
)

var quotedIDRE = regexp.MustCompile(`@([UW][A-Z0-9]{2,})\b`)

// nameSafe keeps a name from acting as markup in chat or a Markdown table
// ("<!channel>" would notify everyone, "|" would split a cell).
var nameSafe = strings.NewReplacer("<", "", ">", "", "|", "/", "\n", " ", "`", "'", "*", "")

// Renamer replaces quoted user ids (@U…) by @name in text.
type Renamer func(string) string

// NameUsers returns a Renamer for the user ids quoted in texts, resolved
// through names; ids it cannot name stay as they are. A nil names renames
// nothing.
func NameUsers(ctx context.Context, names chat.UserNames, log *slog.Logger, texts ...string) Renamer {
	if names == nil {
		return func(s string) string { return s }
	}
	named := map[string]string{}
	for _, t := range texts {
		for _, m := range quotedIDRE.FindAllStringSubmatch(t, -1) {
			id := m[1]
			if _, done := named[id]; done {
				continue
			}
			n, err := names.UserName(ctx, id)
			if err != nil && log != nil {
				log.DebugContext(ctx, "cannot name a user in a timeline", "user", id, "err", err)
			}
			named[id] = nameSafe.Replace(n) // "" when it cannot be named: the id stays
		}
	}
	return func(s string) string {
		return quotedIDRE.ReplaceAllStringFunc(s, func(q string) string {
			if n := named[q[1:]]; n != "" {
				return "@" + n
			}
			return q
		})
	}
}

// adapterNames is the chat adapter's UserNames, or nil.
func adapterNames(a chat.Adapter) chat.UserNames {
	n, _ := a.(chat.UserNames)
	return n
}

// renameMessage applies rename to a message's words.
func renameMessage(m chat.Message, rename Renamer) chat.Message {
	m.Text = rename(m.Text)
	blocks := make([]chat.Block, len(m.Blocks))
	for i, b := range m.Blocks {
		switch x := b.(type) {
		case chat.Text:
			x.Text = rename(x.Text)
			blocks[i] = x
		case chat.Context:
			x.Text = rename(x.Text)
			blocks[i] = x
		case chat.Header:
			x.Text = rename(x.Text)
			blocks[i] = x
		case chat.Fields:
			fs := make([]chat.Field, len(x.Fields))
			for j, f := range x.Fields {
				fs[j] = chat.Field{Label: f.Label, Value: rename(f.Value)}
			}
			blocks[i] = chat.Fields{Fields: fs}
		default:
			blocks[i] = b
		}
	}
	m.Blocks = blocks
	return m
}

// messageWords are the texts of a message renameMessage renames.
func messageWords(m chat.Message) []string {
	out := []string{m.Text}
	for _, b := range m.Blocks {
		switch x := b.(type) {
		case chat.Text:
			out = append(out, x.Text)
		case chat.Context:
			out = append(out, x.Text)
		case chat.Fields:
			for _, f := range x.Fields {
				out = append(out, f.Value)
			}
		}
	}
	return out
}
