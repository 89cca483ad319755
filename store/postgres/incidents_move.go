package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/drbot-dev/drbot/store"
)

// MoveChannel links incident id to channel, keeping the channel it had as its
// public channel (incidents.public_channel), with an incident.channel_moved
// audit row; the caller's transaction commits both. Moving to the channel it
// already has changes nothing and returns from = "".
func (t *incidentTx) MoveChannel(ctx context.Context, id int64, channel string) (from string, err error) {
	if strings.TrimSpace(channel) == "" {
		return "", fmt.Errorf("move incident %d: channel is empty", id)
	}
	var cur *string
	if err := t.tx.QueryRow(ctx, "SELECT channel FROM incidents WHERE id = $1 FOR UPDATE", id).Scan(&cur); err != nil {
		return "", notFound(fmt.Sprintf("incident %d", id), err)
	}
	if cur != nil && *cur == channel {
		return "", nil
	}
	if cur == nil {
		return "", fmt.Errorf("move incident %d to %s: it has no channel yet", id, channel)
	}
	if _, err := t.tx.Exec(ctx, "UPDATE incidents SET public_channel = channel, channel = $2 WHERE id = $1", id, channel); err != nil {
		if code, _ := pgErr(err); code == codeUniqueViolation {
			return "", fmt.Errorf("move incident %d: channel %s belongs to another incident: %w", id, channel, store.ErrDuplicate)
		}
		return "", fmt.Errorf("move incident %d to %s: %w", id, channel, err)
	}
	data, _ := json.Marshal(map[string]string{"from": *cur, "channel": channel}) // strings: cannot fail
	t.audits = append(t.audits, store.AuditEvent{IncidentID: &id, Actor: "drbot", Kind: store.AuditIncidentChannelMoved, Data: data})
	return *cur, nil
}

// IncidentByPublicChannel returns the incident that moved away from channel
// (see MoveChannel); store.ErrNotFound when none did.
func (db *DB) IncidentByPublicChannel(ctx context.Context, channel string) (store.Incident, error) {
	inc, err := scanIncident(db.pool.QueryRow(ctx, "SELECT "+incidentColumns+" FROM incidents WHERE public_channel = $1 ORDER BY id DESC LIMIT 1", channel))
	if err != nil {
		return store.Incident{}, notFound("incident that left channel "+channel, err)
	}
	return inc, nil
}
