package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/riverqueue/river"

	"github.com/drbot-dev/drbot/store"
)

// RecordDelivery records a webhook delivery id and reports whether it is new;
// false means the delivery was seen before and must not be processed again.
func (db *DB) RecordDelivery(ctx context.Context, id string) (bool, error) {
	if id == "" {
		return false, errors.New("record delivery: delivery id is empty")
	}
	tag, err := db.pool.Exec(ctx, "INSERT INTO webhook_deliveries (delivery_id) VALUES ($1) ON CONFLICT DO NOTHING", id)
	if err != nil {
		return false, fmt.Errorf("record delivery %s: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}

// PruneDeliveries forgets deliveries received before cutoff and returns how
// many it removed. Webhook senders retry for hours, not weeks.
func (db *DB) PruneDeliveries(ctx context.Context, cutoff time.Time) (int64, error) {
	tag, err := db.pool.Exec(ctx, "DELETE FROM webhook_deliveries WHERE received_at < $1", cutoff)
	if err != nil {
		return 0, fmt.Errorf("prune webhook deliveries: %w", err)
	}
	return tag.RowsAffected(), nil
}

// DeliveryRetention is how long webhook delivery ids are kept for
// deduplication; PagerDuty retries for far less.
const DeliveryRetention = 7 * 24 * time.Hour

// PruneDeliveriesKind is the kind of the job that forgets old deliveries.
const PruneDeliveriesKind = store.KindPruneDeliveries

// PruneDeliveriesArgs is the job that forgets deliveries older than DeliveryRetention.
type PruneDeliveriesArgs struct{}

// Kind implements river.JobArgs and store.JobArgs.
func (PruneDeliveriesArgs) Kind() string { return PruneDeliveriesKind }

type pruneDeliveriesWorker struct {
	river.WorkerDefaults[PruneDeliveriesArgs]
	db *DB
}

func (w *pruneDeliveriesWorker) Work(ctx context.Context, _ *river.Job[PruneDeliveriesArgs]) error {
	n, err := w.db.PruneDeliveries(ctx, time.Now().Add(-DeliveryRetention))
	if err != nil {
		return err
	}
	w.db.log.InfoContext(ctx, "pruned webhook deliveries", "removed", n)
	return nil
}

// PruneDeliveriesPeriodicJob forgets old webhook deliveries every day (and at start).
func PruneDeliveriesPeriodicJob() *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(24*time.Hour),
		func() (river.JobArgs, *river.InsertOpts) { return PruneDeliveriesArgs{}, nil },
		&river.PeriodicJobOpts{RunOnStart: true})
}
