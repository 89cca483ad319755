package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/drbot-dev/drbot/store"
)

const incidentColumns = `id, pagerduty_id, service, title, urgency, url, status, channel, security,
	opened_at, acked_at, resolved_at, rto, rpo`

func scanIncident(row pgx.Row) (store.Incident, error) {
	var (
		inc      store.Incident
		channel  *string
		rto, rpo pgtype.Interval
	)
	err := row.Scan(&inc.ID, &inc.PagerDutyID, &inc.Service, &inc.Title, &inc.Urgency, &inc.URL, &inc.Status,
		&channel, &inc.Security, &inc.OpenedAt, &inc.AckedAt, &inc.ResolvedAt, &rto, &rpo)
	if err != nil {
		return store.Incident{}, err
	}
	if channel != nil {
		inc.Channel = *channel
	}
	inc.OpenedAt = inc.OpenedAt.UTC()
	inc.AckedAt = utcPtr(inc.AckedAt)
	inc.ResolvedAt = utcPtr(inc.ResolvedAt)
	inc.RTO, inc.RPO = fromInterval(rto), fromInterval(rpo)
	return inc, nil
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func toInterval(d time.Duration) pgtype.Interval {
	return pgtype.Interval{Microseconds: d.Microseconds(), Valid: true}
}

func fromInterval(iv pgtype.Interval) time.Duration {
	if !iv.Valid {
		return 0
	}
	const day = 24 * time.Hour
	return time.Duration(iv.Microseconds)*time.Microsecond + time.Duration(iv.Days)*day + time.Duration(iv.Months)*30*day
}

func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func validIncidentStatus(s string) bool {
	switch s {
	case store.IncidentTriggered, store.IncidentAcknowledged, store.IncidentResolved:
		return true
	}
	return false
}

// OpenIncident records inc, keyed by its PagerDuty id, with an incident.opened
// audit row (actor "pagerduty") and jobs in one transaction. When the PagerDuty
// id is already known — also when concurrent calls race — it returns the
// existing incident with created=false and writes nothing. Status defaults to
// triggered and OpenedAt to the database clock.
func (db *DB) OpenIncident(ctx context.Context, inc store.Incident, jobs ...store.Job) (store.Incident, bool, error) {
	if strings.TrimSpace(inc.PagerDutyID) == "" {
		return store.Incident{}, false, errors.New("open incident: PagerDuty id is empty")
	}
	if inc.Status == "" {
		inc.Status = store.IncidentTriggered
	}
	if !validIncidentStatus(inc.Status) {
		return store.Incident{}, false, fmt.Errorf("open incident %s: unknown status %q", inc.PagerDutyID, inc.Status)
	}
	var openedAt *time.Time
	if !inc.OpenedAt.IsZero() {
		openedAt = &inc.OpenedAt
	}
	var (
		out     store.Incident
		created bool
	)
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		row := tx.QueryRow(ctx, `
			INSERT INTO incidents (pagerduty_id, service, title, urgency, url, status, channel, security,
			                       opened_at, acked_at, resolved_at, rto, rpo)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, COALESCE($9, now()), $10, $11, $12, $13)
			ON CONFLICT (pagerduty_id) DO NOTHING
			RETURNING `+incidentColumns,
			inc.PagerDutyID, inc.Service, inc.Title, inc.Urgency, inc.URL, inc.Status, nullString(inc.Channel),
			inc.Security, openedAt, inc.AckedAt, inc.ResolvedAt, toInterval(inc.RTO), toInterval(inc.RPO))
		var err error
		out, err = scanIncident(row)
		if errors.Is(err, pgx.ErrNoRows) {
			// Another transaction holds this PagerDuty id; ON CONFLICT waited
			// for it to commit, so a new statement sees its row.
			out, err = scanIncident(tx.QueryRow(ctx, "SELECT "+incidentColumns+" FROM incidents WHERE pagerduty_id = $1", inc.PagerDutyID))
			if err != nil {
				return fmt.Errorf("read existing incident: %w", err)
			}
			return nil
		}
		if err != nil {
			if code, cons := pgErr(err); code == codeUniqueViolation && cons == "incidents_channel_key" {
				return fmt.Errorf("channel %s belongs to another incident: %w", inc.Channel, store.ErrDuplicate)
			}
			return err
		}
		created = true
		if err := db.insertJobsTx(ctx, tx, jobs); err != nil {
			return err
		}
		data, err := json.Marshal(map[string]any{
			"pagerduty_id": out.PagerDutyID, "service": out.Service, "title": out.Title,
			"urgency": out.Urgency, "url": out.URL, "status": out.Status, "security": out.Security,
			"opened_at": out.OpenedAt,
		})
		if err != nil {
			return err
		}
		_, err = appendAuditTx(ctx, tx, store.AuditEvent{
			IncidentID: &out.ID, Actor: "pagerduty", Kind: "incident.opened", Data: data,
		})
		return err
	})
	if err != nil {
		return store.Incident{}, false, fmt.Errorf("open incident %s: %w", inc.PagerDutyID, err)
	}
	return out, created, nil
}

// Incident returns the incident with id.
func (db *DB) Incident(ctx context.Context, id int64) (store.Incident, error) {
	inc, err := scanIncident(db.pool.QueryRow(ctx, "SELECT "+incidentColumns+" FROM incidents WHERE id = $1", id))
	if err != nil {
		return store.Incident{}, notFound(fmt.Sprintf("incident %d", id), err)
	}
	return inc, nil
}

// IncidentByPagerDutyID returns the incident with PagerDuty id pdID.
func (db *DB) IncidentByPagerDutyID(ctx context.Context, pdID string) (store.Incident, error) {
	inc, err := scanIncident(db.pool.QueryRow(ctx, "SELECT "+incidentColumns+" FROM incidents WHERE pagerduty_id = $1", pdID))
	if err != nil {
		return store.Incident{}, notFound("incident with PagerDuty id "+pdID, err)
	}
	return inc, nil
}

// IncidentByChannel returns the incident linked to chat channel channel.
func (db *DB) IncidentByChannel(ctx context.Context, channel string) (store.Incident, error) {
	if channel == "" {
		return store.Incident{}, fmt.Errorf("incident for an empty channel: %w", store.ErrNotFound)
	}
	inc, err := scanIncident(db.pool.QueryRow(ctx, "SELECT "+incidentColumns+" FROM incidents WHERE channel = $1", channel))
	if err != nil {
		return store.Incident{}, notFound("incident for channel "+channel, err)
	}
	return inc, nil
}

// SetIncidentChannel links channel to incident id with an incident.channel_set
// audit row (actor "drbot"). Setting the channel it already has is a no-op.
func (db *DB) SetIncidentChannel(ctx context.Context, id int64, channel string) error {
	if strings.TrimSpace(channel) == "" {
		return fmt.Errorf("set channel of incident %d: channel is empty", id)
	}
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		var cur *string
		if err := tx.QueryRow(ctx, "SELECT channel FROM incidents WHERE id = $1 FOR UPDATE", id).Scan(&cur); err != nil {
			return notFound(fmt.Sprintf("incident %d", id), err)
		}
		if cur != nil {
			if *cur == channel {
				return nil
			}
			return &store.StateConflictError{What: fmt.Sprintf("incident %d", id), Current: "linked to channel " + *cur, To: "channel " + channel}
		}
		if _, err := tx.Exec(ctx, "UPDATE incidents SET channel = $2 WHERE id = $1", id, channel); err != nil {
			if code, _ := pgErr(err); code == codeUniqueViolation {
				return fmt.Errorf("channel %s belongs to another incident: %w", channel, store.ErrDuplicate)
			}
			return err
		}
		data, _ := json.Marshal(map[string]string{"channel": channel})
		_, err := appendAuditTx(ctx, tx, store.AuditEvent{IncidentID: &id, Actor: "drbot", Kind: "incident.channel_set", Data: data})
		return err
	})
	if err != nil {
		return fmt.Errorf("set channel of incident %d: %w", id, err)
	}
	return nil
}

// UpdateIncident locks incident id, applies fn to it, writes the result,
// appends ev (its IncidentID defaults to id) and inserts jobs, in one
// transaction. fn must not change ID or PagerDutyID. An error from fn rolls
// everything back and is returned as is.
func (db *DB) UpdateIncident(ctx context.Context, id int64, fn func(*store.Incident) error, ev store.AuditEvent, jobs ...store.Job) (store.Incident, error) {
	var (
		out   store.Incident
		fnErr error
	)
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		inc, err := scanIncident(tx.QueryRow(ctx, "SELECT "+incidentColumns+" FROM incidents WHERE id = $1 FOR UPDATE", id))
		if err != nil {
			return notFound(fmt.Sprintf("incident %d", id), err)
		}
		if fnErr = fn(&inc); fnErr != nil {
			return fnErr
		}
		if inc.ID != id || inc.PagerDutyID == "" {
			return errors.New("the update changed the incident's id or cleared its PagerDuty id")
		}
		if !validIncidentStatus(inc.Status) {
			return fmt.Errorf("unknown status %q", inc.Status)
		}
		out, err = scanIncident(tx.QueryRow(ctx, `
			UPDATE incidents SET pagerduty_id = $2, service = $3, title = $4, urgency = $5, url = $6, status = $7,
			       channel = $8, security = $9, opened_at = $10, acked_at = $11, resolved_at = $12, rto = $13, rpo = $14
			WHERE id = $1 RETURNING `+incidentColumns,
			id, inc.PagerDutyID, inc.Service, inc.Title, inc.Urgency, inc.URL, inc.Status, nullString(inc.Channel),
			inc.Security, inc.OpenedAt, inc.AckedAt, inc.ResolvedAt, toInterval(inc.RTO), toInterval(inc.RPO)))
		if err != nil {
			if code, cons := pgErr(err); code == codeUniqueViolation {
				return fmt.Errorf("another incident has the same %s: %w", strings.TrimPrefix(strings.TrimSuffix(cons, "_key"), "incidents_"), store.ErrDuplicate)
			}
			return err
		}
		if err := db.insertJobsTx(ctx, tx, jobs); err != nil {
			return err
		}
		if ev.IncidentID == nil {
			ev.IncidentID = &id
		}
		_, err = appendAuditTx(ctx, tx, ev)
		return err
	})
	if fnErr != nil {
		return store.Incident{}, fnErr
	}
	if err != nil {
		return store.Incident{}, fmt.Errorf("update incident %d: %w", id, err)
	}
	return out, nil
}

// ListIncidents returns incidents newest first; openOnly leaves out resolved ones.
func (db *DB) ListIncidents(ctx context.Context, openOnly bool) ([]store.Incident, error) {
	q := "SELECT " + incidentColumns + " FROM incidents"
	if openOnly {
		q += " WHERE status <> 'resolved'"
	}
	q += " ORDER BY opened_at DESC, id DESC"
	rows, err := db.pool.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("list incidents: %w", err)
	}
	incs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Incident, error) { return scanIncident(r) })
	if err != nil {
		return nil, fmt.Errorf("list incidents: %w", err)
	}
	return incs, nil
}
