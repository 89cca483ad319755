package incident

// Achieved recovery objectives, derived from the audit log and the plans the
// approvers saw; shown in the resolution summary and the post-mortem export.
//
// RTO achieved: from the incident's opening to the first all-green
// verification of the service recorded after it: a recovery request of the
// incident's service (restore-db, failover, …; never a drill) that ended
// succeeded with every check of its verification passing, or a /dr verify of
// the service whose every check passed. No such row: the service was never
// verified healthy, and the export says so.
//
// RPO achieved, per restored database: the incident's start minus the time
// of the backup a restore-db request swapped in as live, read from the
// backup object its approved plan pinned (spec.backup.last_modified). A
// later rollback of the same database that swapped the previous database
// back is named: that data is no longer live.

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/drbot-dev/drbot/store"
)

// Achieved is what an incident achieved against its recovery objectives.
type Achieved struct {
	RTO AchievedRTO
	RPO []AchievedRPO
	// Unswapped are the restore-db requests that never swapped their copy in.
	Unswapped []int64
	// RPOObjective is the incident's RPO (0: none set).
	RPOObjective time.Duration
}

// AchievedRTO is the time from opening to the service verified healthy.
type AchievedRTO struct {
	Objective time.Duration
	Verified  bool
	At        time.Time
	Took      time.Duration // At − opened
	// By says which verification it was, in words.
	By string
}

// AchievedRPO is the data lost on one restored database.
type AchievedRPO struct {
	Database string
	Request  int64
	Backup   string // location and object name
	// BackupAt is the pinned backup object's time.
	BackupAt time.Time
	// Lost is the incident's start minus BackupAt (0 when the backup is newer).
	Lost      time.Duration
	Objective time.Duration
	// RolledBack is the rollback request that put the previous database back
	// after this restore (0: none).
	RolledBack int64
}

// verdict compares an achieved duration with its objective.
func verdict(got, objective time.Duration, what string) string {
	switch {
	case objective <= 0:
		return "no " + what + " objective set"
	case got <= objective:
		return fmt.Sprintf("%s %s met, %s to spare", what, formatDuration(objective), formatDuration(objective-got))
	}
	return fmt.Sprintf("%s %s missed by %s", what, formatDuration(objective), formatDuration(got-objective))
}

// Phrase is the achieved RTO in one line.
func (r AchievedRTO) Phrase() string {
	if !r.Verified {
		s := "never verified healthy: no passing restore, failover or /dr verify was recorded after the incident opened"
		if r.Objective > 0 {
			s += fmt.Sprintf(" (RTO %s)", formatDuration(r.Objective))
		}
		return s
	}
	return fmt.Sprintf("%s from opened to verified healthy (%s, at %s): %s", formatDuration(r.Took), r.By,
		r.At.UTC().Format("15:04:05 UTC"), verdict(r.Took, r.Objective, "RTO"))
}

// Short is the achieved RTO in a few words, for the header and the
// resolution line: "verified healthy 42m after it opened: RTO 1h met, 18m
// to spare", or "never verified healthy (RTO 1h)".
func (r AchievedRTO) Short() string {
	if !r.Verified {
		if r.Objective > 0 {
			return fmt.Sprintf("never verified healthy (RTO %s)", formatDuration(r.Objective))
		}
		return "never verified healthy"
	}
	return fmt.Sprintf("verified healthy %s after it opened: %s", formatDuration(r.Took), verdict(r.Took, r.Objective, "RTO"))
}

// Phrase is one database's achieved RPO in one line.
func (r AchievedRPO) Phrase() string {
	s := fmt.Sprintf("%s: %s of data lost (request #%d restored %s, taken %s): %s", r.Database, formatDuration(r.Lost), r.Request,
		r.Backup, r.BackupAt.UTC().Format("2006-01-02 15:04:05 UTC"), verdict(r.Lost, r.Objective, "RPO"))
	if r.Lost == 0 {
		s = fmt.Sprintf("%s: no data lost before the incident started (request #%d restored %s, taken %s, after the start): %s", r.Database, r.Request,
			r.Backup, r.BackupAt.UTC().Format("2006-01-02 15:04:05 UTC"), verdict(0, r.Objective, "RPO"))
	}
	if r.RolledBack != 0 {
		s += fmt.Sprintf("; rolled back by request #%d, so this backup's data is no longer live", r.RolledBack)
	}
	return s
}

// RPOPhrases are the achieved RPO lines, or one line saying no database was restored.
func (a Achieved) RPOPhrases() []string {
	var out []string
	for _, r := range a.RPO {
		out = append(out, r.Phrase())
	}
	if len(out) > 0 {
		return out
	}
	s := "no database was restored from a backup by drbot"
	if len(a.Unswapped) > 0 {
		ids := make([]string, len(a.Unswapped))
		for i, id := range a.Unswapped {
			ids[i] = fmt.Sprintf("#%d", id)
		}
		s += fmt.Sprintf(" (restore-db request %s never swapped its copy in)", strings.Join(ids, ", "))
	}
	return []string{s}
}

// restorePlan is the part of a restore-db or rollback plan the RPO needs:
// the Spec of actions/restoredb (database, location and the pinned backup
// object with its last_modified time).
type restorePlan struct {
	Kind string `json:"kind"`
	Spec struct {
		Database string `json:"database"`
		Location string `json:"location"`
		Backup   *struct {
			Name         string    `json:"name"`
			LastModified time.Time `json:"last_modified"`
		} `json:"backup"`
	} `json:"spec"`
}

// Request kinds the RPO reads (actions/restoredb's).
const (
	kindRestoreDB = "restore-db"
	kindRollback  = "rollback"
	stepSwap      = "swap"
)

// AchievedObjectives computes inc's achieved RTO and RPO from its audit rows
// (in chain order) and its requests (for the pinned backups of their plans).
func AchievedObjectives(inc store.Incident, evs []store.AuditEvent, reqs []store.ActionRequest) Achieved {
	a := Achieved{RTO: AchievedRTO{Objective: inc.RTO}, RPOObjective: inc.RPO}
	byID := map[int64]store.ActionRequest{}
	for _, r := range reqs {
		byID[r.ID] = r
	}
	kinds := map[int64]*reqInfo{}
	swapped := map[int64]bool{}
	current := map[string]int{} // database → index in a.RPO of the restore that is live
	for _, e := range evs {
		var d map[string]any
		_ = json.Unmarshal(e.Data, &d)
		str := func(k string) string { s, _ := d[k].(string); return s }
		if e.RequestID != nil {
			id := *e.RequestID
			if e.Kind == store.AuditRequestCreated {
				kinds[id] = &reqInfo{kind: str("kind"), target: str("target"), service: str("service")}
			}
			info := kinds[id]
			if info == nil {
				if r, ok := byID[id]; ok {
					info = &reqInfo{kind: r.Kind, target: r.Target, service: r.Service}
					kinds[id] = info
				}
			}
			switch {
			case e.Kind == store.RequestMovedKind(store.RequestSucceeded) && !a.RTO.Verified && info != nil:
				ok, has := d["ok"].(bool)
				if !has {
					ok = reportOK(d["report"])
				}
				if ok && !isDrill(info.kind, info.target) && (info.service == "" || info.service == inc.Service) {
					a.RTO = AchievedRTO{Objective: inc.RTO, Verified: true, At: e.At, Took: e.At.Sub(inc.OpenedAt),
						By: fmt.Sprintf("%s, request #%d: %s", info.label(id), id, reportPhrase(d["report"]))}
				}
			case e.Kind == store.AuditStepFinished && str("step") == stepSwap && str("error") == "":
				swapped[id] = true
				a.rpoSwap(inc, byID[id], current)
			}
			continue
		}
		if e.Kind == store.AuditVerifyRan && !a.RTO.Verified {
			ok, has := d["ok"].(bool)
			if !has {
				ok = reportOK(e.Data)
			}
			if svc := str("service"); ok && (svc == "" || svc == inc.Service) {
				a.RTO = AchievedRTO{Objective: inc.RTO, Verified: true, At: e.At, Took: e.At.Sub(inc.OpenedAt),
					By: fmt.Sprintf("/dr verify by %s: %s", orDash(actorLabel(e.Actor, d)), reportPhrase(d))}
			}
		}
	}
	for _, r := range reqs {
		if r.Kind == kindRestoreDB && !swapped[r.ID] && !isDrill(r.Kind, r.Target) && r.IncidentID != nil && *r.IncidentID == inc.ID {
			a.Unswapped = append(a.Unswapped, r.ID)
		}
	}
	slices.Sort(a.Unswapped)
	return a
}

// reportOK reports whether a recorded verification report (a decoded map,
// or its JSON) has checks and every one passed.
func reportOK(v any) bool {
	if raw, ok := v.(json.RawMessage); ok {
		var m map[string]any
		if json.Unmarshal(raw, &m) != nil {
			return false
		}
		v = m
	}
	m, _ := v.(map[string]any)
	checks, _ := m["checks"].([]any)
	for _, c := range checks {
		cm, _ := c.(map[string]any)
		if ok, _ := cm["ok"].(bool); !ok {
			return false
		}
	}
	return len(checks) > 0
}

// isDrill reports whether a request is a drill: its kind says so, or its
// target is the throwaway one a drill plan names (<db>_drill_<ts>,
// drills/<ts>/; see actions.Drillable). A drill verifies nothing live and
// restores nothing live.
func isDrill(kind, target string) bool {
	return strings.Contains(strings.ToLower(kind), "drill") || strings.Contains(strings.ToLower(target), "drill")
}

// rpoSwap records that request r swapped a database in.
func (a *Achieved) rpoSwap(inc store.Incident, r store.ActionRequest, current map[string]int) {
	var p restorePlan
	if r.ID == 0 || isDrill(r.Kind, r.Target) || json.Unmarshal(r.Plan, &p) != nil || p.Spec.Database == "" {
		return
	}
	switch r.Kind {
	case kindRestoreDB:
		if p.Spec.Backup == nil || p.Spec.Backup.LastModified.IsZero() {
			return
		}
		lost := max(inc.OpenedAt.Sub(p.Spec.Backup.LastModified), 0)
		backup := p.Spec.Location + p.Spec.Backup.Name // the name is relative to the location
		if p.Spec.Location != "" && !strings.HasSuffix(p.Spec.Location, "/") {
			backup = p.Spec.Location + " " + p.Spec.Backup.Name
		}
		row := AchievedRPO{Database: p.Spec.Database, Request: r.ID, Backup: backup, BackupAt: p.Spec.Backup.LastModified.UTC(),
			Lost: lost, Objective: inc.RPO}
		if i, ok := current[p.Spec.Database]; ok {
			a.RPO[i] = row // a later restore of the same database is what is live
			return
		}
		current[p.Spec.Database] = len(a.RPO)
		a.RPO = append(a.RPO, row)
	case kindRollback:
		if i, ok := current[p.Spec.Database]; ok {
			a.RPO[i].RolledBack = r.ID
		}
	}
}

// incidentRequests is implemented by stores that list an incident's
// requests (*postgres.DB); the achieved RPO reads the pinned backups from
// their plans.
type incidentRequests interface {
	RequestsForIncident(ctx context.Context, incidentID int64) ([]store.ActionRequest, error)
}

// achieved reads what the achieved objectives need and computes them.
func achieved(ctx context.Context, st any, inc store.Incident, evs []store.AuditEvent) (Achieved, error) {
	var reqs []store.ActionRequest
	if rs, ok := st.(incidentRequests); ok {
		var err error
		if reqs, err = rs.RequestsForIncident(ctx, inc.ID); err != nil {
			return Achieved{}, fmt.Errorf("requests of incident %d: %w", inc.ID, err)
		}
	}
	return AchievedObjectives(inc, evs, reqs), nil
}
