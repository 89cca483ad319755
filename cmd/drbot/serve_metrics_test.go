package main

import (
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/drbot-dev/drbot/internal/fakeslack"
	"github.com/drbot-dev/drbot/internal/testenv"
)

// TestServeMetricsStayBoundedUnderJunkRequests: unauthenticated requests with
// long random methods and random paths must not add series to /metrics. Every
// label of every drbot_ metric takes its value from a fixed set.
func TestServeMetricsStayBoundedUnderJunkRequests(t *testing.T) {
	dbURL := testenv.PostgresURL(t)
	slack := fakeslack.New()
	t.Cleanup(slack.Close)
	addr := freeAddr(t)
	cmd := command(t, []string{
		"DATABASE_URL=" + dbURL,
		"DRBOT_LISTEN=" + addr,
		"SLACK_BOT_TOKEN=" + slack.BotToken(),
		"SLACK_SIGNING_SECRET=metrics-secret",
		"SLACK_API_URL=" + slack.APIURL(),
		"PAGERDUTY_WEBHOOK_SECRET=pd-secret",
	}, "serve", "--config", repoFile("deploy", "examples", "drbot.yaml"))
	srv := startServer(t, cmd, addr)

	get(t, srv.base+"/metrics")
	baseline := len(get(t, srv.base+"/metrics"))

	var junk []string
	client := &http.Client{Timeout: 10 * time.Second}
	for i := range 20 {
		method := strings.ToUpper(rand.Text()) // 26 characters of [A-Z2-7]
		for len(method) < 1024 {
			method += strings.ToUpper(rand.Text())
		}
		method = method[:1024]
		path := "/" + strings.ToLower(rand.Text())
		if i%2 == 1 {
			path = "/slack/commands" // a real route, with a method it does not take
		}
		junk = append(junk, method[:40], path)
		req, err := http.NewRequestWithContext(context.Background(), method, srv.base+path, strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("junk request %d: %v", i, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}

	text := get(t, srv.base+"/metrics")
	// The junk adds at most a few fixed series (method="other", the
	// unmatched route, 404/405), never one per request: well under 20 KB,
	// where today's raw methods add more than 20 × 1 KB.
	if grown := len(text) - baseline; grown > 16<<10 {
		t.Errorf("/metrics grew by %d bytes after 20 junk requests (from %d to %d)", grown, baseline, len(text))
	}
	for _, j := range junk {
		if strings.Contains(text, j) {
			t.Errorf("/metrics holds a label taken from the request: %q", j)
		}
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	methods := map[string]bool{"GET": true, "HEAD": true, "POST": true, "PUT": true, "DELETE": true, "PATCH": true, "OPTIONS": true, "other": true}
	fam := fams["drbot_http_requests_total"]
	if fam == nil {
		t.Fatal("/metrics has no drbot_http_requests_total")
	}
	sawOther := false
	for _, m := range fam.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "method" {
				if !methods[l.GetValue()] {
					t.Errorf("method label %q is not one of the fixed set", l.GetValue()[:min(40, len(l.GetValue()))])
				}
				sawOther = sawOther || l.GetValue() == "other"
			}
			if l.GetName() == "route" && strings.HasPrefix(l.GetValue(), "/") {
				t.Errorf("route label %q is a raw path", l.GetValue())
			}
		}
	}
	if !sawOther {
		t.Errorf("the junk requests were not counted under method=\"other\":\n%s", metricLines(text, "drbot_http_requests_total"))
	}
}

func metricLines(text, name string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, name) {
			out = append(out, l[:min(len(l), 200)])
		}
	}
	return strings.Join(out, "\n")
}
