package commands

import (
	"context"
	"strings"
	"testing"

	"github.com/drbot-dev/drbot/bot/chat"
	"github.com/drbot-dev/drbot/internal/editdist"
)

func TestRegisterRejects(t *testing.T) {
	ok := Command{Name: "fine", Summary: "s", Run: echo}
	with := func(f func(c *Command)) Command {
		c := ok
		f(&c)
		return c
	}
	cases := []struct {
		name string
		cmd  Command
		want string
	}{
		{"duplicate", with(func(c *Command) { c.Name = "help" }), `register command "help": already registered`},
		{"empty name", with(func(c *Command) { c.Name = "" }), "register command: empty name"},
		{"upper case", with(func(c *Command) { c.Name = "Restore" }), `register command "Restore": name must be lowercase words joined by hyphens`},
		{"underscore", with(func(c *Command) { c.Name = "restore_db" }), `register command "restore_db": name must be lowercase words joined by hyphens`},
		{"double hyphen", with(func(c *Command) { c.Name = "a--b" }), `register command "a--b": name must be lowercase words joined by hyphens`},
		{"trailing hyphen", with(func(c *Command) { c.Name = "ab-" }), `register command "ab-": name must be lowercase words joined by hyphens`},
		{"space", with(func(c *Command) { c.Name = "a b" }), `register command "a b": name must be lowercase words joined by hyphens`},
		{"no summary", with(func(c *Command) { c.Summary = " " }), `register command "fine": empty summary`},
		{"multi-line summary", with(func(c *Command) { c.Summary = "a\nb" }), `register command "fine": summary must be one line`},
		{"no run", with(func(c *Command) { c.Run = nil }), `register command "fine": nil Run`},
		{"bad mode", with(func(c *Command) { c.Service = 7 }), `register command "fine": unknown service mode 7`},
		{"duplicate flag", with(func(c *Command) { c.Flags = []Flag{{Name: "db"}, {Name: "x"}, {Name: "db"}} }), `register command "fine": duplicate flag --db`},
		{"bad flag", with(func(c *Command) { c.Flags = []Flag{{Name: "--db"}} }), `register command "fine": flag "--db": name must be lowercase words joined by hyphens`},
		{"reserved flag", with(func(c *Command) { c.Flags = []Flag{{Name: "help", Bool: true}} }), `register command "fine": flag --help is reserved`},
		{"bool default", with(func(c *Command) { c.Flags = []Flag{{Name: "x", Bool: true, Default: "maybe"}} }), `register command "fine": bool flag --x has default "maybe" (want true or false)`},
		{"required after optional", with(func(c *Command) { c.Args = []Arg{{Name: "a", Optional: true}, {Name: "b"}} }),
			`register command "fine": required argument "b" after optional argument "a"`},
		{"variadic not last", with(func(c *Command) { c.Args = []Arg{{Name: "a", Variadic: true}, {Name: "b"}} }),
			`register command "fine": variadic argument "a" must be the last`},
		{"duplicate arg", with(func(c *Command) { c.Args = []Arg{{Name: "a"}, {Name: "a"}} }), `register command "fine": duplicate argument "a"`},
		{"arg named service", with(func(c *Command) { c.Service = ServiceImplied; c.Args = []Arg{{Name: "service"}} }),
			`register command "fine": duplicate argument "service"`},
		{"bad arg", with(func(c *Command) { c.Args = []Arg{{Name: ""}} }), `register command "fine": argument "": name must be lowercase words joined by hyphens`},
		{"example of another command", with(func(c *Command) { c.Examples = []string{"/dr other"} }), `register command "fine": example "/dr other" must start with "/dr fine"`},
		{"example unparsable", with(func(c *Command) { c.Examples = []string{`/dr fine "x`} }),
			`register command "fine": example "/dr fine \"x": unterminated quote: the " at character 10 is never closed`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := NewRegistry(Deps{})
			err := r.Register(tc.cmd)
			if err == nil {
				t.Fatalf("Register accepted %+v", tc.cmd)
			}
			if err.Error() != tc.want {
				t.Errorf("Register error\n  %s\nwant\n  %s", err, tc.want)
			}
		})
	}
}

func TestRegisterDuplicateAndMust(t *testing.T) {
	r := NewRegistry(Deps{})
	c := Command{Name: "status", Summary: "s", Run: echo}
	if err := r.Register(c); err != nil {
		t.Fatal(err)
	}
	if err := r.Register(c); err == nil || !strings.Contains(err.Error(), "already registered") {
		t.Errorf("second Register: %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Error("MustRegister of a duplicate did not panic")
		}
	}()
	r.MustRegister(c)
}

func TestRegisterCopiesDefinition(t *testing.T) {
	r := NewRegistry(Deps{})
	flags := []Flag{{Name: "db", Default: "main"}}
	r.MustRegister(Command{Name: "x", Summary: "s", Flags: flags, Run: echo})
	flags[0].Name = "changed"
	if r.Lookup("x").flag("db") == nil {
		t.Error("registry shares the caller's Flags slice")
	}
}

func TestCommandsSortedAndHelpBuiltIn(t *testing.T) {
	r := newFixtureRegistry()
	var names []string
	for _, c := range r.Commands() {
		names = append(names, c.Name)
	}
	want := "failover help note restore-db scale status who"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("Commands() = %s, want %s", got, want)
	}
	if NewRegistry(Deps{}).Lookup("help") == nil {
		t.Error("help is not registered by NewRegistry")
	}
}

func TestConcurrentDispatchAndRegister(t *testing.T) {
	r := newFixtureRegistry()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 50 {
			r.MustRegister(Command{Name: "c" + strings.Repeat("x", i+1), Summary: "s", Run: echo})
		}
	}()
	for range 50 {
		if _, err := r.Dispatch(context.Background(), chat.Command{Channel: chanInflow, Text: "help"}); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Dispatch(context.Background(), chat.Command{Channel: chanInflow, Text: "status"}); err != nil {
			t.Fatal(err)
		}
	}
	<-done
}

func TestEditDistanceAndClosest(t *testing.T) {
	cases := []struct {
		a, b string
		d    int
	}{
		{"", "", 0}, {"a", "", 1}, {"restor-db", "restore-db", 1}, {"statsu", "status", 1},
		{"kitten", "sitting", 3}, {"ca", "abc", 3}, {"東京", "京東", 1},
	}
	for _, tc := range cases {
		if got := editdist.Distance(tc.a, tc.b); got != tc.d {
			t.Errorf("Distance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.d)
		}
	}
	names := []string{"failover", "help", "restore-db", "scale", "status"}
	for word, want := range map[string]string{
		"restor-db": "restore-db", "hepl": "help", "stat": "status",
		"sta":   "status", // a unique prefix
		"s":     "",       // too short for a prefix
		"xyzzy": "", "": "", "failovr": "failover", strings.Repeat("a", 100): "",
	} {
		if got := closest(word, names); got != want {
			t.Errorf("closest(%.20q) = %q, want %q", word, got, want)
		}
	}
}
