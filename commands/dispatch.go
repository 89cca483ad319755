package commands

import (
	"context"
	"fmt"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/drbot-dev/drbot/bot/chat"
)

// Dispatch runs the command in cmd.Text ("restore-db lstm-pfd --dry-run"):
// it tokenizes the text (see Parse), finds the command, binds its arguments and
// flags, resolves the service and calls the command's Run — or, for an
// Approval command, plans it and submits the plan for approval (--dry-run:
// shows it), so no approval-gated command can act without approval.
//
// Empty text answers with /dr help, and --help anywhere before "--" with the
// command's help. Every mistake in the text is returned as a *Refusal with a
// short message for the user. Any other error is an internal failure from the
// command (or from Deps.ServiceForChannel), wrapped with the command's name; a
// panic in Run is turned into such an error.
func (r *Registry) Dispatch(ctx context.Context, cmd chat.Command) (msg chat.Message, err error) {
	words, err := Parse(cmd.Text)
	if err != nil {
		return chat.Message{}, err
	}
	if len(words) == 0 {
		return r.helpList(), nil
	}
	name := strings.ToLower(normalizeDash(words[0]))
	if name == "--help" || name == "-h" {
		return r.helpList(), nil
	}
	c := r.Lookup(name)
	if c == nil {
		return chat.Message{}, r.unknownCommand(words[0])
	}
	call, wantHelp, err := r.bind(ctx, c, cmd, words[1:])
	if err != nil {
		return chat.Message{}, err
	}
	if wantHelp {
		return r.helpFor(c), nil
	}
	if c.Gate != GateNone && r.deps.Access != nil {
		if err := r.deps.Access.Allow(ctx, c.Gate, cmd.User, cmd.Channel, c.Name); err != nil {
			if _, ok := AsRefusal(err); ok {
				return chat.Message{}, err
			}
			return chat.Message{}, fmt.Errorf("/dr %s: %w", c.Name, err)
		}
	}
	defer func() {
		if p := recover(); p != nil {
			msg, err = chat.Message{}, fmt.Errorf("/dr %s: panic: %v\n%s", c.Name, p, debug.Stack())
		}
	}()
	if c.Approval {
		msg, err = r.request(ctx, c, call)
	} else {
		msg, err = c.Run(ctx, call)
	}
	if err != nil {
		if _, ok := AsRefusal(err); ok {
			return chat.Message{}, err
		}
		return chat.Message{}, fmt.Errorf("/dr %s: %w", c.Name, err)
	}
	return msg, nil
}

func (r *Registry) unknownCommand(word string) error {
	if s := closest(strings.ToLower(word), r.names()); s != "" {
		return Refusef("unknown command %s — did you mean %s? Try /dr help.", quoteUser(word), s)
	}
	return Refusef("unknown command %s — try /dr help.", quoteUser(word))
}

// bind turns the words after the command name into a Call. wantHelp is true
// when the user asked for the command's help with --help.
func (r *Registry) bind(ctx context.Context, c *Command, cmd chat.Command, words []string) (call *Call, wantHelp bool, err error) {
	call = &Call{
		User:     cmd.User,
		Channel:  cmd.Channel,
		Args:     make(map[string]string),
		Flags:    make(map[string]string),
		given:    make(map[string]bool),
		Command:  c,
		Registry: r,
	}
	var pos []string
	flagsDone := false
	for i := 0; i < len(words); i++ {
		w := words[i]
		if flagsDone {
			pos = append(pos, w)
			continue
		}
		w = normalizeDash(w)
		switch {
		case w == "--":
			flagsDone = true
			continue
		case strings.HasPrefix(w, "--"):
			name, value, hasValue := strings.Cut(w[2:], "=")
			name = strings.ToLower(name)
			if name == "help" {
				return nil, true, nil
			}
			f := c.flag(name)
			if f == nil {
				return nil, false, unknownFlag(c, words[i], name)
			}
			if call.given[name] {
				return nil, false, Refusef("--%s given twice", name)
			}
			if f.Bool {
				v := true
				if hasValue {
					b, ok := parseBool(value)
					if !ok {
						return nil, false, Refusef("--%s is on or off: use --%s alone, or --%s=true / --%s=false (got %s)", name, name, name, name, quoteUser(value))
					}
					v = b
				}
				call.Flags[name] = strconv.FormatBool(v)
				call.given[name] = true
				continue
			}
			if !hasValue {
				if i+1 >= len(words) || isFlag(normalizeDash(words[i+1])) {
					return nil, false, Refusef("--%s needs a value: --%s %s", name, name, f.Placeholder())
				}
				i++
				value = words[i]
			} else if value == "" {
				return nil, false, Refusef("--%s needs a value: --%s %s", name, name, f.Placeholder())
			}
			call.Flags[name] = value
			call.given[name] = true
			continue
		case isSingleDashFlag(w):
			name, _, _ := strings.Cut(w[1:], "=")
			return nil, false, unknownFlag(c, words[i], strings.ToLower(name))
		}
		pos = append(pos, w)
	}

	if c.Service == ServiceImplied {
		// The service comes after the command's first ServiceAfter
		// arguments (/dr drill <procedure> <service>).
		k := min(c.ServiceAfter, len(pos))
		svc, rest, err := r.resolveService(ctx, c, cmd.Channel, pos[k:])
		if err != nil {
			return nil, false, err
		}
		call.Service, pos = svc, slices.Concat(pos[:k], rest)
	}

	for i, a := range c.Args {
		if a.Variadic {
			if len(pos) > i {
				call.Rest = append([]string(nil), pos[i:]...)
				call.Args[a.Name] = strings.Join(call.Rest, " ")
			} else if !a.Optional {
				return nil, false, Refusef("missing <%s> — usage: %s", a.Name, c.Usage())
			}
			pos = nil
			break
		}
		if len(pos) <= i {
			if !a.Optional {
				return nil, false, Refusef("missing <%s> — usage: %s", a.Name, c.Usage())
			}
			continue
		}
		call.Args[a.Name] = pos[i]
	}
	if n := len(c.Args); len(pos) > n && (n == 0 || !c.Args[n-1].Variadic) {
		return nil, false, Refusef("too many arguments: %s — usage: %s", quoteUser(pos[n]), c.Usage())
	}

	for i := range c.Flags {
		f := &c.Flags[i]
		if call.given[f.Name] || f.Default == "" {
			continue
		}
		if f.Bool {
			b, _ := parseBool(f.Default)
			call.Flags[f.Name] = strconv.FormatBool(b)
		} else {
			call.Flags[f.Name] = f.Default
		}
	}
	return call, false, nil
}

// resolveService finds the service a ServiceImplied command acts on and
// returns the positional words that remain for the command's own arguments.
func (r *Registry) resolveService(ctx context.Context, c *Command, channel string, pos []string) (string, []string, error) {
	services := r.services()
	named := ""
	if len(pos) > 0 {
		named = canonicalService(pos[0], services)
	}
	if channel != "" && r.deps.ServiceForChannel != nil {
		svc, ok, err := r.deps.ServiceForChannel(ctx, channel)
		if err != nil {
			return "", nil, fmt.Errorf("/dr %s: find the incident of channel %s: %w", c.Name, channel, err)
		}
		if ok {
			if named == "" {
				return svc, pos, nil
			}
			if named != svc {
				return "", nil, Refusef("this channel is %s's incident channel — to act on %s, run the command outside incident channels or in %s's incident channel", svc, named, named)
			}
			return svc, pos[1:], nil
		}
	}
	if len(pos) == 0 {
		return "", nil, Refusef("missing <service> — usage: %s; %s", c.Usage(), configured(services))
	}
	if named == "" {
		return "", nil, Refusef("unknown service %s — %s", quoteUser(pos[0]), configured(services))
	}
	return named, pos[1:], nil
}

// canonicalService returns the configured service word names (case-insensitive), or "".
func canonicalService(word string, services []string) string {
	for _, s := range services {
		if strings.EqualFold(s, word) {
			return s
		}
	}
	return ""
}

func configured(services []string) string {
	if len(services) == 0 {
		return "no services are configured"
	}
	return "configured services: " + strings.Join(services, ", ")
}

func unknownFlag(c *Command, word, name string) error {
	names := make([]string, len(c.Flags))
	for i, f := range c.Flags {
		names[i] = f.Name
	}
	if c.flag(name) != nil {
		return Refusef("unknown flag %s — did you mean --%s?", quoteUser(word), name)
	}
	if s := closest(name, names); s != "" {
		return Refusef("unknown flag %s — did you mean --%s?", quoteUser(word), s)
	}
	if len(names) == 0 {
		return Refusef("unknown flag %s — %s takes no flags", quoteUser(word), c.Name)
	}
	return Refusef("unknown flag %s — %s takes --%s", quoteUser(word), c.Name, strings.Join(names, ", --"))
}

// normalizeDash undoes the typographic dashes chat clients make of "--":
// "—dry-run" and "–dry-run" become "--dry-run", and a lone "—" becomes "--".
func normalizeDash(w string) string {
	for _, d := range []string{"—", "–"} {
		rest, ok := strings.CutPrefix(w, d)
		if !ok {
			continue
		}
		if rest == "" || isASCIILetter(rest[0]) {
			return "--" + rest
		}
	}
	return w
}

func isFlag(w string) bool { return len(w) > 2 && strings.HasPrefix(w, "--") }

// isSingleDashFlag reports a word like -n or -dry-run: a flag typed with one
// dash (negative numbers are not flags).
func isSingleDashFlag(w string) bool {
	return len(w) >= 2 && w[0] == '-' && isASCIILetter(w[1])
}

func isASCIILetter(b byte) bool { return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' }

func parseBool(s string) (value, ok bool) {
	switch strings.ToLower(s) {
	case "true", "yes", "on", "1":
		return true, true
	case "false", "no", "off", "0":
		return false, true
	}
	return false, false
}

// maxQuoted is how many characters of user input a refusal repeats.
const maxQuoted = 40

// quoteUser quotes a word the user typed for a message, shortened if long.
func quoteUser(s string) string {
	if utf8.RuneCountInString(s) > maxQuoted {
		s = string([]rune(s)[:maxQuoted]) + "…"
	}
	return strconv.Quote(s)
}
