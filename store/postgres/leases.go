package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/drbot-dev/drbot/store"
)

var _ store.Leases = (*DB)(nil)

func ttlOrDefault(ttl time.Duration) time.Duration {
	if ttl <= 0 {
		return 30 * time.Second
	}
	return ttl
}

// AcquireLease implements store.Leases with one statement: the row is inserted,
// or taken over when expired, and
// gets a new token from execution_lease_tokens. No connection is kept.
func (db *DB) AcquireLease(ctx context.Context, target string, requestID int64, holder string, ttl time.Duration) (store.Lease, error) {
	l := store.Lease{Target: target, RequestID: requestID, Holder: holder}
	err := db.pool.QueryRow(ctx, `
		INSERT INTO execution_leases AS l (target, request_id, holder, token, expires_at)
		VALUES ($1, $2, $3, nextval('execution_lease_tokens'), now() + $4 * interval '1 microsecond')
		ON CONFLICT (target) DO UPDATE
		   SET request_id = EXCLUDED.request_id, holder = EXCLUDED.holder, token = EXCLUDED.token,
		       acquired_at = now(), expires_at = EXCLUDED.expires_at
		 WHERE l.expires_at < now()
		RETURNING token, expires_at`, target, requestID, holder, ttlOrDefault(ttl).Microseconds()).Scan(&l.Token, &l.ExpiresAt)
	if err == nil {
		l.ExpiresAt = l.ExpiresAt.UTC()
		return l, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return store.Lease{}, fmt.Errorf("acquire execution lease for %s: %w", target, err)
	}
	return store.Lease{}, db.leaseHolder(ctx, target, false)
}

// leaseHolder returns the *store.LeaseError naming target's current holder.
func (db *DB) leaseHolder(ctx context.Context, target string, lost bool) error {
	le := &store.LeaseError{Target: target, Lost: lost}
	err := db.pool.QueryRow(ctx, "SELECT holder, request_id, expires_at FROM execution_leases WHERE target = $1 AND expires_at > now()", target).
		Scan(&le.Holder, &le.RequestID, &le.ExpiresAt)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("read execution lease of %s: %w", target, err)
	}
	return le
}

// RenewLease implements store.Leases.
func (db *DB) RenewLease(ctx context.Context, l store.Lease, ttl time.Duration) (store.Lease, error) {
	err := db.pool.QueryRow(ctx, `
		UPDATE execution_leases SET expires_at = now() + $3 * interval '1 microsecond'
		 WHERE target = $1 AND token = $2 AND expires_at > now()
		RETURNING expires_at`, l.Target, l.Token, ttlOrDefault(ttl).Microseconds()).Scan(&l.ExpiresAt)
	if err == nil {
		l.ExpiresAt = l.ExpiresAt.UTC()
		return l, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return l, fmt.Errorf("renew execution lease for %s: %w", l.Target, err)
	}
	return l, db.leaseHolder(ctx, l.Target, true)
}

// CheckLease implements store.Leases: the fencing check before each step.
func (db *DB) CheckLease(ctx context.Context, l store.Lease) error {
	var ok bool
	err := db.pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM execution_leases WHERE target = $1 AND token = $2 AND expires_at > now())",
		l.Target, l.Token).Scan(&ok)
	if err != nil {
		return fmt.Errorf("check execution lease for %s: %w", l.Target, err)
	}
	if ok {
		return nil
	}
	return db.leaseHolder(ctx, l.Target, true)
}

// ReleaseLease implements store.Leases.
func (db *DB) ReleaseLease(ctx context.Context, l store.Lease) error {
	if _, err := db.pool.Exec(ctx, "DELETE FROM execution_leases WHERE target = $1 AND token = $2", l.Target, l.Token); err != nil {
		return fmt.Errorf("release execution lease for %s: %w", l.Target, err)
	}
	return nil
}

// LiveLeases implements store.Leases.
func (db *DB) LiveLeases(ctx context.Context) (map[string]store.Lease, error) {
	rows, err := db.pool.Query(ctx, "SELECT target, request_id, holder, token, expires_at FROM execution_leases WHERE expires_at > now()")
	if err != nil {
		return nil, fmt.Errorf("list execution leases: %w", err)
	}
	ls, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Lease, error) {
		var l store.Lease
		err := r.Scan(&l.Target, &l.RequestID, &l.Holder, &l.Token, &l.ExpiresAt)
		return l, err
	})
	if err != nil {
		return nil, fmt.Errorf("list execution leases: %w", err)
	}
	out := make(map[string]store.Lease, len(ls))
	for _, l := range ls {
		out[l.Target] = l
	}
	return out, nil
}
