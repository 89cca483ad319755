package httpapi

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
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/drbot-dev/drbot/internal/buildinfo"
)

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

func TestHealthz(t *testing.T) {
	s := New(Options{Logger: slog.New(slog.DiscardHandler)})
	code, body := get(t, s.Handler(), "/healthz")
	if code != http.StatusOK || strings.TrimSpace(body) != "ok" {
		t.Fatalf("healthz = %d %q", code, body)
	}
}

func TestReadyz(t *testing.T) {
	var mu sync.Mutex
	var readyErr error
	s := New(Options{
		Logger: slog.New(slog.DiscardHandler),
		Ready: func(context.Context) error {
			mu.Lock()
			defer mu.Unlock()
			return readyErr
		},
	})
	h := s.Handler()
	if code, body := get(t, h, "/readyz"); code != http.StatusOK {
		t.Fatalf("ready: %d %q", code, body)
	}

	mu.Lock()
	readyErr = &NotReadyError{Reason: "store unreachable", Err: errors.New("dial postgres://drbot:hunter2@db/drbot: refused")}
	mu.Unlock()
	code, body := get(t, h, "/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "store unreachable") {
		t.Fatalf("not ready: %d %q", code, body)
	}
	if strings.Contains(body, "hunter2") {
		t.Fatalf("readyz leaked the error text: %q", body)
	}

	mu.Lock()
	readyErr = errors.New("password=hunter2")
	mu.Unlock()
	code, body = get(t, h, "/readyz")
	if code != http.StatusServiceUnavailable || strings.Contains(body, "hunter2") {
		t.Fatalf("plain error: %d %q", code, body)
	}
}

func parseMetrics(t *testing.T, text string) map[string]*family {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, text)
	}
	out := map[string]*family{}
	for name, f := range fams {
		df := &family{}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			var v float64
			switch {
			case m.Counter != nil:
				v = m.GetCounter().GetValue()
			case m.Gauge != nil:
				v = m.GetGauge().GetValue()
			case m.Histogram != nil:
				v = float64(m.GetHistogram().GetSampleCount())
			}
			df.samples = append(df.samples, sample{labels, v})
		}
		out[name] = df
	}
	return out
}

type sample struct {
	labels map[string]string
	value  float64
}

type family struct{ samples []sample }

func (f *family) find(want map[string]string) (float64, bool) {
	if f == nil {
		return 0, false
	}
next:
	for _, s := range f.samples {
		for k, v := range want {
			if s.labels[k] != v {
				continue next
			}
		}
		return s.value, true
	}
	return 0, false
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := New(Options{Logger: slog.New(slog.DiscardHandler), Metrics: reg})
	s.Handle("POST /webhooks/pagerduty", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	s.Handle("GET /things/{id}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(r.PathValue("id")))
	}))
	s.Handle("GET /boom", http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("kaboom") }))
	h := s.Handler()

	for _, id := range []string{"a", "b", "c"} {
		if code, _ := get(t, h, "/things/"+id); code != 200 {
			t.Fatalf("/things/%s = %d", id, code)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/webhooks/pagerduty", strings.NewReader(`{}`)))
	if rec.Code != http.StatusAccepted {
		t.Fatalf("webhook = %d", rec.Code)
	}
	rec = httptest.NewRecorder()
	big := bytes.Repeat([]byte("x"), MaxBodyBytes+10)
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/webhooks/pagerduty", bytes.NewReader(big)))
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized body = %d, want 413", rec.Code)
	}
	if code, body := get(t, h, "/boom"); code != 500 || strings.Contains(body, "kaboom") {
		t.Fatalf("/boom = %d %q", code, body)
	}
	if code, _ := get(t, h, "/nope/secret-token"); code != 404 {
		t.Fatalf("unmatched = %d", code)
	}
	get(t, h, "/healthz")

	code, text := get(t, h, "/metrics")
	if code != 200 {
		t.Fatalf("/metrics = %d", code)
	}
	m := parseMetrics(t, text)
	bi := buildinfo.Get()
	if v, ok := m["drbot_build_info"].find(map[string]string{"version": bi.Version, "commit": bi.Commit, "goversion": bi.GoVersion}); !ok || v != 1 {
		t.Fatalf("build info missing or wrong (%v %v):\n%s", v, ok, text)
	}
	checks := []struct {
		labels map[string]string
		want   float64
	}{
		{map[string]string{"route": "GET /things/{id}", "method": "GET", "code": "200"}, 3},
		{map[string]string{"route": "POST /webhooks/pagerduty", "method": "POST", "code": "202"}, 1},
		{map[string]string{"route": "POST /webhooks/pagerduty", "method": "POST", "code": "413"}, 1},
		{map[string]string{"route": "GET /boom", "method": "GET", "code": "500"}, 1},
		{map[string]string{"route": "unmatched", "method": "GET", "code": "404"}, 1},
		{map[string]string{"route": "GET /healthz", "method": "GET", "code": "200"}, 1},
	}
	for _, c := range checks {
		if v, ok := m["drbot_http_requests_total"].find(c.labels); !ok || v != c.want {
			t.Errorf("drbot_http_requests_total%v = %v (found %v), want %v", c.labels, v, ok, c.want)
		}
	}
	if v, ok := m["drbot_http_request_duration_seconds"].find(map[string]string{"route": "GET /things/{id}"}); !ok || v != 3 {
		t.Errorf("duration histogram count = %v (%v), want 3", v, ok)
	}
	if strings.Contains(text, "/things/a") || strings.Contains(text, "secret-token") {
		t.Errorf("raw paths leaked into labels")
	}
	if _, ok := m["go_goroutines"]; !ok {
		t.Errorf("go collector missing")
	}
	if _, ok := m["process_start_time_seconds"]; !ok {
		t.Errorf("process collector missing")
	}
}

func TestGracefulShutdown(t *testing.T) {
	s := New(Options{Logger: slog.New(slog.DiscardHandler)})
	started := make(chan struct{})
	release := make(chan struct{})
	s.Handle("GET /slow", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		_, _ = w.Write([]byte("finished"))
	}))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- s.ListenAndServe(ctx, "127.0.0.1:0") }()

	var base string
	deadline := time.Now().Add(5 * time.Second)
	for s.Addr() == nil {
		if time.Now().After(deadline) {
			t.Fatal("server did not start listening")
		}
		time.Sleep(5 * time.Millisecond)
	}
	base = "http://" + s.Addr().String()
	if resp, err := http.Get(base + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz over TCP: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	type result struct {
		body string
		err  error
	}
	slow := make(chan result, 1)
	go func() {
		resp, err := http.Get(base + "/slow")
		if err != nil {
			slow <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		slow <- result{string(b), err}
	}()
	<-started
	cancel() // shutdown begins while /slow is in flight

	select {
	case err := <-served:
		t.Fatalf("server returned before the in-flight request finished: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	// New connections are refused once shutdown has started.
	if resp, err := http.Get(base + "/healthz"); err == nil {
		resp.Body.Close()
		t.Fatalf("new request accepted during shutdown")
	}
	close(release)
	r := <-slow
	if r.err != nil || r.body != "finished" {
		t.Fatalf("in-flight request: %q %v", r.body, r.err)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("ListenAndServe: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("server did not stop")
	}
}

func TestListenError(t *testing.T) {
	s := New(Options{Logger: slog.New(slog.DiscardHandler)})
	err := s.ListenAndServe(context.Background(), "256.0.0.1:99999")
	if err == nil || !strings.Contains(err.Error(), "listen on 256.0.0.1:99999") {
		t.Fatalf("err = %v", err)
	}
}
