package incident

import (
	"encoding/json"
	"time"
)

// Incident event kinds, as PagerDuty v3 webhooks name them without the
// "incident." prefix.
const (
	EventTriggered       = "triggered"
	EventAcknowledged    = "acknowledged"
	EventUnacknowledged  = "unacknowledged"
	EventEscalated       = "escalated"
	EventReassigned      = "reassigned"
	EventAnnotated       = "annotated"
	EventPriorityUpdated = "priority_updated"
	EventResolved        = "resolved"
	EventReopened        = "reopened"
)

// Event is a platform-neutral incident event: what a PagerDuty webhook,
// the PagerDuty poller and the shell's /trigger all turn into.
type Event struct {
	DeliveryID  string // the webhook event id; deduplication key for deliveries
	Kind        string // one of the Event… constants
	PagerDutyID string // the incident id; one channel per value
	ServiceID   string // PagerDuty service id, mapped to a runbook service by config
	Title       string
	Urgency     string
	Priority    string
	Status      string
	URL         string
	Actor       string // who caused the event (e-mail or name), if known
	Note        string // annotation text for EventAnnotated
	Assignees   []string
	At          time.Time
	Raw         json.RawMessage // the original payload, kept for the audit log
}
