package failover_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/failover"
)

// TestFailoverRefusedWhenHealthRedirectsToAHealthyPrimary: a health URL that
// redirects (http → https, /health → /healthz) to a page answering 200 is a
// primary that still serves: step 1 refuses, as for a direct 200. A redirect
// to a page answering 503 lets it proceed.
func TestFailoverRefusedWhenHealthRedirectsToAHealthyPrimary(t *testing.T) {
	w := newWorld(t)
	w.primaryUp.Store(true)
	redirect := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		http.Redirect(rw, r, w.health.URL+"/health", http.StatusFound)
	}))
	t.Cleanup(redirect.Close)
	cfg := w.config()
	cfg.Services[0].Failover.Health = redirect.URL + "/health"
	a := failover.New(cfg, w.load)
	_, err := a.Plan(ctx(t), actions.Params{Service: "inflow"})
	if msg := refusal(t, err); !strings.HasPrefix(msg, "primary still healthy: GET "+redirect.URL+"/health answered 200 OK") {
		t.Fatalf("refusal %q", msg)
	}
	w.primaryUp.Store(false)
	plan, err := a.Plan(ctx(t), actions.Params{Service: "inflow"})
	if err != nil {
		t.Fatal(err)
	}
	if f := fact(plan, "Primary health (step 1)"); !strings.Contains(f, "answered 503 Service Unavailable") {
		t.Fatalf("primary health fact %q", f)
	}
}
