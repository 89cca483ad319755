package commands

import (
	"context"
	"fmt"
	"strings"

	"github.com/drbot-dev/drbot/bot/chat"
	"github.com/drbot-dev/drbot/runbook"
)

// scenariosCommand is /dr scenarios: the service's disaster-scenario table
// (runbook 000 "Disaster Scenarios", 001 "Quick Reference"), read-only and
// open to everyone. Registered when Deps.Runbook is set.
func scenariosCommand(r *Registry) Command {
	return Command{
		Name:    "scenarios",
		Summary: "List a service's disaster scenarios and the command each one calls for",
		Description: "Read-only: the runbook's scenario table in order — name, severity, the words that must all be in the " +
			"PagerDuty title (the first scenario that matches is the incident's), estimated recovery time, the command " +
			"to run, and whether it opens a security incident.",
		Service:  ServiceImplied,
		Examples: []string{"/dr scenarios", "/dr scenarios lstm-pfd"},
		Run: func(_ context.Context, c *Call) (chat.Message, error) {
			var svc *runbook.Service
			ok := false
			if cfg := r.deps.Runbook(); cfg != nil {
				svc, ok = cfg.Service(c.Service)
			}
			if !ok {
				return chat.Message{}, Refusef("%s is not in the runbook", c.Service)
			}
			return ScenariosMessage(svc), nil
		},
	}
}

// ScenariosMessage renders a service's scenario table, one row per scenario
// in the runbook's order.
func ScenariosMessage(svc *runbook.Service) chat.Message {
	head := "Disaster scenarios of " + svc.Name
	if len(svc.Scenarios) == 0 {
		text := svc.Name + " has no scenarios in the runbook: add a scenarios: list to the service to have incidents matched to one."
		return chat.Message{Text: text, Blocks: []chat.Block{chat.Header{Text: head}, chat.Text{Text: text}}}
	}
	blocks := []chat.Block{chat.Header{Text: head}}
	var names []string
	for i, s := range svc.Scenarios {
		var b strings.Builder
		fmt.Fprintf(&b, "%d. *%s*", i+1, s.Name)
		if s.Severity != "" {
			fmt.Fprintf(&b, " — %s", s.Severity)
		}
		if s.Estimate.Duration > 0 {
			fmt.Fprintf(&b, " — estimate %s", s.Estimate)
		}
		fmt.Fprintf(&b, "\nmatch: %s", strings.Join(s.Match, ", "))
		if cmd := s.Command(); cmd != "" {
			fmt.Fprintf(&b, " · run `%s`", cmd)
		} else {
			b.WriteString(" · no playbook")
		}
		if s.Security {
			b.WriteString(" · 🔒 opens a security incident")
		}
		blocks = append(blocks, chat.Text{Text: b.String()})
		names = append(names, s.Name)
	}
	blocks = append(blocks, chat.Context{Text: "An incident is the first scenario whose every match word is in its PagerDuty title (case-insensitive)."})
	return chat.Message{Text: head + ": " + strings.Join(names, "; "), Blocks: blocks}
}
