// Package commands is drbot's /dr command registry, the single source of truth
// for what users can type: it parses command text, binds arguments and flags,
// resolves the service a command acts on, runs the command and generates
// /dr help from the registered definitions.
//
// Commands answer with the platform-neutral chat.Message. A mistake by the user
// is a *Refusal (shown verbatim); any other error is an internal failure.
package commands

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/bot/chat"
	"github.com/drbot-dev/drbot/runbook"
)

// ServiceMode says how a command finds the service it acts on.
type ServiceMode int

const (
	// ServiceNone means the command is not about one service.
	ServiceNone ServiceMode = iota
	// ServiceImplied means: inside an incident channel the service is the incident's
	// (a first positional word that names a configured service is taken as the
	// service and must be that one); elsewhere the first positional argument
	// must name a configured service. Names match case-insensitively.
	ServiceImplied
)

// Arg is a positional argument (declared by actions for their commands).
type Arg = actions.Arg

// Flag is a --name option (declared by actions for their commands).
type Flag = actions.Flag

// Command is one /dr command.
type Command struct {
	Name        string // lowercase-hyphen word, e.g. restore-db
	Summary     string // one line, shown in /dr help
	Description string // shown in /dr help <name>
	Args        []Arg  // positional, in order (not counting the service)
	Flags       []Flag
	// Approval marks a destructive command: it runs only after approval.
	// Dispatch enforces it: an Approval command has no Run but a Plan, and
	// dispatch shows the plan (--dry-run) or submits it through
	// Deps.Requests; nothing else of it runs.
	Approval bool
	// ApprovalNote replaces help's "Needs approval" sentence (see
	// actions.Command.ApprovalNote).
	ApprovalNote string
	// Gate says who may run it (see Gate); an Approval command is always
	// GateRequesters.
	Gate    Gate
	Service ServiceMode
	// ServiceLast (with ServiceImplied) also takes the service as the last
	// positional word when the first does not name one (/dr playbook
	// <name> <service>); usage shows it after the arguments.
	ServiceLast bool
	// Examples are full command lines starting with "/dr <name>".
	Examples []string
	Run      func(ctx context.Context, c *Call) (chat.Message, error)
	// Plan plans an Approval command (read-only); see Approval.
	Plan func(ctx context.Context, c *Call) (actions.Plan, error)
}

// Call is one bound invocation of a command, handed to its Run.
type Call struct {
	User    chat.User
	Channel string
	// Service is the service the command acts on ("" for ServiceNone commands).
	Service string
	// Args holds the given positional arguments by name; an optional argument
	// that was not given is absent. A variadic argument's words are joined with
	// single spaces here and kept one by one in Rest.
	Args map[string]string
	Rest []string
	// Flags holds every flag the user gave (bool flags as "true" or "false")
	// and the defaults of those not given that have one.
	Flags    map[string]string
	given    map[string]bool
	Command  *Command
	Registry *Registry
}

// Has reports whether a flag is on: for a bool flag, whether its value is true
// (given, or by default); for a value flag, whether the user gave it.
func (c *Call) Has(flag string) bool {
	if c.Command != nil {
		if f := c.Command.flag(flag); f != nil && f.Bool {
			return c.Flags[flag] == "true"
		}
	}
	return c.given[flag]
}

// Deps is what the registry needs from the rest of the bot.
type Deps struct {
	// Services returns the configured service names.
	Services func() []string
	// ServiceForChannel returns the service of the incident whose channel this
	// is; ok is false when the channel is not an incident channel.
	ServiceForChannel func(ctx context.Context, channel string) (service string, ok bool, err error)
	// Actions are the recovery procedures, in the binary's one registration
	// list: each declares its command (actions.Command), which the registry
	// registers, with cancel and deny. An Approval command plans through the
	// procedure's actions.Action, a read-only one runs its actions.Reader.
	Actions []actions.Procedure
	// Requests submits approval-gated requests (the bot's request lifecycle).
	Requests Requests
	// Incidents runs the incident commands (ack, resolve, security, timeline,
	// status); they are registered only when it is set.
	Incidents IncidentOps
	// Runbook returns the runbook config: the resolved service handed to
	// actions (actions.Params.Resolved) comes from it.
	Runbook func() *runbook.Config
	// Access decides who may run gated commands (see Gate); nil lets
	// everyone run them.
	Access Access
	// RecordReading records a read-only procedure's report (/dr verify) in
	// the audit log (AuditReadings); nil records nothing (unit tests).
	RecordReading func(ctx context.Context, r Reading) error
	// Drills reads the drill schedule (/dr drills); the command is
	// registered only when it is set.
	Drills DrillStatuses
}

// Registry holds the /dr commands. It is safe for concurrent use.
type Registry struct {
	deps Deps

	mu   sync.RWMutex
	cmds map[string]*Command
}

// NewRegistry returns a registry holding the built-in commands (help).
func NewRegistry(deps Deps) *Registry {
	r := &Registry{deps: deps, cmds: make(map[string]*Command)}
	for _, mk := range []func(*Registry) Command{
		helpCommand,
	} {
		r.MustRegister(mk(r))
	}
	if deps.Runbook != nil {
		r.MustRegister(scenariosCommand(r))
	}
	if deps.Drills != nil {
		r.MustRegister(drillsCommand(r))
	}
	if deps.Incidents != nil {
		for _, mk := range incidentCommands {
			r.MustRegister(mk(deps.Incidents))
		}
	}
	for _, p := range deps.Actions {
		r.MustRegister(procedureCommand(p))
	}
	if len(deps.Actions) > 0 {
		r.MustRegister(cancelCommand())
		r.MustRegister(denyCommand())
	}
	return r
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9]*(-[a-z0-9]+)*$`)

// reservedFlags are handled by the registry itself.
var reservedFlags = map[string]bool{"help": true}

// Register adds a command. It rejects an invalid definition: an empty or
// malformed name (lowercase words joined by hyphens), a name already taken,
// a missing summary or Run, malformed or duplicate argument and flag names,
// a required argument after an optional one, a variadic argument that is not
// last, a bool flag with a non-boolean default, and examples that do not start
// with "/dr <name>" or do not parse.
func (r *Registry) Register(c Command) error {
	if c.Name == "" {
		return fmt.Errorf("register command: empty name")
	}
	if !nameRE.MatchString(c.Name) {
		return fmt.Errorf("register command %q: name must be lowercase words joined by hyphens", c.Name)
	}
	if strings.TrimSpace(c.Summary) == "" {
		return fmt.Errorf("register command %q: empty summary", c.Name)
	}
	if strings.ContainsAny(c.Summary, "\n") {
		return fmt.Errorf("register command %q: summary must be one line", c.Name)
	}
	if c.Approval {
		if c.Plan == nil || c.Run != nil {
			return fmt.Errorf("register command %q: an Approval command has a Plan and no Run (dispatch submits the plan)", c.Name)
		}
	} else if c.Run == nil {
		return fmt.Errorf("register command %q: nil Run", c.Name)
	}
	if c.Service != ServiceNone && c.Service != ServiceImplied {
		return fmt.Errorf("register command %q: unknown service mode %d", c.Name, c.Service)
	}
	if c.Gate < GateNone || c.Gate > GateResponders {
		return fmt.Errorf("register command %q: unknown gate %d", c.Name, c.Gate)
	}
	if c.Approval && c.Gate == GateNone {
		c.Gate = GateRequesters // a change-making command is always a recovery action
	}
	args := make(map[string]bool)
	if c.Service == ServiceImplied {
		args["service"] = true
	}
	optional := ""
	for i, a := range c.Args {
		if !nameRE.MatchString(a.Name) {
			return fmt.Errorf("register command %q: argument %q: name must be lowercase words joined by hyphens", c.Name, a.Name)
		}
		if args[a.Name] {
			return fmt.Errorf("register command %q: duplicate argument %q", c.Name, a.Name)
		}
		args[a.Name] = true
		if a.Optional {
			optional = a.Name
		} else if optional != "" {
			return fmt.Errorf("register command %q: required argument %q after optional argument %q", c.Name, a.Name, optional)
		}
		if a.Variadic && i != len(c.Args)-1 {
			return fmt.Errorf("register command %q: variadic argument %q must be the last", c.Name, a.Name)
		}
	}
	flags := make(map[string]bool)
	for _, f := range c.Flags {
		if !nameRE.MatchString(f.Name) {
			return fmt.Errorf("register command %q: flag %q: name must be lowercase words joined by hyphens", c.Name, f.Name)
		}
		if reservedFlags[f.Name] {
			return fmt.Errorf("register command %q: flag --%s is reserved", c.Name, f.Name)
		}
		if flags[f.Name] {
			return fmt.Errorf("register command %q: duplicate flag --%s", c.Name, f.Name)
		}
		flags[f.Name] = true
		if f.Bool {
			if _, ok := parseBool(f.Default); f.Default != "" && !ok {
				return fmt.Errorf("register command %q: bool flag --%s has default %q (want true or false)", c.Name, f.Name, f.Default)
			}
		}
	}
	for _, ex := range c.Examples {
		words, err := Parse(ex)
		if err != nil {
			return fmt.Errorf("register command %q: example %q: %w", c.Name, ex, err)
		}
		if len(words) < 2 || words[0] != "/dr" || words[1] != c.Name {
			return fmt.Errorf("register command %q: example %q must start with \"/dr %s\"", c.Name, ex, c.Name)
		}
	}

	cp := c
	cp.Args = slices.Clone(c.Args)
	cp.Flags = slices.Clone(c.Flags)
	cp.Examples = slices.Clone(c.Examples)
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.cmds[c.Name]; dup {
		return fmt.Errorf("register command %q: already registered", c.Name)
	}
	r.cmds[c.Name] = &cp
	return nil
}

// MustRegister is Register that panics on an invalid definition; for wiring
// built-in commands, where a bad definition is a programming error.
func (r *Registry) MustRegister(c Command) {
	if err := r.Register(c); err != nil {
		panic(err)
	}
}

// Lookup returns the command called name, or nil.
func (r *Registry) Lookup(name string) *Command {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.cmds[name]
}

// Commands returns every registered command sorted by name. The commands are
// the registry's own: do not modify them.
func (r *Registry) Commands() []*Command {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]*Command, 0, len(r.cmds))
	for _, c := range r.cmds {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b *Command) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func (r *Registry) names() []string {
	cmds := r.Commands()
	names := make([]string, len(cmds))
	for i, c := range cmds {
		names[i] = c.Name
	}
	return names
}

// services returns the configured service names, sorted.
func (r *Registry) services() []string {
	if r.deps.Services == nil {
		return nil
	}
	s := slices.Clone(r.deps.Services())
	slices.Sort(s)
	return slices.Compact(s)
}

func (c *Command) flag(name string) *Flag {
	for i := range c.Flags {
		if c.Flags[i].Name == name {
			return &c.Flags[i]
		}
	}
	return nil
}

// Usage returns the command's usage line, for example
// "/dr restore-db <service> [--db NAME] [--dry-run]".
func (c *Command) Usage() string {
	var b strings.Builder
	b.WriteString("/dr ")
	b.WriteString(c.Name)
	if c.Service == ServiceImplied && !c.ServiceLast {
		b.WriteString(" <service>")
	}
	for _, a := range c.Args {
		w := "<" + a.Name + ">"
		if a.Variadic {
			w += "..."
		}
		if a.Optional {
			w = "[" + w + "]"
		}
		b.WriteString(" " + w)
	}
	if c.Service == ServiceImplied && c.ServiceLast {
		b.WriteString(" <service>")
	}
	for i := range c.Flags {
		f := &c.Flags[i]
		if f.Bool {
			fmt.Fprintf(&b, " [--%s]", f.Name)
		} else {
			fmt.Fprintf(&b, " [--%s %s]", f.Name, f.Placeholder())
		}
	}
	return b.String()
}
