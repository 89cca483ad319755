package main

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/runner/runnertest"
	"github.com/drbot-dev/drbot/bot/shell"
	"github.com/drbot-dev/drbot/deploy/examples"
	"github.com/drbot-dev/drbot/internal/testenv"
	"github.com/drbot-dev/drbot/runbook"
	"github.com/drbot-dev/drbot/store"
	"github.com/drbot-dev/drbot/store/postgres"
)

// syncBuffer is the shell's output, read while the bot writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestShellApprovalFlow: in `drbot shell` (the demo runbook, whose approvers
// are e-mails the shell resolves to local names) alice requests, cannot
// approve her own request, switches to bob with /as and approves with /click.
func TestShellApprovalFlow(t *testing.T) {
	ctx := context.Background()
	url := testenv.PostgresURL(t)
	cfg, err := runbook.Parse(examples.DemoName, examples.Demo)
	if err != nil {
		t.Fatal(err)
	}
	db, err := postgres.Open(ctx, url, postgres.Options{Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	act, err := runnertest.New(ctx, "restore-db", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(act.Close)
	if err := act.AddBackup(ctx, "demo-2026-11-23.dump"); err != nil {
		t.Fatal(err)
	}
	out := &syncBuffer{}
	sh := shell.New(shell.Options{Out: out, User: "alice", Now: time.Now})
	rt := newRuntimeWith(ctx, quietLog(), cfg, db, sh, actions.Registry{"restore-db": act})
	sh.SetHandler(rt.bot)
	if err := rt.startJobs(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.stopJobs(quietLog()) })

	sh.Exec(ctx, "/dr restore-db demo-shop --reason drill")
	button := func(label string) string {
		m := regexp.MustCompile(`\[(\d+)\]\s*`+label).FindAllStringSubmatch(out.String(), -1)
		if len(m) == 0 {
			t.Fatalf("no %s button in the shell output:\n%s", label, out.String())
		}
		return m[len(m)-1][1]
	}
	approve := button("Approve")
	sh.Exec(ctx, "/click "+approve)
	if !strings.Contains(out.String(), "you cannot approve it") {
		t.Fatalf("alice's own approval was not refused:\n%s", out.String())
	}
	sh.Exec(ctx, "/as bob")
	sh.Exec(ctx, "/click "+approve)
	deadline := time.Now().Add(wait)
	for {
		rs, err := db.RecentRequests(ctx, "demo-shop", 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) == 1 && rs[0].State == store.RequestSucceeded && strings.Contains(out.String(), "succeeded") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("request did not succeed (%+v):\n%s", rs, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ex, _ := act.Executions(ctx); !slices.Equal(ex, []string{"demo-2026-11-23.dump"}) {
		t.Errorf("executions = %v", ex)
	}
}
