package postgres

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/drbot-dev/drbot/store"
)

// auditLockKey is the transaction advisory lock that serialises audit appends
// across goroutines and processes, so the chain has exactly one tip.
const auditLockKey = int64(0x6472626f74617564) // "drbotaud"

// auditDomain starts every hashed record, versioning the encoding.
const auditDomain = "drbot.audit.v1"

// Default and maximum page sizes for AuditEvents.
const (
	defaultAuditLimit = 1000
	maxAuditLimit     = 10000
)

// auditHash computes sha256(prev || canonical(row)). The canonical encoding is
// the domain string followed by, in order: seq (8 bytes big-endian), incident
// id and request id (1 presence byte, then 8 bytes big-endian when present),
// actor, kind and data (each an 8-byte big-endian length, then the bytes), and
// at as microseconds since the Unix epoch (8 bytes big-endian).
//
// data is the jsonb text exactly as PostgreSQL prints it (its own key order and
// spacing) and at is truncated to microseconds, PostgreSQL's precision, so the
// hash can be recomputed from the stored row.
func auditHash(prev []byte, seq int64, incidentID, requestID *int64, actor, kind, data string, at time.Time) []byte {
	h := sha256.New()
	var buf [8]byte
	putInt := func(v int64) {
		binary.BigEndian.PutUint64(buf[:], uint64(v)) //nolint:gosec // two's-complement bytes are the canonical form
		h.Write(buf[:])
	}
	putOpt := func(v *int64) {
		if v == nil {
			h.Write([]byte{0})
			return
		}
		h.Write([]byte{1})
		putInt(*v)
	}
	putStr := func(s string) {
		putInt(int64(len(s)))
		h.Write([]byte(s))
	}
	h.Write(prev)
	h.Write([]byte(auditDomain))
	putInt(seq)
	putOpt(incidentID)
	putOpt(requestID)
	putStr(actor)
	putStr(kind)
	putStr(data)
	putInt(at.UTC().Truncate(time.Microsecond).UnixMicro())
	return h.Sum(nil)
}

// zeroHash is the first row's PrevHash.
var zeroHash = make([]byte, sha256.Size)

// AppendAudit appends ev to the audit chain in its own transaction. Actor and
// Kind are required; Data defaults to {} and At to the database clock.
func (db *DB) AppendAudit(ctx context.Context, ev store.AuditEvent) (store.AuditEvent, error) {
	var out store.AuditEvent
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		out, err = appendAuditTx(ctx, tx, ev)
		return err
	})
	if err != nil {
		return store.AuditEvent{}, fmt.Errorf("append audit event %s: %w", ev.Kind, err)
	}
	return out, nil
}

// appendAuditTx appends ev inside tx. It takes the audit lock, which is held
// until tx ends, so callers do it last in their transaction.
func appendAuditTx(ctx context.Context, tx pgx.Tx, ev store.AuditEvent) (store.AuditEvent, error) {
	if strings.TrimSpace(ev.Actor) == "" {
		return store.AuditEvent{}, errors.New("audit event has no actor")
	}
	if strings.TrimSpace(ev.Kind) == "" {
		return store.AuditEvent{}, errors.New("audit event has no kind")
	}
	data := ev.Data
	if len(bytes.TrimSpace(data)) == 0 {
		data = json.RawMessage("{}")
	}
	if !json.Valid(data) {
		return store.AuditEvent{}, fmt.Errorf("audit event %s: data is not valid JSON", ev.Kind)
	}
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", auditLockKey); err != nil {
		return store.AuditEvent{}, fmt.Errorf("lock audit chain: %w", err)
	}
	var (
		seq   int64
		now   time.Time
		prev  []byte
		canon string
	)
	err := tx.QueryRow(ctx, `
		SELECT nextval('audit_events_seq_seq'), clock_timestamp(),
		       (SELECT hash FROM audit_events ORDER BY seq DESC LIMIT 1),
		       $1::jsonb::text`, string(data)).Scan(&seq, &now, &prev, &canon)
	if err != nil {
		return store.AuditEvent{}, fmt.Errorf("read audit chain tip: %w", err)
	}
	if prev == nil {
		prev = zeroHash
	}
	at := ev.At
	if at.IsZero() {
		at = now
	}
	at = at.UTC().Truncate(time.Microsecond)
	hash := auditHash(prev, seq, ev.IncidentID, ev.RequestID, ev.Actor, ev.Kind, canon, at)
	_, err = tx.Exec(ctx, `
		INSERT INTO audit_events (seq, incident_id, request_id, actor, kind, data, at, prev_hash, hash)
		VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9)`,
		seq, ev.IncidentID, ev.RequestID, ev.Actor, ev.Kind, canon, at, prev, hash)
	if err != nil {
		return store.AuditEvent{}, fmt.Errorf("insert audit event: %w", err)
	}
	ev.Seq, ev.Data, ev.At, ev.PrevHash, ev.Hash = seq, json.RawMessage(canon), at, prev, hash
	return ev, nil
}

const auditColumns = `seq, incident_id, request_id, actor, kind, data::text, at, prev_hash, hash`

func scanAudit(row pgx.Row) (store.AuditEvent, error) {
	var (
		ev   store.AuditEvent
		data string
	)
	if err := row.Scan(&ev.Seq, &ev.IncidentID, &ev.RequestID, &ev.Actor, &ev.Kind, &data, &ev.At, &ev.PrevHash, &ev.Hash); err != nil {
		return store.AuditEvent{}, err
	}
	ev.Data = json.RawMessage(data)
	ev.At = ev.At.UTC()
	return ev, nil
}

// AuditEvents returns the events matching f in Seq order.
func (db *DB) AuditEvents(ctx context.Context, f store.AuditFilter) ([]store.AuditEvent, error) {
	var (
		where []string
		args  []any
	)
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	add("seq > $%d", f.AfterSeq)
	if f.IncidentID != nil {
		add("incident_id = $%d", *f.IncidentID)
	}
	if f.RequestID != nil {
		add("request_id = $%d", *f.RequestID)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = defaultAuditLimit
	}
	limit = min(limit, maxAuditLimit)
	args = append(args, limit)
	q := fmt.Sprintf("SELECT %s FROM audit_events WHERE %s ORDER BY seq LIMIT $%d",
		auditColumns, strings.Join(where, " AND "), len(args))
	rows, err := db.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list audit events: %w", err)
	}
	evs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.AuditEvent, error) { return scanAudit(r) })
	if err != nil {
		return nil, fmt.Errorf("list audit events: %w", err)
	}
	return evs, nil
}

// VerifyAudit streams the whole chain in Seq order, recomputing every hash and
// link, and reports the first row that does not verify. Memory use does not
// grow with the chain. Rows counts every row read.
func (db *DB) VerifyAudit(ctx context.Context) (store.ChainReport, error) {
	rows, err := db.pool.Query(ctx, "SELECT "+auditColumns+" FROM audit_events ORDER BY seq")
	if err != nil {
		return store.ChainReport{}, fmt.Errorf("verify audit chain: %w", err)
	}
	defer rows.Close()
	var (
		rep     store.ChainReport
		prev    = zeroHash
		prevSeq int64
	)
	broken := func(seq int64, format string, a ...any) {
		if rep.FirstBroken == 0 {
			rep.FirstBroken, rep.Problem = seq, fmt.Sprintf(format, a...)
		}
	}
	for rows.Next() {
		ev, err := scanAudit(rows)
		if err != nil {
			return store.ChainReport{}, fmt.Errorf("verify audit chain: read row after seq %d: %w", prevSeq, err)
		}
		rep.Rows++
		switch {
		case !bytes.Equal(ev.PrevHash, prev):
			if prevSeq == 0 {
				broken(ev.Seq, "seq %d is the first row but does not start the chain (rows before it were deleted?)", ev.Seq)
			} else {
				broken(ev.Seq, "seq %d does not link to seq %d before it (a row between them was deleted or seq %d was changed)", ev.Seq, prevSeq, prevSeq)
			}
		case !bytes.Equal(ev.Hash, auditHash(ev.PrevHash, ev.Seq, ev.IncidentID, ev.RequestID, ev.Actor, ev.Kind, string(ev.Data), ev.At)):
			broken(ev.Seq, "seq %d was modified: its content does not match its hash", ev.Seq)
		}
		prev, prevSeq = ev.Hash, ev.Seq
	}
	if err := rows.Err(); err != nil {
		return store.ChainReport{}, fmt.Errorf("verify audit chain: %w", err)
	}
	return rep, nil
}
