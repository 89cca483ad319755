package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/bot/chat"
	"github.com/drbot-dev/drbot/internal/fakeslack"
	"github.com/drbot-dev/drbot/store"
)

// TestKilledServeResumesApprovedRequest: `drbot serve` is killed with SIGKILL
// after the approval and before the request moved to running (during the
// re-plan). The next `drbot serve` runs it to the end, once, as soon as the
// dead runner's lease runs out (DRBOT_EXECUTION_LEASE, 5 s here) — not after
// River's 12-hour worker timeout.
func TestKilledServeResumesApprovedRequest(t *testing.T) {
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
	serve := func(hold bool) *server {
		addr := freeAddr(t)
		cmd := exec.Command(e2eBinary(t), "serve", "--config", cfgFile, "--log-format", "json")
		cmd.Env = []string{
			"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(),
			"DATABASE_URL=" + w.url, "DRBOT_LISTEN=" + addr,
			"SLACK_BOT_TOKEN=" + w.slack.BotToken(), "SLACK_SIGNING_SECRET=" + e2eSecret, "SLACK_API_URL=" + w.slack.APIURL(),
			"DRBOT_E2E_ACTIONS_URL=" + w.url, "DRBOT_EXECUTION_LEASE=5s",
		}
		if hold {
			cmd.Env = append(cmd.Env, "DRBOT_E2E_HOLD_REPLAN=restore-db")
		}
		return startServer(t, cmd, addr)
	}
	srv := serve(true)
	form := fakeslack.SlashCommand{Text: "restore-db", UserID: alice, UserName: "alice", ChannelID: w.channel}.Form()
	signedPost(t, srv.base+"/slack/commands", form.Encode())
	probe := startProbe(t, w)
	card, id := w.card(t, probe, 0)
	signedPost(t, srv.base+"/slack/interactions", clickPayload(t, w, card, bob, chat.ActionApprove, id))
	if !w.slack.WaitFor(wait, func() bool { return strings.Contains(srv.logs.String(), "e2e: re-plan held") }) {
		t.Fatalf("execution never reached the re-plan:\n%s", srv.logs.String())
	}
	srv.kill()
	if r, err := probe.Request(context.Background(), id); err != nil || r.State != store.RequestApproved {
		t.Fatalf("after the kill: %+v, %v (want approved)", r.State, err)
	}

	restarted := time.Now()
	srv2 := serve(false)
	deadline := restarted.Add(90 * time.Second)
	for {
		r, err := probe.Request(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if r.State == store.RequestSucceeded {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("request %d is still %s %s after the restart (want succeeded within a minute of the dead runner's lease):\n%s",
				id, r.State, time.Since(restarted).Round(time.Second), srv2.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("succeeded %s after the restart", time.Since(restarted).Round(time.Second))
	if ex := executions(t, w.restore); !slices.Equal(ex, []string{"b1"}) {
		t.Errorf("executions = %v, want exactly one of b1", ex)
	}
	w.waitCard(t, card.TS, "succeeded")
	kinds := auditKinds(t, probe, id)
	if n := countOf(kinds, "request.running"); n != 1 {
		t.Errorf("request.running rows = %d: %v", n, kinds)
	}
}
