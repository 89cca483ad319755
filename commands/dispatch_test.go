package commands

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/drbot-dev/drbot/bot/chat"
)

func dispatch(r *Registry, channel, text string) (chat.Message, error) {
	return r.Dispatch(context.Background(), chat.Command{User: chat.User{ID: "U1", Name: "ana"}, Channel: channel, Text: text})
}

func TestDispatchBinds(t *testing.T) {
	r := newFixtureRegistry()
	cases := []struct{ channel, text, want string }{
		// the service named outside incident channels
		{chanOps, "status inflow", "status service=inflow"},
		{chanOps, "status LSTM-PFD", "status service=lstm-pfd"},
		{chanOps, "STATUS inflow --verbose", `status service=inflow --verbose!="true"`},
		{"", "status inflow", "status service=inflow"},
		// implied inside an incident channel, or named and equal
		{chanInflow, "status", "status service=inflow"},
		{chanInflow, "status inflow", "status service=inflow"},
		{chanLSTM, "scale api 3", `scale service=lstm-pfd deployment="api" replicas="3" --wait!="true"`},
		{chanLSTM, "scale lstm-pfd api 3", `scale service=lstm-pfd deployment="api" replicas="3" --wait!="true"`},
		// flags: defaults, =value, separate value, quoting, bool=false
		{chanOps, "restore-db inflow", `restore-db service=inflow --db="main"`},
		{chanOps, `restore-db inflow --reason "db corrupted at 14:02" --dry-run`,
			`restore-db service=inflow --db="main" --dry-run!="true" --reason!="db corrupted at 14:02"`},
		{chanOps, `restore-db inflow --db=orders --backup=daily/x.dump --dry-run=false`,
			`restore-db service=inflow --backup!="daily/x.dump" --db!="orders" --dry-run="false"`},
		{chanOps, "restore-db inflow —dry-run –reason “slack ate my quotes”",
			`restore-db service=inflow --db="main" --dry-run!="true" --reason!="slack ate my quotes"`},
		{chanOps, "restore-db --dry-run inflow", `restore-db service=inflow --db="main" --dry-run!="true"`},
		{chanOps, "scale inflow api 0 --wait=no", `scale service=inflow deployment="api" replicas="0" --wait="false"`},
		{chanOps, "scale inflow api -1", `scale service=inflow deployment="api" replicas="-1" --wait!="true"`},
		{chanOps, "restore-db inflow --reason=--weird", `restore-db service=inflow --db="main" --reason!="--weird"`},
		// optional and variadic args; -- ends flags
		{chanOps, "failover inflow", "failover service=inflow"},
		{chanOps, "failover inflow replica-2", `failover service=inflow replica="replica-2"`},
		{chanOps, "note restored from the 14:00 backup", `note text="restored from the 14:00 backup" rest=["restored" "from" "the" "14:00" "backup"]`},
		{chanOps, "note -- --not-a-flag x", `note text="--not-a-flag x" rest=["--not-a-flag" "x"]`},
		{chanOps, "who", "who"},
		{chanOps, "who dba", `who team="dba"`},
		{chanOps, "who dba a b", `who team="dba" more="a b" rest=["a" "b"]`},
	}
	for _, tc := range cases {
		m, err := dispatch(r, tc.channel, tc.text)
		if err != nil {
			t.Errorf("[%s] %q: %v", tc.channel, tc.text, err)
			continue
		}
		got := m.Text
		if rest, ok := strings.CutPrefix(got, "Dry run of /dr "); ok { // an Approval command's dry run shows its plan
			_, got, _ = strings.Cut(rest, ": ")
		}
		if got != tc.want {
			t.Errorf("[%s] %q bound\n  %s\nwant\n  %s", tc.channel, tc.text, got, tc.want)
		}
	}
}

func TestDispatchRefusals(t *testing.T) {
	r := newFixtureRegistry()
	cases := []struct{ channel, text, want string }{
		{chanOps, "restor-db inflow", `unknown command "restor-db" — did you mean restore-db? Try /dr help.`},
		{chanOps, "statsu", `unknown command "statsu" — did you mean status? Try /dr help.`},
		{chanOps, "fail", `unknown command "fail" — did you mean failover? Try /dr help.`},
		{chanOps, "deploy-everything", `unknown command "deploy-everything" — try /dr help.`},
		{chanOps, "help nosuch", `unknown command "nosuch" — try /dr help.`},
		{chanOps, "help scael", `unknown command "scael" — did you mean scale? Try /dr help.`},
		{chanOps, "status lstm", `unknown service "lstm" — configured services: inflow, lstm-pfd`},
		{chanOps, "status", `missing <service> — usage: /dr status <service> [--verbose]; configured services: inflow, lstm-pfd`},
		{chanOps, "scale inflow api", `missing <replicas> — usage: /dr scale <service> <deployment> <replicas> [--wait]`},
		{chanInflow, "scale", `missing <deployment> — usage: /dr scale <service> <deployment> <replicas> [--wait]`},
		{chanOps, "note", `missing <text> — usage: /dr note <text>...`},
		{chanInflow, "status lstm-pfd", `this channel is inflow's incident channel — to act on lstm-pfd, run the command outside incident channels or in lstm-pfd's incident channel`},
		{chanOps, "restore-db inflow --dryrun", `unknown flag "--dryrun" — did you mean --dry-run?`},
		{chanOps, "restore-db inflow -dry-run", `unknown flag "-dry-run" — did you mean --dry-run?`},
		{chanOps, "restore-db inflow --force", `unknown flag "--force" — restore-db takes --db, --backup, --dry-run, --reason`},
		{chanOps, "status inflow -v", `unknown flag "-v" — status takes --verbose`},
		{chanOps, "who --x", `unknown flag "--x" — who takes no flags`},
		{chanOps, "restore-db inflow --reason", `--reason needs a value: --reason TEXT`},
		{chanOps, "restore-db inflow --reason --dry-run", `--reason needs a value: --reason TEXT`},
		{chanOps, "restore-db inflow --backup=", `--backup needs a value: --backup KEY`},
		{chanOps, "restore-db inflow --db a --db b", `--db given twice`},
		{chanOps, "restore-db inflow --dry-run=maybe", `--dry-run is on or off: use --dry-run alone, or --dry-run=true / --dry-run=false (got "maybe")`},
		{chanOps, "status inflow extra", `too many arguments: "extra" — usage: /dr status <service> [--verbose]`},
		{chanOps, "help status scale", `too many arguments: "scale" — usage: /dr help [<command>]`},
		{chanOps, `restore-db inflow --reason "db corrupted`, `unterminated quote: the " at character 28 is never closed`},
		{chanOps, "note " + strings.Repeat("x", MaxInputBytes), `command is too long (4101 bytes; the limit is 4096)`},
		{chanOps, "status " + strings.Repeat("z", 100), `unknown service "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz…" — configured services: inflow, lstm-pfd`},
	}
	for _, tc := range cases {
		_, err := dispatch(r, tc.channel, tc.text)
		ref, ok := AsRefusal(err)
		if !ok {
			t.Errorf("[%s] %.40q: got %v, want a refusal", tc.channel, tc.text, err)
			continue
		}
		if ref.Msg != tc.want {
			t.Errorf("[%s] %.40q refused\n  %s\nwant\n  %s", tc.channel, tc.text, ref.Msg, tc.want)
		}
	}
}

func TestDispatchNoServices(t *testing.T) {
	r := NewRegistry(Deps{}) // no services, no incident lookup
	r.MustRegister(Command{Name: "status", Summary: "s", Service: ServiceImplied, Run: echo})
	_, err := dispatch(r, chanInflow, "status inflow")
	if ref, ok := AsRefusal(err); !ok || ref.Msg != `unknown service "inflow" — no services are configured` {
		t.Errorf("got %v", err)
	}
}

func TestDispatchInternalFailures(t *testing.T) {
	r := newFixtureRegistry()
	// The incident lookup failing is not the user's fault: an internal error.
	_, err := dispatch(r, chanBroken, "status inflow")
	if _, ok := AsRefusal(err); ok || !errors.Is(err, errStoreDown) {
		t.Errorf("lookup failure: got %v, want a wrapped internal error", err)
	}

	boom := errors.New("pg_restore exited 1")
	r.MustRegister(Command{Name: "fails", Summary: "s", Run: func(context.Context, *Call) (chat.Message, error) {
		return chat.Message{}, fmt.Errorf("restore main: %w", boom)
	}})
	r.MustRegister(Command{Name: "refuses", Summary: "s", Run: func(context.Context, *Call) (chat.Message, error) {
		return chat.Message{}, fmt.Errorf("check: %w", Refusef("no backup newer than %s", "14:00"))
	}})
	r.MustRegister(Command{Name: "panics", Summary: "s", Run: func(context.Context, *Call) (chat.Message, error) {
		var m map[string]int
		m["x"]++ //nolint:staticcheck // a real runtime panic
		return chat.Message{}, nil
	}})

	_, err = dispatch(r, chanOps, "fails")
	if _, ok := AsRefusal(err); ok || !errors.Is(err, boom) || err.Error() != "/dr fails: restore main: pg_restore exited 1" {
		t.Errorf("fails: got %v", err)
	}
	_, err = dispatch(r, chanOps, "refuses")
	if ref, ok := AsRefusal(err); !ok || ref.Msg != "no backup newer than 14:00" {
		t.Errorf("refuses: got %v", err)
	}
	_, err = dispatch(r, chanOps, "panics")
	if _, ok := AsRefusal(err); ok || err == nil || !strings.HasPrefix(err.Error(), "/dr panics: panic: assignment to entry in nil map") {
		t.Errorf("panics: got %v", err)
	}
}

func TestDispatchPassesContextAndUser(t *testing.T) {
	type key struct{}
	r := NewRegistry(fixtureDeps())
	var got *Call
	var gotVal any
	r.MustRegister(Command{Name: "whoami", Summary: "s", Service: ServiceImplied, Run: func(ctx context.Context, c *Call) (chat.Message, error) {
		got, gotVal = c, ctx.Value(key{})
		return chat.Plain("ok"), nil
	}})
	ctx := context.WithValue(context.Background(), key{}, "v")
	if _, err := r.Dispatch(ctx, chat.Command{User: chat.User{ID: "U9", Name: "bo"}, Channel: chanInflow, Text: "whoami"}); err != nil {
		t.Fatal(err)
	}
	if gotVal != "v" || got.User.ID != "U9" || got.Channel != chanInflow || got.Service != "inflow" || got.Command.Name != "whoami" || got.Registry != r {
		t.Errorf("call = %+v, ctx value %v", got, gotVal)
	}
	// A cancelled context reaches Deps.ServiceForChannel: an internal error, not a refusal.
	cctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := r.Dispatch(cctx, chat.Command{Channel: chanInflow, Text: "whoami"})
	if _, ok := AsRefusal(err); ok || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: got %v", err)
	}
}

func TestRefusalHelpers(t *testing.T) {
	err := Refusef("missing <%s>", "db")
	if err.Error() != "missing <db>" {
		t.Errorf("Error() = %q", err.Error())
	}
	wrapped := fmt.Errorf("a: %w", fmt.Errorf("b: %w", err))
	ref, ok := AsRefusal(wrapped)
	if !ok || ref.Msg != "missing <db>" {
		t.Errorf("AsRefusal(wrapped) = %v, %v", ref, ok)
	}
	if _, ok := AsRefusal(errors.New("x")); ok {
		t.Error("plain error taken for a refusal")
	}
	if _, ok := AsRefusal(nil); ok {
		t.Error("nil taken for a refusal")
	}
}
