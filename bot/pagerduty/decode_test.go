package pagerduty_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/bot/incident"
	"github.com/drbot-dev/drbot/bot/pagerduty"
	"github.com/drbot-dev/drbot/internal/fakepagerduty"
)

// PagerDuty's documented signature example: this secret signs
// testdata/priority_updated.json to this value.
const (
	docSecret    = "lDQHScfUeXUKaQRNF+8XIiDKZ7XX3itBAYzwU0TARw8lJqRnkKl2iB1anSb0Z+IK"
	docSignature = "v1=0c0b9495b893a39e70d1fea2fe11fbe0a825f88b9f67846f6cc07dd2bc5476cd"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSignMatchesPagerDutyExample(t *testing.T) {
	body := readTestdata(t, "priority_updated.json")
	if got := pagerduty.Sign(body, docSecret); got != docSignature {
		t.Fatalf("Sign = %s, want %s", got, docSignature)
	}
	if got := fakepagerduty.Sign(body, docSecret); got != docSignature {
		t.Fatalf("fakepagerduty.Sign = %s, want %s", got, docSignature)
	}
}

func TestDecodeDocumentedPayloads(t *testing.T) {
	t.Run("priority_updated", func(t *testing.T) {
		body := readTestdata(t, "priority_updated.json")
		ev, err := pagerduty.Decode(body)
		if err != nil {
			t.Fatal(err)
		}
		want := incident.Event{
			DeliveryID: "01BWDWL3NYY7LUFPZCC28QUCMK", Kind: incident.EventPriorityUpdated, PagerDutyID: "PGR0VU2",
			ServiceID: "PF9KMXH", Title: "A little bump in the road", Urgency: "high", Priority: "P1",
			Status: "triggered", URL: "https://acme.pagerduty.com/incidents/PGR0VU2", Actor: "Tenex Engineer",
			Assignees: []string{"User 123"}, At: time.Date(2021, 4, 26, 17, 36, 27, 458e6, time.UTC),
		}
		assertEvent(t, ev, want)
		if !bytes.Equal(ev.Raw, body) {
			t.Error("Raw does not keep the body")
		}
	})
	t.Run("triggered", func(t *testing.T) {
		ev, err := pagerduty.Decode(readTestdata(t, "triggered.json"))
		if err != nil {
			t.Fatal(err)
		}
		assertEvent(t, ev, incident.Event{
			DeliveryID: "01BWDWKCFQZZ8QB8V9BKWA5JYW", Kind: incident.EventTriggered, PagerDutyID: "PGR0VU2",
			ServiceID: "PF9KMXH", Title: "A little bump in the road", Urgency: "high", Status: "triggered",
			URL: "https://acme.pagerduty.com/incidents/PGR0VU2", Actor: "API Service",
			Assignees: []string{"User 123"}, At: time.Date(2021, 4, 26, 17, 30, 0, 0, time.UTC),
		})
	})
	t.Run("annotated", func(t *testing.T) {
		ev, err := pagerduty.Decode(readTestdata(t, "annotated.json"))
		if err != nil {
			t.Fatal(err)
		}
		assertEvent(t, ev, incident.Event{
			DeliveryID: "01BWDX1YKNXB7W2BJ3WNYB4Z1D", Kind: incident.EventAnnotated, PagerDutyID: "PGR0VU2",
			Title: "A little bump in the road", URL: "https://acme.pagerduty.com/incidents/PGR0VU2",
			Actor: "Tenex Engineer", Note: "Restored the primary from the 02:00 snapshot.",
			At: time.Date(2021, 4, 26, 17, 40, 2, 103e6, time.UTC),
		})
	})
}

// assertEvent compares everything but Raw.
func assertEvent(t *testing.T, got, want incident.Event) {
	t.Helper()
	got.Raw, want.Raw = nil, nil
	if got.DeliveryID != want.DeliveryID || got.Kind != want.Kind || got.PagerDutyID != want.PagerDutyID ||
		got.ServiceID != want.ServiceID || got.Title != want.Title || got.Urgency != want.Urgency ||
		got.Priority != want.Priority || got.Status != want.Status || got.URL != want.URL ||
		got.Actor != want.Actor || got.Note != want.Note || !slices.Equal(got.Assignees, want.Assignees) ||
		!got.At.Equal(want.At) {
		t.Errorf("event mismatch\n got: %+v\nwant: %+v", got, want)
	}
}

func TestDecodeEveryKindFromFake(t *testing.T) {
	f := fakepagerduty.New(t, "tok")
	f.AddUser("PU1", "Ada Lovelace", "ada@example.com")
	f.AddUser("PU2", "Grace Hopper", "grace@example.com")
	f.AddEscalationPolicy("PEP1", "DB team")
	f.AddOnCall("PEP1", 1, "PU1")
	f.AddService("PSVC1", "inflow-db", "PEP1")
	inc := f.CreateIncident("PSVC1", "Primary DB down", "high")
	f.SetIncidentPriority(inc.ID, "P1")
	f.SetIncidentStatus(inc.ID, "acknowledged", "PU2")
	f.AddNote(inc.ID, "PU2", "failing over to replica")

	seen := map[string]bool{}
	for _, kind := range fakepagerduty.WebhookKinds {
		t.Run(kind, func(t *testing.T) {
			body := f.WebhookBody(kind, inc.ID)
			ev, err := pagerduty.Decode(body)
			if err != nil {
				t.Fatal(err)
			}
			if ev.Kind != kind || ev.PagerDutyID != inc.ID || ev.DeliveryID == "" || ev.At.IsZero() {
				t.Fatalf("got kind=%q incident=%q delivery=%q at=%v", ev.Kind, ev.PagerDutyID, ev.DeliveryID, ev.At)
			}
			if seen[ev.DeliveryID] {
				t.Fatalf("delivery id %s reused", ev.DeliveryID)
			}
			seen[ev.DeliveryID] = true
			if ev.Actor != "Grace Hopper" {
				t.Errorf("Actor = %q, want Grace Hopper", ev.Actor)
			}
			if kind == incident.EventAnnotated {
				if ev.Note != "failing over to replica" || ev.Title != "Primary DB down" {
					t.Errorf("annotated: note=%q title=%q", ev.Note, ev.Title)
				}
				return
			}
			if ev.ServiceID != "PSVC1" || ev.Title != "Primary DB down" || ev.Urgency != "high" ||
				ev.Priority != "P1" || ev.Status != "acknowledged" || !slices.Equal(ev.Assignees, []string{"Ada Lovelace"}) {
				t.Errorf("fields: %+v", ev)
			}
		})
	}
}

func TestDecodeMalformed(t *testing.T) {
	valid := string(readTestdata(t, "triggered.json"))
	cases := []struct {
		name, body, reason string
		unknownType        bool
	}{
		{"empty", ``, "not a v3 webhook JSON object", false},
		{"not json", `<xml/>`, "not a v3 webhook JSON object", false},
		{"array", `[1,2]`, "not a v3 webhook JSON object", false},
		{"trailing data", valid + `{}`, "unexpected data", false},
		{"no event", `{}`, "missing event.id", false},
		{"missing event id", strings.Replace(valid, `"id":"01BWDWKCFQZZ8QB8V9BKWA5JYW",`, "", 1), "missing event.id", false},
		{"missing incident id", strings.Replace(valid, `"data":{"id":"PGR0VU2",`, `"data":{`, 1), "missing event.data.id", false},
		{"missing data", `{"event":{"id":"E1","event_type":"incident.triggered","occurred_at":"2021-04-26T17:30:00Z"}}`, "missing event.data", false},
		{"data not an object", `{"event":{"id":"E1","event_type":"incident.triggered","occurred_at":"2021-04-26T17:30:00Z","data":"x"}}`, "not an incident", false},
		{"bad time", strings.Replace(valid, `2021-04-26T17:30:00.000Z`, `yesterday`, 1), "occurred_at", false},
		{"missing type", strings.Replace(valid, `"event_type":"incident.triggered",`, "", 1), "missing event.event_type", false},
		{"unknown incident event", strings.Replace(valid, `incident.triggered`, `incident.responder.added`, 1), "incident.responder.added", true},
		{"other resource", strings.Replace(valid, `incident.triggered`, `service.updated`, 1), "service.updated", true},
		{"annotated without incident", `{"event":{"id":"E1","event_type":"incident.annotated","occurred_at":"2021-04-26T17:30:00Z","data":{"content":"x"}}}`, "missing event.data.incident.id", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := pagerduty.Decode([]byte(c.body))
			if !errors.Is(err, pagerduty.ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), c.reason) {
				t.Errorf("err = %q, want it to mention %q", err, c.reason)
			}
			if got := errors.Is(err, pagerduty.ErrUnknownEventType); got != c.unknownType {
				t.Errorf("errors.Is(err, ErrUnknownEventType) = %v, want %v", got, c.unknownType)
			}
		})
	}
}

func TestDecodePing(t *testing.T) {
	_, err := pagerduty.Decode([]byte(`{"event":{"id":"01","event_type":"pagey.ping","resource_type":"pagey","occurred_at":"2021-04-26T17:30:00Z","data":{"message":"Hello from your friend Pagey!","type":"ping"}}}`))
	if !errors.Is(err, pagerduty.ErrPing) || errors.Is(err, pagerduty.ErrMalformed) {
		t.Fatalf("err = %v, want ErrPing", err)
	}
}

func TestSyntheticTrigger(t *testing.T) {
	now := time.Date(2026, 11, 3, 4, 5, 6, 7e6, time.UTC)
	a := pagerduty.SyntheticTrigger("PSVC1", "Disk full on db-1", now)
	b := pagerduty.SyntheticTrigger("PSVC1", "Disk full on db-1", now)
	ea, err := pagerduty.Decode(a)
	if err != nil {
		t.Fatal(err)
	}
	eb, err := pagerduty.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if ea.Kind != incident.EventTriggered || ea.ServiceID != "PSVC1" || ea.Title != "Disk full on db-1" ||
		ea.Status != "triggered" || !ea.At.Equal(now) || ea.Urgency != "high" {
		t.Errorf("synthetic event: %+v", ea)
	}
	if ea.DeliveryID == eb.DeliveryID || ea.PagerDutyID == eb.PagerDutyID {
		t.Errorf("ids are not fresh: %s/%s and %s/%s", ea.DeliveryID, ea.PagerDutyID, eb.DeliveryID, eb.PagerDutyID)
	}
}

func FuzzDecode(f *testing.F) {
	for _, name := range []string{"triggered.json", "annotated.json", "priority_updated.json"} {
		f.Add(readTestdata(f, name))
	}
	f.Add([]byte(`{"event":{}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := pagerduty.Decode(body)
		if err != nil {
			if !errors.Is(err, pagerduty.ErrMalformed) && !errors.Is(err, pagerduty.ErrPing) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		if ev.DeliveryID == "" || ev.PagerDutyID == "" || ev.Kind == "" {
			t.Fatalf("accepted event without ids: %+v", ev)
		}
	})
}
