package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"
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
