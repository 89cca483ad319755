package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/store"
)

// Reading is a read-only procedure's report, as recorded in the audit log.
type Reading struct {
	Actor   string // the chat user who ran the command
	Channel string // where it ran: an incident channel puts it on that incident's timeline
	Command string // e.g. verify
	Service string
	Report  actions.Report
}

// VerifyRecord is the audit data of a store.AuditVerifyRan row.
type VerifyRecord struct {
	Command string         `json:"command"`
	Service string         `json:"service"`
	OK      bool           `json:"ok"`
	Checks  []VerifyResult `json:"checks"`
}

// VerifyResult is one check of a VerifyRecord.
type VerifyResult struct {
	Name     string `json:"name"`
	Kind     string `json:"kind,omitempty"`
	OK       bool   `json:"ok"`
	Observed string `json:"observed,omitempty"`
	Expected string `json:"expected,omitempty"`
	Error    string `json:"error,omitempty"`
}

// ReadAuditStore is what AuditReadings writes to (*postgres.DB implements it).
type ReadAuditStore interface {
	store.Incidents
	store.Audit
}

// AuditReadings returns the Deps.RecordReading function for st: each report
// becomes one store.AuditVerifyRan row, attached to the incident whose
// channel the command ran in (so it is on /dr timeline and the export).
func AuditReadings(st ReadAuditStore) func(ctx context.Context, r Reading) error {
	return func(ctx context.Context, r Reading) error {
		rec := VerifyRecord{Command: r.Command, Service: r.Service, OK: r.Report.OK(), Checks: []VerifyResult{}}
		for _, c := range r.Report.Checks {
			rec.Checks = append(rec.Checks, VerifyResult{Name: c.Name, Kind: c.Kind, OK: c.OK, Observed: c.Observed, Expected: c.Expected, Error: c.Error})
		}
		data, err := json.Marshal(rec)
		if err != nil {
			return fmt.Errorf("encode %s record: %w", r.Command, err)
		}
		ev := store.AuditEvent{Actor: r.Actor, Kind: store.AuditVerifyRan, Data: data}
		if r.Channel != "" {
			inc, err := st.IncidentByChannel(ctx, r.Channel)
			switch {
			case err == nil:
				ev.IncidentID = &inc.ID
			case !errors.Is(err, store.ErrNotFound):
				return fmt.Errorf("incident for channel %s: %w", r.Channel, err)
			}
		}
		if _, err := st.AppendAudit(ctx, ev); err != nil {
			return fmt.Errorf("record %s of %s: %w", r.Command, r.Service, err)
		}
		return nil
	}
}
