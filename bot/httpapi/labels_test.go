package httpapi

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestJunkMethodsAndPathsAddNoSeries: over a real listener, requests with
// long random methods, on random paths and on a real route, are counted
// under method="other" and route="unmatched" or the pattern; /metrics
// grows by a few fixed series, not one per request.
func TestJunkMethodsAndPathsAddNoSeries(t *testing.T) {
	s := New(Options{Logger: slog.New(slog.DiscardHandler)})
	s.Handle("POST /slack/commands", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	do := func(method, path string) {
		t.Helper()
		req, err := http.NewRequestWithContext(context.Background(), method, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	metrics := func() string {
		code, body := get(t, s.Handler(), "/metrics")
		if code != http.StatusOK {
			t.Fatalf("/metrics = %d", code)
		}
		return body
	}
	do(http.MethodPost, "/slack/commands")
	metrics()
	before := len(metrics())
	for i := range 20 {
		method := strings.Repeat(strings.ToUpper(rand.Text()), 40)[:1024]
		path := "/" + rand.Text()
		if i%2 == 1 {
			path = "/slack/commands"
		}
		do(method, path)
	}
	text := metrics()
	if grown := len(text) - before; grown > 4<<10 {
		t.Errorf("/metrics grew by %d bytes after 20 junk requests", grown)
	}
	m := parseMetrics(t, text)
	if v, ok := m["drbot_http_requests_total"].find(map[string]string{"route": "unmatched", "method": "other", "code": "404"}); !ok || v != 20 {
		t.Errorf(`requests{route="unmatched",method="other",code="404"} = %v (%v), want 20`, v, ok)
	}
	for _, l := range m["drbot_http_requests_total"].samples {
		switch l.labels["method"] {
		case "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "other":
		default:
			t.Errorf("method label %.40q is not from the fixed set", l.labels["method"])
		}
	}
}

func TestLabelMaps(t *testing.T) {
	for in, want := range map[string]string{"GET": "GET", "OPTIONS": "OPTIONS", "get": "other", "PROPFIND": "other", "": "other"} {
		if got := methodLabel(in); got != want {
			t.Errorf("methodLabel(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[int]string{200: "200", 404: "404", 599: "599", 99: "other", 600: "other", 0: "other"} {
		if got := codeLabel(in); got != want {
			t.Errorf("codeLabel(%d) = %q, want %q", in, got, want)
		}
	}
}
