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

func validIncidentStatus(s store.IncidentStatus) bool {
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
			IncidentID: &out.ID, Actor: "pagerduty", Kind: store.AuditIncidentOpened, Data: data,
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
		_, err := appendAuditTx(ctx, tx, store.AuditEvent{IncidentID: &id, Actor: "drbot", Kind: store.AuditIncidentChannelSet, Data: data})
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

// incidentTx implements store.IncidentTx on one pgx transaction.
type incidentTx struct {
	db     *DB
	tx     pgx.Tx
	audits []store.AuditEvent
}

var _ store.Lifecycle = (*DB)(nil)

// InIncidentTx runs fn in one transaction: queued audit rows are appended last,
// then it commits. Any error rolls everything back.
func (db *DB) InIncidentTx(ctx context.Context, fn func(tx store.IncidentTx) error) error {
	return db.inTx(ctx, func(tx pgx.Tx) error {
		itx := &incidentTx{db: db, tx: tx}
		if err := fn(itx); err != nil {
			return err
		}
		for _, ev := range itx.audits {
			if _, err := appendAuditTx(ctx, tx, ev); err != nil {
				return err
			}
		}
		return nil
	})
}

func (t *incidentTx) RecordDelivery(ctx context.Context, id string) (bool, error) {
	if id == "" {
		return false, errors.New("record delivery: delivery id is empty")
	}
	tag, err := t.tx.Exec(ctx, "INSERT INTO webhook_deliveries (delivery_id) VALUES ($1) ON CONFLICT DO NOTHING", id)
	if err != nil {
		return false, fmt.Errorf("record delivery %s: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}

func (t *incidentTx) OpenIncident(ctx context.Context, inc store.Incident) (store.Incident, bool, error) {
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
	out, err := scanIncident(t.tx.QueryRow(ctx, `
		INSERT INTO incidents (pagerduty_id, service, title, urgency, url, status, channel, security,
		                       opened_at, acked_at, resolved_at, rto, rpo)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, COALESCE($9, now()), $10, $11, $12, $13)
		ON CONFLICT (pagerduty_id) DO NOTHING
		RETURNING `+incidentColumns,
		inc.PagerDutyID, inc.Service, inc.Title, inc.Urgency, inc.URL, inc.Status, nullString(inc.Channel),
		inc.Security, openedAt, inc.AckedAt, inc.ResolvedAt, toInterval(inc.RTO), toInterval(inc.RPO)))
	if errors.Is(err, pgx.ErrNoRows) {
		// ON CONFLICT waited for the other transaction to commit: lock its row.
		out, err = t.LockIncidentByPagerDutyID(ctx, inc.PagerDutyID)
		if err != nil {
			return store.Incident{}, false, fmt.Errorf("open incident %s: %w", inc.PagerDutyID, err)
		}
		return out, false, nil
	}
	if err != nil {
		return store.Incident{}, false, fmt.Errorf("open incident %s: %w", inc.PagerDutyID, err)
	}
	data, err := json.Marshal(map[string]any{
		"pagerduty_id": out.PagerDutyID, "service": out.Service, "title": out.Title,
		"urgency": out.Urgency, "url": out.URL, "status": out.Status, "security": out.Security,
		"opened_at": out.OpenedAt,
	})
	if err != nil {
		return store.Incident{}, false, err
	}
	t.audits = append(t.audits, store.AuditEvent{IncidentID: &out.ID, Actor: "pagerduty", Kind: store.AuditIncidentOpened, Data: data})
	return out, true, nil
}

func (t *incidentTx) LockIncident(ctx context.Context, id int64) (store.Incident, error) {
	inc, err := scanIncident(t.tx.QueryRow(ctx, "SELECT "+incidentColumns+" FROM incidents WHERE id = $1 FOR UPDATE", id))
	if err != nil {
		return store.Incident{}, notFound(fmt.Sprintf("incident %d", id), err)
	}
	return inc, nil
}

func (t *incidentTx) LockIncidentByPagerDutyID(ctx context.Context, pdID string) (store.Incident, error) {
	inc, err := scanIncident(t.tx.QueryRow(ctx, "SELECT "+incidentColumns+" FROM incidents WHERE pagerduty_id = $1 FOR UPDATE", pdID))
	if err != nil {
		return store.Incident{}, notFound("incident with PagerDuty id "+pdID, err)
	}
	return inc, nil
}

func (t *incidentTx) SaveIncident(ctx context.Context, inc store.Incident) (store.Incident, error) {
	if !validIncidentStatus(inc.Status) {
		return store.Incident{}, fmt.Errorf("save incident %d: unknown status %q", inc.ID, inc.Status)
	}
	out, err := scanIncident(t.tx.QueryRow(ctx, `
		UPDATE incidents SET service = $2, title = $3, urgency = $4, url = $5, status = $6,
		       channel = $7, security = $8, opened_at = $9, acked_at = $10, resolved_at = $11, rto = $12, rpo = $13
		WHERE id = $1 RETURNING `+incidentColumns,
		inc.ID, inc.Service, inc.Title, inc.Urgency, inc.URL, inc.Status, nullString(inc.Channel),
		inc.Security, inc.OpenedAt, inc.AckedAt, inc.ResolvedAt, toInterval(inc.RTO), toInterval(inc.RPO)))
	if err != nil {
		if code, _ := pgErr(err); code == codeUniqueViolation {
			return store.Incident{}, fmt.Errorf("save incident %d: channel %s belongs to another incident: %w", inc.ID, inc.Channel, store.ErrDuplicate)
		}
		return store.Incident{}, notFound(fmt.Sprintf("incident %d", inc.ID), err)
	}
	return out, nil
}

func (t *incidentTx) Marks(ctx context.Context, incidentID int64) (map[string]string, error) {
	m, err := readMarks(ctx, t.tx, incidentID)
	if err != nil {
		return nil, err
	}
	// Marks queued in this transaction count too.
	for _, ev := range t.audits {
		if ev.IncidentID != nil && *ev.IncidentID == incidentID {
			addMark(m, ev.Data)
		}
	}
	return m, nil
}

func (t *incidentTx) AppendAudit(_ context.Context, ev store.AuditEvent) error {
	if strings.TrimSpace(ev.Actor) == "" || strings.TrimSpace(ev.Kind) == "" {
		return errors.New("audit event needs an actor and a kind")
	}
	t.audits = append(t.audits, ev)
	return nil
}

func (t *incidentTx) InsertJobs(ctx context.Context, jobs ...store.Job) error {
	return t.db.insertJobsTx(ctx, t.tx, jobs)
}

// cancellableStates are the job states CancelJobs cancels: not started yet.
var cancellableStates = []string{"scheduled", "available", "retryable", "pending"}

func (t *incidentTx) CancelJobs(ctx context.Context, incidentID int64, kinds ...string) (int, error) {
	if len(kinds) == 0 {
		return 0, nil
	}
	rows, err := t.tx.Query(ctx, `
		SELECT id FROM river_job
		WHERE kind = ANY($1) AND state::text = ANY($2) AND args->>'incident_id' = $3`,
		kinds, cancellableStates, fmt.Sprint(incidentID))
	if err != nil {
		return 0, fmt.Errorf("find jobs of incident %d: %w", incidentID, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return 0, fmt.Errorf("find jobs of incident %d: %w", incidentID, err)
	}
	for _, id := range ids {
		if _, err := t.db.inserter.JobCancelTx(ctx, t.tx, id); err != nil {
			return 0, fmt.Errorf("cancel job %d of incident %d: %w", id, incidentID, err)
		}
	}
	return len(ids), nil
}

// IncidentMarks returns the incident's marks: for each mark key, the value of
// its latest audit row.
func (db *DB) IncidentMarks(ctx context.Context, incidentID int64) (map[string]string, error) {
	return readMarks(ctx, db.pool, incidentID)
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func readMarks(ctx context.Context, q querier, incidentID int64) (map[string]string, error) {
	rows, err := q.Query(ctx, `
		SELECT data FROM audit_events
		WHERE incident_id = $1 AND (data ? 'mark' OR data ? 'marks') ORDER BY seq`, incidentID)
	if err != nil {
		return nil, fmt.Errorf("read marks of incident %d: %w", incidentID, err)
	}
	datas, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return nil, fmt.Errorf("read marks of incident %d: %w", incidentID, err)
	}
	m := make(map[string]string, len(datas))
	for _, d := range datas {
		addMark(m, d)
	}
	return m, nil
}

func addMark(m map[string]string, data []byte) {
	var v map[string]any
	if json.Unmarshal(data, &v) != nil {
		return
	}
	if key, ok := v[store.MarkKey].(string); ok && key != "" {
		val, _ := v[store.MarkValue].(string)
		m[key] = val
	}
	if more, ok := v[store.MarksKey].(map[string]any); ok {
		for k, x := range more {
			if s, ok := x.(string); ok && k != "" {
				m[k] = s
			}
		}
	}
}

// IncidentOrdinal returns the position of incident id among the incidents of
// its service opened on the same UTC day (1 for the first): where the search
// for a free channel name (-2, -3, …) can start.
func (db *DB) IncidentOrdinal(ctx context.Context, id int64) (int, error) {
	var n int
	err := db.pool.QueryRow(ctx, `
		SELECT count(*) FROM incidents o, incidents i
		WHERE i.id = $1 AND o.service = i.service AND o.id <= i.id
		  AND (o.opened_at AT TIME ZONE 'UTC')::date = (i.opened_at AT TIME ZONE 'UTC')::date`, id).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("ordinal of incident %d: %w", id, err)
	}
	return n, nil
}
