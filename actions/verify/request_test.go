package verify_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/drbot-dev/drbot/actions/verify"
	"github.com/drbot-dev/drbot/runbook"
)

// TestHealthMethodBodyStatus: a smoke check as runbook 001 §3 step 5 does it
// (POST /predict with a body) passes against an endpoint that only answers
// that; the same URL checked with a GET fails, and expect_status is exact.
func TestHealthMethodBodyStatus(t *testing.T) {
	const body = `{"signal": [0.1, 0.2, 0.3]}`
	predict := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || string(got) != body || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "want POST with the signal", http.StatusMethodNotAllowed)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(predict.Close)
	created := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
	}))
	t.Cleanup(created.Close)

	svc := runbook.Service{Name: "lstm-pfd", Health: []runbook.HealthCheck{
		{Name: "smoke", HTTP: predict.URL + "/predict", Method: "POST", Body: body, ExpectStatus: 200},
		{Name: "smoke as GET", HTTP: predict.URL + "/predict"},
		{Name: "exactly 200", HTTP: created.URL, ExpectStatus: 200},
		{Name: "any 2xx", HTTP: created.URL},
	}}
	r, err := verify.Service(ctx(t), verify.Deps{}, svc)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"smoke": true, "smoke as GET": false, "exactly 200": false, "any 2xx": true}
	for _, c := range r.Checks {
		if c.OK != want[c.Name] {
			t.Errorf("%s: ok=%v observed %q expected %q, want ok=%v", c.Name, c.OK, c.Observed, c.Expected, want[c.Name])
		}
	}
	if len(r.Checks) != len(want) {
		t.Fatalf("%d checks, want %d", len(r.Checks), len(want))
	}
	if r.Checks[0].Expected != "200" || r.Checks[0].Target != "POST "+predict.URL+"/predict" {
		t.Errorf("smoke expected %q target %q", r.Checks[0].Expected, r.Checks[0].Target)
	}
}
