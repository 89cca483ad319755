package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/drbot-dev/drbot/store"
)

var _ store.BackupStates = (*DB)(nil)

// RecordBackupState implements store.BackupStates. The row is created when
// missing, then locked, so two replicas checking at once serialise on it and
// only the first sees (and announces) the change.
func (db *DB) RecordBackupState(ctx context.Context, s store.BackupState, ev store.AuditEvent, jobs ...store.Job) (bool, error) {
	var changed bool
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `
			INSERT INTO backup_states (service, kind, name, location, checked_at, stale)
			VALUES ($1, $2, $3, $4, $5, false) ON CONFLICT DO NOTHING`,
			s.Service, s.Kind, s.Name, s.Location, s.CheckedAt); err != nil {
			return err
		}
		var was bool
		if err := tx.QueryRow(ctx, "SELECT stale FROM backup_states WHERE service = $1 AND kind = $2 AND name = $3 FOR UPDATE",
			s.Service, s.Kind, s.Name).Scan(&was); err != nil {
			return err
		}
		var newestAt *time.Time
		if !s.NewestAt.IsZero() {
			newestAt = &s.NewestAt
		}
		if _, err := tx.Exec(ctx, `
			UPDATE backup_states SET location = $4, newest_key = $5, newest_at = $6, checked_at = $7, stale = $8
			 WHERE service = $1 AND kind = $2 AND name = $3`,
			s.Service, s.Kind, s.Name, s.Location, s.NewestKey, newestAt, s.CheckedAt, s.Stale); err != nil {
			return err
		}
		if was == s.Stale {
			return nil
		}
		changed = true
		if err := db.insertJobsTx(ctx, tx, jobs); err != nil {
			return err
		}
		_, err := appendAuditTx(ctx, tx, ev)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("record backup state of %s %s %s: %w", s.Service, s.Kind, s.Name, err)
	}
	return changed, nil
}

// BackupStatesOf implements store.BackupStates.
func (db *DB) BackupStatesOf(ctx context.Context, service string) ([]store.BackupState, error) {
	rows, err := db.pool.Query(ctx, `
		SELECT service, kind, name, location, newest_key, newest_at, checked_at, stale
		  FROM backup_states WHERE service = $1 ORDER BY kind, name`, service)
	if err != nil {
		return nil, fmt.Errorf("backup states of %s: %w", service, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.BackupState, error) {
		var (
			s        store.BackupState
			newestAt *time.Time
		)
		err := r.Scan(&s.Service, &s.Kind, &s.Name, &s.Location, &s.NewestKey, &newestAt, &s.CheckedAt, &s.Stale)
		if newestAt != nil {
			s.NewestAt = newestAt.UTC()
		}
		s.CheckedAt = s.CheckedAt.UTC()
		return s, err
	})
	if err != nil {
		return nil, fmt.Errorf("backup states of %s: %w", service, err)
	}
	return out, nil
}
