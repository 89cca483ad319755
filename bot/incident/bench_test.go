package incident_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"golang.org/x/time/rate"

	"github.com/drbot-dev/drbot/bot/incident"
	"github.com/drbot-dev/drbot/bot/pagerduty"
	"github.com/drbot-dev/drbot/bot/slack"
	"github.com/drbot-dev/drbot/internal/fakepagerduty"
	"github.com/drbot-dev/drbot/internal/fakeslack"
	"github.com/drbot-dev/drbot/internal/testenv"
	"github.com/drbot-dev/drbot/runbook"
	"github.com/drbot-dev/drbot/store/postgres"
)

const benchSecret = "bench-secret"

// benchBot is drbot's webhook endpoint (the real pagerduty.WebhookHandler on
// the durable lifecycle, PostgreSQL and River) behind an httptest server.
type benchBot struct {
	db    *postgres.DB
	slack *fakeslack.Server
	srv   *httptest.Server
}

func newBenchBot(b *testing.B) *benchBot {
	b.Helper()
	ctx := context.Background()
	cfg, err := runbook.Parse("bench.yaml", []byte(`
services:
  - name: lstm-pfd
    pagerduty: {service_ids: [PLSTMPF]}
    objectives: {rto: 1h, rpo: 4h}
    escalation:
      - {after: 15m, role: Platform Lead, notify: [platform-lead@example.com]}
`))
	if err != nil {
		b.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	db, err := postgres.Open(ctx, testenv.PostgresURL(b), postgres.Options{Logger: logger, MaxConns: 20})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(db.Close)
	fs := fakeslack.New()
	b.Cleanup(fs.Close)
	client, err := slack.NewClient(slack.Options{Token: fs.BotToken(), APIURL: fs.APIURL(), ChannelLimit: rate.Inf, Logger: logger})
	if err != nil {
		b.Fatal(err)
	}
	bt := incident.New(incident.Options{Config: cfg, Store: db, Chat: client, Logger: logger})
	workers := river.NewWorkers()
	bt.RegisterWorkers(workers)
	if os.Getenv("BENCH_NO_WORKERS") == "" {
		if err := db.StartJobs(ctx, workers, nil); err != nil {
			b.Fatal(err)
		}
	}
	srv := httptest.NewServer(pagerduty.WebhookHandler(pagerduty.WebhookOptions{Secrets: []string{benchSecret}, Ingest: bt.HandleIncidentEvent, Logger: logger}))
	b.Cleanup(srv.Close)
	return &benchBot{db: db, slack: fs, srv: srv}
}

func (bb *benchBot) post(client *http.Client, body []byte) (int, error) {
	req, err := http.NewRequest(http.MethodPost, bb.srv.URL, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(pagerduty.SignatureHeader, fakepagerduty.Sign(body, benchSecret))
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func (bb *benchBot) incidentChannels() int {
	n := 0
	for _, c := range bb.slack.Channels() {
		if strings.HasPrefix(c.Name, "incident-") {
			n++
		}
	}
	return n
}

// webhookWorkload is 10,000 signed deliveries about 100 incidents: per
// incident one trigger and 79 other events, and 2,000 redeliveries (20 %)
// of earlier deliveries, shuffled deterministically.
func webhookWorkload(b *testing.B, f *fakepagerduty.Fake) [][]byte {
	b.Helper()
	kinds := []string{"priority_updated", "escalated", "reassigned", "acknowledged", "unacknowledged"}
	var unique [][]byte
	var ids []string
	for i := range 100 {
		inc := f.CreateIncident("PLSTMPF", fmt.Sprintf("bench incident %d", i), "high")
		ids = append(ids, inc.ID)
		unique = append(unique, f.WebhookBody("triggered", inc.ID))
	}
	for j := range 79 {
		for _, id := range ids {
			unique = append(unique, f.WebhookBody(kinds[j%len(kinds)], id))
		}
	}
	all := slices.Clone(unique)
	for k := range 2000 {
		all = append(all, unique[(k*7919)%len(unique)])
	}
	// Deterministic shuffle that keeps each incident's trigger among the
	// first deliveries, as PagerDuty sends it first.
	rest := all[100:]
	for i := range rest {
		j := (i*104729 + 17) % len(rest)
		rest[i], rest[j] = rest[j], rest[i]
	}
	return all
}

// BenchmarkWebhookIngest posts 10,000 signed PagerDuty webhooks (20 %
// duplicates, 100 incidents) from 8 and from 32 concurrent senders to the real handler
// on PostgreSQL and reports deliveries/s and p50/p99 response time. It fails
// (not on timing) unless every delivery got 202 and exactly 100 channels were
// created. Run with -cpu 2 for the 2-core figure.
func BenchmarkWebhookIngest(b *testing.B) {
	for _, senders := range []int{8, 32} {
		b.Run(fmt.Sprintf("senders=%d", senders), func(b *testing.B) { benchWebhookIngest(b, senders) })
	}
}

func benchWebhookIngest(b *testing.B, senders int) {
	for b.Loop() {
		b.StopTimer()
		bb := newBenchBot(b)
		pd := fakepagerduty.New(b, "t")
		pd.AddService("PLSTMPF", "LSTM", "")
		bodies := webhookWorkload(b, pd)
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
		lat := make([]time.Duration, len(bodies))
		var next, failed atomic.Int64
		var wg sync.WaitGroup
		b.StartTimer()
		start := time.Now()
		// The triggers first, then everything else, senders at a time.
		for _, part := range [][2]int{{0, 100}, {100, len(bodies)}} {
			next.Store(int64(part[0]))
			for range senders {
				wg.Go(func() {
					for {
						i := int(next.Add(1) - 1)
						if i >= part[1] {
							return
						}
						t0 := time.Now()
						code, err := bb.post(client, bodies[i])
						lat[i] = time.Since(t0)
						if err != nil || code != http.StatusAccepted {
							failed.Add(1)
						}
					}
				})
			}
			wg.Wait()
		}
		elapsed := time.Since(start)
		b.StopTimer()
		if failed.Load() != 0 {
			b.Fatalf("%d deliveries not accepted", failed.Load())
		}
		if !bb.slack.WaitFor(2*time.Minute, func() bool { return bb.incidentChannels() == 100 }) {
			b.Fatalf("%d incident channels, want 100", bb.incidentChannels())
		}
		var deliveries int
		if err := bb.db.Pool().QueryRow(context.Background(), "SELECT count(*) FROM webhook_deliveries").Scan(&deliveries); err != nil {
			b.Fatal(err)
		}
		if deliveries != 8000 {
			b.Fatalf("%d deliveries recorded, want 8000 distinct", deliveries)
		}
		slices.Sort(lat)
		b.ReportMetric(float64(len(bodies))/elapsed.Seconds(), "deliveries/s")
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		b.ReportMetric(float64(bb.incidentChannels()), "channels")
		b.StartTimer()
	}
}

// BenchmarkAlertToStaffedChannel measures, for 50 incidents one after
// another, the time from posting the trigger webhook to the header being in
// the new channel (fake Slack answering at once), and reports p50/p95.
func BenchmarkAlertToStaffedChannel(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		bb := newBenchBot(b)
		pd := fakepagerduty.New(b, "t")
		pd.AddService("PLSTMPF", "LSTM", "")
		client := &http.Client{}
		var lat []time.Duration
		b.StartTimer()
		for i := range 50 {
			inc := pd.CreateIncident("PLSTMPF", fmt.Sprintf("alert %d", i), "high")
			body := pd.WebhookBody("triggered", inc.ID)
			want := "Incident: alert " + fmt.Sprint(i) + `"`
			t0 := time.Now()
			if code, err := bb.post(client, body); err != nil || code != http.StatusAccepted {
				b.Fatalf("trigger: %d %v", code, err)
			}
			if !bb.slack.WaitFor(30*time.Second, func() bool {
				for _, c := range bb.slack.Channels() {
					for _, m := range bb.slack.Messages(c.ID) {
						if strings.Contains(string(m.Blocks), want) {
							return true
						}
					}
				}
				return false
			}) {
				b.Fatalf("header of incident %d never posted", i)
			}
			lat = append(lat, time.Since(t0))
		}
		b.StopTimer()
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*95/100].Microseconds())/1000, "p95-ms")
		b.StartTimer()
	}
}
