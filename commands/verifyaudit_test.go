package commands_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/verify"
	"github.com/drbot-dev/drbot/bot/chat"
	"github.com/drbot-dev/drbot/bot/incident"
	"github.com/drbot-dev/drbot/commands"
	"github.com/drbot-dev/drbot/internal/testenv"
	"github.com/drbot-dev/drbot/runbook"
	"github.com/drbot-dev/drbot/store"
	"github.com/drbot-dev/drbot/store/postgres"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestVerifyIsAudited: every /dr verify appends one verify.ran audit row with
// its report, attached to the incident of the channel it ran in, so it is on
// the incident's timeline and in the post-mortem export.
func TestVerifyIsAudited(t *testing.T) {
	ctx := context.Background()
	db, err := postgres.Open(ctx, testenv.PostgresURL(t), postgres.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	inc, _, err := db.OpenIncident(ctx, store.Incident{PagerDutyID: "PVERIFY", Service: "lstm-pfd", Title: "predictions failing"})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.SetIncidentChannel(ctx, inc.ID, "C-INC"); err != nil {
		t.Fatal(err)
	}

	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(ok.Close)
	sick := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	t.Cleanup(sick.Close)
	cfg := &runbook.Config{Services: []runbook.Service{{Name: "lstm-pfd", Health: []runbook.HealthCheck{
		{Name: "dashboard", HTTP: ok.URL},
		{Name: "predict smoke", HTTP: sick.URL + "/predict", Method: "POST", Body: "{}", ExpectStatus: 200},
	}}}}
	reg := commands.NewRegistry(commands.Deps{
		Services:          cfg.ServiceNames,
		ServiceForChannel: commands.ChannelServices(db),
		Actions:           []actions.Procedure{verify.New(cfg, verify.Deps{})},
		Runbook:           func() *runbook.Config { return cfg },
		RecordReading:     commands.AuditReadings(db),
	})

	for _, channel := range []string{"C-INC", "C-OPS"} {
		msg, err := reg.Dispatch(ctx, chat.Command{User: chat.User{ID: "UALICE", Name: "alice"}, Channel: channel, Text: "verify lstm-pfd"})
		if err != nil {
			t.Fatalf("verify in %s: %v", channel, err)
		}
		if !strings.Contains(msg.Text, "lstm-pfd") {
			t.Errorf("reply %q", msg.Text)
		}
	}

	evs, err := db.AuditEvents(ctx, store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var all []store.AuditEvent
	for _, e := range evs {
		if e.Kind == store.AuditVerifyRan {
			all = append(all, e)
		}
	}
	if len(all) != 2 {
		t.Fatalf("%d verify.ran rows, want one per run (2)", len(all))
	}
	if all[0].IncidentID == nil || *all[0].IncidentID != inc.ID || all[1].IncidentID != nil || all[0].Actor != "UALICE" {
		t.Errorf("rows: incident %v actor %q, then incident %v; want the incident channel's run on incident %d", all[0].IncidentID, all[0].Actor, all[1].IncidentID, inc.ID)
	}
	var rec commands.VerifyRecord
	if err := json.Unmarshal(all[0].Data, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Service != "lstm-pfd" || rec.OK || len(rec.Checks) != 2 || !rec.Checks[0].OK || rec.Checks[1].OK ||
		rec.Checks[1].Name != "predict smoke" || !strings.HasPrefix(rec.Checks[1].Observed, "503") {
		t.Errorf("record %+v", rec)
	}

	md, err := incident.ExportTimeline(ctx, db, "PVERIFY", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	want := "Verified lstm-pfd by UALICE: FAILED, 1/2 checks passed (predict smoke: observed 503"
	if !strings.Contains(md, want) {
		t.Errorf("timeline export lacks %q:\n%s", want, md)
	}
}
