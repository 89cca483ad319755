package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/drbot-dev/drbot/store"
)

var (
	_ store.DrillRuns      = (*DB)(nil)
	_ store.DrillReminders = (*DB)(nil)
	_ store.DrillCopies    = (*DB)(nil)
)

// DrillRuns implements store.DrillRuns: drill requests with when they
// started running and when they ended, from their audit rows.
func (db *DB) DrillRuns(ctx context.Context, service string) ([]store.DrillRun, error) {
	rows, err := db.pool.Query(ctx, `
		SELECT r.id, r.service,
		       COALESCE(NULLIF(r.params->'Args'->>'procedure', ''), r.plan->>'kind', ''),
		       r.state, r.requested_by, r.created_at,
		       (SELECT min(a.at) FROM audit_events a WHERE a.request_id = r.id AND a.kind = $2),
		       (SELECT max(a.at) FROM audit_events a WHERE a.request_id = r.id AND a.kind = ANY($3))
		  FROM action_requests r
		 WHERE r.kind = $4 AND ($1 = '' OR r.service = $1)
		 ORDER BY r.id DESC`,
		service, store.AuditRequestRunning,
		[]string{store.RequestMovedKind(store.RequestSucceeded), store.AuditRequestFailed, store.AuditRequestCancelled, store.AuditRequestDenied, store.AuditRequestExpired},
		store.KindDrill)
	if err != nil {
		return nil, fmt.Errorf("drill runs of %q: %w", service, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.DrillRun, error) {
		var (
			d                 store.DrillRun
			started, finished *time.Time
		)
		err := r.Scan(&d.RequestID, &d.Service, &d.Procedure, &d.State, &d.RequestedBy, &d.CreatedAt, &started, &finished)
		d.CreatedAt = d.CreatedAt.UTC()
		if started != nil {
			d.StartedAt = started.UTC()
		}
		if finished != nil && store.Final(d.State) {
			d.FinishedAt = finished.UTC()
		}
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("drill runs of %q: %w", service, err)
	}
	return out, nil
}

// RecordDrillReminder implements store.DrillReminders.
func (db *DB) RecordDrillReminder(ctx context.Context, r store.DrillReminder, ev store.AuditEvent, jobs ...store.Job) (bool, error) {
	var created bool
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `
			INSERT INTO drill_reminders (service, procedure, kind, due_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT DO NOTHING`, r.Service, r.Procedure, r.Kind, r.DueAt)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return nil
		}
		created = true
		if err := db.insertJobsTx(ctx, tx, jobs); err != nil {
			return err
		}
		if ev.Kind == "" {
			ev.Kind = r.Kind
		}
		if ev.Actor == "" {
			ev.Actor = "drbot"
		}
		_, err = appendAuditTx(ctx, tx, ev)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("record %s reminder of %s %s: %w", r.Kind, r.Service, r.Procedure, err)
	}
	return created, nil
}

// RecordDrillCopy implements store.DrillCopies.
func (db *DB) RecordDrillCopy(ctx context.Context, c store.DrillCopy) error {
	if _, err := db.pool.Exec(ctx, `
		INSERT INTO drill_copies (server, name, service, database, keep) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (server, name) DO UPDATE SET keep = EXCLUDED.keep`,
		c.Server, c.Name, c.Service, c.Database, c.Keep); err != nil {
		return fmt.Errorf("record drill copy %s/%s: %w", c.Server, c.Name, err)
	}
	return nil
}

// DrillCopyRecorded implements store.DrillCopies.
func (db *DB) DrillCopyRecorded(ctx context.Context, server, name string) (bool, error) {
	var ok bool
	if err := db.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM drill_copies WHERE server = $1 AND name = $2 AND dropped_at IS NULL)`,
		server, name).Scan(&ok); err != nil {
		return false, fmt.Errorf("look up drill copy %s/%s: %w", server, name, err)
	}
	return ok, nil
}

// DrillCopyDropped implements store.DrillCopies.
func (db *DB) DrillCopyDropped(ctx context.Context, server, name string) error {
	if _, err := db.pool.Exec(ctx, `UPDATE drill_copies SET dropped_at = now() WHERE server = $1 AND name = $2 AND dropped_at IS NULL`,
		server, name); err != nil {
		return fmt.Errorf("record drill copy %s/%s dropped: %w", server, name, err)
	}
	return nil
}

// DrillCopiesLeft implements store.DrillCopies.
func (db *DB) DrillCopiesLeft(ctx context.Context) ([]store.DrillCopy, error) {
	rows, err := db.pool.Query(ctx, `
		SELECT server, name, service, database, keep, created_at FROM drill_copies
		 WHERE dropped_at IS NULL ORDER BY created_at, name`)
	if err != nil {
		return nil, fmt.Errorf("drill copies left: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.DrillCopy, error) {
		var c store.DrillCopy
		err := r.Scan(&c.Server, &c.Name, &c.Service, &c.Database, &c.Keep, &c.CreatedAt)
		c.CreatedAt = c.CreatedAt.UTC()
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("drill copies left: %w", err)
	}
	return out, nil
}
