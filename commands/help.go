package commands

import (
	"context"
	"fmt"
	"strings"

	"github.com/drbot-dev/drbot/bot/chat"
)

// needsApproval marks commands that run only after approval in /dr help.
const needsApproval = "(needs approval)"

// maxTextBlock keeps each help paragraph well under chat platforms' block limits
// (Slack: 3000 characters per text section).
const maxTextBlock = 2800

func helpCommand(r *Registry) Command {
	return Command{
		Name:    "help",
		Summary: "List the commands, or show how to use one",
		Description: "Without a command, lists every /dr command. With one, shows its usage, " +
			"arguments, flags, whether it needs approval, and examples.",
		Args: []Arg{{Name: "command", Help: "The command to explain.", Optional: true}},
		Examples: []string{
			"/dr help",
			"/dr help restore-db",
		},
		Run: func(_ context.Context, c *Call) (chat.Message, error) {
			name, ok := c.Args["command"]
			if !ok {
				return r.helpList(), nil
			}
			cmd := r.Lookup(strings.ToLower(name))
			if cmd == nil {
				return chat.Message{}, r.unknownCommand(name)
			}
			return r.helpFor(cmd), nil
		},
	}
}

// helpList is /dr help: every command with its summary, sorted by name.
func (r *Registry) helpList() chat.Message {
	cmds := r.Commands()
	lines := make([]string, 0, len(cmds))
	names := make([]string, 0, len(cmds))
	approval := false
	for _, c := range cmds {
		line := "/dr " + c.Name + " — " + c.Summary
		if c.Approval {
			line += " " + needsApproval
			approval = true
		}
		lines = append(lines, line)
		names = append(names, c.Name)
	}
	blocks := []chat.Block{chat.Header{Text: "drbot commands"}}
	for _, t := range chunkLines(lines, maxTextBlock) {
		blocks = append(blocks, chat.Text{Text: t})
	}
	note := "Run /dr help <command> for its usage, flags and examples."
	if approval {
		note += " Commands marked " + needsApproval + " run only after another person approves the plan."
	}
	blocks = append(blocks, chat.Context{Text: note})
	return chat.Message{
		Text:      "drbot commands: " + strings.Join(names, ", "),
		Blocks:    blocks,
		Ephemeral: true,
	}
}

// helpFor is /dr help <command>.
func (r *Registry) helpFor(c *Command) chat.Message {
	usage := c.Usage()
	blocks := []chat.Block{chat.Header{Text: "/dr " + c.Name}}
	about := c.Summary
	if c.Description != "" {
		about += "\n\n" + c.Description
	}
	for _, t := range chunkLines(strings.Split(about, "\n"), maxTextBlock) {
		blocks = append(blocks, chat.Text{Text: t})
	}
	blocks = append(blocks, chat.Text{Text: "Usage: " + usage})

	var args []chat.Field
	svcField := chat.Field{Label: "<service>", Value: "The service to act on; " + configured(r.services()) + ". Implied inside an incident channel."}
	if c.ServiceLast {
		svcField.Value += " May also come first."
	}
	if c.Service == ServiceImplied && !c.ServiceLast {
		args = append(args, svcField)
	}
	for _, a := range c.Args {
		label := "<" + a.Name + ">"
		if a.Variadic {
			label += "..."
		}
		var notes []string
		if a.Optional {
			notes = append(notes, "optional")
		}
		if a.Variadic {
			notes = append(notes, "takes all remaining words")
		}
		args = append(args, chat.Field{Label: label, Value: withNotes(a.Help, notes)})
	}
	if c.Service == ServiceImplied && c.ServiceLast {
		args = append(args, svcField)
	}
	if len(args) > 0 {
		blocks = append(blocks, chat.Text{Text: "Arguments"}, chat.Fields{Fields: args})
	}

	var flags []chat.Field
	for i := range c.Flags {
		f := &c.Flags[i]
		label := "--" + f.Name
		if !f.Bool {
			label += " " + f.Placeholder()
		}
		var notes []string
		if f.Default != "" {
			notes = append(notes, "default: "+f.Default)
		}
		flags = append(flags, chat.Field{Label: label, Value: withNotes(f.Help, notes)})
	}
	if len(flags) > 0 {
		blocks = append(blocks, chat.Text{Text: "Flags"}, chat.Fields{Fields: flags})
	}

	if c.Approval && c.ApprovalNote != "" {
		blocks = append(blocks, chat.Text{Text: c.ApprovalNote})
	} else if c.Approval {
		blocks = append(blocks, chat.Text{Text: "Needs approval: the bot posts the plan and runs it only after another person approves that exact plan."})
	} else {
		blocks = append(blocks, chat.Text{Text: "No approval needed: runs at once."})
	}
	if len(c.Examples) > 0 {
		blocks = append(blocks, chat.Text{Text: "Examples\n" + strings.Join(c.Examples, "\n")})
	}
	blocks = append(blocks, chat.Context{Text: "Run /dr help for every command."})
	return chat.Message{
		Text:      fmt.Sprintf("/dr %s — %s. Usage: %s", c.Name, c.Summary, usage),
		Blocks:    blocks,
		Ephemeral: true,
	}
}

func withNotes(help string, notes []string) string {
	if len(notes) == 0 {
		return help
	}
	n := "(" + strings.Join(notes, "; ") + ")"
	if help == "" {
		return n
	}
	return help + " " + n
}

// chunkLines joins lines with newlines into texts of at most limit bytes each
// (a single longer line stays whole).
func chunkLines(lines []string, limit int) []string {
	var out []string
	var b strings.Builder
	for _, l := range lines {
		if b.Len() > 0 && b.Len()+1+len(l) > limit {
			out = append(out, b.String())
			b.Reset()
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(l)
	}
	if b.Len() > 0 {
		out = append(out, b.String())
	}
	return out
}
