package pagerduty_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/bot/incident"
	"github.com/drbot-dev/drbot/bot/pagerduty"
	"github.com/drbot-dev/drbot/internal/fakepagerduty"
)

const (
	token   = "pd-test-token"
	botFrom = "drbot@example.com"
)

// newFakeAndAPI starts a fake with a bot user, one escalation policy and one service.
func newFakeAndAPI(t *testing.T) (*fakepagerduty.Fake, *pagerduty.API) {
	t.Helper()
	f := fakepagerduty.New(t, token)
	f.AddUser("PBOT", "drbot", botFrom)
	f.AddUser("PU1", "Ada Lovelace", "ada@example.com")
	f.AddUser("PU2", "Grace Hopper", "grace@example.com")
	f.AddEscalationPolicy("PEP1", "DB team")
	f.AddOnCall("PEP1", 1, "PU1")
	f.AddOnCall("PEP1", 2, "PU2")
	f.AddService("PSVC1", "inflow-db", "PEP1")
	api, err := pagerduty.NewAPI(pagerduty.APIOptions{Token: token, BaseURL: f.URL() + "/", FromEmail: botFrom})
	if err != nil {
		t.Fatal(err)
	}
	return f, api
}

func TestNewAPIValidates(t *testing.T) {
	if _, err := pagerduty.NewAPI(pagerduty.APIOptions{}); err == nil || !strings.Contains(err.Error(), "PAGERDUTY_API_TOKEN") {
		t.Errorf("empty token: %v", err)
	}
	if _, err := pagerduty.NewAPI(pagerduty.APIOptions{Token: "x", BaseURL: "api.pagerduty.com"}); err == nil || !strings.Contains(err.Error(), "PAGERDUTY_API_URL") {
		t.Errorf("bad URL: %v", err)
	}
}

func TestOnCallEmailsPaginatesAndDedupes(t *testing.T) {
	f, api := newFakeAndAPI(t)
	// 230 on-call entries (3 pages of 100) for 120 users, each user twice at
	// different levels, plus one user whose e-mail differs only in case.
	f.AddEscalationPolicy("PBIG", "everyone")
	var want []string
	for i := range 120 {
		id := fmt.Sprintf("PX%03d", i)
		email := fmt.Sprintf("user%03d@example.com", i)
		f.AddUser(id, "User "+id, email)
		f.AddOnCall("PBIG", 1, id)
		want = append(want, email)
	}
	for i := range 109 {
		f.AddOnCall("PBIG", 2, fmt.Sprintf("PX%03d", i))
	}
	f.AddUser("PCASE", "Case Twin", "USER000@example.com")
	f.AddOnCall("PBIG", 3, "PCASE")

	got, err := api.OnCallEmails(t.Context(), "PBIG")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got %d e-mails %v…, want %d", len(got), got[:min(3, len(got))], len(want))
	}
	if n := len(f.CallsTo("/oncalls")); n != 3 {
		t.Errorf("%d /oncalls calls, want 3 pages", n)
	}

	small, err := api.OnCallEmails(t.Context(), "PEP1")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(small, []string{"ada@example.com", "grace@example.com"}) {
		t.Errorf("PEP1 on-calls = %v", small)
	}
}

func TestAPIErrorsAreActionable(t *testing.T) {
	f, _ := newFakeAndAPI(t)
	bad, err := pagerduty.NewAPI(pagerduty.APIOptions{Token: "wrong", BaseURL: f.URL()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = bad.OnCallEmails(t.Context(), "PEP1")
	if err == nil || !strings.Contains(err.Error(), "check PAGERDUTY_API_TOKEN") {
		t.Fatalf("wrong token: %v", err)
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Fatalf("error leaks the token: %v", err)
	}
	noFrom, err := pagerduty.NewAPI(pagerduty.APIOptions{Token: token, BaseURL: f.URL()})
	if err != nil {
		t.Fatal(err)
	}
	inc := f.CreateIncident("PSVC1", "x", "low")
	if err := noFrom.Acknowledge(t.Context(), inc.ID); err == nil || !strings.Contains(err.Error(), "PAGERDUTY_FROM_EMAIL") {
		t.Fatalf("no From: %v", err)
	}
	if len(f.CallsTo("/incidents")) != 0 {
		t.Fatal("request sent without a From e-mail")
	}
}

func TestAddNoteCarriesFrom(t *testing.T) {
	f, api := newFakeAndAPI(t)
	inc := f.CreateIncident("PSVC1", "Primary DB down", "high")
	if err := api.AddNote(t.Context(), inc.ID, "restore-db approved by ada, running"); err != nil {
		t.Fatal(err)
	}
	notes := f.Notes(inc.ID)
	if len(notes) != 1 || notes[0].From != botFrom || notes[0].UserID != "PBOT" || notes[0].Content != "restore-db approved by ada, running" {
		t.Fatalf("notes = %+v", notes)
	}
	if err := api.AddNote(t.Context(), "PNOPE", "x"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("unknown incident: %v", err)
	}
}

func TestAcknowledgeAndResolve(t *testing.T) {
	f, api := newFakeAndAPI(t)
	inc := f.CreateIncident("PSVC1", "Primary DB down", "high")
	if err := api.Acknowledge(t.Context(), inc.ID); err != nil {
		t.Fatal(err)
	}
	got, _ := f.Incident(inc.ID)
	if got.Status != "acknowledged" || got.LastStatusChangeBy != "PBOT" {
		t.Fatalf("after ack: %+v", got)
	}
	if err := api.Resolve(t.Context(), inc.ID); err != nil {
		t.Fatal(err)
	}
	got, _ = f.Incident(inc.ID)
	if got.Status != "resolved" || got.ResolvedAt.IsZero() {
		t.Fatalf("after resolve: %+v", got)
	}
	for _, c := range f.CallsTo("/incidents") {
		if c.Method == http.MethodPut && c.From != botFrom {
			t.Errorf("PUT /incidents with From %q", c.From)
		}
	}
	f.FailNext("/incidents", http.StatusTooManyRequests)
	if err := api.Acknowledge(t.Context(), inc.ID); err == nil || !strings.Contains(err.Error(), "rate limited") {
		t.Fatalf("429: %v", err)
	}
}

func TestListIncidentsMapsStatusesAndPaginates(t *testing.T) {
	f, api := newFakeAndAPI(t)
	f.AddService("POTHER", "other", "PEP1")
	var ids []string
	for i := range 130 {
		ids = append(ids, f.CreateIncident("PSVC1", fmt.Sprintf("incident %d", i), "high").ID)
	}
	f.CreateIncident("POTHER", "not ours", "low")
	f.SetIncidentStatus(ids[1], "acknowledged", "PU1")
	f.SetIncidentStatus(ids[2], "resolved", "PU2")
	f.SetIncidentPriority(ids[0], "P1")

	evs, err := api.ListIncidents(t.Context(), []string{"PSVC1"}, time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 130 {
		t.Fatalf("%d events, want 130", len(evs))
	}
	byID := map[string]incident.Event{}
	for _, ev := range evs {
		byID[ev.PagerDutyID] = ev
	}
	if ev := byID[ids[0]]; ev.Kind != incident.EventTriggered || ev.Priority != "P1" || ev.ServiceID != "PSVC1" ||
		ev.Title != "incident 0" || !slices.Equal(ev.Assignees, []string{"Ada Lovelace"}) || len(ev.Raw) == 0 {
		t.Errorf("triggered: %+v", ev)
	}
	if ev := byID[ids[1]]; ev.Kind != incident.EventAcknowledged || ev.Actor != "Ada Lovelace" {
		t.Errorf("acknowledged: %+v", ev)
	}
	if ev := byID[ids[2]]; ev.Kind != incident.EventResolved || ev.Status != "resolved" {
		t.Errorf("resolved: %+v", ev)
	}
	if n := len(f.CallsTo("/incidents")); n != 2 {
		t.Errorf("%d list calls, want 2 pages", n)
	}
	// Only incidents created since `since` are listed.
	old, err := api.ListIncidents(t.Context(), []string{"PSVC1"}, time.Now().Add(time.Minute))
	if err != nil || len(old) != 0 {
		t.Fatalf("future since: %d events, %v", len(old), err)
	}
}
