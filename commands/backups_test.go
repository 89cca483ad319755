package commands

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/backups"
	"github.com/drbot-dev/drbot/bot/chat"
	"github.com/drbot-dev/drbot/runbook"
)

func TestBackupsCommandListsFileBackupsWithRPOVerdict(t *testing.T) {
	dir := t.TempDir()
	for name, age := range map[string]time.Duration{"demo-1.dump": 3*time.Hour + 12*time.Minute, "demo-0.sql.gz": 27 * time.Hour} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(strings.Repeat("x", 1536)), 0o644); err != nil {
			t.Fatal(err)
		}
		when := time.Now().Add(-age)
		if err := os.Chtimes(p, when, when); err != nil {
			t.Fatal(err)
		}
	}
	loc, err := runbook.ParseLocation("file://" + dir + "/")
	if err != nil {
		t.Fatal(err)
	}
	cfg := &runbook.Config{Services: []runbook.Service{{
		Name: "demo", Objectives: runbook.Objectives{RPO: runbook.Duration{Duration: 4 * time.Hour}},
		Databases: []runbook.Database{{Name: "demo", URLEnv: "DEMO_DATABASE_URL", Backups: &runbook.Backups{Location: loc}}},
	}}}
	r := NewRegistry(Deps{Services: cfg.ServiceNames, Runbook: func() *runbook.Config { return cfg }, Actions: []actions.Procedure{backups.New(cfg, nil)}})
	c := r.Lookup("backups")
	if c == nil || c.Approval {
		t.Fatalf("backups command = %+v, want registered and not approval-gated", c)
	}
	m, err := r.Dispatch(context.Background(), chat.Command{User: chat.User{ID: "U1"}, Text: "backups demo db"})
	if err != nil {
		t.Fatal(err)
	}
	got := renderPlain(m)
	for _, want := range []string{"`demo-1.dump` — 1.5 KiB — 3h12m old", "`demo-0.sql.gz` — 1.5 KiB — 27h old", "RPO 4h: newest backup 3h12m old, OK"} {
		if !strings.Contains(got, want) {
			t.Errorf("/dr backups output lacks %q:\n%s", want, got)
		}
	}
	if _, err := r.Dispatch(context.Background(), chat.Command{Text: "backups demo models"}); err == nil {
		t.Error("models of a service without models: want a refusal")
	} else if _, ok := AsRefusal(err); !ok {
		t.Errorf("models of a service without models: %v is not a refusal", err)
	}
	// Without the procedure the command is not there.
	if NewRegistry(Deps{}).Lookup("backups") != nil {
		t.Error("backups registered without its procedure")
	}
}
