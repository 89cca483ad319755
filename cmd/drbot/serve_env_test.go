package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/drbot-dev/drbot/bot/httpapi"
)

// TestServeReadsPagerDutyPollFromEnv: DRBOT_PAGERDUTY_POLL is --pagerduty-poll
// for deployments that configure drbot through the environment (the Helm
// chart's polling mode). Polling without an API token is refused before
// anything starts, which shows the variable was read.
func TestServeReadsPagerDutyPollFromEnv(t *testing.T) {
	env := []string{
		"SLACK_BOT_TOKEN=xoxb-test",
		"SLACK_SIGNING_SECRET=secret",
		"DRBOT_LISTEN=127.0.0.1:0",
		// Unreachable: serve must refuse before it gets this far.
		"DATABASE_URL=postgres://drbot@127.0.0.1:1/drbot?connect_timeout=1",
	}
	cfg := repoFile("deploy", "examples", "drbot.yaml")

	out, err := command(t, append(env, "DRBOT_PAGERDUTY_POLL=30s"), "serve", "--config", cfg).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "needs PAGERDUTY_API_TOKEN") {
		t.Fatalf("DRBOT_PAGERDUTY_POLL=30s without PAGERDUTY_API_TOKEN: err %v, output:\n%s", err, out)
	}

	out, err = command(t, append(env, "DRBOT_PAGERDUTY_POLL=often"), "serve", "--config", cfg).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "DRBOT_PAGERDUTY_POLL") {
		t.Fatalf("DRBOT_PAGERDUTY_POLL=often: err %v, output:\n%s", err, out)
	}

	// The flag wins over the variable.
	out, err = command(t, append(env, "DRBOT_PAGERDUTY_POLL=30s"), "serve", "--config", cfg, "--pagerduty-poll=-1s").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--pagerduty-poll -1s: must be positive") {
		t.Fatalf("--pagerduty-poll -1s over DRBOT_PAGERDUTY_POLL=30s: err %v, output:\n%s", err, out)
	}
}

// TestStoreReadyNamesTheStore: /readyz says the store is why a replica is not
// ready (docs/operations.md), without the error's text.
func TestStoreReadyNamesTheStore(t *testing.T) {
	srv := httpapi.New(httpapi.Options{Ready: storeReady(func(context.Context) error {
		return errors.New("ping database: dial tcp db.internal:5432: connection refused")
	})})
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	body := rec.Body.String()
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(body, "store unreachable") || strings.Contains(body, "db.internal") {
		t.Errorf("/readyz = %d %q, want 503 naming the store and not its address", rec.Code, body)
	}
	if err := storeReady(func(context.Context) error { return nil })(context.Background()); err != nil {
		t.Errorf("ready store: %v", err)
	}
}
