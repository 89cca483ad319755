package pagerduty_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/drbot-dev/drbot/bot/incident"
	"github.com/drbot-dev/drbot/bot/pagerduty"
	"github.com/drbot-dev/drbot/internal/fakepagerduty"
)

const (
	oldSecret = "old-secret-0123456789"
	newSecret = "new-secret-9876543210"
)

// recorder is a real Ingest function that keeps what it received.
type recorder struct {
	mu     sync.Mutex
	events []incident.Event
	fail   error
}

func (r *recorder) ingest(_ context.Context, ev incident.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	r.events = append(r.events, ev)
	return nil
}

func (r *recorder) got() []incident.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]incident.Event(nil), r.events...)
}

type webhookEnv struct {
	url  string
	rec  *recorder
	logs *safeBuffer
}

func startWebhook(t *testing.T, secrets ...string) webhookEnv {
	t.Helper()
	rec := &recorder{}
	logs := &safeBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := httptest.NewServer(pagerduty.WebhookHandler(pagerduty.WebhookOptions{
		Secrets: secrets, Ingest: rec.ingest, Logger: logger,
	}))
	t.Cleanup(srv.Close)
	return webhookEnv{url: srv.URL + "/webhooks/pagerduty", rec: rec, logs: logs}
}

// safeBuffer is a log sink the handler's goroutines and the test share.
type safeBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

func post(t *testing.T, url string, body []byte, sigHeader string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if sigHeader != "" {
		req.Header.Set(pagerduty.SignatureHeader, sigHeader)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

func TestWebhookAcceptsEitherRotatedSecret(t *testing.T) {
	env := startWebhook(t, pagerduty.ParseSecrets(" "+oldSecret+" , "+newSecret+",")...)
	body := readTestdata(t, "triggered.json")
	for _, secret := range []string{oldSecret, newSecret} {
		if code := post(t, env.url, body, pagerduty.Sign(body, secret)); code != http.StatusAccepted {
			t.Fatalf("signed with %s: status %d, want 202", secret[:3], code)
		}
	}
	got := env.rec.got()
	if len(got) != 2 || got[0].PagerDutyID != "PGR0VU2" || got[0].Kind != incident.EventTriggered {
		t.Fatalf("ingested %+v", got)
	}
	if strings.Contains(env.logs.String(), oldSecret) || strings.Contains(env.logs.String(), newSecret) ||
		strings.Contains(env.logs.String(), "little bump") {
		t.Fatalf("logs leak a secret or the body:\n%s", env.logs)
	}
}

func TestWebhookMultipleSignatureValues(t *testing.T) {
	env := startWebhook(t, newSecret)
	body := readTestdata(t, "annotated.json")
	// PagerDuty sends one v1= value per secret of the subscription while it rotates.
	header := "v1=" + strings.Repeat("ab", 32) + "," + pagerduty.Sign(body, newSecret) + ",v2=zz"
	if code := post(t, env.url, body, header); code != http.StatusAccepted {
		t.Fatalf("status %d, want 202", code)
	}
	// Through the fake's independent signer, with both secrets in one header.
	req, err := fakepagerduty.NewWebhookRequest(t.Context(), env.url, body, "unrelated", newSecret)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("fake-signed: status %d, want 202", resp.StatusCode)
	}
	if got := env.rec.got(); len(got) != 2 || got[0].Note == "" {
		t.Fatalf("ingested %+v", got)
	}
}

func TestWebhookRejections(t *testing.T) {
	body := readTestdata(t, "triggered.json")
	cases := []struct {
		name    string
		secrets []string
		method  string
		body    []byte
		header  string
		want    int
	}{
		{"forged", []string{oldSecret, newSecret}, http.MethodPost, body, pagerduty.Sign(body, "attacker"), http.StatusUnauthorized},
		{"signature of other body", []string{newSecret}, http.MethodPost, body, pagerduty.Sign(append([]byte(" "), body...), newSecret), http.StatusUnauthorized},
		{"missing header", []string{newSecret}, http.MethodPost, body, "", http.StatusUnauthorized},
		{"garbage header", []string{newSecret}, http.MethodPost, body, "sha256=abc", http.StatusUnauthorized},
		{"no secret configured", nil, http.MethodPost, body, pagerduty.Sign(body, ""), http.StatusUnauthorized},
		{"wrong method", []string{newSecret}, http.MethodGet, nil, "", http.StatusMethodNotAllowed},
		{"too large", []string{newSecret}, http.MethodPost, bytes.Repeat([]byte("a"), pagerduty.MaxWebhookBytes+1), "v1=00", http.StatusRequestEntityTooLarge},
		{"malformed but signed", []string{newSecret}, http.MethodPost, []byte(`{"event":{}}`), pagerduty.Sign([]byte(`{"event":{}}`), newSecret), http.StatusBadRequest},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := startWebhook(t, c.secrets...)
			req, err := http.NewRequestWithContext(t.Context(), c.method, env.url, bytes.NewReader(c.body))
			if err != nil {
				t.Fatal(err)
			}
			if c.header != "" {
				req.Header.Set(pagerduty.SignatureHeader, c.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != c.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, c.want)
			}
			if got := env.rec.got(); len(got) != 0 {
				t.Fatalf("Ingest was called: %+v", got)
			}
		})
	}
}

func TestWebhookIngestFailureIs500(t *testing.T) {
	env := startWebhook(t, newSecret)
	env.rec.mu.Lock()
	env.rec.fail = errors.New("database is down")
	env.rec.mu.Unlock()
	body := readTestdata(t, "triggered.json")
	if code := post(t, env.url, body, pagerduty.Sign(body, newSecret)); code != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500", code)
	}
	if !strings.Contains(env.logs.String(), "01BWDWKCFQZZ8QB8V9BKWA5JYW") {
		t.Errorf("failure log lacks the delivery id:\n%s", env.logs)
	}
}

func TestWebhookPing(t *testing.T) {
	env := startWebhook(t, newSecret)
	body := []byte(`{"event":{"id":"01","event_type":"pagey.ping","resource_type":"pagey","occurred_at":"2021-04-26T17:30:00Z","data":{"type":"ping"}}}`)
	if code := post(t, env.url, body, pagerduty.Sign(body, newSecret)); code != http.StatusOK {
		t.Fatalf("status %d, want 200", code)
	}
	if len(env.rec.got()) != 0 {
		t.Fatal("ping was ingested")
	}
}

func BenchmarkWebhookVerifyDecode(b *testing.B) {
	h := pagerduty.WebhookHandler(pagerduty.WebhookOptions{
		Secrets: []string{oldSecret, newSecret}, Ingest: func(context.Context, incident.Event) error { return nil },
		Logger: slog.New(slog.DiscardHandler),
	})
	body := readTestdata(b, "priority_updated.json")
	sig := pagerduty.Sign(body, newSecret)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/webhooks/pagerduty", bytes.NewReader(body))
		req.Header.Set(pagerduty.SignatureHeader, sig)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusAccepted {
			b.Fatalf("status %d", w.Code)
		}
	}
}
