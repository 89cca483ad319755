package commands

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/drbot-dev/drbot/bot/chat"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

func TestHelpGolden(t *testing.T) {
	r := newFixtureRegistry()
	cases := []struct{ golden, text string }{
		{"help", "help"},
		{"help", ""}, // empty text is the help
		{"help", "--help"},
		{"help-help", "help help"},
		{"help-status", "help status"},
		{"help-restore-db", "help restore-db"},
		{"help-restore-db", "restore-db --help"}, // --help on any command
		{"help-restore-db", "help RESTORE-DB"},
		{"help-failover", "help failover"},
		{"help-scale", "help scale"},
		{"help-note", "help note"},
		{"help-who", "help who"},
	}
	for _, tc := range cases {
		t.Run(tc.golden+"/"+tc.text, func(t *testing.T) {
			m, err := r.Dispatch(context.Background(), chat.Command{User: chat.User{ID: "U1"}, Channel: chanOps, Text: tc.text})
			if err != nil {
				t.Fatalf("Dispatch(%q): %v", tc.text, err)
			}
			checkGolden(t, tc.golden, renderPlain(m))
		})
	}
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./commands -run TestHelpGolden -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the output (rerun with -update if the change is intended)\n--- got ---\n%s\n--- want ---\n%s", path, got, want)
	}
}

func TestHelpListsEveryCommandSorted(t *testing.T) {
	r := newFixtureRegistry()
	m, err := r.Dispatch(context.Background(), chat.Command{Text: "help"})
	if err != nil {
		t.Fatal(err)
	}
	text := renderPlain(m)
	last := -1
	for _, c := range r.Commands() {
		line := "/dr " + c.Name + " — " + c.Summary
		i := strings.Index(text, line)
		if i < 0 {
			t.Errorf("help lacks %q", line)
			continue
		}
		if i < last {
			t.Errorf("help not sorted at %s", c.Name)
		}
		last = i
		end := strings.IndexByte(text[i:], '\n')
		marked := strings.Contains(text[i:i+end], needsApproval)
		if marked != c.Approval {
			t.Errorf("%s: approval marker %v, want %v", c.Name, marked, c.Approval)
		}
	}
}

func TestHelpBlockKinds(t *testing.T) {
	r := newFixtureRegistry()
	m, err := r.Dispatch(context.Background(), chat.Command{Text: "help restore-db"})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, b := range m.Blocks {
		switch b.(type) {
		case chat.Header:
			kinds["header"] = true
		case chat.Text:
			kinds["text"] = true
		case chat.Fields:
			kinds["fields"] = true
		case chat.Context:
			kinds["context"] = true
		}
	}
	for _, k := range []string{"header", "text", "fields", "context"} {
		if !kinds[k] {
			t.Errorf("help restore-db has no %s block", k)
		}
	}
	if !m.Ephemeral || m.Text == "" {
		t.Errorf("help must be ephemeral with a fallback text: %+v", m)
	}
}

func TestUsageLines(t *testing.T) {
	r := newFixtureRegistry()
	want := map[string]string{
		"restore-db": "/dr restore-db <service> [--db NAME] [--backup KEY] [--dry-run] [--reason TEXT]",
		"failover":   "/dr failover <service> [<replica>] [--reason TEXT]",
		"scale":      "/dr scale <service> <deployment> <replicas> [--wait]",
		"status":     "/dr status <service> [--verbose]",
		"note":       "/dr note <text>...",
		"who":        "/dr who [<team>] [<more>...]",
		"help":       "/dr help [<command>]",
	}
	for name, u := range want {
		c := r.Lookup(name)
		if c == nil {
			t.Fatalf("Lookup(%q) = nil", name)
		}
		if got := c.Usage(); got != u {
			t.Errorf("%s usage = %q, want %q", name, got, u)
		}
	}
	if r.Lookup("nosuch") != nil {
		t.Error("Lookup(nosuch) found something")
	}
}

func TestHelpSplitsLongLists(t *testing.T) {
	r := NewRegistry(Deps{})
	for i := range 60 {
		r.MustRegister(Command{
			Name:    "cmd-" + strings.Repeat("x", 1+i%5) + "-" + string(rune('a'+i%26)) + string(rune('a'+i/26)),
			Summary: strings.Repeat("word ", 15),
			Run:     echo,
		})
	}
	m, err := r.Dispatch(context.Background(), chat.Command{Text: "help"})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, b := range m.Blocks {
		if tb, ok := b.(chat.Text); ok {
			n++
			if len(tb.Text) > maxTextBlock {
				t.Errorf("text block of %d bytes", len(tb.Text))
			}
		}
	}
	if n < 2 {
		t.Errorf("61 commands fit in %d text block(s); expected the list to be split", n)
	}
}
