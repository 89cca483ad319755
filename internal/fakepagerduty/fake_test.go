package fakepagerduty_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/drbot-dev/drbot/internal/fakepagerduty"
)

func do(t *testing.T, f *fakepagerduty.Fake, method, path, token, from, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, f.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Token token="+token)
	}
	if from != "" {
		req.Header.Set("From", from)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s %s: non-JSON answer %q", method, path, b)
	}
	return resp.StatusCode, m
}

func TestFakeREST(t *testing.T) {
	f := fakepagerduty.New(t, "tok")
	f.AddUser("PU1", "Ada", "ada@example.com")
	f.AddEscalationPolicy("PEP", "team")
	f.AddOnCall("PEP", 1, "PU1")
	f.AddService("PS1", "db", "PEP")
	f.AddService("PS2", "web", "PEP")
	a := f.CreateIncident("PS1", "a", "high")
	f.CreateIncident("PS2", "b", "low")

	if code, _ := do(t, f, "GET", "/incidents", "bad", "", ""); code != http.StatusUnauthorized {
		t.Errorf("bad token: %d", code)
	}
	code, m := do(t, f, "GET", "/incidents?service_ids[]=PS1&statuses[]=triggered&limit=1", "tok", "", "")
	if code != 200 || len(m["incidents"].([]any)) != 1 || m["more"] != false {
		t.Errorf("filtered list: %d %v", code, m)
	}
	code, m = do(t, f, "GET", "/incidents?limit=1", "tok", "", "")
	if code != 200 || m["more"] != true {
		t.Errorf("paged list: %d %v", code, m)
	}
	if code, _ := do(t, f, "PUT", "/incidents", "tok", "", `{"incidents":[{"id":"`+a.ID+`","status":"acknowledged"}]}`); code != http.StatusBadRequest {
		t.Errorf("PUT without From: %d", code)
	}
	if code, _ := do(t, f, "PUT", "/incidents", "tok", "ada@example.com", `{"incidents":[{"id":"`+a.ID+`","status":"acknowledged"}]}`); code != 200 {
		t.Errorf("PUT: %d", code)
	}
	if inc, _ := f.Incident(a.ID); inc.Status != "acknowledged" || inc.LastStatusChangeBy != "PU1" {
		t.Errorf("after PUT: %+v", inc)
	}
	if code, _ := do(t, f, "POST", "/incidents/"+a.ID+"/notes", "tok", "", `{"note":{"content":"x"}}`); code != http.StatusBadRequest {
		t.Errorf("note without From: %d", code)
	}
	if code, _ := do(t, f, "POST", "/incidents/"+a.ID+"/notes", "tok", "ada@example.com", `{"note":{"content":"x"}}`); code != http.StatusCreated {
		t.Errorf("note: %d", code)
	}
	if code, m := do(t, f, "GET", "/incidents/"+a.ID+"/notes", "tok", "", ""); code != 200 || len(m["notes"].([]any)) != 1 {
		t.Errorf("list notes: %d %v", code, m)
	}
	f.FailNext("/users/PU1", http.StatusServiceUnavailable)
	if code, _ := do(t, f, "GET", "/users/PU1", "tok", "", ""); code != http.StatusServiceUnavailable {
		t.Errorf("FailNext: %d", code)
	}
	if code, m := do(t, f, "GET", "/users/PU1", "tok", "", ""); code != 200 || m["user"].(map[string]any)["email"] != "ada@example.com" {
		t.Errorf("user after failure: %d %v", code, m)
	}
	if n := len(f.CallsTo("/users/PU1")); n != 2 {
		t.Errorf("call log has %d /users/PU1 calls", n)
	}
}

func TestWebhookBodyAndSign(t *testing.T) {
	f := fakepagerduty.New(t, "tok")
	f.AddEscalationPolicy("PEP", "team")
	f.AddService("PS1", "db", "PEP")
	inc := f.CreateIncident("PS1", "a", "high")
	var env struct {
		Event struct {
			ID        string              `json:"id"`
			EventType string              `json:"event_type"`
			Data      struct{ ID string } `json:"data"`
		} `json:"event"`
	}
	if err := json.Unmarshal(f.WebhookBody("resolved", inc.ID), &env); err != nil {
		t.Fatal(err)
	}
	if env.Event.EventType != "incident.resolved" || env.Event.Data.ID != inc.ID {
		t.Errorf("body: %+v", env)
	}
	sig := fakepagerduty.Sign([]byte("x"), "s1", "s2")
	if parts := strings.Split(sig, ","); len(parts) != 2 || !strings.HasPrefix(parts[1], "v1=") || len(parts[0]) != 67 {
		t.Errorf("Sign = %q", sig)
	}
}
