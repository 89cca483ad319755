package actions

import (
	"context"
	"strings"

	"github.com/drbot-dev/drbot/runbook"
)

// Command declares the /dr command that requests a procedure: what users
// type, what /dr help says, and whether it needs approval. The commands
// registry generates parsing and help from it; every such command acts on one
// service (named, or implied inside an incident channel) and only the
// requesters (slack.requesters) may run it.
type Command struct {
	Name        string // lowercase-hyphen word, e.g. restore-db; the action's Kind
	Summary     string // one line, shown in /dr help
	Description string // shown in /dr help <name>
	Args        []Arg  // positional, in order (not counting the service)
	// Flags are the command's own flags. An Approval command also gets
	// --dry-run and --reason, added by the registry.
	Flags []Flag
	// Examples are full command lines starting with "/dr <name>".
	Examples []string
	// Approval marks a change-making command: dispatch plans it (Action.Plan)
	// and submits the plan for approval; it never runs without one. Without
	// Approval the procedure is read-only (a Reader) and runs at once.
	Approval bool
	// ApprovalNote, when set, replaces /dr help's "Needs approval" sentence
	// for an Approval command whose policy differs (a drill needs no second
	// person unless drills.approval is set).
	ApprovalNote string
	// ServiceLast lets the service also be given after the command's own
	// arguments (/dr playbook <name> <service>, /dr drill <procedure>
	// <service>), for commands whose first
	// argument reads best first. A first word naming a service still works.
	ServiceLast bool
}

// Arg is a positional argument.
type Arg struct {
	Name     string // lowercase-hyphen word, shown as <name>
	Help     string
	Optional bool
	// Variadic collects every remaining positional word; only the last argument
	// may be variadic.
	Variadic bool
}

// Of returns the argument's value in p (trimmed), "" when not given.
func (a Arg) Of(p Params) string { return strings.TrimSpace(p.Args[a.Name]) }

// Flag is a --name option.
type Flag struct {
	Name    string // lowercase-hyphen word, without the dashes
	Help    string
	Default string // for Bool flags "", "false" or "true"
	Bool    bool   // --name alone means true; --name=false is accepted
	Value   string // placeholder shown in usage, e.g. KEY; defaults to the name in upper case
}

// Placeholder is the word shown for a value flag's value in usage lines.
func (f Flag) Placeholder() string {
	if f.Value != "" {
		return f.Value
	}
	return strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
}

// String returns a value flag's value in p, "" when not given.
func (f Flag) String(p Params) string { return p.Flags[f.Name] }

// On reports whether a bool flag is on in p.
func (f Flag) On(p Params) bool { return p.Flags[f.Name] == "true" }

// Procedure is anything that declares a /dr command: an Action (Approval
// commands) or a Reader (read-only commands). The binary registers its
// procedures in one explicit list.
type Procedure interface {
	Command() Command
}

// Reader is a read-only procedure: its command runs at once, without
// approval, and returns a domain result (a Report, []BackupListing) that the
// commands package renders for chat.
type Reader interface {
	Procedure
	Read(ctx context.Context, p Params) (any, error)
}

// ServiceIn returns the service p acts on: the one the command parser
// resolved, or for parameters read back from a stored request, the one of
// cfg named p.Service (a refusal when the runbook no longer has it).
func (p Params) ServiceIn(cfg *runbook.Config) (*runbook.Service, error) {
	if p.Resolved != nil {
		return p.Resolved, nil
	}
	if cfg != nil {
		if svc, ok := cfg.Service(p.Service); ok {
			return svc, nil
		}
	}
	return nil, Refusef("unknown service %q", p.Service)
}

// Unavailable is the procedure of cmd when its action could not be built
// (missing settings): its command stays in /dr help and refuses, saying why
// nothing happened, instead of the bot not starting.
func Unavailable(cmd Command) Procedure { return unavailable{cmd} }

type unavailable struct{ cmd Command }

func (u unavailable) Command() Command { return u.cmd }
func (u unavailable) Kind() string     { return u.cmd.Name }
func (u unavailable) refuse() error {
	return Refusef("/dr %s is not available: this drbot has no %s action configured, so nothing was planned or changed.", u.cmd.Name, u.cmd.Name)
}
func (u unavailable) Plan(context.Context, Params) (Plan, error)   { return Plan{}, u.refuse() }
func (u unavailable) Execute(context.Context, Plan, Journal) error { return u.refuse() }
func (u unavailable) Verify(context.Context, Plan) (Report, error) { return Report{}, u.refuse() }
func (u unavailable) Read(context.Context, Params) (any, error)    { return nil, u.refuse() }

// RegistryOf returns the Actions among procs by kind (what the runner
// executes); unavailable ones are left out.
func RegistryOf(procs []Procedure) Registry {
	r := Registry{}
	for _, p := range procs {
		if _, ok := p.(unavailable); ok {
			continue
		}
		if a, ok := p.(Action); ok {
			r.Register(a)
		}
	}
	return r
}
