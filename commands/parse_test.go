package commands

import (
	"slices"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"   \t\n ", nil},
		{"status", []string{"status"}},
		{"  restore-db   inflow  ", []string{"restore-db", "inflow"}},
		{`restore-db inflow --reason "db corrupted at 14:02"`, []string{"restore-db", "inflow", "--reason", "db corrupted at 14:02"}},
		{`--reason="a b"`, []string{"--reason=a b"}},
		{`--reason='it is "fine"'`, []string{`--reason=it is "fine"`}},
		{`'single \ keeps backslash'`, []string{`single \ keeps backslash`}},
		{`"esc \" and \\ and \n"`, []string{`esc " and \ and \n`}},
		{`a\ b c`, []string{"a b", "c"}},
		{`a\"b`, []string{`a"b`}},
		{`trailing\`, []string{`trailing\`}},
		{`"" x ''`, []string{"", "x", ""}},
		{`pre"mid dle"post`, []string{"premid dlepost"}},
		{"“smart quotes” too", []string{"smart quotes", "too"}},
		{"„german“ style", []string{"german", "style"}},
		{"”same” both", []string{"same", "both"}},
		{"‘single smart’ x", []string{"single smart", "x"}},
		{"don’t stop", []string{"don’t", "stop"}},
		{"'mixed’ ok", []string{"mixed", "ok"}},
		{"“a ” b", []string{"a ", "b"}}, // any double quote closes
		{"nbsp\u00a0split", []string{"nbsp", "split"}},
		{"—dry-run", []string{"—dry-run"}}, // dashes are the binder's business
		{"naïve 東京", []string{"naïve", "東京"}},
	}
	for _, tc := range cases {
		got, err := Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("Parse(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseRefusals(t *testing.T) {
	cases := []struct{ in, want string }{
		{`restore-db --reason "db corrupted`, `unterminated quote: the " at character 21 is never closed`},
		{`note 'oops`, `unterminated quote: the ' at character 6 is never closed`},
		{"note “smart", `unterminated quote: the “ at character 6 is never closed`},
		{"x ‘a", `unterminated quote: the ‘ at character 3 is never closed`},
		{`"\"`, `unterminated quote: the " at character 1 is never closed`},
		{"bad \xff utf8", `command text is not valid UTF-8`},
		{strings.Repeat("a", MaxInputBytes+1), `command is too long (4097 bytes; the limit is 4096)`},
	}
	for _, tc := range cases {
		_, err := Parse(tc.in)
		r, ok := AsRefusal(err)
		if !ok {
			t.Errorf("Parse(%.30q): error %v is not a refusal", tc.in, err)
			continue
		}
		if r.Msg != tc.want {
			t.Errorf("Parse(%.30q) refused %q, want %q", tc.in, r.Msg, tc.want)
		}
	}
	if _, err := Parse(strings.Repeat("a", MaxInputBytes)); err != nil {
		t.Errorf("Parse of exactly %d bytes: %v", MaxInputBytes, err)
	}
}

// quoteWord quotes w so that Parse returns it unchanged: the inverse used by
// the round-trip checks.
func quoteWord(w string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range w {
		if r == '\\' || isDoubleQuote(r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	return b.String()
}

func TestParseRoundTrip(t *testing.T) {
	words := []string{"", " ", `\`, `"`, "“”„", "'", "’", "a b", `\\"`, "--x=y", "\t\n"}
	var quoted []string
	for _, w := range words {
		quoted = append(quoted, quoteWord(w))
	}
	got, err := Parse(strings.Join(quoted, " "))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, words) {
		t.Errorf("round trip = %q, want %q", got, words)
	}
}
