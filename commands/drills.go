package commands

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/drbot-dev/drbot/actions/drill"
	"github.com/drbot-dev/drbot/bot/chat"
)

// DrillStatuses returns the drill schedule of service ("" = every service)
// as of now (issue 11, point 2); the binary reads it from the store.
type DrillStatuses func(ctx context.Context, service string) ([]drill.Status, time.Time, error)

// drillsCommand is /dr drills [service]: per service and procedure, the last
// drill and its outcome, how long it took, when the next is due, overdue
// ones marked. Read-only and open to everyone; registered when
// Deps.Drills is set.
func drillsCommand(r *Registry) Command {
	return Command{
		Name:    "drills",
		Summary: "When each recovery procedure was last drilled, and when the next drill is due",
		Description: "Read-only: per service and procedure, the last drill (/dr drill) with its outcome and time, the next due date " +
			"(drills.every, and drills.plan: which procedure each quarter exercises), overdue ones marked. Inside an incident channel it " +
			"shows the incident's service; elsewhere every service unless one is named.",
		Args:     []Arg{{Name: "service", Help: "Only this service.", Optional: true}},
		Examples: []string{"/dr drills", "/dr drills lstm-pfd"},
		Run: func(ctx context.Context, c *Call) (chat.Message, error) {
			service := ""
			if w := c.Args["service"]; w != "" {
				service = canonicalService(w, r.services())
				if service == "" {
					return chat.Message{}, Refusef("unknown service %s — %s", quoteUser(w), configured(r.services()))
				}
			} else if c.Channel != "" && r.deps.ServiceForChannel != nil {
				svc, ok, err := r.deps.ServiceForChannel(ctx, c.Channel)
				if err != nil {
					return chat.Message{}, err
				}
				if ok {
					service = svc
				}
			}
			sts, now, err := r.deps.Drills(ctx, service)
			if err != nil {
				return chat.Message{}, err
			}
			return DrillsMessage(service, sts, now), nil
		},
	}
}

// DrillsMessage renders the drill schedule, a section per service.
func DrillsMessage(service string, sts []drill.Status, now time.Time) chat.Message {
	head := "Drills"
	if service != "" {
		head = "Drills of " + service
	}
	if len(sts) == 0 {
		text := "No drills scheduled or run: set drills.every or drills.plan in the runbook, and rehearse with `/dr drill <procedure> <service>`."
		if service != "" {
			text = service + ": no drills scheduled or run. Set drills.every or drills.plan for it in the runbook, and rehearse with `/dr drill <procedure> " + service + "`."
		}
		return chat.Message{Text: text, Blocks: []chat.Block{chat.Header{Text: head}, chat.Text{Text: text}}}
	}
	blocks := []chat.Block{chat.Header{Text: head}}
	var lines []string
	cur := ""
	var b strings.Builder
	flush := func() {
		if b.Len() > 0 {
			blocks = append(blocks, chat.Text{Text: b.String()})
			b.Reset()
		}
	}
	for _, s := range sts {
		if s.Service != cur {
			flush()
			cur = s.Service
			fmt.Fprintf(&b, "*%s*", s.Service)
		}
		line := drillLine(s, now)
		b.WriteString("\n" + line)
		lines = append(lines, s.Service+" "+line)
	}
	flush()
	blocks = append(blocks, chat.Context{Text: "Rehearse with `/dr drill <procedure> <service>`; `drbot drills report` prints this as Markdown."})
	return chat.Message{Text: head + ": " + strings.Join(lines, "; "), Blocks: blocks}
}

func drillLine(s drill.Status, now time.Time) string {
	mark := "✅"
	switch {
	case s.Overdue:
		mark = "🚨"
	case s.Due:
		mark = "⏰"
	case !s.Scheduled:
		mark = "•"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", mark, s.Procedure)
	if len(s.Quarters) > 0 {
		qs := make([]string, len(s.Quarters))
		for i, q := range s.Quarters {
			qs[i] = fmt.Sprintf("Q%d", q)
		}
		fmt.Fprintf(&b, " (%s)", strings.Join(qs, ", "))
	}
	if s.Last == nil {
		b.WriteString(": never drilled")
	} else {
		end := s.Last.FinishedAt
		if end.IsZero() {
			end = s.Last.CreatedAt
		}
		fmt.Fprintf(&b, ": last tested %s, %s (request #%d)", drill.Day(end, now), drill.Outcome(*s.Last), s.Last.RequestID)
	}
	switch {
	case !s.Scheduled:
		b.WriteString(" · not scheduled")
	case s.Overdue:
		fmt.Fprintf(&b, " · *OVERDUE* since %s (due %s)", s.DueBy.UTC().Format("2006-01-02"), drill.QuarterLabel(s.DueAt))
	case s.Due && s.DueAt.IsZero():
		b.WriteString(" · due now")
	case s.Due:
		fmt.Fprintf(&b, " · *due* by %s", s.DueBy.UTC().Format("2006-01-02"))
	default:
		fmt.Fprintf(&b, " · next due %s", s.DueAt.UTC().Format("2006-01-02"))
	}
	return b.String()
}
