package slack

import "testing"

func TestEscapeKeepsOnlyUserMentionsAndChannelRefs(t *testing.T) {
	cases := map[string]string{
		"ping <@U0ABC123> now":          "ping <@U0ABC123> now",
		"join <#C0INCIDENT>":            "join <#C0INCIDENT>",
		"<!channel> wake up":            "&lt;!channel&gt; wake up",
		"<!here|here>":                  "&lt;!here|here&gt;",
		"<https://evil.example|click>":  "&lt;https://evil.example|click&gt;",
		"<@U0ABC123|spoofed name>":      "&lt;@U0ABC123|spoofed name&gt;",
		"a & b < c":                     "a &amp; b &lt; c",
		"<@u0abc> lowercase is escaped": "&lt;@u0abc&gt; lowercase is escaped",
		"ask <!subteam^S0ONCALL>":       "ask <!subteam^S0ONCALL>",
		"<!subteam^S0ONCALL|@oncall>":   "&lt;!subteam^S0ONCALL|@oncall&gt;",
		"<!subteam^U0ABC123>":           "&lt;!subteam^U0ABC123&gt;",
	}
	for in, want := range cases {
		if got := escape(in); got != want {
			t.Errorf("escape(%q) = %q, want %q", in, got, want)
		}
	}
}
