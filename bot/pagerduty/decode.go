// Package pagerduty is drbot's PagerDuty adapter and the only importer of
// go-pagerduty: v3 webhook verification and decoding into incident.Event, a
// REST API client (on-calls, notes, acknowledge, resolve, list) and a poller that
// feeds incidents through the same pipeline as webhooks.
package pagerduty

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/drbot-dev/drbot/bot/incident"
)

// ErrMalformed is wrapped by every Decode error caused by the payload itself;
// the HTTP layer answers 400 for it. The wrapping error says what is wrong.
var ErrMalformed = errors.New("malformed PagerDuty webhook")

// ErrUnknownEventType is wrapped (together with ErrMalformed) when the event type
// is not one of the incident events drbot handles.
var ErrUnknownEventType = errors.New("unsupported event type")

// ErrPing is returned by Decode for PagerDuty's "pagey.ping" test event, which
// carries no incident: acknowledge it and ingest nothing.
var ErrPing = errors.New("PagerDuty webhook ping")

// Reference is a v3 webhook reference to another PagerDuty object.
type Reference struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	Summary string `json:"summary"`
	Self    string `json:"self,omitempty"`
	HTMLURL string `json:"html_url,omitempty"`
}

// WebhookEnvelope is the body of a PagerDuty v3 webhook.
type WebhookEnvelope struct {
	Event WebhookEvent `json:"event"`
}

// WebhookEvent is a v3 webhook event; Data depends on EventType (IncidentData
// for most incident events, NoteData for incident.annotated).
type WebhookEvent struct {
	ID           string          `json:"id"`
	EventType    string          `json:"event_type"`
	ResourceType string          `json:"resource_type"`
	OccurredAt   string          `json:"occurred_at"`
	Agent        *Reference      `json:"agent"`
	Client       json.RawMessage `json:"client"`
	Data         json.RawMessage `json:"data"`
}

// IncidentData is the data of an incident.* event (except incident.annotated).
type IncidentData struct {
	ID               string      `json:"id"`
	Type             string      `json:"type"`
	Self             string      `json:"self,omitempty"`
	HTMLURL          string      `json:"html_url"`
	Number           int         `json:"number"`
	Status           string      `json:"status"`
	IncidentKey      string      `json:"incident_key,omitempty"`
	CreatedAt        string      `json:"created_at,omitempty"`
	Title            string      `json:"title"`
	Service          Reference   `json:"service"`
	Assignees        []Reference `json:"assignees"`
	EscalationPolicy Reference   `json:"escalation_policy"`
	Teams            []Reference `json:"teams"`
	Priority         *Reference  `json:"priority"`
	Urgency          string      `json:"urgency"`
	// ConferenceBridge and ResolveReason are kept raw: their shapes vary
	// (conference_number is a string or a number in PagerDuty's own examples).
	ConferenceBridge json.RawMessage `json:"conference_bridge,omitempty"`
	ResolveReason    json.RawMessage `json:"resolve_reason,omitempty"`
}

// NoteData is the data of an incident.annotated event: an incident note.
type NoteData struct {
	ID       string    `json:"id"`
	Type     string    `json:"type"`
	Content  string    `json:"content"`
	Trimmed  bool      `json:"trimmed"`
	Incident Reference `json:"incident"`
}

var knownKinds = map[string]bool{
	incident.EventTriggered: true, incident.EventAcknowledged: true, incident.EventUnacknowledged: true,
	incident.EventEscalated: true, incident.EventReassigned: true, incident.EventAnnotated: true,
	incident.EventPriorityUpdated: true, incident.EventResolved: true, incident.EventReopened: true,
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// Decode turns a v3 webhook body into an incident.Event. Errors caused by the body
// wrap ErrMalformed (unknown event types also wrap ErrUnknownEventType); the
// "pagey.ping" test event returns ErrPing. Raw keeps a copy of body.
func Decode(body []byte) (incident.Event, error) {
	var env WebhookEnvelope
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&env); err != nil {
		return incident.Event{}, malformed("body is not a v3 webhook JSON object: %v", err)
	}
	if dec.More() {
		return incident.Event{}, malformed("unexpected data after the JSON object")
	}
	e := env.Event
	if e.EventType == "pagey.ping" {
		return incident.Event{}, ErrPing
	}
	if e.ID == "" {
		return incident.Event{}, malformed("missing event.id")
	}
	kind, ok := strings.CutPrefix(e.EventType, "incident.")
	if e.EventType == "" {
		return incident.Event{}, malformed("missing event.event_type")
	}
	if !ok || !knownKinds[kind] {
		return incident.Event{}, fmt.Errorf("%w: %w %q", ErrMalformed, ErrUnknownEventType, e.EventType)
	}
	at, err := time.Parse(time.RFC3339Nano, e.OccurredAt)
	if err != nil {
		return incident.Event{}, malformed("event.occurred_at %q is not an RFC 3339 time", e.OccurredAt)
	}
	if len(e.Data) == 0 || bytes.Equal(e.Data, []byte("null")) {
		return incident.Event{}, malformed("missing event.data")
	}
	ev := incident.Event{
		DeliveryID: e.ID,
		Kind:       kind,
		At:         at,
		Raw:        json.RawMessage(bytes.Clone(body)),
	}
	if e.Agent != nil {
		ev.Actor = e.Agent.Summary
	}
	if kind == incident.EventAnnotated {
		var n NoteData
		if err := json.Unmarshal(e.Data, &n); err != nil {
			return incident.Event{}, malformed("event.data is not an incident note: %v", err)
		}
		if n.Incident.ID == "" {
			return incident.Event{}, malformed("missing event.data.incident.id")
		}
		ev.PagerDutyID = n.Incident.ID
		ev.Title = n.Incident.Summary
		ev.URL = n.Incident.HTMLURL
		ev.Note = n.Content
		return ev, nil
	}
	var d IncidentData
	if err := json.Unmarshal(e.Data, &d); err != nil {
		return incident.Event{}, malformed("event.data is not an incident: %v", err)
	}
	if d.ID == "" {
		return incident.Event{}, malformed("missing event.data.id (the incident id)")
	}
	ev.PagerDutyID = d.ID
	ev.ServiceID = d.Service.ID
	ev.Title = d.Title
	ev.Urgency = d.Urgency
	ev.Status = d.Status
	ev.URL = d.HTMLURL
	if d.Priority != nil {
		ev.Priority = d.Priority.Summary
	}
	for _, a := range d.Assignees {
		if a.Summary != "" {
			ev.Assignees = append(ev.Assignees, a.Summary)
		}
	}
	return ev, nil
}

// Sign returns the X-PagerDuty-Signature header value for body signed with
// secret: "v1=" and the hex HMAC-SHA256.
func Sign(body []byte, secret string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "v1=" + hex.EncodeToString(mac.Sum(nil))
}

// SyntheticTrigger builds a valid v3 incident.triggered webhook body for a new
// incident on serviceID, with fresh event and incident ids. The local shell's
// /trigger feeds it through Decode like a real webhook.
func SyntheticTrigger(serviceID, title string, now time.Time) []byte {
	incID := newID("Q")
	env := WebhookEnvelope{Event: WebhookEvent{
		ID:           newID("01"),
		EventType:    "incident." + incident.EventTriggered,
		ResourceType: "incident",
		OccurredAt:   now.UTC().Format("2006-01-02T15:04:05.000Z07:00"),
		Agent:        &Reference{ID: "drbot", Type: "user_reference", Summary: "drbot shell"},
	}}
	data := IncidentData{
		ID:        incID,
		Type:      "incident",
		Status:    "triggered",
		CreatedAt: now.UTC().Format(time.RFC3339),
		Title:     title,
		Service:   Reference{ID: serviceID, Type: "service_reference", Summary: serviceID},
		Assignees: []Reference{},
		Teams:     []Reference{},
		Urgency:   "high",
		EscalationPolicy: Reference{
			Type: "escalation_policy_reference",
		},
	}
	raw, err := json.Marshal(data)
	if err != nil {
		panic(fmt.Sprintf("pagerduty: marshal synthetic incident: %v", err)) // plain struct: cannot fail
	}
	env.Event.Data = raw
	body, err := json.Marshal(env)
	if err != nil {
		panic(fmt.Sprintf("pagerduty: marshal synthetic webhook: %v", err))
	}
	return body
}

// newID returns a PagerDuty-looking id: prefix and 13 upper-case letters/digits.
func newID(prefix string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, 13)
	_, _ = rand.Read(b) // crypto/rand.Read never returns an error
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return prefix + string(b)
}
