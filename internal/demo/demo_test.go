package demo_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/backups"
	"github.com/drbot-dev/drbot/actions/restoredb"
	"github.com/drbot-dev/drbot/deploy/examples"
	"github.com/drbot-dev/drbot/internal/demo"
	"github.com/drbot-dev/drbot/internal/testenv"
	"github.com/drbot-dev/drbot/runbook"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestPrepareIsIdempotentAndTheDemoRunbookWorks(t *testing.T) {
	ctx := context.Background()
	c := testenv.Cluster(t)
	t.Cleanup(func() { _ = c.DropDatabase(context.Background(), demo.Database) })
	dataDir := t.TempDir()
	env, err := demo.Prepare(ctx, nil, c.URL("postgres"), dataDir)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(dataDir, demo.BackupsDir)
	if env[demo.BackupsEnv] != dir || !strings.Contains(env[demo.URLEnv], "/"+demo.Database) {
		t.Fatalf("env = %v", env)
	}
	first, _ := filepath.Glob(filepath.Join(dir, "*.dump"))
	if len(first) != 1 {
		t.Fatalf("backups after the first Prepare: %v", first)
	}
	// Again: nothing new.
	if _, err := demo.Prepare(ctx, nil, c.URL("postgres"), dataDir); err != nil {
		t.Fatal(err)
	}
	again, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(again) != 1 || again[0] != first[0] {
		t.Fatalf("second Prepare changed the backups: %v", again)
	}
	for k, v := range env {
		t.Setenv(k, v)
	}

	// The embedded demo runbook, unchanged, from another working directory.
	t.Chdir(t.TempDir())
	cfg, err := runbook.Parse(examples.DemoName, examples.Demo)
	if err != nil {
		t.Fatal(err)
	}
	svc := cfg.Services[0]
	ls, err := backups.List(ctx, cfg, svc.Name, "db", nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 1 || len(ls[0].Rows) != 1 || !ls[0].OK || !strings.HasSuffix(ls[0].Verdict, ", OK") {
		t.Fatalf("/dr backups on the demo: %+v", ls)
	}

	a := restoredb.New(restoredb.Options{Config: func() *runbook.Config { return cfg }})
	p, err := a.Plan(ctx, actions.Params{Service: svc.Name})
	if err != nil {
		t.Fatal(err)
	}
	j := newJournal()
	if err := a.Execute(ctx, p, j); err != nil {
		t.Fatalf("restore-db on the demo: %v (notes %v)", err, j.notes)
	}
	rep, err := a.Verify(ctx, p)
	if err != nil || !rep.OK() || len(rep.Checks) != 2 || rep.Checks[0].Observed != "500" {
		t.Fatalf("verify on the demo: %+v, %v", rep, err)
	}
	s, _ := restoredb.SpecOf(p)
	t.Cleanup(func() { _ = c.DropDatabase(context.Background(), s.Outgoing) })
}
