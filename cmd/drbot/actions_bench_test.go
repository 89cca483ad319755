package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/bot/chat"
	"github.com/drbot-dev/drbot/internal/fakeslack"
	"github.com/drbot-dev/drbot/store"
)

// benchDuration is how long the concurrent ack benchmarks run per iteration
// (DRBOT_BENCH_DURATION, default 5s; the target is 30s).
func benchDuration(b *testing.B) time.Duration {
	if s := os.Getenv("DRBOT_BENCH_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			b.Fatalf("DRBOT_BENCH_DURATION: %v", err)
		}
		return d
	}
	return 5 * time.Second
}

const benchClients = 200

// percentile returns the p-th percentile of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p / 100)
	return sorted[i]
}

// loadAcks runs benchClients clients posting bodies from next to path for d
// and returns the sorted ack latencies. Each client sends one request every
// interval (0: back to back, which measures saturation rather than latency).
func loadAcks(b *testing.B, in *instance, path string, d, interval time.Duration, next func(client, i int) string) []time.Duration {
	var mu sync.Mutex
	var lat []time.Duration
	stop := time.Now().Add(d)
	var wg sync.WaitGroup
	for c := range benchClients {
		wg.Go(func() {
			var mine []time.Duration
			// Spread the clients over the interval.
			time.Sleep(time.Duration(c) * interval / benchClients)
			for i := 0; time.Now().Before(stop); i++ {
				body := next(c, i)
				start := time.Now()
				signedPost(b, in.srv.URL+path, body)
				took := time.Since(start)
				mine = append(mine, took)
				if interval > took {
					time.Sleep(interval - took)
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.Sort(lat)
	return lat
}

// paces are the client behaviours measured: each of the 200 clients acting
// once a second (200 requests/s, a very busy incident), and back to back.
var paces = []struct {
	name     string
	interval time.Duration
}{{"paced-1s", time.Second}, {"saturated", 0}}

func report(b *testing.B, lat []time.Duration, d time.Duration) {
	b.ReportMetric(float64(percentile(lat, 50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(percentile(lat, 99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(len(lat))/d.Seconds(), "acks/s")
}

// BenchmarkSlashCommandAck: 200 concurrent clients post signed /dr commands
// (plans against PostgreSQL, dry runs and refusals) to the HTTP handler; the
// figure is the ack latency (Slack allows 3 s). Never fails on timing.
func BenchmarkSlashCommandAck(b *testing.B) {
	w := newWorld(b, "15m")
	in := startInstance(b, w)
	texts := []string{"restore-db --dry-run", "help restore-db", "restore-dbb", "cancel 999999"}
	d := benchDuration(b)
	for _, pace := range paces {
		b.Run(pace.name, func(b *testing.B) {
			for range b.N {
				lat := loadAcks(b, in, "/slack/commands", d, pace.interval, func(c, i int) string {
					return fakeslack.SlashCommand{Text: texts[(c+i)%len(texts)], UserID: mallory, UserName: "mallory", ChannelID: w.channel}.Form().Encode()
				})
				report(b, lat, d)
			}
		})
	}
}

// BenchmarkButtonAck: 200 concurrent clients press Approve on a pending
// card as a non-approver (a full policy evaluation against PostgreSQL and a
// private refusal each); the figure is the ack latency.
func BenchmarkButtonAck(b *testing.B) {
	w := newWorld(b, "15m")
	in := startInstance(b, w)
	in.command(b, w, alice, "restore-db")
	card, id := w.card(b, in.db, 0)
	d := benchDuration(b)
	for _, pace := range paces {
		b.Run(pace.name, func(b *testing.B) {
			for range b.N {
				buttonLoad(b, w, in, card, id, d, pace.interval)
			}
		})
	}
	if r, _ := in.db.Request(context.Background(), id); r.State != store.RequestPending {
		b.Errorf("non-approvers' clicks changed the request: %s", r.State)
	}
}

func buttonLoad(b *testing.B, w *world, in *instance, card fakeslack.Message, id int64, d, interval time.Duration) {
	{
		// One payload with a fresh trigger id per click (Slack's dedupe key):
		// building each from the fake's stored card would load the generator.
		tmpl := clickPayload(b, w, card, mallory, chat.ActionApprove, id)
		var p map[string]any
		form, _ := url.ParseQuery(tmpl)
		if err := json.Unmarshal([]byte(form.Get("payload")), &p); err != nil {
			b.Fatal(err)
		}
		lat := loadAcks(b, in, "/slack/interactions", d, interval, func(int, int) string {
			q := maps.Clone(p)
			q["trigger_id"] = fakeslack.NewTriggerID()
			raw, _ := json.Marshal(q)
			return fakeslack.InteractionForm(raw).Encode()
		})
		report(b, lat, d)
	}
}

// BenchmarkClickToCardUpdated: an approver's click until the card shows the
// approval (chat.update received by the fake Slack, which answers at once).
func BenchmarkClickToCardUpdated(b *testing.B) {
	w := newWorld(b, "15m")
	in := startInstance(b, w)
	ctx := context.Background()
	var lat []time.Duration
	var last int64
	b.ResetTimer()
	for i := range b.N {
		for range 20 {
			b.StopTimer()
			if err := w.restore.AddBackup(ctx, fmt.Sprintf("bench-%d-%d", i, len(lat))); err != nil {
				b.Fatal(err)
			}
			in.command(b, w, alice, "restore-db")
			card, id := w.card(b, in.db, last)
			last = id
			body := clickPayload(b, w, card, bob, chat.ActionApprove, id)
			before := card.Updates
			// People take more than a second to click: the per-channel
			// pacing of the Slack client (1 message/s) has recovered by then.
			time.Sleep(1100 * time.Millisecond)
			b.StartTimer()
			start := time.Now()
			in.click(b, body)
			if !w.slack.WaitFor(wait, func() bool {
				m, ok := w.slack.Message(w.channel, card.TS)
				return ok && m.Updates > before
			}) {
				b.Fatal("card not updated")
			}
			lat = append(lat, time.Since(start))
			b.StopTimer()
			w.waitState(b, in.db, id, store.RequestSucceeded)
			b.StartTimer()
		}
	}
	slices.Sort(lat)
	b.ReportMetric(float64(percentile(lat, 50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(percentile(lat, 95).Microseconds())/1000, "p95-ms")
	b.ReportMetric(float64(len(lat)), "clicks")
}
