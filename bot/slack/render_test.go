package slack

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/drbot-dev/drbot/bot/chat"
)

func renderJSON(t *testing.T, m chat.Message) []map[string]any {
	t.Helper()
	b, err := json.Marshal(render(m))
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func text(b map[string]any) string { return b["text"].(map[string]any)["text"].(string) }

func TestRenderLimits(t *testing.T) {
	long := strings.Repeat("é", 200)
	blocks := renderJSON(t, chat.Message{Text: "x", Blocks: []chat.Block{chat.Header{Text: long}}})
	if h := text(blocks[0]); utf8.RuneCountInString(h) != maxHeaderChars || !strings.HasSuffix(h, "…") {
		t.Errorf("header has %d runes", utf8.RuneCountInString(h))
	}

	para := strings.Repeat("line of text\n", 600) // 7800 bytes
	blocks = renderJSON(t, chat.Message{Text: "x", Blocks: []chat.Block{chat.Text{Text: para}}})
	if len(blocks) != 3 {
		t.Fatalf("long text → %d sections, want 3", len(blocks))
	}
	joined := ""
	for _, b := range blocks {
		s := text(b)
		if len(s) > maxSectionChars {
			t.Errorf("section of %d chars", len(s))
		}
		joined += s + "\n"
	}
	if joined != para {
		t.Error("split text does not join back to the original")
	}

	fields := make([]chat.Field, 23)
	for i := range fields {
		fields[i] = chat.Field{Label: "k", Value: "v"}
	}
	blocks = renderJSON(t, chat.Message{Text: "x", Blocks: []chat.Block{chat.Fields{Fields: fields}}})
	if len(blocks) != 3 || len(blocks[0]["fields"].([]any)) != 10 || len(blocks[2]["fields"].([]any)) != 3 {
		t.Errorf("23 fields → %v", blocks)
	}

	var many []chat.Block
	for range 60 {
		many = append(many, chat.Context{Text: "c"})
	}
	blocks = renderJSON(t, chat.Message{Text: "x", Blocks: many})
	if len(blocks) != maxBlocks || !strings.Contains(blocks[49]["elements"].([]any)[0].(map[string]any)["text"].(string), "11 more blocks") {
		t.Errorf("60 blocks → %d, last %v", len(blocks), blocks[len(blocks)-1])
	}

	// A repeated action id starts a new actions block.
	blocks = renderJSON(t, chat.Message{Text: "x", Blocks: []chat.Block{chat.Actions{Buttons: []chat.Button{
		{ActionID: chat.ActionApprove, Label: "Approve r1", Value: "r1"},
		{ActionID: chat.ActionApprove, Label: "Approve r2", Value: "r2"},
	}}}})
	if len(blocks) != 2 {
		t.Errorf("duplicate action ids in one block: %v", blocks)
	}

	// No blocks: the text becomes one section.
	blocks = renderJSON(t, chat.Message{Text: "just <text>"})
	if len(blocks) != 1 || text(blocks[0]) != "just &lt;text&gt;" {
		t.Errorf("plain = %v", blocks)
	}
}

func TestProgressText(t *testing.T) {
	cases := []struct {
		p    chat.Progress
		want string
	}{
		{chat.Progress{Label: "Objects", Done: 5, Total: 10, Unit: "objects"}, "*Objects*\n`██████████░░░░░░░░░░` 50% (5 objects of 10 objects)"},
		{chat.Progress{Done: 0, Total: 4, Unit: "steps"}, "`░░░░░░░░░░░░░░░░░░░░` 0% (0 steps of 4 steps)"},
		{chat.Progress{Done: 1536, Unit: "bytes"}, "1.5 KiB so far"},
		{chat.Progress{Done: 12, Total: 10}, "`████████████████████` 100% (12 of 10)"},
	}
	for _, c := range cases {
		if got := progressText(c.p); got != c.want {
			t.Errorf("progressText(%+v) = %q, want %q", c.p, got, c.want)
		}
	}
}

func TestCheckboxValueRoundTrip(t *testing.T) {
	for _, c := range []struct {
		item    string
		checked bool
	}{{"step-1", true}, {"a=b", false}} {
		item, checked, ok := ParseCheckboxValue(CheckboxValue(c.item, c.checked))
		if !ok || item != c.item || checked != c.checked {
			t.Errorf("round trip of %+v = %q %v %v", c, item, checked, ok)
		}
	}
	if _, _, ok := ParseCheckboxValue("req-42"); ok {
		t.Error("plain value parsed as a checkbox value")
	}
}

func TestDedupeIsBounded(t *testing.T) {
	d := newDedupe(3)
	for _, id := range []string{"a", "b", "c"} {
		if !d.firstTime("event", id) {
			t.Fatalf("%s seen before", id)
		}
	}
	if d.firstTime("event", "a") || !d.firstTime("trigger", "a") {
		t.Fatal("kinds must not collide, repeats must be caught")
	}
	// "trigger:a" evicted the least recently used ("event:b").
	if !d.firstTime("event", "b") {
		t.Fatal("LRU entry was not evicted")
	}
	first, second := d.firstTime("event", ""), d.firstTime("event", "")
	if !first || !second {
		t.Fatal("empty ids must never be deduplicated")
	}
}
