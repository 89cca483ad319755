package fakepagerduty

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// WebhookKinds are the incident event kinds WebhookBody can build, as PagerDuty
// names them without the "incident." prefix.
var WebhookKinds = []string{
	"triggered", "acknowledged", "unacknowledged", "escalated", "reassigned",
	"annotated", "priority_updated", "resolved", "reopened",
}

// WebhookBody builds a PagerDuty v3 webhook body ("incident.<kind>") for
// incidentID from the fake's current state, with a fresh event id. For
// "annotated" the data is the incident's latest note (see AddNote). It must be
// called from the test goroutine: an unknown incident fails the test.
func (f *Fake) WebhookBody(kind, incidentID string) []byte {
	f.tb.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	inc := f.findIncident(incidentID)
	if inc == nil {
		f.tb.Fatalf("fakepagerduty: WebhookBody: no incident %q", incidentID)
		return nil
	}
	var agent any
	if inc.LastStatusChangeBy != "" {
		agent = f.userRef(inc.LastStatusChangeBy)
	}
	var data any
	if kind == "annotated" {
		notes := f.notes[incidentID]
		if len(notes) == 0 {
			f.tb.Fatalf("fakepagerduty: WebhookBody: incident %q has no note to annotate with", incidentID)
			return nil
		}
		n := notes[len(notes)-1]
		agent = f.userRef(n.UserID)
		data = map[string]any{
			"id": n.ID, "type": "incident_note", "content": n.Content, "trimmed": false,
			"incident": ref(inc.ID, "incident_reference", inc.Title),
		}
	} else {
		svcName := inc.ServiceID
		if s := f.services[inc.ServiceID]; s != nil {
			svcName = s.Name
		}
		assignees := []any{}
		for _, id := range inc.AssigneeIDs {
			assignees = append(assignees, f.userRef(id))
		}
		d := map[string]any{
			"id": inc.ID, "type": "incident", "self": "https://api.pagerduty.com/incidents/" + inc.ID,
			"html_url": "https://fake.pagerduty.com/incidents/" + inc.ID,
			"number":   inc.Number, "status": inc.Status, "incident_key": inc.ID, "title": inc.Title,
			"created_at":        inc.CreatedAt.Format(time.RFC3339),
			"service":           ref(inc.ServiceID, "service_reference", svcName),
			"assignees":         assignees,
			"escalation_policy": ref(inc.EscalationPolicyID, "escalation_policy_reference", inc.EscalationPolicyID),
			"teams":             []any{},
			"priority":          nil,
			"urgency":           inc.Urgency,
			"conference_bridge": nil,
			"resolve_reason":    nil,
		}
		if inc.Priority != "" {
			d["priority"] = ref("P"+inc.Priority, "priority_reference", inc.Priority)
		}
		data = d
	}
	body, err := json.Marshal(map[string]any{"event": map[string]any{
		"id":            newID("01"),
		"event_type":    "incident." + kind,
		"resource_type": "incident",
		"occurred_at":   f.now().UTC().Format("2006-01-02T15:04:05.000Z"),
		"agent":         agent,
		"client":        nil,
		"data":          data,
	}})
	if err != nil {
		f.tb.Fatalf("fakepagerduty: WebhookBody: %v", err)
	}
	return body
}

// Sign returns the X-PagerDuty-Signature value for body: "v1=<hex HMAC-SHA256>"
// for each secret, comma-separated, as PagerDuty sends it during secret rotation.
func Sign(body []byte, secrets ...string) string {
	sigs := make([]string, 0, len(secrets))
	for _, s := range secrets {
		mac := hmac.New(sha256.New, []byte(s))
		mac.Write(body)
		sigs = append(sigs, "v1="+hex.EncodeToString(mac.Sum(nil)))
	}
	return strings.Join(sigs, ",")
}

// NewWebhookRequest builds a POST of body to url signed with secrets (none: no
// signature header), with PagerDuty's headers.
func NewWebhookRequest(ctx context.Context, url string, body []byte, secrets ...string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "PagerDuty-Webhook/V3.0")
	if len(secrets) > 0 {
		req.Header.Set("X-PagerDuty-Signature", Sign(body, secrets...))
	}
	return req, nil
}
