package incident

import (
	"context"
	"fmt"
	"strings"

	"github.com/drbot-dev/drbot/bot/chat"
	"github.com/drbot-dev/drbot/internal/usererr"
	"github.com/drbot-dev/drbot/store"
)

// ChecklistSection is one heading of the incident-response checklist.
type ChecklistSection struct {
	Title string
	Items []ChecklistItem
}

// ChecklistItem is one box to tick; ID is stable (it keys the tick's mark).
type ChecklistItem struct {
	ID    string
	Label string
}

// IncidentChecklist is the runbooks' incident-response checklist (LSTM-PFD
// runbook section 4), posted in every incident channel.
var IncidentChecklist = []ChecklistSection{
	{Title: "Detection", Items: []ChecklistItem{
		{"detection-alert", "Alert received from PagerDuty/Prometheus"},
		{"detection-channel", "Incident channel created"},
		{"detection-ack", "On-call engineer acknowledged"},
	}},
	{Title: "Assessment", Items: []ChecklistItem{
		{"assessment-scope", "Determine scope of impact"},
		{"assessment-components", "Identify affected components"},
		{"assessment-changes", "Check recent deployments/changes"},
		{"assessment-logs", "Review error logs"},
	}},
	{Title: "Mitigation", Items: []ChecklistItem{
		{"mitigation-runbook", "Execute appropriate runbook"},
		{"mitigation-monitor", "Monitor restoration progress"},
		{"mitigation-updates", "Communicate status updates"},
	}},
	{Title: "Recovery Verification", Items: []ChecklistItem{
		{"verify-health", "All health checks passing"},
		{"verify-metrics", "Metrics returning to baseline"},
		{"verify-users", "User functionality verified"},
		{"verify-customers", "Customer communication sent"},
	}},
	{Title: "Post-Incident", Items: []ChecklistItem{
		{"post-timeline", "Incident timeline documented"},
		{"post-root-cause", "Root cause identified"},
		{"post-action-items", "Action items created"},
		{"post-mortem", "Post-mortem scheduled"},
	}},
}

// postIncidentSection is the section posted again on resolve.
const postIncidentSection = "Post-Incident"

const checkMarkPrefix = "check."

// Marks that hold message references.
const (
	markHeaderTS        = "header.ts"
	markChecklistTS     = "checklist.ts"
	markPostChecklistTS = "post_checklist.ts"
)

// checklistMessage renders the sections (all when only is empty) with the
// ticks recorded in marks.
func checklistMessage(marks map[string]string, only string) chat.Message {
	m := chat.Message{Text: "Incident-response checklist"}
	if only != "" {
		m.Text = only + " checklist"
	}
	m.Blocks = append(m.Blocks, chat.Header{Text: m.Text})
	for _, s := range IncidentChecklist {
		if only != "" && s.Title != only {
			continue
		}
		cl := chat.Checklist{ActionID: chat.ActionChecklist, Title: s.Title}
		for _, it := range s.Items {
			cl.Items = append(cl.Items, chat.CheckItem{Value: it.ID, Label: it.Label, Done: marks[checkMarkPrefix+it.ID] == "1"})
		}
		m.Blocks = append(m.Blocks, cl)
	}
	m.Blocks = append(m.Blocks, chat.Context{Text: "Ticks are recorded in the incident timeline (/dr timeline)."})
	return m
}

func checklistItem(id string) (ChecklistItem, bool) {
	for _, s := range IncidentChecklist {
		for _, it := range s.Items {
			if it.ID == id {
				return it, true
			}
		}
	}
	return ChecklistItem{}, false
}

// parseTick reads a checklist click's value: "<item>=1" ticks, "<item>=0"
// unticks (Slack's checkboxes say which), a bare "<item>" toggles (the shell).
func parseTick(v string) (item string, set, checked bool) {
	if i := strings.LastIndexByte(v, '='); i >= 0 {
		switch v[i+1:] {
		case "1":
			return v[:i], true, true
		case "0":
			return v[:i], true, false
		}
	}
	return v, false, false
}

// ClickChecklist records a tick or untick with an audit row and redraws the
// checklist message.
func (b *Lifecycle) ClickChecklist(ctx context.Context, c chat.Click) (chat.Message, error) {
	id, set, checked := parseTick(c.Value)
	item, ok := checklistItem(id)
	if !ok {
		return chat.Message{}, usererr.Refusef("That checklist item is not known any more; scroll to the latest checklist.")
	}
	inc, err := b.store.IncidentByChannel(ctx, c.Channel)
	if err != nil {
		if isNotFound(err) {
			return chat.Message{}, usererr.Refusef("This checklist does not belong to an incident channel drbot knows.")
		}
		return chat.Message{}, err
	}
	var marks map[string]string
	err = b.lc.st.InIncidentTx(ctx, func(tx store.IncidentTx) error {
		if _, err := tx.LockIncident(ctx, inc.ID); err != nil {
			return err
		}
		var err error
		marks, err = tx.Marks(ctx, inc.ID)
		if err != nil {
			return err
		}
		was := marks[checkMarkPrefix+id] == "1"
		if !set {
			checked = !was
		}
		if was == checked {
			return nil
		}
		kind, v := store.AuditChecklistUnticked, "0"
		if checked {
			kind, v = store.AuditChecklistTicked, "1"
		}
		ev, err := markEvent(inc.ID, c.User.ID, kind, checkMarkPrefix+id, v, map[string]any{"item": item.Label, "user_name": c.User.Name})
		if err != nil {
			return err
		}
		marks[checkMarkPrefix+id] = v
		return tx.AppendAudit(ctx, ev)
	})
	if err != nil {
		return chat.Message{}, fmt.Errorf("record checklist tick on incident %d: %w", inc.ID, err)
	}
	only := ""
	if c.Message.TS != "" && c.Message.TS == marks[markPostChecklistTS] {
		only = postIncidentSection
	}
	if c.Message.TS != "" {
		ref := chat.MessageRef{Channel: c.Channel, TS: c.Message.TS}
		if err := b.chat.Update(ctx, ref, checklistMessage(marks, only)); err != nil {
			b.log.WarnContext(ctx, "could not redraw the checklist; the tick is recorded", "incident", inc.ID, "err", err)
		}
	}
	return chat.Message{}, nil
}
