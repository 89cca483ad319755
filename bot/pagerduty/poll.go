package pagerduty

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/drbot-dev/drbot/bot/incident"
)

// PollLookback is how far back each poll lists incidents. PagerDuty's since/until
// select incidents by creation time, so every poll re-lists the whole window (the
// ingest pipeline dedupes by DeliveryID) to see status changes of incidents
// opened earlier, including changes made while the bot was down. Status changes
// of incidents older than this are left to webhooks.
const PollLookback = 24 * time.Hour

// maxPollBackoff caps the wait after repeated failures (or every, if larger).
const maxPollBackoff = 5 * time.Minute

// Poll lists the incidents of serviceIDs every interval, starting immediately,
// and feeds each through ingest, the same pipeline as webhooks. On an API or
// ingest error it logs, backs off exponentially (capped) and keeps going. The
// listing window is PollLookback, extended back to the last successful poll
// when failures lasted longer than that. Poll returns nil when ctx is done.
func Poll(ctx context.Context, api *API, serviceIDs []string, every time.Duration,
	ingest func(ctx context.Context, ev incident.Event) error, logger *slog.Logger) error {
	if api == nil || ingest == nil {
		return errors.New("pagerduty: poll: the API client and ingest function are required")
	}
	if every <= 0 {
		return fmt.Errorf("pagerduty: poll: interval must be positive, got %s", every)
	}
	if logger == nil {
		logger = slog.Default()
	}
	logger = logger.With("component", "pagerduty-poller")

	var lastSuccess time.Time
	failures := 0
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		start := time.Now()
		since := start.Add(-PollLookback)
		if !lastSuccess.IsZero() && lastSuccess.Before(since) {
			since = lastSuccess
		}
		n, err := pollOnce(ctx, api, serviceIDs, since, ingest)
		if ctx.Err() != nil {
			return nil
		}
		wait := every
		if err != nil {
			failures++
			wait = backoff(every, failures)
			logger.WarnContext(ctx, "PagerDuty poll failed; will retry", "err", err,
				"consecutive_failures", failures, "retry_in", wait.Round(time.Millisecond))
		} else {
			if failures > 0 {
				logger.InfoContext(ctx, "PagerDuty poll recovered", "after_failures", failures)
			}
			failures = 0
			lastSuccess = start
			logger.DebugContext(ctx, "PagerDuty poll done", "incidents", n)
		}
		timer.Reset(wait)
	}
}

// pollOnce lists incidents and ingests each, trying all of them even when some
// fail; it returns how many were listed and the joined errors.
func pollOnce(ctx context.Context, api *API, serviceIDs []string, since time.Time,
	ingest func(ctx context.Context, ev incident.Event) error) (int, error) {
	events, err := api.ListIncidents(ctx, serviceIDs, since)
	if err != nil {
		return 0, err
	}
	var errs []error
	for _, ev := range events {
		if err := ingest(ctx, ev); err != nil {
			errs = append(errs, fmt.Errorf("ingest %s event of incident %s: %w", ev.Kind, ev.PagerDutyID, err))
		}
	}
	return len(events), errors.Join(errs...)
}

// backoff is every doubled per consecutive failure, capped at
// max(every, maxPollBackoff), with up to 10% jitter.
func backoff(every time.Duration, failures int) time.Duration {
	limit := max(every, maxPollBackoff)
	d := every
	for i := 0; i < failures && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	return d + rand.N(d/10+1) //nolint:gosec // jitter, not a secret
}
