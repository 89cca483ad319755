package incident

// The audit trail export (drbot audit export): JSON for machines, Markdown
// for people. Values are shown as recorded, so its table cells escape only
// what breaks a table (mdCell), unlike the post-mortem (mdEscape).

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/drbot-dev/drbot/store"
)

// AuditExport is an incident's audit trail: the incident, its recovery
// requests with their approvals, every audit row with its hashes, and whether
// the whole chain verifies. Its JSON is `drbot audit export --format json`.
type AuditExport struct {
	Incident exportIncident  `json:"incident"`
	Requests []exportRequest `json:"requests"`
	Events   []exportEvent   `json:"events"`
	Chain    exportChain     `json:"chain"`
	// Objectives are the achieved RTO and RPO (see AchievedObjectives).
	Objectives  exportObjectives `json:"objectives"`
	GeneratedAt time.Time        `json:"generated_at"`
}

type exportObjectives struct {
	RTO exportRTO   `json:"rto"`
	RPO []exportRPO `json:"rpo"`
	// RPOSummary says in words what was restored ("no database was restored …" when nothing).
	RPOSummary []string `json:"rpo_summary"`
}

type exportRTO struct {
	ObjectiveSeconds float64    `json:"objective_seconds"`
	Verified         bool       `json:"verified"`
	VerifiedAt       *time.Time `json:"verified_at,omitempty"`
	AchievedSeconds  float64    `json:"achieved_seconds,omitempty"`
	By               string     `json:"by,omitempty"`
	Summary          string     `json:"summary"`
}

type exportRPO struct {
	Database         string    `json:"database"`
	Request          int64     `json:"request"`
	Backup           string    `json:"backup"`
	BackupAt         time.Time `json:"backup_at"`
	LostSeconds      float64   `json:"lost_seconds"`
	ObjectiveSeconds float64   `json:"objective_seconds"`
	RolledBackBy     int64     `json:"rolled_back_by,omitempty"`
	Summary          string    `json:"summary"`
}

func objectivesExport(a Achieved) exportObjectives {
	out := exportObjectives{RTO: exportRTO{ObjectiveSeconds: a.RTO.Objective.Seconds(), Verified: a.RTO.Verified, By: a.RTO.By, Summary: a.RTO.Phrase()},
		RPO: []exportRPO{}, RPOSummary: a.RPOPhrases()}
	if a.RTO.Verified {
		at := a.RTO.At.UTC()
		out.RTO.VerifiedAt, out.RTO.AchievedSeconds = &at, a.RTO.Took.Seconds()
	}
	for _, r := range a.RPO {
		out.RPO = append(out.RPO, exportRPO{Database: r.Database, Request: r.Request, Backup: r.Backup, BackupAt: r.BackupAt,
			LostSeconds: r.Lost.Seconds(), ObjectiveSeconds: r.Objective.Seconds(), RolledBackBy: r.RolledBack, Summary: r.Phrase()})
	}
	return out
}

type exportIncident struct {
	ID          int64      `json:"id"`
	PagerDutyID string     `json:"pagerduty_id"`
	Service     string     `json:"service"`
	Title       string     `json:"title"`
	Status      string     `json:"status"`
	Channel     string     `json:"channel,omitempty"`
	Security    bool       `json:"security"`
	OpenedAt    time.Time  `json:"opened_at"`
	AckedAt     *time.Time `json:"acked_at,omitempty"`
	ResolvedAt  *time.Time `json:"resolved_at,omitempty"`
}

type exportRequest struct {
	ID          int64            `json:"id"`
	Kind        string           `json:"kind"`
	Target      string           `json:"target"`
	State       string           `json:"state"`
	RequestedBy string           `json:"requested_by"`
	Reason      string           `json:"reason,omitempty"`
	PlanHash    string           `json:"plan_hash"`
	Plan        json.RawMessage  `json:"plan,omitempty"`
	Approvals   []store.Approval `json:"approvals"`
	CreatedAt   time.Time        `json:"created_at"`
	UpdatedAt   time.Time        `json:"updated_at"`
}

type exportEvent struct {
	Seq       int64           `json:"seq"`
	At        time.Time       `json:"at"`
	Actor     string          `json:"actor"`
	Kind      string          `json:"kind"`
	RequestID *int64          `json:"request_id,omitempty"`
	Data      json.RawMessage `json:"data"`
	Hash      string          `json:"hash"`
	PrevHash  string          `json:"prev_hash"`
}

type exportChain struct {
	OK          bool   `json:"ok"`
	Rows        int64  `json:"rows"`
	FirstBroken int64  `json:"first_broken,omitempty"`
	Problem     string `json:"problem,omitempty"`
}

// incidentAudit returns every audit row of incident id, in chain order, a
// page at a time. Both exports read the rows through it.
func incidentAudit(ctx context.Context, st store.Audit, id int64) ([]store.AuditEvent, error) {
	var all []store.AuditEvent
	after := int64(0)
	for {
		evs, err := st.AuditEvents(ctx, store.AuditFilter{IncidentID: &id, AfterSeq: after, Limit: 1000})
		if err != nil {
			return nil, err
		}
		all = append(all, evs...)
		if len(evs) < 1000 {
			return all, nil
		}
		after = evs[len(evs)-1].Seq
	}
}

// AuditStore is what BuildAuditExport reads. *postgres.DB implements it.
type AuditStore interface {
	store.Incidents
	store.Audit
	RequestsForIncident(ctx context.Context, incidentID int64) ([]store.ActionRequest, error)
	Approvals(ctx context.Context, requestID int64) ([]store.Approval, error)
}

// BuildAuditExport reads incident id's audit trail and verifies the chain;
// now is the export's time.
func BuildAuditExport(ctx context.Context, db AuditStore, id int64, now time.Time) (AuditExport, error) {
	inc, err := db.Incident(ctx, id)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return AuditExport{}, fmt.Errorf("incident %d does not exist", id)
		}
		return AuditExport{}, fmt.Errorf("read incident %d: %w", id, err)
	}
	exp := AuditExport{
		Incident: exportIncident{ID: inc.ID, PagerDutyID: inc.PagerDutyID, Service: inc.Service, Title: inc.Title, Status: string(inc.Status),
			Channel: inc.Channel, Security: inc.Security, OpenedAt: inc.OpenedAt.UTC(), AckedAt: inc.AckedAt, ResolvedAt: inc.ResolvedAt},
		Requests:    []exportRequest{},
		Events:      []exportEvent{},
		GeneratedAt: now.UTC(),
	}
	reqs, err := db.RequestsForIncident(ctx, id)
	if err != nil {
		return AuditExport{}, err
	}
	for _, r := range reqs {
		as, err := db.Approvals(ctx, r.ID)
		if err != nil {
			return AuditExport{}, err
		}
		if as == nil {
			as = []store.Approval{}
		}
		exp.Requests = append(exp.Requests, exportRequest{ID: r.ID, Kind: r.Kind, Target: r.Target, State: string(r.State), RequestedBy: r.RequestedBy,
			Reason: r.Reason, PlanHash: r.PlanHash, Plan: r.Plan, Approvals: as, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt})
	}
	evs, err := incidentAudit(ctx, db, id)
	if err != nil {
		return AuditExport{}, err
	}
	for _, ev := range evs {
		exp.Events = append(exp.Events, exportEvent{Seq: ev.Seq, At: ev.At.UTC(), Actor: ev.Actor, Kind: ev.Kind, RequestID: ev.RequestID,
			Data: ev.Data, Hash: hex.EncodeToString(ev.Hash), PrevHash: hex.EncodeToString(ev.PrevHash)})
	}
	exp.Objectives = objectivesExport(AchievedObjectives(inc, evs, reqs))
	rep, err := db.VerifyAudit(ctx)
	if err != nil {
		return AuditExport{}, fmt.Errorf("verify audit chain: %w", err)
	}
	exp.Chain = exportChain{OK: rep.OK(), Rows: rep.Rows, FirstBroken: rep.FirstBroken, Problem: rep.Problem}
	return exp, nil
}

// mdCell makes a value safe inside a Markdown table cell.
func mdCell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	s = strings.ReplaceAll(s, "\n", " ")
	return s
}

// eventDetails summarises an event's data as key=value pairs, sorted.
func eventDetails(data json.RawMessage) string {
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil || len(m) == 0 {
		return ""
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		v := m[k]
		var s string
		switch x := v.(type) {
		case string:
			s = x
		default:
			b, _ := json.Marshal(x)
			s = string(b)
		}
		if len(s) > 200 {
			s = s[:200] + "…"
		}
		parts = append(parts, k+"="+s)
	}
	return strings.Join(parts, ", ")
}

// WriteAuditMarkdown writes the audit trail as Markdown (`drbot audit export`):
// the incident, a table of its requests and one of every audit row. The
// post-mortem skeleton is TimelineMarkdown.
func WriteAuditMarkdown(w io.Writer, e AuditExport) error {
	var b strings.Builder
	inc := e.Incident
	fmt.Fprintf(&b, "# Incident %d: %s\n\n", inc.ID, inc.Title)
	fmt.Fprintf(&b, "- Service: %s\n- PagerDuty: %s\n- Status: %s\n- Opened: %s\n", inc.Service, inc.PagerDutyID, inc.Status, inc.OpenedAt.Format(time.RFC3339))
	if inc.AckedAt != nil {
		fmt.Fprintf(&b, "- Acknowledged: %s\n", inc.AckedAt.UTC().Format(time.RFC3339))
	}
	if inc.ResolvedAt != nil {
		fmt.Fprintf(&b, "- Resolved: %s\n", inc.ResolvedAt.UTC().Format(time.RFC3339))
	}
	if inc.Security {
		b.WriteString("- Security incident\n")
	}
	if e.Chain.OK {
		fmt.Fprintf(&b, "- Audit chain: verified (%d rows)\n", e.Chain.Rows)
	} else {
		fmt.Fprintf(&b, "- Audit chain: **BROKEN at row %d**: %s\n", e.Chain.FirstBroken, e.Chain.Problem)
	}
	fmt.Fprintf(&b, "- RTO achieved: %s\n", e.Objectives.RTO.Summary)
	for _, r := range e.Objectives.RPOSummary {
		fmt.Fprintf(&b, "- RPO achieved: %s\n", r)
	}
	b.WriteString("\n## Requests\n\n")
	if len(e.Requests) == 0 {
		b.WriteString("No recovery requests.\n")
	} else {
		b.WriteString("| # | kind | target | state | requested by | approvals | plan |\n|---|---|---|---|---|---|---|\n")
		for _, r := range e.Requests {
			var who []string
			for _, a := range r.Approvals {
				who = append(who, a.Approver+" ("+string(a.Decision)+")")
			}
			hash := r.PlanHash
			if len(hash) > 12 {
				hash = hash[:12]
			}
			fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %s | %s |\n", r.ID, mdCell(r.Kind), mdCell(r.Target), r.State,
				mdCell(r.RequestedBy), mdCell(strings.Join(who, ", ")), hash)
		}
	}
	b.WriteString("\n## Timeline\n\n| seq | time (UTC) | actor | event | request | details |\n|---|---|---|---|---|---|\n")
	for _, ev := range e.Events {
		req := ""
		if ev.RequestID != nil {
			req = fmt.Sprintf("#%d", *ev.RequestID)
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %s |\n", ev.Seq, ev.At.Format("2006-01-02 15:04:05"), mdCell(ev.Actor), ev.Kind, req, mdCell(eventDetails(ev.Data)))
	}
	_, err := io.WriteString(w, b.String())
	return err
}
