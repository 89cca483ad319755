package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/drbot-dev/drbot/store"
	"github.com/drbot-dev/drbot/store/postgres"
)

// AuditCmd groups the audit subcommands.
type AuditCmd struct {
	Verify AuditVerifyCmd `cmd:"" help:"Check the whole audit hash chain; name the first broken row."`
	Export AuditExportCmd `cmd:"" help:"Print an incident's audit trail (requests, approvals, steps, verification) as Markdown or JSON."`
}

// AuditVerifyCmd verifies the audit chain.
type AuditVerifyCmd struct {
	StoreFlags
}

// Run verifies the chain and exits 1 when it is broken.
func (c AuditVerifyCmd) Run(ctx context.Context, logger *slog.Logger) error {
	db, closeStore, err := openStore(ctx, logger, c.StoreFlags)
	if err != nil {
		return err
	}
	defer closeStore()
	rep, err := db.VerifyAudit(ctx)
	if err != nil {
		return fmt.Errorf("verify audit chain: %w", err)
	}
	if !rep.OK() {
		fmt.Printf("audit chain BROKEN at row %d of %d: %s\n", rep.FirstBroken, rep.Rows, rep.Problem)
		return exitError{code: 1}
	}
	fmt.Printf("audit chain OK: %d rows verified\n", rep.Rows)
	return nil
}

// AuditExportCmd exports one incident's audit trail.
type AuditExportCmd struct {
	StoreFlags
	Incident int64  `help:"Incident id (drbot's number, as in the channel header)." required:""`
	Format   string `help:"Output format: markdown or json." enum:"markdown,json" default:"markdown"`
}

// Run prints the export to stdout. It exits 1 when the audit chain does not
// verify (the export is still printed, marked as such).
func (c AuditExportCmd) Run(ctx context.Context, logger *slog.Logger) error {
	db, closeStore, err := openStore(ctx, logger, c.StoreFlags)
	if err != nil {
		return err
	}
	defer closeStore()
	exp, err := buildExport(ctx, db, c.Incident)
	if err != nil {
		return err
	}
	switch c.Format {
	case "json":
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(exp)
	default:
		err = writeMarkdown(os.Stdout, exp)
	}
	if err != nil {
		return fmt.Errorf("write export: %w", err)
	}
	if !exp.Chain.OK {
		return exitError{code: 1}
	}
	return nil
}

// auditExport is the export's JSON shape.
type auditExport struct {
	Incident    exportIncident  `json:"incident"`
	Requests    []exportRequest `json:"requests"`
	Events      []exportEvent   `json:"events"`
	Chain       exportChain     `json:"chain"`
	GeneratedAt time.Time       `json:"generated_at"`
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

func buildExport(ctx context.Context, db *postgres.DB, id int64) (auditExport, error) {
	inc, err := db.Incident(ctx, id)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return auditExport{}, fmt.Errorf("incident %d does not exist", id)
		}
		return auditExport{}, fmt.Errorf("read incident %d: %w", id, err)
	}
	exp := auditExport{
		Incident: exportIncident{ID: inc.ID, PagerDutyID: inc.PagerDutyID, Service: inc.Service, Title: inc.Title, Status: string(inc.Status),
			Channel: inc.Channel, Security: inc.Security, OpenedAt: inc.OpenedAt.UTC(), AckedAt: inc.AckedAt, ResolvedAt: inc.ResolvedAt},
		Requests:    []exportRequest{},
		Events:      []exportEvent{},
		GeneratedAt: time.Now().UTC(),
	}
	reqs, err := db.RequestsForIncident(ctx, id)
	if err != nil {
		return auditExport{}, err
	}
	for _, r := range reqs {
		as, err := db.Approvals(ctx, r.ID)
		if err != nil {
			return auditExport{}, err
		}
		if as == nil {
			as = []store.Approval{}
		}
		exp.Requests = append(exp.Requests, exportRequest{ID: r.ID, Kind: r.Kind, Target: r.Target, State: string(r.State), RequestedBy: r.RequestedBy,
			Reason: r.Reason, PlanHash: r.PlanHash, Plan: r.Plan, Approvals: as, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt})
	}
	after := int64(0)
	for {
		evs, err := db.AuditEvents(ctx, store.AuditFilter{IncidentID: &id, AfterSeq: after, Limit: 1000})
		if err != nil {
			return auditExport{}, err
		}
		for _, ev := range evs {
			exp.Events = append(exp.Events, exportEvent{Seq: ev.Seq, At: ev.At.UTC(), Actor: ev.Actor, Kind: ev.Kind, RequestID: ev.RequestID,
				Data: ev.Data, Hash: hex.EncodeToString(ev.Hash), PrevHash: hex.EncodeToString(ev.PrevHash)})
		}
		if len(evs) < 1000 {
			break
		}
		after = evs[len(evs)-1].Seq
	}
	rep, err := db.VerifyAudit(ctx)
	if err != nil {
		return auditExport{}, fmt.Errorf("verify audit chain: %w", err)
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

func writeMarkdown(w io.Writer, e auditExport) error {
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
