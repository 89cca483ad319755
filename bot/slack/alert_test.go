package slack

import (
	"strings"
	"testing"

	"github.com/drbot-dev/drbot/bot/chat"
)

// A chat.Alert (a forced override) renders as a section marked with a red
// circle in bold, escaped like any text, split within Slack's section limit.
func TestRenderAlert(t *testing.T) {
	blocks := renderJSON(t, chat.Message{Text: "x", Blocks: []chat.Block{
		chat.Alert{Text: "FORCED with --force: GET <https://api/health> answered 200 OK"},
		chat.Alert{Text: "  "},
	}})
	if len(blocks) != 1 || blocks[0]["type"] != "section" {
		t.Fatalf("blocks %v", blocks)
	}
	if got := text(blocks[0]); got != ":red_circle: *FORCED with --force: GET &lt;https://api/health&gt; answered 200 OK*" {
		t.Errorf("alert %q", got)
	}
	long := renderJSON(t, chat.Message{Text: "x", Blocks: []chat.Block{chat.Alert{Text: strings.Repeat("danger ", 1000)}}})
	if len(long) < 2 {
		t.Fatalf("a 7000-byte alert → %d sections", len(long))
	}
	for _, b := range long {
		if s := text(b); len(s) > maxSectionChars || !strings.HasPrefix(s, alertPrefix+"*") {
			t.Errorf("alert section of %d bytes: %.40q", len(s), s)
		}
	}
}
