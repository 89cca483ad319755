package commands

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/drbot-dev/drbot/bot/chat"
)

var fuzzSeeds = []string{
	"",
	"help",
	"help restore-db",
	`restore-db inflow --reason "db corrupted at 14:02" --dry-run`,
	"restore-db inflow —dry-run –reason “slack ate my quotes”",
	`restore-db --reason="a b" --db='x' lstm-pfd`,
	`note it\'s "fine" -- --x`,
	"scale api 3 --wait=false",
	"who a b c",
	`"unterminated`,
	"‘x’ don’t „y“",
	"a\\",
	"\"\\\"\" '' \"\"",
	"-",
	"--",
	"---",
	"--=",
	"—",
	"-1 -a",
	"\xff\xfe",
	"restor-db",
	"status LSTM-PFD extra words here",
}

// FuzzParse: Parse never panics, fails only with refusals, and what it returns
// survives quoting and parsing again unchanged.
func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		words, err := Parse(s)
		if err != nil {
			if _, ok := AsRefusal(err); !ok {
				t.Fatalf("Parse(%q): non-refusal error %v", s, err)
			}
			return
		}
		quoted := make([]string, len(words))
		for i, w := range words {
			quoted[i] = quoteWord(w)
		}
		joined := strings.Join(quoted, " ")
		if len(joined) > MaxInputBytes {
			return
		}
		again, err := Parse(joined)
		if err != nil {
			t.Fatalf("Parse(%q) of re-quoted %q: %v", joined, words, err)
		}
		if !slices.Equal(again, words) {
			t.Fatalf("round trip of %q: got %q", words, again)
		}
	})
}

// FuzzDispatch: no text panics Dispatch, every error is a refusal (the fixture's
// commands and Deps never fail), and a bound call satisfies its command's shape.
func FuzzDispatch(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s, false)
		f.Add(s, true)
	}
	r := newFixtureRegistry()
	services := r.services()
	var last *Call
	r.MustRegister(Command{
		Name: "probe", Summary: "s", Service: ServiceImplied,
		Args:  []Arg{{Name: "a"}, {Name: "b", Optional: true}, {Name: "c", Optional: true, Variadic: true}},
		Flags: []Flag{{Name: "x", Bool: true}, {Name: "y", Default: "d"}},
		Run: func(_ context.Context, c *Call) (chat.Message, error) {
			last = c
			return chat.Plain("ok"), nil
		},
	})
	f.Fuzz(func(t *testing.T, text string, incident bool) {
		channel := chanOps
		if incident {
			channel = chanInflow
		}
		last = nil
		m, err := r.Dispatch(context.Background(), chat.Command{Channel: channel, Text: text})
		if err != nil {
			ref, ok := AsRefusal(err)
			if !ok {
				t.Fatalf("Dispatch(%q): non-refusal error %v", text, err)
			}
			if ref.Msg == "" {
				t.Fatalf("Dispatch(%q): empty refusal", text)
			}
			return
		}
		if m.Text == "" {
			t.Fatalf("Dispatch(%q): reply without text", text)
		}
		if last == nil {
			return
		}
		if !slices.Contains(services, last.Service) {
			t.Fatalf("Dispatch(%q): service %q is not configured", text, last.Service)
		}
		if incident && last.Service != "inflow" {
			t.Fatalf("Dispatch(%q) in inflow's channel acted on %q", text, last.Service)
		}
		if _, ok := last.Args["a"]; !ok {
			t.Fatalf("Dispatch(%q): required arg missing: %+v", text, last.Args)
		}
		if v := last.Flags["x"]; v != "" && v != "true" && v != "false" {
			t.Fatalf("Dispatch(%q): bool flag = %q", text, v)
		}
		if last.Flags["y"] == "" {
			t.Fatalf("Dispatch(%q): flag y lost its default", text)
		}
	})
}
