package slack

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"gopkg.in/yaml.v3"
)

// webAPI maps each slack-go *slack.Client method (without its Context
// suffix) to the Web API method it calls and the bot scopes that needs
// (https://api.slack.com/methods). A method the code calls that is missing
// here fails TestManifestScopesMatchTheCode: add it with its scopes.
var webAPI = map[string]struct {
	method string
	scopes []string
}{
	"AuthTest":                  {"auth.test", nil},
	"PostMessage":               {"chat.postMessage", []string{"chat:write"}},
	"UpdateMessage":             {"chat.update", []string{"chat:write"}},
	"PostEphemeral":             {"chat.postEphemeral", []string{"chat:write"}},
	"JoinConversation":          {"conversations.join", []string{"channels:join"}},
	"CreateConversation":        {"conversations.create", []string{"channels:manage", "groups:write"}}, // groups:write: security incidents' private channels
	"SetTopicOfConversation":    {"conversations.setTopic", []string{"channels:manage"}},
	"InviteUsersToConversation": {"conversations.invite", []string{"channels:manage", "groups:write"}}, // groups:write: invites to private channels
	"GetConversations":          {"conversations.list", []string{"channels:read"}},                     // + groups:read with private_channel
	"GetUsersInConversation":    {"conversations.members", []string{"channels:read", "groups:read"}},   // groups:read: members of private channels
	"GetConversationInfo":       {"conversations.info", []string{"channels:read"}},
	"GetUserByEmail":            {"users.lookupByEmail", []string{"users:read.email", "users:read"}}, // Slack requires users:read with users:read.email
	"GetUserInfo":               {"users.info", []string{"users:read"}},
	"GetUserGroupMembers":       {"usergroups.users.list", []string{"usergroups:read"}},
	"AddPin":                    {"pins.add", []string{"pins:write"}},
	"RemovePin":                 {"pins.remove", []string{"pins:write"}},
}

// eventScopes maps the bot events the code handles (an inner event type of
// slackevents, such as AppMentionEvent for app_mention) to their scope.
var eventScopes = map[string]string{
	"app_mention": "app_mentions:read",
	"message":     "channels:history", // + groups:history for private channels
}

// notWebAPI are *slack.Client methods that call no Web API method.
var notWebAPI = map[string]bool{"Debug": true, "Debugf": true, "Debugln": true}

// ahead lists scopes the manifest requests before the code calls them, each
// with the reason (none now: pins:write, requested ahead for the pinned
// incident header, is used by Client.Pin). A stale entry fails the test.
var ahead = map[string]string{}

// usedSlackAPI scans this package's non-test sources for calls of methods
// that *slack.Client has and for slackevents types. Names shared with our
// own Client (AuthTest, PostEphemeral) map to the same Web API method, so the
// over-approximation of a name-based scan adds no scope the code lacks.
func usedSlackAPI(t *testing.T) (methods, botEvents []string) {
	t.Helper()
	clientMethods := map[string]bool{}
	ct := reflect.TypeOf(&slack.Client{})
	for i := range ct.NumMethod() {
		if name := ct.Method(i).Name; !notWebAPI[name] {
			clientMethods[name] = true
		}
	}
	innerEvents := map[string]string{} // type name → event type
	for typ, v := range slackevents.EventsAPIInnerEventMapping {
		innerEvents[reflect.TypeOf(v).Name()] = string(typ)
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	seenM, seenE := map[string]bool{}, map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CallExpr:
				if sel, ok := n.Fun.(*ast.SelectorExpr); ok && clientMethods[sel.Sel.Name] {
					seenM[strings.TrimSuffix(sel.Sel.Name, "Context")] = true
				}
			case *ast.SelectorExpr:
				if id, ok := n.X.(*ast.Ident); ok && id.Name == "slackevents" && innerEvents[n.Sel.Name] != "" {
					seenE[innerEvents[n.Sel.Name]] = true
				}
			}
			return true
		})
	}
	for m := range seenM {
		methods = append(methods, m)
	}
	for e := range seenE {
		botEvents = append(botEvents, e)
	}
	sort.Strings(methods)
	sort.Strings(botEvents)
	return methods, botEvents
}

type manifestDoc struct {
	Features struct {
		SlashCommands []struct {
			Command string `yaml:"command"`
			URL     string `yaml:"url"`
		} `yaml:"slash_commands"`
	} `yaml:"features"`
	OAuth struct {
		Scopes struct {
			Bot []string `yaml:"bot"`
		} `yaml:"scopes"`
	} `yaml:"oauth_config"`
	Settings struct {
		Interactivity struct {
			IsEnabled  bool   `yaml:"is_enabled"`
			RequestURL string `yaml:"request_url"`
		} `yaml:"interactivity"`
		Events struct {
			RequestURL string   `yaml:"request_url"`
			BotEvents  []string `yaml:"bot_events"`
		} `yaml:"event_subscriptions"`
		SocketMode bool `yaml:"socket_mode_enabled"`
	} `yaml:"settings"`
}

func parseManifest(t *testing.T, b []byte) manifestDoc {
	t.Helper()
	var m manifestDoc
	dec := yaml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("manifest does not parse: %v\n%s", err, b)
	}
	return m
}

func TestManifestScopesMatchTheCode(t *testing.T) {
	methods, evTypes := usedSlackAPI(t)
	if !slices.Contains(methods, "PostMessage") || !slices.Contains(evTypes, "app_mention") {
		t.Fatalf("the scan found too little (methods %v, events %v): is it reading bot/slack?", methods, evTypes)
	}
	want := map[string]bool{"commands": true} // the /dr slash command
	var wantEvents []string
	for _, m := range methods {
		api, ok := webAPI[m]
		if !ok {
			t.Errorf("the code calls slack-go's %s: add it to webAPI with the scopes Slack documents for it", m)
			continue
		}
		for _, s := range api.scopes {
			want[s] = true
		}
	}
	for _, e := range evTypes {
		scope, ok := eventScopes[e]
		if !ok {
			t.Errorf("the code handles the %s event: add it to eventScopes with its scope", e)
			continue
		}
		want[scope] = true
		wantEvents = append(wantEvents, e)
	}
	for s, why := range ahead {
		if want[s] {
			t.Errorf("scope %s is now used by the code: remove it from ahead (%s)", s, why)
		}
		want[s] = true
	}
	var wantList []string
	for s := range want {
		wantList = append(wantList, s)
	}
	sort.Strings(wantList)
	sort.Strings(wantEvents)

	for _, o := range []ManifestOptions{{}, {SocketMode: true}} {
		b, err := Manifest(o)
		if err != nil {
			t.Fatal(err)
		}
		m := parseManifest(t, b)
		got := slices.Clone(m.OAuth.Scopes.Bot)
		sort.Strings(got)
		if !slices.Equal(got, wantList) {
			t.Errorf("socket mode %v: manifest bot scopes\n  %v\nwant exactly what the code calls (methods %v, events %v)\n  %v", o.SocketMode, got, methods, evTypes, wantList)
		}
		gotEvents := slices.Clone(m.Settings.Events.BotEvents)
		sort.Strings(gotEvents)
		if !slices.Equal(gotEvents, wantEvents) {
			t.Errorf("socket mode %v: bot_events %v, want %v", o.SocketMode, gotEvents, wantEvents)
		}
	}
}

func TestManifestVariants(t *testing.T) {
	b, err := Manifest(ManifestOptions{URL: "https://bot.example.org/drbot/"})
	if err != nil {
		t.Fatal(err)
	}
	h := parseManifest(t, b)
	if len(h.Features.SlashCommands) != 1 || h.Features.SlashCommands[0].Command != "/dr" || h.Features.SlashCommands[0].URL != "https://bot.example.org/drbot/slack/commands" {
		t.Errorf("HTTP slash command: %+v", h.Features.SlashCommands)
	}
	if h.Settings.Interactivity.RequestURL != "https://bot.example.org/drbot/slack/interactions" || !h.Settings.Interactivity.IsEnabled ||
		h.Settings.Events.RequestURL != "https://bot.example.org/drbot/slack/events" || h.Settings.SocketMode {
		t.Errorf("HTTP settings: %+v", h.Settings)
	}

	b, err = Manifest(ManifestOptions{SocketMode: true})
	if err != nil {
		t.Fatal(err)
	}
	s := parseManifest(t, b)
	if !s.Settings.SocketMode || !s.Settings.Interactivity.IsEnabled || s.Settings.Interactivity.RequestURL != "" || s.Settings.Events.RequestURL != "" ||
		len(s.Features.SlashCommands) != 1 || s.Features.SlashCommands[0].URL != "" {
		t.Errorf("Socket Mode manifest has request URLs or is not in socket mode: %+v %+v", s.Features, s.Settings)
	}
	if bytes.Contains(b, []byte("https://drbot")) {
		t.Errorf("Socket Mode manifest names a URL:\n%s", b)
	}

	for _, o := range []ManifestOptions{
		{URL: "http://bot.example.org"}, {URL: "bot.example.org"}, {URL: "https://bot.example.org/?x=1"},
		{SocketMode: true, URL: "https://bot.example.org"},
	} {
		if _, err := Manifest(o); err == nil {
			t.Errorf("Manifest(%+v) = no error", o)
		}
	}
}

// TestManifestFilesAreGenerated: deploy/slack holds exactly what
// `drbot slack manifest` prints, for both modes.
func TestManifestFilesAreGenerated(t *testing.T) {
	for file, o := range map[string]ManifestOptions{
		"manifest.yaml":             {},
		"manifest-socket-mode.yaml": {SocketMode: true},
	} {
		want, err := Manifest(o)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("..", "..", "deploy", "slack", file)
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from Manifest(%+v): regenerate it with `drbot slack manifest%s > %s`", path, o, map[bool]string{true: " --socket-mode"}[o.SocketMode], path)
		}
	}
}
