package postgres_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/store"
)

func TestOpenIncidentConcurrent(t *testing.T) {
	ctx := ctxT(t)
	db, url := openDB(t)
	const n = 20
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		created int
		ids     = map[int64]bool{}
	)
	for i := range n {
		wg.Go(func() {
			inc, ok, err := db.OpenIncident(ctx, store.Incident{
				PagerDutyID: "PCONC", Service: "inflow", Title: fmt.Sprintf("attempt %d", i), Urgency: "high",
			}, noteJob("escalate"))
			if err != nil {
				t.Errorf("OpenIncident: %v", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			ids[inc.ID] = true
			if ok {
				created++
			}
		})
	}
	wg.Wait()
	if created != 1 || len(ids) != 1 {
		t.Fatalf("created = %d, distinct ids = %d; want 1 and 1", created, len(ids))
	}
	conn := sqlConn(t, url)
	if c := count(t, conn, "SELECT count(*) FROM incidents WHERE pagerduty_id = 'PCONC'"); c != 1 {
		t.Errorf("incident rows = %d, want 1", c)
	}
	if c := count(t, conn, "SELECT count(*) FROM audit_events WHERE kind = 'incident.opened'"); c != 1 {
		t.Errorf("incident.opened audit rows = %d, want 1", c)
	}
	if c := count(t, conn, "SELECT count(*) FROM river_job WHERE kind = 'test.note'"); c != 1 {
		t.Errorf("jobs = %d, want 1 (only the call that created the incident inserts jobs)", c)
	}
	rep, err := db.VerifyAudit(ctx)
	if err != nil || !rep.OK() {
		t.Errorf("VerifyAudit = %+v, %v", rep, err)
	}
}

func TestIncidentLifecycle(t *testing.T) {
	ctx := ctxT(t)
	db, _ := openDB(t)
	opened := time.Date(2026, 11, 3, 10, 4, 5, 123456789, time.UTC)
	inc, created, err := db.OpenIncident(ctx, store.Incident{
		PagerDutyID: "P1", Service: "inflow", Title: "primary down", Urgency: "high", URL: "https://pd/P1",
		OpenedAt: opened, RTO: 4 * time.Hour, RPO: 15 * time.Minute, Security: true,
	})
	if err != nil || !created {
		t.Fatalf("OpenIncident = %v, %v", created, err)
	}
	if inc.Status != store.IncidentTriggered || !inc.OpenedAt.Equal(opened.Truncate(time.Microsecond)) ||
		inc.RTO != 4*time.Hour || inc.RPO != 15*time.Minute || !inc.Security || inc.Channel != "" {
		t.Errorf("opened incident = %+v", inc)
	}
	again, created, err := db.OpenIncident(ctx, store.Incident{PagerDutyID: "P1", Title: "changed"})
	if err != nil || created || again.ID != inc.ID || again.Title != "primary down" {
		t.Errorf("second OpenIncident = %+v, %v, %v; want the first one, not created", again, created, err)
	}
	if _, _, err := db.OpenIncident(ctx, store.Incident{}); err == nil {
		t.Error("OpenIncident without PagerDuty id succeeded")
	}

	if _, err := db.IncidentByChannel(ctx, "C1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("IncidentByChannel before linking = %v, want ErrNotFound", err)
	}
	if err := db.SetIncidentChannel(ctx, inc.ID, "C1"); err != nil {
		t.Fatal(err)
	}
	if err := db.SetIncidentChannel(ctx, inc.ID, "C1"); err != nil {
		t.Errorf("setting the same channel again: %v", err)
	}
	if err := db.SetIncidentChannel(ctx, inc.ID, "C2"); !errors.Is(err, store.ErrStateConflict) {
		t.Errorf("setting a second channel = %v, want ErrStateConflict", err)
	}
	other, _, err := db.OpenIncident(ctx, store.Incident{PagerDutyID: "P2", Service: "lstm-pfd"})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.SetIncidentChannel(ctx, other.ID, "C1"); !errors.Is(err, store.ErrDuplicate) {
		t.Errorf("taking another incident's channel = %v, want ErrDuplicate", err)
	}
	byCh, err := db.IncidentByChannel(ctx, "C1")
	if err != nil || byCh.ID != inc.ID {
		t.Errorf("IncidentByChannel = %+v, %v", byCh, err)
	}

	// Update: acknowledge, with a job; the callback's error aborts everything.
	refuse := errors.New("not now")
	if _, err := db.UpdateIncident(ctx, inc.ID, func(i *store.Incident) error {
		i.Status = store.IncidentResolved
		return refuse
	}, store.AuditEvent{Actor: "U1", Kind: "incident.resolved"}); err != refuse { //nolint:errorlint // must be returned unchanged, not wrapped
		t.Errorf("UpdateIncident with refusing callback = %v, want it unchanged", err)
	}
	ackAt := time.Now().UTC().Truncate(time.Microsecond)
	upd, err := db.UpdateIncident(ctx, inc.ID, func(i *store.Incident) error {
		i.Status, i.AckedAt = store.IncidentAcknowledged, &ackAt
		return nil
	}, store.AuditEvent{Actor: "U1", Kind: "incident.acknowledged", Data: json.RawMessage(`{"by":"U1"}`)}, noteJob("rto-warning"))
	if err != nil {
		t.Fatal(err)
	}
	if upd.Status != store.IncidentAcknowledged || upd.AckedAt == nil || !upd.AckedAt.Equal(ackAt) || upd.Channel != "C1" {
		t.Errorf("updated incident = %+v", upd)
	}
	if _, err := db.UpdateIncident(ctx, inc.ID, func(i *store.Incident) error { i.Status = "bogus"; return nil },
		store.AuditEvent{Actor: "U1", Kind: "x"}); err == nil {
		t.Error("UpdateIncident to an unknown status succeeded")
	}
	if _, err := db.UpdateIncident(ctx, 999999, func(*store.Incident) error { return nil },
		store.AuditEvent{Actor: "U1", Kind: "x"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("UpdateIncident of a missing incident = %v, want ErrNotFound", err)
	}

	open, err := db.ListIncidents(ctx, true)
	if err != nil || len(open) != 2 {
		t.Fatalf("ListIncidents(open) = %d, %v", len(open), err)
	}
	if _, err := db.UpdateIncident(ctx, other.ID, func(i *store.Incident) error { i.Status = store.IncidentResolved; return nil },
		store.AuditEvent{Actor: "pagerduty", Kind: "incident.resolved"}); err != nil {
		t.Fatal(err)
	}
	open, _ = db.ListIncidents(ctx, true)
	all, _ := db.ListIncidents(ctx, false)
	if len(open) != 1 || open[0].ID != inc.ID || len(all) != 2 {
		t.Errorf("after resolving: open = %v, all = %v", open, all)
	}
	if _, err := db.Incident(ctx, 424242); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Incident(missing) = %v, want ErrNotFound", err)
	}
	if _, err := db.IncidentByPagerDutyID(ctx, "PNOPE"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("IncidentByPagerDutyID(missing) = %v, want ErrNotFound", err)
	}

	evs, err := db.AuditEvents(ctx, store.AuditFilter{IncidentID: &inc.ID})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, e := range evs {
		kinds = append(kinds, e.Kind)
	}
	want := []string{"incident.opened", "incident.channel_set", "incident.acknowledged"}
	if fmt.Sprint(kinds) != fmt.Sprint(want) {
		t.Errorf("audit kinds = %v, want %v", kinds, want)
	}
}

func TestRecordDelivery(t *testing.T) {
	ctx := ctxT(t)
	db, _ := openDB(t)
	for i, want := range []bool{true, false, false} {
		got, err := db.RecordDelivery(ctx, "evt-1")
		if err != nil || got != want {
			t.Errorf("RecordDelivery #%d = %v, %v; want %v", i, got, err, want)
		}
	}
	if _, err := db.RecordDelivery(ctx, ""); err == nil {
		t.Error("RecordDelivery(\"\") succeeded")
	}
	n, err := db.PruneDeliveries(ctx, time.Now().Add(time.Minute))
	if err != nil || n != 1 {
		t.Errorf("PruneDeliveries = %d, %v", n, err)
	}
	if got, _ := db.RecordDelivery(ctx, "evt-1"); !got {
		t.Error("a pruned delivery is not new again")
	}
}
