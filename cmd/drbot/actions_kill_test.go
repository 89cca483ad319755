package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/drbot-dev/drbot/bot/chat"
	"github.com/drbot-dev/drbot/internal/fakeslack"
	"github.com/drbot-dev/drbot/store"
)

var (
	e2eBuildOnce sync.Once
	e2eBinPath   string
	e2eBuildErr  error
)

// e2eBinary builds drbot with -tags e2etest: the real binary, with the test
// action standing in for restore-db and failover (actions_e2etest.go).
func e2eBinary(t *testing.T) string {
	t.Helper()
	e2eBuildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "drbot-e2e-bin-")
		if err != nil {
			e2eBuildErr = err
			return
		}
		e2eBinPath = filepath.Join(dir, "drbot")
		out, err := exec.Command("go", "build", "-race", "-tags", "e2etest", "-o", e2eBinPath, ".").CombinedOutput()
		if err != nil {
			e2eBuildErr = fmt.Errorf("go build -tags e2etest: %w\n%s", err, out)
		}
	})
	if e2eBuildErr != nil {
		t.Fatal(e2eBuildErr)
	}
	return e2eBinPath
}

// TestKilledServeResumesRequest: `drbot serve` is killed with SIGKILL in the
// middle of an approved request's step; the next process resumes it from
// the journal, runs it to the end once and says so in the channel.
func TestKilledServeResumesRequest(t *testing.T) {
	w := newWorld(t, "15m")
	cfgFile := filepath.Join(t.TempDir(), "e2e.yaml")
	if err := os.WriteFile(cfgFile, []byte(`
slack:
  approvers: [UBOB, SDBA, carol@example.com]
services:
  - name: inflow
    pagerduty:
      service_ids: [PINFLOW]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	cmd := exec.Command(e2eBinary(t), "serve", "--config", cfgFile, "--log-format", "json")
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(),
		"DATABASE_URL=" + w.url, "DRBOT_LISTEN=" + addr,
		"SLACK_BOT_TOKEN=" + w.slack.BotToken(), "SLACK_SIGNING_SECRET=" + e2eSecret, "SLACK_API_URL=" + w.slack.APIURL(),
		"DRBOT_E2E_ACTIONS_URL=" + w.url, "DRBOT_EXECUTION_LEASE=5s", "DRBOT_E2E_HOLD=restore-db",
	}
	srv := startServer(t, cmd, addr)
	base, logs := srv.base, srv.logs
	form := fakeslack.SlashCommand{Text: "restore-db", UserID: alice, UserName: "alice", ChannelID: w.channel}.Form()
	signedPost(t, base+"/slack/commands", form.Encode())

	// The in-process store only reads here; no jobs run in this process yet.
	probe := startProbe(t, w)
	card, id := w.card(t, probe, 0)
	signedPost(t, base+"/slack/interactions", clickPayload(t, w, card, bob, chat.ActionApprove, id))
	if !w.slack.WaitFor(wait, func() bool { return strings.Contains(logs.String(), "e2e: execution held") }) {
		t.Fatalf("execution never reached the held step:\n%s", logs.String())
	}
	srv.kill()
	if r := w.waitState(t, probe, id, store.RequestRunning); r.State != store.RequestRunning {
		t.Fatal("not running after the kill")
	}
	if ex := executions(t, w.restore); len(ex) != 0 {
		t.Fatalf("executed before the kill: %v", ex)
	}

	// The next process (this test's, with the test action not held) resumes it.
	in := startInstance(t, w)
	w.waitState(t, in.db, id, store.RequestSucceeded)
	if ex := executions(t, w.restore); !slices.Equal(ex, []string{"b1"}) {
		t.Errorf("executions = %v, want exactly one of b1", ex)
	}
	if !w.slack.WaitFor(wait, func() bool {
		for _, m := range w.slack.Messages(w.channel) {
			if strings.Contains(m.Text, "Resumed after a restart") {
				return true
			}
		}
		return false
	}) {
		t.Error("the channel was not told the request resumed")
	}
	w.waitCard(t, card.TS, "succeeded")
	kinds := auditKinds(t, in.db, id)
	if n := countOf(kinds, "step.started"); n != 4 { // check, create, record (killed), record again
		t.Errorf("step.started rows = %d: %v", n, kinds)
	}
}

func auditKinds(t *testing.T, db interface {
	AuditEvents(context.Context, store.AuditFilter) ([]store.AuditEvent, error)
}, id int64) []string {
	t.Helper()
	evs, err := db.AuditEvents(context.Background(), store.AuditFilter{RequestID: &id})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ev := range evs {
		out = append(out, ev.Kind)
	}
	return out
}

func countOf(ss []string, s string) int {
	n := 0
	for _, x := range ss {
		if x == s {
			n++
		}
	}
	return n
}
