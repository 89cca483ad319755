package pagerduty_test

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/bot/incident"
	"github.com/drbot-dev/drbot/bot/pagerduty"
)

// dedupeIngest is a real ingest function that, like the bot's, dedupes by DeliveryID.
type dedupeIngest struct {
	mu       sync.Mutex
	seen     map[string]int // delivery id → times offered
	accepted []incident.Event
}

func (d *dedupeIngest) ingest(_ context.Context, ev incident.Event) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.seen[ev.DeliveryID]++
	if d.seen[ev.DeliveryID] == 1 {
		d.accepted = append(d.accepted, ev)
	}
	return nil
}

func (d *dedupeIngest) snapshot() (map[string]int, []incident.Event) {
	d.mu.Lock()
	defer d.mu.Unlock()
	seen := make(map[string]int, len(d.seen))
	for k, v := range d.seen {
		seen[k] = v
	}
	return seen, append([]incident.Event(nil), d.accepted...)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestPollFeedsEventsWithStableDeliveryIDs(t *testing.T) {
	f, api := newFakeAndAPI(t)
	// Created while the bot was down: 23 h ago is inside the lookback, 25 h ago is not.
	f.SetClock(func() time.Time { return time.Now().Add(-23 * time.Hour) })
	recent := f.CreateIncident("PSVC1", "replica lag", "low")
	f.SetClock(func() time.Time { return time.Now().Add(-25 * time.Hour) })
	tooOld := f.CreateIncident("PSVC1", "ancient", "low")
	f.SetClock(time.Now)
	inc := f.CreateIncident("PSVC1", "Primary DB down", "high")

	d := &dedupeIngest{seen: map[string]int{}}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- pagerduty.Poll(ctx, api, []string{"PSVC1"}, 20*time.Millisecond, d.ingest, slog.New(slog.DiscardHandler))
	}()

	// Several polls of an unchanged world offer the same two delivery ids again and again.
	waitFor(t, "3 polls", func() bool { return len(f.CallsTo("/incidents")) >= 3 })
	seen, accepted := d.snapshot()
	if len(seen) != 2 || len(accepted) != 2 {
		t.Fatalf("after 3 polls: %d distinct deliveries %v, want 2", len(seen), seen)
	}
	for id, n := range seen {
		if n < 2 {
			t.Errorf("delivery %s offered %d times; ids are not stable across polls", id, n)
		}
	}
	ids := map[string]string{}
	for _, ev := range accepted {
		if ev.Kind != incident.EventTriggered {
			t.Errorf("event %+v, want triggered", ev)
		}
		ids[ev.PagerDutyID] = ev.DeliveryID
	}
	if ids[recent.ID] == "" || ids[inc.ID] == "" || ids[tooOld.ID] != "" {
		t.Fatalf("polled incidents %v: want %s and %s, not %s", ids, recent.ID, inc.ID, tooOld.ID)
	}

	// A status change is a new delivery, offered once more to ingest.
	f.SetIncidentStatus(inc.ID, "acknowledged", "PU1")
	waitFor(t, "the acknowledgement", func() bool { _, acc := d.snapshot(); return len(acc) == 3 })
	_, accepted = d.snapshot()
	if ack := accepted[2]; ack.Kind != incident.EventAcknowledged || ack.PagerDutyID != inc.ID || ack.Actor != "Ada Lovelace" {
		t.Errorf("third event %+v", ack)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Poll returned %v on cancel", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Poll did not return after cancel")
	}
}

func TestPollSurvivesAPIErrors(t *testing.T) {
	f, api := newFakeAndAPI(t)
	f.FailNext("/incidents", http.StatusInternalServerError)
	f.FailNext("/incidents", http.StatusBadGateway)
	inc := f.CreateIncident("PSVC1", "Primary DB down", "high")

	d := &dedupeIngest{seen: map[string]int{}}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- pagerduty.Poll(ctx, api, nil, 10*time.Millisecond, d.ingest, slog.New(slog.DiscardHandler))
	}()
	waitFor(t, "an event after two failed polls", func() bool { _, acc := d.snapshot(); return len(acc) == 1 })
	calls := f.CallsTo("/incidents")
	if len(calls) < 3 || calls[0].Status != http.StatusInternalServerError || calls[1].Status != http.StatusBadGateway || calls[2].Status != http.StatusOK {
		t.Fatalf("calls: %+v", calls)
	}
	if _, acc := d.snapshot(); acc[0].PagerDutyID != inc.ID {
		t.Fatalf("event %+v", acc[0])
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestPollRejectsBadArguments(t *testing.T) {
	_, api := newFakeAndAPI(t)
	if err := pagerduty.Poll(t.Context(), api, nil, 0, func(context.Context, incident.Event) error { return nil }, nil); err == nil {
		t.Error("zero interval accepted")
	}
	if err := pagerduty.Poll(t.Context(), nil, nil, time.Second, nil, nil); err == nil {
		t.Error("nil api accepted")
	}
}
